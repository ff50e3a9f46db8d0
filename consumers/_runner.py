"""The one sink runner: at-least-once consumption with idempotent effects, retries, dead letters, per-sink lag.

Each sink is its own consumer group (``firebus-sink-<name>``), so one sink being down never holds up another, and
it catches up from its committed offsets when it is back. Offsets are committed only after the sink has applied
and flushed what they cover, and the batch's dead letters and audit records are acknowledged.

What a sink raises decides what happens next (:class:`~firebus.errors.SinkError`, by its ``retriable``)::

    retriable (SinkUnavailableError)              -> retried, every MAX_BACKOFF_S at most, for as long as it takes
    not retriable (PoisonRecordError), undecodable -> dead letter with the reason, then the next record
    a record batch no client can read             -> dead letter naming its offsets (the core Reader steps over it)

Outages of any length. A sink waits on an outside system (the database, the SMS gateway) for as long as it is
down, and the consumer must stay in its group meanwhile: a member that does not poll for ``max.poll.interval``
leaves the group, and its commit after the outage fails (``CommitFailedError``, which used to crash the process).
So each batch is applied in a task of its own, and when it takes longer than POLL_WHILE_BUSY_S the runner pauses
every assigned partition and keeps polling until the task is done: paused partitions return no records, each poll
tells the group the member is alive, and heartbeats and rebalances go on in aiokafka's background. Chosen over
polling inside the retry loop because one call to the sink (a connect time-out) can itself outlast a poll interval,
and over a very long ``max.poll.interval`` because a process that is truly stuck should still lose its partitions.

A rebalance during an outage (another instance of the sink joining) is not held up by the batch — waiting for it
could block the group for the whole outage. The partitions revoked meanwhile are noted, and the batch's offsets on
them are never committed: their next owner (perhaps this runner again) reads them from the last commit, and the
sinks' idempotent effects (keys in PostgreSQL, ids in the files, the SMS ledger) make the second application
change nothing. So a rebalance mid-outage neither loses nor duplicates an archived record.

Quick resume and quiet logs: retries back off from FIRST_BACKOFF_S to MAX_BACKOFF_S, so the first write comes
within about two seconds of the system's return. An outage logs one warning when it starts (``sink_unavailable``,
with the records waiting on it) and one line when it ends (``sink_back``: how long it was down, how many attempts
failed, how many records waited) — never one line per retry.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any, Protocol, TypeVar

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import IllegalStateError, KafkaConnectionError, KafkaError

from firebus import metrics
from firebus.codec import Codec, Envelope
from firebus.deadletters import SourceRecord, audit_id, dead_letter
from firebus.errors import DecodeError, InvalidEventError, SinkError
from firebus.health import Backlog, Readiness, measure_consumer
from firebus.kafka import Polled, Reader, UnreadableBatch, client_options, producer_options, unreachable
from firebus.records import AuditAction, AuditEvent, DeadLetterReason, Release
from firebus.settings import Settings
from firebus.topics import AUDIT, DEAD_LETTER, Topic

log = structlog.get_logger(__name__)

FIRST_BACKOFF_S = 0.2
MAX_BACKOFF_S = 2.0
"""The longest wait between two attempts: how soon after an outside system's return the first write comes."""
POLL_WHILE_BUSY_S = 1.0
"""How long a batch may take before the runner pauses the partitions and polls while it waits."""
PAUSED_POLL_MS = 100

Outgoing = tuple[str, bytes, bytes]
T = TypeVar("T")


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

    async def start(self) -> None:
        """Get ready; called again after ``close`` when the sink is restarted after a crash."""

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


@dataclass
class Outage:
    """The outside system a sink writes to is down: why, since when, and how much waits on it."""

    error: str
    records_waiting: int
    started: float = field(default_factory=time.monotonic)
    failed_attempts: int = 1

    @property
    def down_s(self) -> float:
        return time.monotonic() - self.started


class _Revocations(ConsumerRebalanceListener):  # type: ignore[misc]
    """The partitions taken from the runner since its last poll. It never waits for the batch in hand: that batch
    may be waiting out an outage of hours, and the group would wait with it."""

    def __init__(self) -> None:
        self.revoked: set[TopicPartition] = set()

    def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self.revoked.update(revoked)

    def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        pass  # a batch in hand keeps them paused (see _keep_polling_while); new owners read from the last commit


class SinkRunner:
    """Runs one sink until ``stop`` is set; ``run`` may be called again after it raised (a restart)."""

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
        self.outage: Outage | None = None
        """Set while the sink's outside system is down."""

    def _consumer(self) -> AIOKafkaConsumer:
        session_ms = int(self.settings.group_session_timeout_s * 1000)
        return AIOKafkaConsumer(
            **client_options(self.settings, client_id=self.group_id),
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=self.settings.fetch_max_wait_ms,
            session_timeout_ms=session_ms,
            rebalance_timeout_ms=session_ms,
            heartbeat_interval_ms=max(500, session_ms // 6),
            max_poll_interval_ms=int(self.settings.group_poll_interval_s * 1000),
        )

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Consume, apply, commit, until ``stop`` is set."""
        stop = stop or asyncio.Event()
        await self.sink.start()  # first: a sink that cannot start never joins its group
        try:
            await self._consume(stop)
        finally:
            await self.sink.close()

    async def _consume(self, stop: asyncio.Event) -> None:
        consumer = self._consumer()
        revocations = _Revocations()
        consumer.subscribe([topic.name for topic in self.sink.topics], listener=revocations)
        producer = AIOKafkaProducer(**producer_options(self.settings, client_id=self.group_id))
        try:
            await consumer.start()
            await producer.start()
        except (KafkaConnectionError, OSError) as exc:
            await consumer.stop()
            await producer.stop()
            raise unreachable(self.settings, exc) from exc
        reader = Reader(consumer, client_options(self.settings, client_id=f"{self.group_id}-probe"))
        log.info("sink_started", sink=self.sink.name, topics=[topic.name for topic in self.sink.topics])
        try:
            while not stop.is_set():
                revocations.revoked.clear()
                await measure_consumer(consumer, group=self.group_id, backlog=self._backlog, readiness=self.readiness)
                polled = await reader.poll(timeout_ms=500, max_records=self.batch_size)
                if not polled:
                    continue
                metrics.count_by_topic(
                    metrics.EVENTS_IN,
                    f"consumers.{self.sink.name}",
                    (m.topic for ms in polled.records.values() for m in ms),
                )
                durable = await self._keep_polling_while(consumer, reader, self._process(polled, producer, stop))
                if not durable:
                    return  # stopped while the sink was unavailable: nothing committed past what was applied
                await self._commit(consumer, polled, revocations.revoked)
                await self._measure_lag(consumer, polled.records.keys())
        finally:
            await reader.close()
            await consumer.stop()
            await producer.stop()
            log.info("sink_stopped", sink=self.sink.name, **self.stats.__dict__)

    async def _keep_polling_while(self, consumer: AIOKafkaConsumer, reader: Reader, work: Coroutine[Any, Any, T]) -> T:
        """Run ``work``; should it outlast POLL_WHILE_BUSY_S, keep the group membership with the partitions paused."""
        task = asyncio.create_task(work, name=f"sink-{self.sink.name}-batch")
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=POLL_WHILE_BUSY_S)
                if done:
                    return task.result()
                consumer.pause(*consumer.assignment())  # again each time: a rebalance assigns unpaused partitions
                _put_back(consumer, await reader.poll(timeout_ms=PAUSED_POLL_MS))
        finally:
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            consumer.resume(*consumer.assignment())

    async def _process(self, polled: Polled, producer: AIOKafkaProducer, stop: asyncio.Event) -> bool:
        """Apply and flush one batch, then send its dead letters and audits: True once all of it is durable, False
        when stopped before."""
        waiting = polled.count()
        outgoing: list[Outgoing] = []
        for batch in polled.unreadable:
            outgoing += self._unreadable(batch)
        for messages in polled.records.values():
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
                try:
                    if not await self._until_done(partial(self.sink.deliver, delivery), "deliver", stop, waiting):
                        return False
                except SinkError as exc:  # not retriable: this record can never be applied
                    outgoing += self._dead_letter(source, DeadLetterReason.POISON, str(exc))
                    continue
                self.stats.delivered += 1
                metrics.SINK_DELIVERIES.labels(sink=self.sink.name).inc()
                if isinstance(record, Release):
                    outgoing.append(self._delivered_audit(record))
        if not await self._until_done(self.sink.flush, "flush", stop, waiting):
            return False
        for topic, key, value in outgoing:
            await producer.send(topic, value, key=key)
        await producer.flush()
        metrics.count_by_topic(metrics.EVENTS_OUT, f"consumers.{self.sink.name}", (t for t, _k, _v in outgoing))
        return True

    async def _until_done(
        self, attempt: Callable[[], Awaitable[None]], step: str, stop: asyncio.Event, waiting: int
    ) -> bool:
        """``attempt`` (``step``) until it works (True) or ``stop`` is set (False); a SinkError not retriable is
        raised."""
        backoff = FIRST_BACKOFF_S
        while True:
            try:
                await attempt()
            except SinkError as exc:
                if not exc.retriable:
                    raise
                self.stats.retries += 1
                metrics.SINK_RETRIES.labels(sink=self.sink.name, step=step).inc()
                self._unavailable(exc, waiting)
                if await _stopped_within(stop, backoff):
                    return False
                backoff = min(MAX_BACKOFF_S, backoff * 2)
            else:
                self._available()
                return True

    def _unavailable(self, error: SinkError, waiting: int) -> None:
        if self.outage is not None:
            self.outage.failed_attempts += 1
            log.debug("sink_retry", sink=self.sink.name, error=str(error), attempts=self.outage.failed_attempts)
            return
        self.outage = Outage(str(error), waiting)
        self.readiness.not_ready(f"retrying, its outside system is unavailable: {error}")  # ready at the next poll
        log.warning("sink_unavailable", sink=self.sink.name, error=str(error), records_waiting=waiting)

    def _available(self) -> None:
        outage, self.outage = self.outage, None
        if outage is not None:
            log.info(
                "sink_back",
                sink=self.sink.name,
                down_s=round(outage.down_s, 1),
                failed_attempts=outage.failed_attempts,
                records_waited=outage.records_waiting,
            )

    async def _commit(self, consumer: AIOKafkaConsumer, polled: Polled, revoked: set[TopicPartition]) -> None:
        covered = polled.next_offsets()
        offsets = {tp: offset for tp, offset in covered.items() if tp not in revoked}
        if len(offsets) < len(covered):
            log.info("sink_partitions_moved", sink=self.sink.name, left_to_next_owner=len(covered) - len(offsets))
        if not offsets:
            return
        try:
            await consumer.commit(offsets)
        except KafkaError as exc:
            # The group moved on under the batch: what it covered is durable, and whoever owns the partitions now
            # reads it again from the last commit, which the sink's idempotent effects make harmless.
            log.warning("sink_commit_failed", sink=self.sink.name, error=repr(exc), records=polled.count())

    def _dead_letter(self, source: SourceRecord, code: DeadLetterReason, reason: str) -> list[Outgoing]:
        self.stats.dead_lettered += 1
        metrics.DEAD_LETTERS.labels(stage=f"consumers.{self.sink.name}", reason=code.value).inc()
        log.error("sink_dead_letter", sink=self.sink.name, reason=reason, topic=source.topic, offset=source.offset)
        rejected = dead_letter(source, code, reason, now=datetime.now(UTC), stage=f"consumers.{self.sink.name}")
        key = source.key or b""
        return [
            (DEAD_LETTER.name, key, self.codec.encode(rejected.dead_letter)),
            (AUDIT.name, key, self.codec.encode(rejected.audit)),
        ]

    def _unreadable(self, batch: UnreadableBatch) -> list[Outgoing]:
        """A record batch no client can read: one dead letter naming its offsets, with the stored bytes."""
        source = SourceRecord(batch.topic, batch.partition, batch.first_offset, None, batch.data)
        reason = f"offsets {batch.first_offset}..{batch.next_offset - 1}: {batch.reason}"
        return self._dead_letter(source, DeadLetterReason.CORRUPT, reason)

    def _delivered_audit(self, release: Release) -> Outgoing:
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

    async def _measure_lag(self, consumer: AIOKafkaConsumer, partitions: Iterable[TopicPartition]) -> None:
        for tp in set(partitions) & consumer.assignment():  # a rebalance may have moved some away meanwhile
            highwater = consumer.highwater(tp)
            if highwater is None:
                continue
            try:
                position = await consumer.position(tp)
            except IllegalStateError:
                continue  # moved away while we asked
            self.stats.lag[f"{tp.topic}/{tp.partition}"] = max(0, highwater - position)


def _put_back(consumer: AIOKafkaConsumer, polled: Polled) -> None:
    """Records a paused consumer returned anyway (a partition assigned between the pause and the poll): the consumer
    goes back to the first of them, for the next batch."""
    firsts = {tp: records[0].offset for tp, records in polled.records.items() if records}
    for batch in polled.unreadable:
        tp = TopicPartition(batch.topic, batch.partition)
        firsts[tp] = min(firsts.get(tp, batch.first_offset), batch.first_offset)
    for tp, offset in firsts.items():
        consumer.seek(tp, offset)
        consumer.pause(tp)


async def _stopped_within(stop: asyncio.Event, seconds: float) -> bool:
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        return False
    return True
