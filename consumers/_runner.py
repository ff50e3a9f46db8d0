"""The one sink runner: at-least-once consumption with idempotent effects, retries, dead letters, per-sink lag.

Each sink is its own consumer group (``firebus-sink-<name>``), so one sink being down never holds up another, and
it catches up from its committed offsets when it is back. Offsets are committed only after the sink has applied
and flushed what they cover.

What a sink raises decides what happens next (:class:`~firebus.errors.SinkError`, by its ``retriable``)::

    retriable (SinkUnavailableError)              -> retried with backoff, for as long as it takes
    not retriable (PoisonRecordError), undecodable -> dead letter with the reason, then the next record
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaConnectionError

from firebus import metrics
from firebus.codec import Codec, Envelope
from firebus.deadletters import SourceRecord, audit_id, dead_letter
from firebus.errors import DecodeError, InvalidEventError, SinkError
from firebus.health import Backlog, Readiness, measure_consumer
from firebus.kafka import client_options, producer_options, unreachable
from firebus.records import AuditAction, AuditEvent, DeadLetterReason, Release
from firebus.settings import Settings
from firebus.topics import AUDIT, DEAD_LETTER, Topic

log = structlog.get_logger(__name__)

MAX_BACKOFF_S = 30.0


@dataclass(frozen=True)
class Delivery:
    """One consumed record, decoded, with where it came from."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    record: Envelope


class Sink(Protocol):
    """What every sink implements; the runner owns consumption, retries, commits and dead letters."""

    name: str
    topics: Sequence[Topic]

    async def start(self) -> None: ...

    async def deliver(self, delivery: Delivery) -> None:
        """Apply one record idempotently (keyed by its event or audit id)."""

    async def flush(self) -> None:
        """Make every delivered effect durable; offsets are committed right after."""

    async def close(self) -> None: ...


@dataclass
class SinkStats:
    delivered: int = 0
    dead_lettered: int = 0
    retries: int = 0
    lag: dict[str, int] = field(default_factory=dict)


class SinkRunner:
    """Runs one sink until ``stop`` is set."""

    def __init__(self, sink: Sink, *, settings: Settings, codec: Codec | None = None, batch_size: int = 500) -> None:
        self.sink = sink
        self.settings = settings
        self.codec = codec or Codec()
        self.batch_size = batch_size
        self.stats = SinkStats()
        self.group_id = f"firebus-sink-{sink.name}"
        self.readiness = Readiness(f"consumers.{sink.name}")
        """Ready once the group is joined, the backlog found at assignment applied, and the sink not retrying."""
        self._backlog = Backlog()

    async def run(self, stop: asyncio.Event | None = None) -> None:
        stop = stop or asyncio.Event()
        consumer = AIOKafkaConsumer(
            *[topic.name for topic in self.sink.topics],
            **client_options(self.settings, client_id=self.group_id),
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=self.settings.fetch_max_wait_ms,
            session_timeout_ms=int(self.settings.group_session_timeout_s * 1000),
            rebalance_timeout_ms=int(self.settings.group_session_timeout_s * 1000),
            heartbeat_interval_ms=max(500, int(self.settings.group_session_timeout_s * 1000 / 6)),
        )
        producer = AIOKafkaProducer(**producer_options(self.settings, client_id=self.group_id))
        try:
            await consumer.start()
            await producer.start()
        except (KafkaConnectionError, OSError) as exc:
            await consumer.stop()
            await producer.stop()
            raise unreachable(self.settings, exc) from exc
        await self.sink.start()
        log.info("sink_started", sink=self.sink.name, topics=[topic.name for topic in self.sink.topics])
        try:
            while not stop.is_set():
                await measure_consumer(consumer, group=self.group_id, backlog=self._backlog, readiness=self.readiness)
                batches = await consumer.getmany(timeout_ms=500, max_records=self.batch_size)
                if not batches:
                    continue
                metrics.count_by_topic(
                    metrics.EVENTS_IN, f"consumers.{self.sink.name}", (m.topic for ms in batches.values() for m in ms)
                )
                outgoing = await self._apply(batches, stop)
                if outgoing is None:
                    return  # stopped while the sink was unavailable: nothing committed past what was applied
                await self._flush_sink(stop)
                for topic, key, value in outgoing:
                    await producer.send(topic, value, key=key)
                await producer.flush()
                metrics.count_by_topic(metrics.EVENTS_OUT, f"consumers.{self.sink.name}", (t for t, _k, _v in outgoing))
                await consumer.commit({tp: messages[-1].offset + 1 for tp, messages in batches.items()})
                await self._measure_lag(consumer, batches.keys())
        finally:
            await self.sink.close()
            await consumer.stop()
            await producer.stop()
            log.info("sink_stopped", sink=self.sink.name, **self.stats.__dict__)

    async def _apply(
        self, batches: dict[TopicPartition, list[Any]], stop: asyncio.Event
    ) -> list[tuple[str, bytes, bytes]] | None:
        outgoing: list[tuple[str, bytes, bytes]] = []
        for messages in batches.values():
            for message in messages:
                source = SourceRecord(message.topic, message.partition, message.offset, message.key, message.value)
                try:
                    record = self.codec.decode(message.value or b"")
                except (DecodeError, InvalidEventError) as exc:
                    outgoing += self._dead_letter(source, DeadLetterReason.POISON, f"undecodable: {exc}")
                    continue
                delivery = Delivery(
                    message.topic, message.partition, message.offset, message.key, message.value, record
                )
                outcome = await self._deliver(delivery, stop)
                if outcome is None:
                    return None
                if isinstance(outcome, SinkError):
                    outgoing += self._dead_letter(source, DeadLetterReason.POISON, str(outcome))
                    continue
                self.stats.delivered += 1
                metrics.SINK_DELIVERIES.labels(sink=self.sink.name).inc()
                if isinstance(record, Release):
                    outgoing.append(self._delivered_audit(record))
        return outgoing

    async def _deliver(self, delivery: Delivery, stop: asyncio.Event) -> SinkError | bool | None:
        """True when applied, the error when it never can be, None when stopped while retrying."""
        backoff = 0.2
        while True:
            try:
                await self.sink.deliver(delivery)
            except SinkError as exc:
                if not exc.retriable:
                    return exc
                self.stats.retries += 1
                metrics.SINK_RETRIES.labels(sink=self.sink.name, step="deliver").inc()
                self.readiness.not_ready(f"retrying, its outside system is unavailable: {exc}")
                log.warning(
                    "sink_retry", sink=self.sink.name, error=str(exc), backoff_s=backoff, offset=delivery.offset
                )
                if await _stopped_within(stop, backoff):
                    return None
                backoff = min(MAX_BACKOFF_S, backoff * 2)
            else:
                return True

    async def _flush_sink(self, stop: asyncio.Event) -> None:
        backoff = 0.2
        while True:
            try:
                await self.sink.flush()
            except SinkError as exc:
                if not exc.retriable:
                    raise
                self.stats.retries += 1
                metrics.SINK_RETRIES.labels(sink=self.sink.name, step="flush").inc()
                self.readiness.not_ready(f"retrying, its outside system is unavailable: {exc}")
                log.warning("sink_flush_retry", sink=self.sink.name, error=str(exc), backoff_s=backoff)
                if await _stopped_within(stop, backoff):
                    raise
                backoff = min(MAX_BACKOFF_S, backoff * 2)
            else:
                return

    def _dead_letter(self, source: SourceRecord, code: DeadLetterReason, reason: str) -> list[tuple[str, bytes, bytes]]:
        self.stats.dead_lettered += 1
        metrics.DEAD_LETTERS.labels(stage=f"consumers.{self.sink.name}", reason=code.value).inc()
        log.error("sink_dead_letter", sink=self.sink.name, reason=reason, topic=source.topic, offset=source.offset)
        rejected = dead_letter(source, code, reason, now=datetime.now(UTC), stage=f"consumers.{self.sink.name}")
        key = source.key or b""
        return [
            (DEAD_LETTER.name, key, self.codec.encode(rejected.dead_letter)),
            (AUDIT.name, key, self.codec.encode(rejected.audit)),
        ]

    def _delivered_audit(self, release: Release) -> tuple[str, bytes, bytes]:
        # Deliveries of tier records only: auditing the archiving of audit records would never end.
        audit = AuditEvent(
            audit_id=audit_id("delivered", self.sink.name, release.release_id),
            action=AuditAction.DELIVERED,
            event_id=release.event_id,
            event_type=release.event_type,
            actor=f"consumers.{self.sink.name}",
            publisher_unit=release.publisher_unit,
            tier=release.tier,
            details={"release_id": str(release.release_id), "sink": self.sink.name},
            at=datetime.now(UTC),
        )
        return AUDIT.name, str(release.event_id).encode(), self.codec.encode(audit)

    async def _measure_lag(self, consumer: AIOKafkaConsumer, partitions: Any) -> None:
        for tp in partitions:
            highwater = consumer.highwater(tp)
            if highwater is not None:
                self.stats.lag[f"{tp.topic}/{tp.partition}"] = max(0, highwater - await consumer.position(tp))


async def _stopped_within(stop: asyncio.Event, seconds: float) -> bool:
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        return False
    return True
