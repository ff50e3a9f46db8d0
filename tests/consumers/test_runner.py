"""The sink runner against the real broker: its own group, retries, dead letters, commits only what was applied."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from uuid import UUID, uuid4

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from structlog.testing import capture_logs

from consumers import Delivery, SinkRunner, SinkSupervisor, restart_delay
from consumers._runner import _put_back
from firebus.codec import Codec
from firebus.errors import ConfigurationError, PoisonRecordError, SinkUnavailableError
from firebus.events import Audience, EventType, MessageKind
from firebus.kafka import Reader, client_options
from firebus.records import (
    AuditAction,
    AuditEvent,
    DeadLetter,
    DeadLetterReason,
    Release,
    ReviewDecision,
    ReviewerKind,
    Verdict,
)
from firebus.settings import Settings
from firebus.topics import AUDIT, DEAD_LETTER, TIERS, Topic
from tests.processors.conftest import wait_for_records
from tests.rawkafka import produce_raw, record_batch

CODEC = Codec()
NOW = datetime(2026, 3, 12, 6, 0, tzinfo=UTC)


def release(event_id: UUID | None = None) -> Release:
    event_id = event_id or uuid4()
    decision = ReviewDecision(
        decision_id=uuid4(),
        event_id=event_id,
        event_type=EventType.WORK_UPDATE,
        verdict=Verdict.APPROVE,
        reviewer="hq-wang",
        reviewer_kind=ReviewerKind.HUMAN,
        decided_at=NOW,
        trace_id="t",
    )
    return Release(
        release_id=uuid4(),
        tier=Audience.MEMBERS,
        event_id=event_id,
        event_type=EventType.WORK_UPDATE,
        kind=MessageKind.ALERT,
        thread_id=event_id,
        publisher_unit="forestry",
        decision=decision,
        released_at=NOW,
        event=b"",
    )


class RecordingSink:
    """A sink that records every delivery it is given, so a record delivered twice is seen twice.

    It may be told to be unavailable for its first deliveries, to refuse some records, or to hang in the flush of the
    batch holding a given record (cancelling the runner then is a crash after applying, before committing).
    """

    def __init__(
        self,
        name: str,
        *,
        poison: set[UUID] | None = None,
        unavailable_for: int = 0,
        hang_in_flush_of: UUID | None = None,
    ) -> None:
        self.name = name
        self.topics: Sequence[Topic] = (TIERS[Audience.MEMBERS],)
        self.attempts: Counter[UUID] = Counter()
        """Every call of ``deliver``, by event id."""
        self.applied: list[tuple[int, int, UUID]] = []
        """(partition, offset, event id) of every delivery applied, in order, duplicates included."""
        self.flushed: set[UUID] = set()
        self.poison = poison or set()
        self.unavailable_for = unavailable_for
        self.hang_in_flush_of = hang_in_flush_of
        self.hanging = asyncio.Event()
        self.failing_start: Exception | None = None
        """Raised by every start while set: a sink that crashes as it starts."""
        self._unflushed: list[UUID] = []

    async def start(self) -> None:
        if self.failing_start is not None:
            raise self.failing_start

    async def deliver(self, delivery: Delivery) -> None:
        record = delivery.record
        assert isinstance(record, Release)
        self.attempts[record.event_id] += 1
        if self.unavailable_for > 0:
            self.unavailable_for -= 1
            raise SinkUnavailableError("gateway down")
        if record.event_id in self.poison:
            raise PoisonRecordError(f"cannot store {record.event_id}")
        self.applied.append((delivery.partition, delivery.offset, record.event_id))
        self._unflushed.append(record.event_id)

    async def flush(self) -> None:
        if self.hang_in_flush_of in self._unflushed:
            self.hanging.set()
            await asyncio.Event().wait()  # until the runner is cancelled
        self.flushed.update(self._unflushed)
        self._unflushed.clear()

    async def close(self) -> None:
        return None

    def times_applied(self, records: Iterable[Release]) -> dict[UUID, int]:
        counts = Counter(event_id for _partition, _offset, event_id in self.applied)
        return {record.event_id: counts[record.event_id] for record in records}


async def produce(settings: Settings, topic: Topic, values: Sequence[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all")
    await producer.start()
    try:
        for value in values:
            await producer.send(topic.name, value, key=b"runner-test")
        await producer.flush()
    finally:
        await producer.stop()


async def until(condition: Callable[[], bool], task: asyncio.Task[None]) -> None:
    """Wait until ``condition()`` while the runner ``task`` is still running."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while not condition():
        assert loop.time() < deadline, "the runner never got there"
        assert not task.done(), task.exception() if task.done() else ""
        await asyncio.sleep(0.1)


async def run_until(runner: SinkRunner, *, condition: Callable[[], bool]) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    await until(condition, task)
    stop.set()
    await asyncio.wait_for(task, timeout=30)


async def test_a_sink_gets_every_record_once_with_retries_and_a_dead_letter_for_poison(settings: Settings) -> None:
    """In a clean run every record is applied exactly once (transient failures retried until applied, a poison record
    tried once and dead-lettered), and each applied release is audited."""
    fast = settings.model_copy(update={"group_session_timeout_s": 3.0, "fetch_max_wait_ms": 50})
    releases = [release() for _ in range(5)]
    poisoned = releases[2].event_id
    await produce(fast, TIERS[Audience.MEMBERS], [CODEC.encode(r) for r in releases] + [b"\x00garbage"])
    sink = RecordingSink(f"test-{uuid4().hex[:8]}", poison={poisoned}, unavailable_for=2)
    runner = SinkRunner(sink, settings=fast)
    wanted = [r for r in releases if r.event_id != poisoned]
    with capture_logs() as logs:
        await run_until(runner, condition=lambda: {r.event_id for r in wanted} <= sink.flushed)
    assert sink.times_applied(wanted) == dict.fromkeys((r.event_id for r in wanted), 1)
    applied_positions = Counter((partition, offset) for partition, offset, _event_id in sink.applied)
    assert max(applied_positions.values()) == 1  # no record on the topic, ours or another test's, applied twice
    assert sink.times_applied([releases[2]]) == {poisoned: 0}
    assert sink.attempts[poisoned] == 1  # poison is never retried
    assert runner.stats.retries == 2
    ours = [line for line in logs if line.get("sink") == sink.name]
    warnings = [line["event"] for line in ours if line["log_level"] == "warning"]
    assert warnings == ["sink_unavailable"]  # one warning for the outage, not one per retry
    [back] = [line for line in ours if line["event"] == "sink_back"]
    assert back["failed_attempts"] == 2
    assert runner.stats.dead_lettered >= 2  # the poison release and the garbage bytes
    letters = await wait_for_records(
        fast, DEAD_LETTER, lambda r: isinstance(r, DeadLetter) and r.stage == f"consumers.{sink.name}", count=2
    )
    assert any(str(poisoned) in letter.reason for letter in letters)
    wanted_ids = {r.event_id for r in wanted}
    delivered = await wait_for_records(
        fast,
        AUDIT,
        lambda r: isinstance(r, AuditEvent) and r.action is AuditAction.DELIVERED and r.event_id in wanted_ids,
        count=len(wanted),
    )
    assert {audit.details["sink"] for audit in delivered} == {sink.name}


async def test_a_restarted_sink_gets_again_exactly_what_a_crashed_run_had_not_committed(settings: Settings) -> None:
    """A run that crashes after applying a batch but before committing it: the next run of the sink gets that batch
    again (at least once), and nothing the crashed run had committed; each run applies a record once."""
    fast = settings.model_copy(update={"group_session_timeout_s": 3.0, "fetch_max_wait_ms": 50})
    name = f"test-{uuid4().hex[:8]}"
    committed = [release() for _ in range(3)]
    hung, later = release(), [release() for _ in range(2)]
    await produce(fast, TIERS[Audience.MEMBERS], [CODEC.encode(r) for r in committed])

    first = RecordingSink(name, hang_in_flush_of=hung.event_id)
    task = asyncio.create_task(SinkRunner(first, settings=fast).run(asyncio.Event()))
    await until(lambda: {r.event_id for r in committed} <= first.flushed, task)
    await produce(fast, TIERS[Audience.MEMBERS], [CODEC.encode(r) for r in (hung, *later)])
    await until(first.hanging.is_set, task)
    task.cancel()  # the crash: the batch holding `hung` is applied, its offsets never committed
    await asyncio.gather(task, return_exceptions=True)

    second = RecordingSink(name)
    await run_until(
        SinkRunner(second, settings=fast), condition=lambda: {r.event_id for r in (hung, *later)} <= second.flushed
    )
    ours = [*committed, hung, *later]
    assert first.times_applied(committed) == dict.fromkeys((r.event_id for r in committed), 1)
    assert second.times_applied(committed) == dict.fromkeys((r.event_id for r in committed), 0)
    assert second.times_applied([hung, *later]) == dict.fromkeys((r.event_id for r in (hung, *later)), 1)
    in_hung_batch = {event_id for event_id, count in first.times_applied([hung, *later]).items() if count}
    assert hung.event_id in in_hung_batch
    applied = Counter(first.times_applied(ours)) + Counter(second.times_applied(ours))
    assert set(applied) == {r.event_id for r in ours}  # at least once
    assert {event_id for event_id, count in applied.items() if count > 1} == in_hung_batch  # twice: only those


async def test_an_unreadable_record_batch_is_dead_lettered_and_the_records_around_it_applied(
    settings: Settings,
) -> None:
    """A record batch no client can read, stored between two releases, becomes one dead letter (reason corrupt)
    naming its offsets, and both releases are applied."""
    fast = settings.model_copy(update={"group_session_timeout_s": 3.0, "fetch_max_wait_ms": 50})
    topic = TIERS[Audience.MEMBERS]
    before, after = release(), release()
    producer = AIOKafkaProducer(bootstrap_servers=fast.bootstrap_servers, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic.name, CODEC.encode(before), partition=1)
        broken = record_batch([b"z" * 200] * 3, codec="gzip", damage_payload=True)
        assert await produce_raw(fast.bootstrap_servers, TopicPartition(topic.name, 1), broken) == 0
        await producer.send_and_wait(topic.name, CODEC.encode(after), partition=1)
    finally:
        await producer.stop()
    sink = RecordingSink(f"test-{uuid4().hex[:8]}")
    await run_until(
        SinkRunner(sink, settings=fast), condition=lambda: {before.event_id, after.event_id} <= sink.flushed
    )
    letters = await wait_for_records(
        fast,
        DEAD_LETTER,
        lambda r: isinstance(r, DeadLetter) and r.stage == f"consumers.{sink.name}" and r.source_partition == 1,
    )
    [letter] = [letter for letter in letters if letter.reason_code is DeadLetterReason.CORRUPT]
    assert "gzip batch cannot be read" in letter.reason
    assert letter.reason.startswith(f"offsets {letter.source_offset}..{letter.source_offset + 2}")


@pytest.mark.parametrize(("crashes", "delay"), [(1, 1.0), (2, 2.0), (3, 4.0), (5, 16.0), (6, 30.0), (50, 30.0)])
def test_a_sink_crashing_again_and_again_waits_longer_each_time_up_to_a_cap(crashes: int, delay: float) -> None:
    """The pause before a crashed sink's restart doubles with each crash in a row, from 1 s to at most 30 s."""
    assert restart_delay(crashes) == delay


async def test_a_crashing_sink_is_reported_and_restarted_and_never_stops_another(settings: Settings) -> None:
    """Two sinks under one supervisor, one crashing at every start: the crash is logged with its cause and its
    readiness says so, while the other applies every record; once the fault is gone the crashed sink is back,
    catches up and is ready."""
    fast = settings.model_copy(update={"group_session_timeout_s": 3.0, "fetch_max_wait_ms": 50})
    records = [release() for _ in range(3)]
    await produce(fast, TIERS[Audience.MEMBERS], [CODEC.encode(r) for r in records])
    wanted = {r.event_id for r in records}
    steady, broken = RecordingSink(f"test-{uuid4().hex[:8]}"), RecordingSink(f"test-{uuid4().hex[:8]}")
    broken.failing_start = RuntimeError("disk on fire")
    broken_runner = SinkRunner(broken, settings=fast)
    supervisor = SinkSupervisor([SinkRunner(steady, settings=fast), broken_runner])
    stop = asyncio.Event()
    with capture_logs() as logs:
        task = asyncio.create_task(supervisor.run(stop))
        await until(lambda: wanted <= steady.flushed and supervisor.states[broken.name].crashes >= 2, task)
        assert broken.flushed == set()
        assert (broken_runner.readiness.reason or "").startswith("crashed (RuntimeError: disk on fire); restarting")
        broken.failing_start = None
        await until(lambda: wanted <= broken.flushed and broken_runner.readiness.is_ready, task)
        stop.set()
        await asyncio.wait_for(task, timeout=30)
    crashes = [line for line in logs if line["event"] == "sink_crashed"]
    assert {line["sink"] for line in crashes} == {broken.name}
    assert crashes[0]["error"] == "RuntimeError: disk on fire"
    assert [line["restart_in_s"] for line in crashes[:2]] == [1.0, 2.0]
    assert steady.times_applied(records) == dict.fromkeys(wanted, 1)


async def test_a_sink_that_cannot_be_configured_stops_them_all_naming_it(settings: Settings) -> None:
    """A configuration error is not retried: every sink stops, and the error names the sink."""
    fast = settings.model_copy(update={"group_session_timeout_s": 3.0, "fetch_max_wait_ms": 50})
    steady, misconfigured = RecordingSink(f"test-{uuid4().hex[:8]}"), RecordingSink(f"test-{uuid4().hex[:8]}")
    misconfigured.failing_start = ConfigurationError("archive_dir is not writable")
    supervisor = SinkSupervisor([SinkRunner(steady, settings=fast), SinkRunner(misconfigured, settings=fast)])
    with pytest.raises(ConfigurationError, match=f"^sink {misconfigured.name}: archive_dir is not writable$"):
        await asyncio.wait_for(supervisor.run(asyncio.Event()), timeout=60)
    assert supervisor.states[misconfigured.name].crashes == 0


async def test_records_a_paused_consumer_returns_anyway_are_read_again_by_the_next_batch(settings: Settings) -> None:
    """Should the poll that keeps a busy runner in its group return records (a partition assigned by a rebalance
    between the pause and the poll), they are put back: the partition is paused, and read again from the first."""
    tp = TopicPartition(TIERS[Audience.MEMBERS].name, 2)
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all")
    await producer.start()
    try:
        sent = [await producer.send_and_wait(tp.topic, CODEC.encode(release()), partition=2) for _ in range(2)]
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(**client_options(settings), group_id=None, fetch_max_wait_ms=50)
    await consumer.start()
    reader = Reader(consumer, client_options(settings))
    try:
        consumer.assign([tp])
        consumer.seek(tp, sent[0].offset)
        polled = await reader.poll(timeout_ms=2_000)
        assert [record.offset for record in polled.records[tp]][:1] == [sent[0].offset]
        _put_back(consumer, polled)
        assert consumer.paused() == {tp}
        consumer.resume(tp)
        again = await reader.poll(timeout_ms=2_000)
        assert [record.offset for record in again.records[tp]][:2] == [record.offset for record in sent]
    finally:
        await reader.close()
        await consumer.stop()
