"""Kafka connection options from settings, and the admin operations behind ``firebus topics``.

Every aiokafka client firebus makes gets its connection and security options from :func:`client_options`, so
PLAINTEXT on the embedded broker and SASL_SSL on a county cluster differ only in settings.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaConnectionError, KafkaError
from aiokafka.helpers import create_ssl_context

from firebus.errors import BrokerError, BrokerUnavailableError, ConfigurationError
from firebus.settings import SecurityProtocol, Settings
from firebus.topics import ALL_TOPICS, CO_PARTITIONED, Topic, co_partitioning_problem

TOPIC_ALREADY_EXISTS = 36


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
    settings: Settings, topics: Sequence[Topic], *, purpose: str
) -> tuple[AIOKafkaConsumer, list[TopicPartition]]:
    """A started consumer in no group — it commits nothing and moves no group's offsets — and every partition of
    ``topics`` (not yet assigned). The caller stops it."""
    consumer = AIOKafkaConsumer(
        **client_options(settings, client_id=f"{settings.client_id}-{purpose}"),
        group_id=None,
        enable_auto_commit=False,
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
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


async def read_to_end(settings: Settings, topic: Topic) -> list[tuple[bytes | None, bytes | None]]:
    """Every ``(key, value)`` on ``topic`` from the beginning to its end as of now, without a consumer group."""
    consumer, partitions = await start_reader(settings, [topic], purpose="reader")
    try:
        ends = await fetched_end_offsets(client_options(settings, client_id=f"{settings.client_id}-reader"), partitions)
        unread = {tp: end for tp, end in ends.items() if end > 0}
        if not unread:
            return []
        consumer.assign(list(unread))
        await consumer.seek_to_beginning(*unread)
        records: list[tuple[bytes | None, bytes | None]] = []
        while unread:
            batches = await consumer.getmany(*unread, timeout_ms=1_000)
            for tp, messages in batches.items():
                records += [(message.key, message.value) for message in messages if message.offset < unread[tp]]
                if messages and messages[-1].offset + 1 >= unread[tp]:
                    del unread[tp]
        return records
    finally:
        await consumer.stop()
