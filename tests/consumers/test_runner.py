"""The sink runner against the real broker: its own group, retries, dead letters, commits only what was applied."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from uuid import UUID, uuid4

from aiokafka import AIOKafkaProducer

from consumers import Delivery, SinkRunner
from firebus.codec import Codec
from firebus.errors import PoisonRecordError, SinkUnavailableError
from firebus.events import Audience, EventType, MessageKind
from firebus.records import (
    AuditAction,
    AuditEvent,
    DeadLetter,
    Release,
    ReviewDecision,
    ReviewerKind,
    Verdict,
)
from firebus.settings import Settings
from firebus.topics import AUDIT, DEAD_LETTER, TIERS, Topic
from tests.processors.conftest import wait_for_records

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
    """A sink that keeps what it is given; it may be told to be unavailable or to refuse some records."""

    def __init__(self, name: str, *, poison: set[UUID] | None = None, unavailable_for: int = 0) -> None:
        self.name = name
        self.topics: Sequence[Topic] = (TIERS[Audience.MEMBERS],)
        self.applied: list[UUID] = []
        self.flushed: list[UUID] = []
        self.poison = poison or set()
        self.unavailable_for = unavailable_for

    async def start(self) -> None:
        return None

    async def deliver(self, delivery: Delivery) -> None:
        record = delivery.record
        assert isinstance(record, Release)
        if self.unavailable_for > 0:
            self.unavailable_for -= 1
            raise SinkUnavailableError("gateway down")
        if record.event_id in self.poison:
            raise PoisonRecordError(f"cannot store {record.event_id}")
        if record.event_id not in self.applied:
            self.applied.append(record.event_id)

    async def flush(self) -> None:
        self.flushed = list(self.applied)

    async def close(self) -> None:
        return None


async def produce(settings: Settings, topic: Topic, values: Sequence[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all")
    await producer.start()
    try:
        for value in values:
            await producer.send(topic.name, value, key=b"runner-test")
        await producer.flush()
    finally:
        await producer.stop()


async def run_until(runner: SinkRunner, *, condition) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while not condition():
        assert loop.time() < deadline, "the runner never got there"
        assert not task.done(), task.exception() if task.done() else ""
        await asyncio.sleep(0.1)
    stop.set()
    await asyncio.wait_for(task, timeout=30)


async def test_a_sink_gets_every_record_once_with_retries_and_a_dead_letter_for_poison(settings: Settings) -> None:
    """Transient failures are retried, a poison record is dead-lettered, everything else is applied and audited."""
    fast = settings.model_copy(update={"group_session_timeout_s": 3.0, "fetch_max_wait_ms": 50})
    releases = [release() for _ in range(5)]
    poisoned = releases[2].event_id
    await produce(fast, TIERS[Audience.MEMBERS], [CODEC.encode(r) for r in releases] + [b"\x00garbage"])
    sink = RecordingSink(f"test-{uuid4().hex[:8]}", poison={poisoned}, unavailable_for=2)
    runner = SinkRunner(sink, settings=fast)
    wanted = {r.event_id for r in releases} - {poisoned}
    await run_until(runner, condition=lambda: wanted <= set(sink.flushed))
    assert runner.stats.retries >= 2
    assert runner.stats.dead_lettered >= 2  # the poison release and the garbage bytes
    letters = await wait_for_records(
        fast, DEAD_LETTER, lambda r: isinstance(r, DeadLetter) and r.stage == f"consumers.{sink.name}", count=2
    )
    assert any(str(poisoned) in letter.reason for letter in letters)
    delivered = await wait_for_records(
        fast,
        AUDIT,
        lambda r: isinstance(r, AuditEvent) and r.action is AuditAction.DELIVERED and r.event_id in wanted,
        count=len(wanted),
    )
    assert {audit.details["sink"] for audit in delivered} == {sink.name}


async def test_a_restarted_sink_resumes_after_what_it_committed(settings: Settings) -> None:
    """A second run of the same sink starts after the offsets the first committed: nothing is applied twice."""
    fast = settings.model_copy(update={"group_session_timeout_s": 3.0, "fetch_max_wait_ms": 50})
    name = f"test-{uuid4().hex[:8]}"
    first_batch = [release() for _ in range(3)]
    await produce(fast, TIERS[Audience.MEMBERS], [CODEC.encode(r) for r in first_batch])
    first = RecordingSink(name)
    await run_until(
        SinkRunner(first, settings=fast), condition=lambda: {r.event_id for r in first_batch} <= set(first.flushed)
    )

    second_batch = [release() for _ in range(2)]
    await produce(fast, TIERS[Audience.MEMBERS], [CODEC.encode(r) for r in second_batch])
    second = RecordingSink(name)
    await run_until(
        SinkRunner(second, settings=fast), condition=lambda: {r.event_id for r in second_batch} <= set(second.flushed)
    )
    assert not {r.event_id for r in first_batch} & set(second.applied)
