"""The faust wiring of the processors: one agent over the intake topics and the decisions, two tables, a timer.

Thin on purpose: it turns records into :class:`~firebus.deadletters.SourceRecord`\\s, asks the
:class:`~processors.intake.IntakeValidator` and the :class:`~processors.review.Reviewer` what to do, and does the
I/O in batches (``stream.take_events``): persist item states, send records, flush only when a release needs it.

Intake topics, decisions and the review table's changelog have the same partition count and keys (the event's
partition key), so an event, the decisions about it and its review state always meet in one worker.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import faust
import structlog
from aiokafka import AIOKafkaProducer

from firebus.codec import Codec
from firebus.county import County, load_county
from firebus.deadletters import Rejected, SourceRecord, dead_letter
from firebus.errors import DecodeError, InvalidEventError
from firebus.events import Event
from firebus.kafka import client_options, co_partitioned_count
from firebus.records import DeadLetterReason, ReviewDecision, ReviewItem, ReviewStatus
from firebus.settings import SecurityProtocol, Settings
from firebus.signing import registered_public_keys
from firebus.topics import (
    CO_PARTITIONED,
    DEAD_LETTER,
    INTAKE,
    RESOURCES_STATE,
    REVIEW_DECISIONS,
    REVIEW_ITEMS,
    TIERS,
)
from processors._reconcile import landed_release_ids
from processors._resources import ResourceDirectory
from processors._sender import BatchSender, partition_for
from processors._transport import FirebusFaustApp
from processors.intake import Accepted, IntakeValidator, IntakeVerdict, Quarantined
from processors.policy import ReviewPolicy, load_policy
from processors.review import SETTLED, Outgoing, Reviewer, Step

log = structlog.get_logger(__name__)

APP_ID = "firebus-processors"
_CO_PARTITIONED_NAMES = frozenset(topic.name for topic in CO_PARTITIONED)
GC_YOUNG_THRESHOLD = 20_000


def _credentials(settings: Settings) -> Any:
    options = client_options(settings)
    if settings.security_protocol in (SecurityProtocol.SASL_SSL, SecurityProtocol.SASL_PLAINTEXT):
        return faust.SASLCredentials(
            username=options["sasl_plain_username"],
            password=options["sasl_plain_password"],
            mechanism=options["sasl_mechanism"],
            ssl_context=options.get("ssl_context"),
        )
    if settings.security_protocol is SecurityProtocol.SSL:
        return faust.SSLCredentials(options["ssl_context"])
    return None


class Processors:
    """The processors worker: build it, then ``app`` runs under faust (``run_worker``)."""

    def __init__(
        self,
        *,
        settings: Settings,
        county: County | None = None,
        policy: ReviewPolicy | None = None,
        codec: Codec | None = None,
        review_partitions: int = REVIEW_ITEMS.partitions,
    ) -> None:
        self.settings = settings
        self.review_partitions = review_partitions
        """The co-partitioned topics' partition count on the broker (see firebus.topics.CO_PARTITIONED)."""
        self.county = county if county is not None else load_county(settings.config)
        self.policy = policy if policy is not None else load_policy(settings.review_policy, self.county)
        self.codec = codec or Codec()
        self.validator = IntakeValidator(
            codec=self.codec,
            county=self.county,
            public_keys=registered_public_keys(self.county, settings.key_directory),
        )
        self.resources = ResourceDirectory(settings=settings, codec=self.codec)
        self.reviewer = Reviewer(
            codec=self.codec, county=self.county, policy=self.policy, resources=self.resources.current
        )
        self._items: dict[UUID, ReviewItem] = {}
        """Decoded open items (and, within a batch, every item it touched); the table's store holds them all."""
        self._settled: set[UUID] = set()
        """Items known to be released, rejected or withdrawn: final, so escalation need not decode them again."""
        self._sender: BatchSender | None = None
        self._sender_lock = asyncio.Lock()
        self._interrupted: dict[UUID, tuple[ReviewItem, int]] = {}
        self.app = self._build_app()

    # --- faust ---------------------------------------------------------------------------------------------------

    def _build_app(self) -> faust.App:
        settings = self.settings
        settings.home_dir.mkdir(parents=True, exist_ok=True)
        app = FirebusFaustApp(
            APP_ID,
            broker=[f"kafka://{server}" for server in settings.bootstrap_servers.split(",")],
            broker_credentials=_credentials(settings),
            fetch_max_wait_ms=settings.fetch_max_wait_ms,
            client_options=client_options(settings, client_id=f"{settings.client_id}-recovery"),
            store="memory://",
            datadir=str(settings.home_dir / "processors"),
            web_enabled=False,
            topic_allow_declare=False,  # the topic registry creates every topic (`firebus topics create`)
            topic_disable_leader=True,
            consumer_auto_offset_reset="earliest",  # a new worker group starts with everything not yet processed
            producer_acks=-1,
            producer_linger_ms=settings.processors_linger_ms,
            broker_session_timeout=settings.group_session_timeout_s,
            broker_rebalance_timeout=settings.group_session_timeout_s,
            broker_heartbeat_interval=max(0.5, settings.group_session_timeout_s / 6),
            broker_request_timeout=max(settings.request_timeout_ms / 1000, settings.group_session_timeout_s + 5),
            broker_commit_interval=1.0,
            table_cleanup_interval=3600.0,
            stream_wait_empty=True,
        )
        # The table is the workers' local store, restored from its changelog on assignment; item states are
        # written to the changelog by the batch sender, acknowledged, alongside the records they announce.
        self.reviews = app.Table(
            "reviews",
            default=None,
            key_type=bytes,
            value_type=bytes,
            changelog_topic=app.topic(
                REVIEW_ITEMS.name,
                partitions=self.review_partitions,
                compacting=True,
                key_serializer="raw",
                value_serializer="raw",
            ),
        )
        # Decoded items of an earlier assignment may be stale (another worker may have owned their partitions since).
        app.firebus_on_recovered.append(self._forget)
        app.task(self._follow_resources)
        inputs = app.topic(
            *[topic.name for topic in INTAKE.values()],
            REVIEW_DECISIONS.name,
            key_serializer="raw",
            value_serializer="raw",
        )
        app.agent(inputs, name="review")(self._agent)
        app.timer(settings.review_tick_s, name="escalate")(self._escalate)
        return app

    async def _agent(self, stream: Any) -> None:
        batch_size, within = self.settings.processors_batch_size, self.settings.processors_batch_within_s
        async for events in stream.take_events(batch_size, within=within):
            await self.handle_batch(
                [
                    SourceRecord(e.message.topic, e.message.partition, e.message.offset, e.message.key, e.message.value)
                    for e in events
                ]
            )

    # --- state -----------------------------------------------------------------------------------------------------

    def _lookup(self, event_id: UUID) -> ReviewItem | None:
        item = self._items.get(event_id)
        if item is None:
            # The store itself, asked first: a lookup of a key it does not hold (every new event) raises inside.
            key, store = str(event_id).encode(), self.reviews.data
            stored = store[key] if key in store else None  # noqa: SIM401  (see above)
            if stored is not None:
                decoded = self.codec.decode(stored)
                assert isinstance(decoded, ReviewItem)  # noqa: S101
                item = decoded
                self._remember(item)
        return item

    def _remember(self, item: ReviewItem) -> None:
        """Keep an open item decoded; a settled one stays only in the store (read again on the rare lookup of an
        update's or a cancel's original), so the decoded state does not grow with every event ever reviewed."""
        if item.status in SETTLED:
            self._items.pop(item.event_id, None)
            self._settled.add(item.event_id)
        else:
            self._items[item.event_id] = item
            self._settled.discard(item.event_id)

    def _forget(self) -> None:
        """After a rebalance: what was derived from the old assignment may be stale (others owned those partitions)."""
        self._items.clear()
        self._settled.clear()

    def _persist(self, partition: int, items: Iterable[ReviewItem]) -> list[Outgoing]:
        """Keep the items' new states locally; the returned changelog records make them durable once sent."""
        records = []
        for item in items:
            key, value = str(item.event_id).encode(), self.codec.encode(item)
            self.reviews.data[key] = value
            self._remember(item)
            records.append(Outgoing(REVIEW_ITEMS, key, value, partition))
        return records

    async def _follow_resources(self) -> None:
        await self.resources.follow()

    # --- the batch ---------------------------------------------------------------------------------------------------

    async def handle_batch(self, sources: Sequence[SourceRecord]) -> None:
        started = time.perf_counter()
        now = datetime.now(UTC)
        verdicts = [
            None if source.topic == REVIEW_DECISIONS.name else self.validator.check(source, now=now)
            for source in sources
        ]
        # HQ sees fire information the moment it is valid: its reports leave before the batch's reviews are worked out.
        live = [
            record for verdict in verdicts if isinstance(verdict, Accepted) for record in Reviewer.report_live(verdict)
        ]
        reporting = asyncio.ensure_future(self._send(live))
        try:
            await self._review_batch(sources, verdicts, now, started)
        finally:
            await reporting

    async def _review_batch(
        self, sources: Sequence[SourceRecord], verdicts: Sequence[IntakeVerdict | None], now: datetime, started: float
    ) -> None:
        steps: list[tuple[int, Step]] = []
        for source, verdict in zip(sources, verdicts, strict=True):
            step = await self._step(source, verdict, now)
            # Later records of the batch must see this one's effect (an event and its cancel may share a batch).
            for item in (*step.before, *step.after):
                self._items[item.event_id] = item
            for record in step.outgoing:
                if record.topic is RESOURCES_STATE:
                    self.resources.apply(record.value)
            steps.append((source.partition, step))
        if self._interrupted:
            await self._finish_interrupted_releases(now)
        decided = time.perf_counter()
        releasing = any(item.status is ReviewStatus.RELEASING for _, step in steps for item in step.before)
        states = [record for partition, step in steps for record in self._persist(partition, step.before)]
        outgoing = [record for _, step in steps for record in step.outgoing]
        if releasing:
            await self._send(states)  # the `releasing` marks are stored before any tier record is sent
            await self._send(outgoing)
        else:
            await self._send([*states, *outgoing])
        sent = time.perf_counter()
        # The tier records are stored: mark the items `released`, stored before the inputs' offsets commit.
        await self._send([record for partition, step in steps for record in self._persist(partition, step.after)])
        log.debug(
            "batch_handled",
            records=len(sources),
            decide_ms=round((decided - started) * 1000, 1),
            send_ms=round((sent - decided) * 1000, 1),
            flush_ms=round((time.perf_counter() - sent) * 1000, 1),
        )

    async def _step(self, source: SourceRecord, verdict: IntakeVerdict | None, now: datetime) -> Step:
        if verdict is None:
            return await self._decision_step(source, now)
        if isinstance(verdict, Accepted):
            existing = self._lookup(verdict.event.header.event_id)
            if existing is not None and existing.status is ReviewStatus.RELEASING:
                self._interrupted[existing.event_id] = (existing, source.partition)
            return self.reviewer.on_accepted(verdict, source, self._lookup, now=now)
        if isinstance(verdict, Rejected):
            log.warning(
                "event_rejected",
                reason=verdict.dead_letter.reason,
                source_topic=source.topic,
                event_id=verdict.dead_letter.event_id,
                offset=source.offset,
            )
            return self._rejection(verdict, source)
        assert isinstance(verdict, Quarantined)  # noqa: S101
        log.warning("event_quarantined", event_id=str(verdict.audit.event_id), trace_id=verdict.audit.trace_id)
        return Step(outgoing=self.reviewer.audit_records(verdict.audit, notify_office=True))

    async def _decision_step(self, source: SourceRecord, now: datetime) -> Step:
        try:
            decision = self.codec.decode(source.value or b"")
            if not isinstance(decision, ReviewDecision):
                raise InvalidEventError([], subject=f"{type(decision).__name__} on {source.topic}")
        except (DecodeError, InvalidEventError) as exc:
            reason = DeadLetterReason.SCHEMA_INVALID if isinstance(exc, InvalidEventError) else DeadLetterReason.CORRUPT
            return self._rejection(dead_letter(source, reason, str(exc), now=now, stage="processors.review"), source)
        item = self._lookup(decision.event_id)
        if item is not None and item.status is ReviewStatus.RELEASING:
            self._interrupted[item.event_id] = (item, source.partition)
        step = self.reviewer.on_decision(decision, source, self._lookup, now=now)
        log.info(
            "review_decided",
            event_id=str(decision.event_id),
            trace_id=decision.trace_id,
            verdict=decision.verdict.value,
            reviewer=decision.reviewer,
            applied=bool(step.before),
        )
        return step

    def _rejection(self, rejected: Rejected, source: SourceRecord) -> Step:
        letter = Outgoing(DEAD_LETTER, source.key or b"", self.codec.encode(rejected.dead_letter))
        return Step(outgoing=[letter, *self.reviewer.audit_records(rejected.audit)])

    async def _send(self, records: Sequence[Outgoing]) -> None:
        """Send and wait for the broker's acknowledgement: outputs are stored before their inputs' offsets commit."""
        if not records:
            return
        async with self._sender_lock:  # the HQ live reports and the reviews may both be first to send
            if self._sender is None:
                self._sender = await self._start_sender()
        await self._sender.send_all(records)

    async def _start_sender(self) -> BatchSender:
        producer = AIOKafkaProducer(
            **client_options(self.settings, client_id=f"{self.settings.client_id}-processors"),
            acks="all",
            linger_ms=self.settings.processors_linger_ms,
            enable_idempotence=self.settings.producer_idempotence,
            max_batch_size=1024 * 1024,
        )
        await producer.start()
        return BatchSender(producer)

    async def _finish_interrupted_releases(self, now: datetime) -> None:
        """A crash interrupted these releases: send the tier records that did not land, then mark them released.

        One scan of the tier topics covers every interrupted release the batch met.
        """
        interrupted, self._interrupted = list(self._interrupted.values()), {}
        since = min(item.releasing_since or now for item, _ in interrupted)
        wanted = [release_id for item, _ in interrupted for release_id in item.release_ids]
        landed = await landed_release_ids(self.settings, self.codec, TIERS.values(), since=since, wanted=wanted)
        resent = 0
        for item, partition in interrupted:
            assert item.decision is not None  # noqa: S101  (a releasing item carries its decision)
            event = self.codec.decode(item.event)
            assert isinstance(event, Event)  # noqa: S101
            releases = self.reviewer.releases_for(item, event, item.decision, item.releasing_since or now)
            missing = [release for release in releases if release.release_id not in landed]
            resent += len(missing)
            await self._send(self.reviewer.release_records(item, missing, now))
            await self._send(self._persist(partition, [item.model_copy(update={"status": ReviewStatus.RELEASED})]))
        log.warning("releases_finished_after_interruption", items=len(interrupted), resent=resent, landed=len(landed))

    # --- deadlines -------------------------------------------------------------------------------------------------

    def _owned(self, items: Iterable[ReviewItem | None]) -> list[ReviewItem]:
        """The items of the partitions this worker is active for: its store also holds standby copies of other
        workers' partitions, which only their owner may change."""
        active = {tp.partition for tp in self.app.assignor.assigned_actives() if tp.topic in _CO_PARTITIONED_NAMES}
        return [
            item
            for item in items
            if item is not None and partition_for(item.partition_key.encode(), self.review_partitions) in active
        ]

    async def _escalate(self) -> None:
        if self.app.in_recovery:
            return  # the store is not whole yet, and the items' owners may be changing
        now = datetime.now(UTC)
        unsettled = (
            event_id for key in list(self.reviews.data.keys()) if (event_id := UUID(key.decode())) not in self._settled
        )
        items = self._owned(self._lookup(event_id) for event_id in unsettled)
        step = self.reviewer.on_tick(items, now=now)
        states = [
            record
            for item in step.before
            for record in self._persist(partition_for(item.partition_key.encode(), self.review_partitions), [item])
        ]
        await self._send([*states, *step.outgoing])


# faust's own log levels, from firebus's (faust logs a great deal at info).
_FAUST_LOG_LEVEL = {"debug": "info", "info": "warn", "warning": "warn", "error": "error", "critical": "crit"}


def run_worker(settings: Settings) -> None:
    """Run the processors worker in this process until it is stopped (Ctrl-C or SIGTERM)."""
    # The review state lives on the partition its events arrive on: check the topics agree before anything runs.
    checking = asyncio.new_event_loop()
    try:
        review_partitions = checking.run_until_complete(co_partitioned_count(settings))
    finally:
        checking.close()
    processors = Processors(settings=settings, review_partitions=review_partitions)
    # Everything built so far (modules, contracts, the app) lives as long as the process: keep it out of the
    # collector's scans, and collect the young generation less often — each event allocates many short-lived objects.
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
    loglevel = _FAUST_LOG_LEVEL.get(settings.log_level.lower(), "warn")
    worker = faust.Worker(processors.app, loglevel=loglevel, quiet=True, redirect_stdouts=False)
    log.info(
        "processors_starting",
        bootstrap=settings.bootstrap_servers,
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
        review_partitions=review_partitions,
    )
    worker.execute_from_commandline()


__all__ = ["APP_ID", "Processors", "run_worker"]
