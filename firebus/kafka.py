"""Kafka connection options from settings, and the admin operations behind ``firebus topics``.

Every aiokafka client firebus makes gets its connection and security options from :func:`client_options`, so
PLAINTEXT on the embedded broker and SASL_SSL on a county cluster differ only in settings.
"""

from __future__ import annotations

import asyncio
import ssl
import struct
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import KafkaConnectionError, KafkaError
from aiokafka.helpers import create_ssl_context
from aiokafka.protocol.fetch import FetchRequest
from aiokafka.record.memory_records import MemoryRecords

from firebus.errors import BrokerError, BrokerUnavailableError, ConfigurationError
from firebus.settings import Compression, SecurityProtocol, Settings
from firebus.topics import ALL_TOPICS, CO_PARTITIONED, Topic, co_partitioning_problem

TOPIC_ALREADY_EXISTS = 36

log = structlog.get_logger(__name__)


def client_options(settings: Settings, *, client_id: str | None = None) -> dict[str, Any]:
    """Connection and security keyword arguments shared by every aiokafka client."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "client_id": client_id or settings.client_id,
        "request_timeout_ms": settings.request_timeout_ms,
        "security_protocol": settings.security_protocol.value,
    }
    if settings.security_protocol in (SecurityProtocol.SSL, SecurityProtocol.SASL_SSL):
        try:
            options["ssl_context"] = create_ssl_context(
                cafile=settings.ssl_cafile, certfile=settings.ssl_certfile, keyfile=settings.ssl_keyfile
            )
        except (OSError, ssl.SSLError) as exc:
            raise ConfigurationError(f"TLS settings (ssl_cafile, ssl_certfile, ssl_keyfile): {exc}") from exc
    if settings.security_protocol in (SecurityProtocol.SASL_SSL, SecurityProtocol.SASL_PLAINTEXT):
        assert settings.sasl_password is not None  # noqa: S101  (guaranteed by Settings validation)
        options["sasl_mechanism"] = settings.sasl_mechanism.value
        options["sasl_plain_username"] = settings.sasl_username
        options["sasl_plain_password"] = settings.sasl_password.get_secret_value()
    return options


def producer_options(settings: Settings, *, client_id: str, **overrides: Any) -> dict[str, Any]:
    """Keyword arguments of every firebus producer: the connection, ``acks=all``, idempotence where the broker has
    it, and the configured codec. ``overrides`` for what one producer needs otherwise (linger, batch size)."""
    return {
        **client_options(settings, client_id=client_id),
        "acks": "all",
        "enable_idempotence": settings.producer_idempotence,
        "compression_type": None if settings.compression is Compression.NONE else settings.compression.value,
        **overrides,
    }


def unreachable(settings: Settings, exc: BaseException) -> BrokerUnavailableError:
    """The one error every client raises when no broker answers."""
    return BrokerUnavailableError(f"cannot reach Kafka at {settings.bootstrap_servers}: {exc}")


async def start_admin(settings: Settings) -> AIOKafkaAdminClient:
    """A started admin client, or :class:`BrokerUnavailableError` after ``connect_timeout_s``."""
    admin = AIOKafkaAdminClient(**client_options(settings, client_id=f"{settings.client_id}-admin"))
    deadline = asyncio.get_running_loop().time() + settings.connect_timeout_s
    while True:
        try:
            await admin.start()
        except (KafkaConnectionError, OSError) as exc:
            if asyncio.get_running_loop().time() >= deadline:
                await admin.close()
                raise unreachable(settings, exc) from exc
            await asyncio.sleep(0.2)
        else:
            return admin


@dataclass(frozen=True)
class TopicState:
    """What the broker says about one registered topic."""

    topic: Topic
    exists: bool
    partitions: int | None
    configs: dict[str, str]

    def problems(self) -> list[str]:
        if not self.exists:
            return [f"{self.topic.name}: missing"]
        found = []
        if self.partitions is not None and self.partitions < self.topic.partitions:
            found.append(
                f"{self.topic.name}: {self.partitions} partitions, registry wants at least {self.topic.partitions}"
            )
        for name, wanted in self.topic.configs().items():
            actual = self.configs.get(name)
            if actual is not None and actual != wanted:
                found.append(f"{self.topic.name}: {name}={actual}, registry wants {wanted}")
        return found


def partitions_to_create(settings: Settings, topic: Topic) -> int:
    """The registry's partition count, or the deployment's larger one for the co-partitioned topics."""
    if topic not in CO_PARTITIONED or settings.review_partitions is None:
        return topic.partitions
    if settings.review_partitions < topic.partitions:
        raise ConfigurationError(
            f"review_partitions={settings.review_partitions} is fewer than the registry's {topic.partitions}"
        )
    return settings.review_partitions


async def create_topics(settings: Settings, topics: Iterable[Topic] = ALL_TOPICS) -> list[str]:
    """Create the missing topics; returns the names created. Safe to run again."""
    admin = await start_admin(settings)
    try:
        existing = set(await admin.list_topics())
        missing = [topic for topic in topics if topic.name not in existing]
        if not missing:
            return []
        response = await admin.create_topics(
            [
                NewTopic(
                    topic.name,
                    partitions_to_create(settings, topic),
                    settings.topic_replication,
                    topic_configs=topic.configs(),
                )
                for topic in missing
            ]
        )
        for name, code, message in response.topic_errors:
            if code not in (0, TOPIC_ALREADY_EXISTS):
                raise BrokerError(f"creating {name} failed: error {code} {message}")
        return [topic.name for topic in missing]
    except KafkaError as exc:
        raise BrokerError(f"creating topics failed: {exc}") from exc
    finally:
        await admin.close()


async def describe_topics(
    settings: Settings, topics: Iterable[Topic] = ALL_TOPICS, *, with_configs: bool = True
) -> list[TopicState]:
    """The broker's view of every registered topic: existence, partition count and (``with_configs``, which needs
    DescribeConfigs) the configs we set."""
    wanted = list(topics)
    admin = await start_admin(settings)
    try:
        existing = set(await admin.list_topics())
        present = [topic for topic in wanted if topic.name in existing]
        partitions: dict[str, int] = {}
        configs: dict[str, dict[str, str]] = {}
        if present:
            for description in await admin.describe_topics([topic.name for topic in present]):
                partitions[description["topic"]] = len(description["partitions"])
            resources = [ConfigResource(ConfigResourceType.TOPIC, topic.name) for topic in present]
            for response in await admin.describe_configs(resources) if with_configs else ():
                for resource in response.resources:
                    _code, _message, _type, name, entries = resource[:5]
                    configs[name] = {entry[0]: entry[1] for entry in entries}
        return [
            TopicState(
                topic=topic,
                exists=topic.name in existing,
                partitions=partitions.get(topic.name),
                configs=configs.get(topic.name, {}),
            )
            for topic in wanted
        ]
    except KafkaError as exc:
        raise BrokerError(f"describing topics failed: {exc}") from exc
    finally:
        await admin.close()


async def co_partitioned_count(settings: Settings) -> int:
    """The one partition count of the co-partitioned topics on the broker; an error when one is missing or differs.

    Needs only Describe on the topics (the processors' own ACLs), not the admin's DescribeConfigs."""
    states = await describe_topics(settings, CO_PARTITIONED, with_configs=False)
    missing = [state.topic.name for state in states if state.partitions is None]
    if missing:
        raise BrokerError(f"topics missing: {', '.join(missing)}; run `firebus topics create`")
    counts = {state.topic.name: state.partitions for state in states if state.partitions is not None}
    problem = co_partitioning_problem(counts)
    if problem is not None:
        raise ConfigurationError(problem)
    return next(iter(counts.values()))


async def fetched_end_offsets(
    options: dict[str, Any], partitions: Sequence[TopicPartition]
) -> dict[TopicPartition, int]:
    """End offsets as fetch responses report them (the high watermark), checked against ListOffsets.

    The embedded broker's ListOffsets answers ``latest`` with one past the *first* offset of the last record batch,
    so a reader trusting it stops short of a batch's later records. A fetch response's high watermark is right on
    every broker; on Apache Kafka both agree and this costs one fetch per partition.
    """
    consumer = AIOKafkaConsumer(**options, group_id=None, enable_auto_commit=False, fetch_max_wait_ms=10)
    await consumer.start()
    try:
        listed: dict[TopicPartition, int] = await consumer.end_offsets(list(partitions))
        probing = [tp for tp, end in listed.items() if end > 0]
        if not probing:
            return listed
        consumer.assign(probing)
        for tp in probing:
            consumer.seek(tp, listed[tp] - 1)
        ends = dict(listed)
        deadline = asyncio.get_running_loop().time() + 10
        while probing and asyncio.get_running_loop().time() < deadline:
            await consumer.getmany(*probing, timeout_ms=200, max_records=1)
            for tp in list(probing):
                highwater = consumer.highwater(tp)
                if highwater is not None:
                    ends[tp] = max(ends[tp], highwater)
                    probing.remove(tp)
        return ends
    finally:
        await consumer.stop()


async def start_reader(
    settings: Settings, topics: Sequence[Topic], *, purpose: str, **overrides: Any
) -> tuple[AIOKafkaConsumer, list[TopicPartition]]:
    """A started consumer in no group — it commits nothing and moves no group's offsets — and every partition of
    ``topics`` (not yet assigned). ``overrides``: further consumer options (fetch sizes). The caller stops it."""
    consumer = AIOKafkaConsumer(
        **client_options(settings, client_id=f"{settings.client_id}-{purpose}"),
        group_id=None,
        enable_auto_commit=False,
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
        **overrides,
    )
    try:
        await asyncio.wait_for(consumer.start(), timeout=settings.connect_timeout_s)
    except (KafkaConnectionError, OSError, TimeoutError) as exc:
        await consumer.stop()
        raise unreachable(settings, exc) from exc
    try:
        await consumer.topics()  # refreshes metadata, which may predate the topics
        partitions = [
            TopicPartition(topic.name, partition)
            for topic in topics
            for partition in sorted(consumer.partitions_for_topic(topic.name) or ())
        ]
        missing = sorted({topic.name for topic in topics} - {tp.topic for tp in partitions})
        if missing:
            raise BrokerError(
                f"topic {', '.join(missing)} does not exist on {settings.bootstrap_servers}; "
                "run `firebus topics create`"
            )
    except BaseException:
        await consumer.stop()
        raise
    return consumer, partitions


class ScanStart(StrEnum):
    BEGINNING = "beginning"
    END = "end"


@dataclass(frozen=True)
class Scanned:
    """One step of a :class:`TopicScan`: records in offset order per partition, and batches stepped over."""

    records: list[ConsumerRecord[bytes, bytes]]
    unreadable: list[UnreadableBatch]


class TopicScan:
    """Read every partition of some topics without a consumer group — the one way firebus reads a topic whole.

    Starts at the beginning, at the current end, or (``since``) at the first record appended at or after a moment;
    reads up to the end each partition had when the scan began, or on for as long as the caller iterates
    (``follow``). :attr:`caught_up` tells when the ends of the start are reached; unreadable batches are stepped over
    and handed to the caller, never raised::

        async with TopicScan(settings, [AUDIT], purpose="audit") as scan:
            async for step in scan:
                ...
    """

    def __init__(
        self,
        settings: Settings,
        topics: Sequence[Topic],
        *,
        purpose: str,
        start: ScanStart | datetime = ScanStart.BEGINNING,
        follow: bool = False,
        max_records: int = 10_000,
        idle_ms: int = 1_000,
        consumer_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.settings = settings
        self.topics = list(topics)
        self.purpose = purpose
        self.start = start
        self.follow = follow
        self.max_records = max_records
        self.idle_ms = idle_ms
        self._consumer_options = dict(consumer_options or {})
        """Further consumer options, such as larger fetch sizes for long replays."""
        self._consumer: AIOKafkaConsumer | None = None
        self._reader: Reader | None = None
        self._ends: dict[TopicPartition, int] = {}
        self._behind: dict[TopicPartition, int] = {}
        self.total = 0
        """How many offsets lie between the starts and the ends of the start (what a progress bar counts)."""

    @property
    def caught_up(self) -> bool:
        """Every partition has reached the end it had when the scan began."""
        return not self._behind

    async def __aenter__(self) -> TopicScan:
        options = client_options(self.settings, client_id=f"{self.settings.client_id}-{self.purpose}")
        consumer, partitions = await start_reader(
            self.settings, self.topics, purpose=self.purpose, **self._consumer_options
        )
        try:
            self._ends = await fetched_end_offsets(options, partitions)
            starts = await self._starts(consumer, partitions)
            self._behind = {tp: self._ends[tp] for tp in partitions if starts[tp] < self._ends[tp]}
            self.total = sum(self._ends[tp] - starts[tp] for tp in self._behind)
            reading = partitions if self.follow else list(self._behind)
            consumer.assign(reading)
            for tp in reading:
                consumer.seek(tp, starts[tp])
        except KafkaError as exc:
            await consumer.stop()
            raise BrokerError(f"reading {', '.join(t.name for t in self.topics)} failed: {exc!r}") from exc
        except BaseException:
            await consumer.stop()
            raise
        self._consumer, self._reader = consumer, Reader(consumer, options)
        return self

    async def _starts(self, consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        if self.start is ScanStart.END:
            return dict(self._ends)
        beginnings: dict[TopicPartition, int] = await consumer.beginning_offsets(partitions)
        if self.start is ScanStart.BEGINNING or not partitions:
            return dict(beginnings)
        moment = int(self.start.timestamp() * 1000)
        try:
            found = await consumer.offsets_for_times(dict.fromkeys(partitions, moment))
        except KafkaError as exc:
            # Not every broker answers by time; from the beginning is slower but misses nothing.
            log.warning("offsets_for_times_failed", purpose=self.purpose, error=repr(exc))
            return dict(beginnings)
        return {
            tp: max(found[tp].offset, beginnings[tp]) if found.get(tp) is not None else self._ends[tp]
            for tp in partitions
        }

    async def __aexit__(self, *exc_info: object) -> None:
        reader, consumer, self._reader, self._consumer = self._reader, self._consumer, None, None
        if reader is not None:
            await reader.close()
        if consumer is not None:
            await consumer.stop()

    def __aiter__(self) -> AsyncIterator[Scanned]:
        return self._steps()

    async def _steps(self) -> AsyncIterator[Scanned]:
        assert self._reader is not None, "enter the scan first: async with TopicScan(...)"  # noqa: S101
        while self.follow or self._behind:
            wanted = () if self.follow else tuple(self._behind)
            try:
                polled = await self._reader.poll(*wanted, timeout_ms=self.idle_ms, max_records=self.max_records)
            except KafkaError as exc:
                raise BrokerError(f"reading {', '.join(t.name for t in self.topics)} failed: {exc!r}") from exc
            records: list[ConsumerRecord[bytes, bytes]] = []
            for tp, got in polled.records.items():
                end = None if self.follow else self._ends[tp]
                records += got if end is None else [record for record in got if record.offset < end]
            for tp, next_offset in polled.next_offsets().items():
                if tp in self._behind and next_offset >= self._behind[tp]:
                    del self._behind[tp]
            yield Scanned(records, polled.unreadable)


async def read_to_end(settings: Settings, topic: Topic) -> list[tuple[bytes | None, bytes | None]]:
    """Every ``(key, value)`` on ``topic`` from the beginning to its end as of now, without a consumer group."""
    async with TopicScan(settings, [topic], purpose="reader") as scan:
        return [(record.key, record.value) async for step in scan for record in step.records]


# --- reading what any producer wrote -----------------------------------------------------------------------------

UNREADABLE_SAMPLE_BYTES = 64 * 1024
"""How much of an unreadable batch a dead letter keeps: enough to diagnose it, never more than a record may hold."""

_PROBE_BYTES = 4 * 1024 * 1024
_PROBE_WAIT_MS = 100  # not 0: a broker may answer a zero-wait fetch with nothing at all (the embedded one does)
_READ_UNCOMMITTED = 0


@dataclass(frozen=True)
class UnreadableBatch:
    """Records stored on a partition that no client can read: a record batch whose compression, CRC or framing is
    broken. Readers step over it and report it; it never stops them."""

    topic: str
    partition: int
    first_offset: int
    next_offset: int
    reason: str
    data: bytes
    """The batch as stored, cut at :data:`UNREADABLE_SAMPLE_BYTES`."""

    @property
    def where(self) -> str:
        last = self.next_offset - 1
        offsets = str(self.first_offset) if last <= self.first_offset else f"{self.first_offset}..{last}"
        return f"{self.topic}/{self.partition}/{offsets}"

    def __str__(self) -> str:
        return f"unreadable record batch at {self.where}: {self.reason}"


@dataclass
class Polled:
    """What one :meth:`Reader.poll` got: records by partition, in offset order, and the batches it stepped over."""

    records: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]] = field(default_factory=dict)
    unreadable: list[UnreadableBatch] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.records or self.unreadable)

    def add(self, tp: TopicPartition, records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        if records:
            self.records.setdefault(tp, []).extend(records)

    def count(self) -> int:
        return sum(len(records) for records in self.records.values())

    def next_offsets(self) -> dict[TopicPartition, int]:
        """Per partition, the offset after everything this poll covered (records and stepped-over batches)."""
        nexts = {tp: records[-1].offset + 1 for tp, records in self.records.items() if records}
        for batch in self.unreadable:
            tp = TopicPartition(batch.topic, batch.partition)
            nexts[tp] = max(nexts.get(tp, 0), batch.next_offset)
        return nexts


class Reader:
    """A started consumer's ``getmany`` that survives any bytes a producer can store.

    aiokafka decompresses a fetched batch while handing its records out; a batch it cannot read (a codec library
    missing, corrupt compressed data, a bad CRC) raises from ``getmany`` on every call, for ever, and records it had
    already drained from other partitions in that call are dropped while their positions moved on. So this reader
    drains one partition at a time (an error is then that partition's, and nothing else is lost) and, when one
    fails, fetches that partition's bytes itself to find the batch: the records before it are returned, the batch
    is reported as an :class:`UnreadableBatch` and the consumer seeks past it. An error that is not about stored
    bytes (authorization, a stopped consumer …) is raised as it was.
    """

    def __init__(self, consumer: AIOKafkaConsumer, options: dict[str, Any]) -> None:
        self.consumer = consumer
        self._options = options
        self._client: AIOKafkaClient | None = None

    async def poll(self, *partitions: TopicPartition, timeout_ms: int, max_records: int | None = None) -> Polled:
        """Records of ``partitions`` (default: all assigned), waiting up to ``timeout_ms`` for the first."""
        wanted = list(partitions) if partitions else sorted(self.consumer.assignment())
        polled = Polled()
        await self._drain(wanted, polled, max_records)
        if polled or not timeout_ms:
            return polled
        try:
            # At most one record: should a partition's batch fail here, nothing was drained from another one. With
            # nothing assigned this still waits in the consumer: returning at once would make a loop of polls spin,
            # and a group member given no partition would stop polling and leave its group.
            first = await self.consumer.getmany(*wanted, timeout_ms=timeout_ms, max_records=1)
        except Exception as exc:  # whatever the decompressor raised: re-raised unless stored bytes caused it
            await self._step_over(wanted or sorted(self.consumer.assignment()), exc, polled)
            return polled
        for tp, records in first.items():
            polled.add(tp, records)
        if polled:
            await self._drain(wanted, polled, None if max_records is None else max_records - polled.count())
        return polled

    async def _drain(self, wanted: Sequence[TopicPartition], polled: Polled, max_records: int | None) -> None:
        for tp in wanted:
            if max_records is not None and max_records <= 0:
                return
            try:
                got = await self.consumer.getmany(tp, timeout_ms=0, max_records=max_records)
            except Exception as exc:  # see poll
                await self._step_over([tp], exc, polled)
                continue
            records = got.get(tp, [])
            polled.add(tp, records)
            if max_records is not None:
                max_records -= len(records)

    async def _step_over(self, suspects: Sequence[TopicPartition], error: Exception, polled: Polled) -> None:
        """Find the unreadable batch among ``suspects`` at their positions; raise ``error`` if there is none."""
        found = False
        for tp in suspects:
            try:
                position = await self.consumer.position(tp)
                readable, unreadable = await self._probe(tp, position)
            except Exception as exc:  # a probe that fails says nothing about the bytes: the error stands
                log.warning("unreadable_batch_probe_failed", partition=str(tp), error=repr(exc))
                continue
            if not readable and unreadable is None:
                continue
            found = True
            polled.add(tp, readable)
            if unreadable is not None:
                polled.unreadable.append(unreadable)
                log.warning("unreadable_batch_skipped", where=unreadable.where, reason=unreadable.reason)
                self.consumer.seek(tp, unreadable.next_offset)
            else:
                self.consumer.seek(tp, readable[-1].offset + 1)
        if not found:
            raise error

    async def _probe(
        self, tp: TopicPartition, offset: int
    ) -> tuple[list[ConsumerRecord[bytes, bytes]], UnreadableBatch | None]:
        """Fetch ``tp`` from ``offset`` ourselves: the readable records before the first unreadable batch, and it."""
        client = await self._raw_client()
        node = client.cluster.leader_for_partition(tp)
        if node is None or node < 0:
            await client.force_metadata_update()
            node = client.cluster.leader_for_partition(tp)
        request = FetchRequest(
            _PROBE_WAIT_MS, 1, _PROBE_BYTES, _READ_UNCOMMITTED, [(tp.topic, [(tp.partition, offset, _PROBE_BYTES)])]
        )
        response = await client.send(node, request)
        data = b""
        for _topic, partitions in response.topics:
            for partition, error_code, _highwater, *rest in partitions:
                if partition == tp.partition and error_code == 0:
                    data = bytes(rest[-1] or b"")
        return read_batches(tp, offset, data)

    async def _raw_client(self) -> AIOKafkaClient:
        if self._client is None:
            client = AIOKafkaClient(**self._options)
            await client.bootstrap()
            self._client = client
        return self._client

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()


def read_batches(
    tp: TopicPartition, offset: int, data: bytes
) -> tuple[list[ConsumerRecord[bytes, bytes]], UnreadableBatch | None]:
    """Split stored record batches as a fetch returns them; the records at ``offset`` and after, up to the first
    batch that cannot be read, and that batch. A batch cut off at the end of ``data`` is left for the next fetch."""
    readable: list[ConsumerRecord[bytes, bytes]] = []
    position = 0
    while position + _BATCH_PREFIX.size <= len(data):
        _base_offset, length = _BATCH_PREFIX.unpack_from(data, position)
        end = position + _BATCH_PREFIX.size + length
        if end > len(data):
            break
        raw = data[position:end]
        position = end
        batch = MemoryRecords(raw).next_batch()
        if batch is None or batch.next_offset <= offset:
            continue
        first = max(offset, _first_offset(batch))
        try:
            if not batch.validate_crc():
                raise ValueError("CRC does not match the batch")
            if getattr(batch, "is_control_batch", False):
                continue
            records = [_consumer_record(tp, record) for record in batch if record.offset >= offset]
        except Exception as exc:  # decompressors and parsers raise their own types
            codec = _CODEC_NAMES.get(_compression_of(batch), "unknown codec")
            reason = f"{codec} batch cannot be read: {type(exc).__name__}: {exc}"
            return readable, UnreadableBatch(
                tp.topic, tp.partition, first, batch.next_offset, reason, raw[:UNREADABLE_SAMPLE_BYTES]
            )
        readable += records
    return readable, None


_BATCH_PREFIX = struct.Struct(">qi")
_CODEC_NAMES = {0: "uncompressed", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}


def _first_offset(batch: Any) -> int:
    return int(getattr(batch, "base_offset", batch.next_offset - 1))


def _compression_of(batch: Any) -> int:
    try:
        return int(batch.compression_type)
    except Exception:  # a batch too broken to name its codec
        return -1


def _consumer_record(tp: TopicPartition, record: Any) -> ConsumerRecord[bytes, bytes]:
    key, value = record.key, record.value
    return ConsumerRecord(
        tp.topic,
        tp.partition,
        record.offset,
        record.timestamp,
        record.timestamp_type,
        key,
        value,
        getattr(record, "checksum", None),
        len(key) if key is not None else -1,
        len(value) if value is not None else -1,
        tuple(getattr(record, "headers", ())),
    )
