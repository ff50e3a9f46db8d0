"""The intake gate's Kafka shell: a consumer group over the intake and decision topics around :class:`IntakeGate`.

At least once: a batch's offsets are committed only after every record it produced is acknowledged, and a rebalance
waits for the batch in hand (its revocation takes the same lock), so a partition changes hands between batches.
Unreadable batches are stepped over by the core reader and dead-lettered here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError

from firebus import metrics
from firebus.deadletters import SourceRecord
from firebus.health import Backlog, Readiness, measure_consumer
from firebus.kafka import Polled, Reader, client_options
from firebus.settings import Settings
from firebus.topics import INTAKE, REVIEW_DECISIONS
from processors.gate import STAGE, IntakeGate
from processors.outgoing import Outgoing

log = structlog.get_logger(__name__)

GATE_GROUP = "firebus-intake"
GATED_TOPICS = (*INTAKE.values(), REVIEW_DECISIONS)


class _FinishBatchFirst(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, batch_lock: asyncio.Lock) -> None:
        self._batch_lock = batch_lock

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        async with self._batch_lock:
            pass  # the batch in hand is sent and committed; the partitions may go

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        log.info("gate_assigned", partitions=len(assigned))


class GateRunner:
    """Runs the gate until cancelled; ``send`` stores records and returns once the broker has acknowledged them."""

    def __init__(
        self,
        settings: Settings,
        gate: IntakeGate,
        send: Callable[[Sequence[Outgoing]], Awaitable[object]],
        readiness: Readiness | None = None,
    ) -> None:
        self.settings = settings
        self.gate = gate
        self.send = send
        self.readiness = readiness or Readiness(STAGE)
        """Ready once the group is joined and the intake backlog found at assignment is gated."""
        self._backlog = Backlog()
        self._batch_lock = asyncio.Lock()

    def _consumer(self) -> AIOKafkaConsumer:
        settings = self.settings
        session_ms = int(settings.group_session_timeout_s * 1000)
        return AIOKafkaConsumer(
            **client_options(settings, client_id=f"{settings.client_id}-gate"),
            group_id=GATE_GROUP,
            enable_auto_commit=False,
            auto_offset_reset="earliest",  # a new gate group starts with everything not yet gated
            fetch_max_wait_ms=settings.fetch_max_wait_ms,
            session_timeout_ms=session_ms,
            rebalance_timeout_ms=session_ms,
            heartbeat_interval_ms=max(500, session_ms // 6),
        )

    async def run(self) -> None:
        consumer = self._consumer()
        consumer.subscribe(topics=[topic.name for topic in GATED_TOPICS], listener=_FinishBatchFirst(self._batch_lock))
        await consumer.start()
        reader = Reader(consumer, client_options(self.settings, client_id=f"{self.settings.client_id}-gate-probe"))
        log.info("gate_started", topics=len(GATED_TOPICS), group=GATE_GROUP)
        try:
            while True:
                polled = await reader.poll(timeout_ms=1_000, max_records=self.settings.processors_batch_size)
                if polled:
                    async with self._batch_lock:
                        await self._handle(consumer, polled)
                await measure_consumer(consumer, group=GATE_GROUP, backlog=self._backlog, readiness=self.readiness)
        finally:
            await reader.close()
            await consumer.stop()

    async def _handle(self, consumer: AIOKafkaConsumer, polled: Polled) -> None:
        now = datetime.now(UTC)
        sources = [
            SourceRecord(record.topic, record.partition, record.offset, record.key, record.value)
            for records in polled.records.values()
            for record in records
        ]
        outgoing = self.gate.route(sources, now=now)
        for batch in polled.unreadable:
            log.error("intake_batch_unreadable", where=batch.where, reason=batch.reason)
            outgoing += self.gate.unreadable(batch, now=now)
        await self.send(outgoing)
        metrics.count_by_topic(metrics.EVENTS_IN, STAGE, (source.topic for source in sources))
        metrics.count_by_topic(metrics.EVENTS_OUT, STAGE, (record.topic.name for record in outgoing))
        try:
            await consumer.commit(polled.next_offsets())
        except (CommitFailedError, KafkaError) as exc:
            # The group moved on (a rebalance): the new owner reads these records again; every effect is idempotent.
            log.warning("gate_commit_failed", error=repr(exc), records=len(sources))
