"""The processors worker: the intake gate (aiokafka) and the review stage (faust) in one process.

Thin on purpose. The gate (:class:`~processors._gate.GateRunner` around :class:`~processors.gate.IntakeGate`)
reads the intake and decision topics and forwards what it accepts to the review inbox, placed by partition key.
The review stage is one faust agent over the inbox, a table of review items (:class:`~processors._state.ReviewState`)
and a timer: it asks the :class:`~processors.review.Reviewer` what each record changes and does the I/O in batches
(``stream.take_events``): persist item states, send records, flush only when a release needs it. The inbox and the
review table's changelog have one partition count and the same keys, so an event, the decisions about it and its
review state always meet in one worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, NoReturn

import faust
import mode
import structlog
from aiokafka import TopicPartition

from firebus import metrics
from firebus.codec import Codec
from firebus.contracts import Contract
from firebus.county import County, load_county
from firebus.deadletters import SourceRecord, dead_letter
from firebus.errors import BrokerLostError
from firebus.events import Event
from firebus.health import Backlog, HealthServer, Readiness, measure
from firebus.kafka import client_options, co_partitioned_count
from firebus.records import DeadLetterReason, ReviewDecision, ReviewItem, ReviewStatus
from firebus.settings import SecurityProtocol, Settings
from firebus.signing import registered_public_keys
from firebus.topics import CO_PARTITIONED, RESOURCES_STATE, REVIEW_INBOX, REVIEW_ITEMS, TIERS
from processors._brokerloss import (
    BrokerLoss,
    BrokerProbe,
    KnownOffsets,
    rescue_directory,
    restore_rescued,
    save_rescued,
    still_on_broker,
)
from processors._gate import GateRunner
from processors._reconcile import landed_release_ids
from processors._resources import ResourceDirectory
from processors._sender import Record, SharedSender
from processors._state import ReviewState, queue_figures
from processors._transport import FirebusFaustApp
from processors.gate import STAGE as GATE_STAGE
from processors.gate import IntakeGate, source_from_header
from processors.intake import IntakeValidator
from processors.outgoing import rejection_records
from processors.policy import ReviewPolicy, load_policy
from processors.review import Reviewer, Step

log = structlog.get_logger(__name__)

APP_ID = "firebus-processors"
STAGE = "processors.review"
_CO_PARTITIONED_NAMES = frozenset(topic.name for topic in CO_PARTITIONED)
GC_YOUNG_THRESHOLD = 20_000
MEASURE_INTERVAL_S = 1.0


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


@dataclass(frozen=True)
class InboxRecord:
    """One inbox record as the review stage reads it: its inbox partition (where its state lives) and the published
    record it stands for."""

    partition: int
    source: SourceRecord


@dataclass(frozen=True)
class _Admitted:
    event: Event[Any]
    raw: bytes
    decoded: tuple[Contract, Any]


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
        with_gate: bool = True,
        on_broker_lost: Callable[[BrokerLostError], NoReturn] | None = None,
    ) -> None:
        self.settings = settings
        self.with_gate = with_gate
        """Run the intake gate in this worker too (``Stage.ALL``), or leave it to a process of its own."""
        self.review_partitions = review_partitions
        """The co-partitioned topics' partition count on the broker (see firebus.topics.CO_PARTITIONED)."""
        self.county = county if county is not None else load_county(settings.config)
        self.policy = policy if policy is not None else load_policy(settings.review_policy, self.county)
        self.codec = codec or Codec()
        validator = IntakeValidator(
            codec=self.codec,
            county=self.county,
            public_keys=registered_public_keys(self.county, settings.key_directory),
        )
        self.gate = IntakeGate(validator=validator, codec=self.codec)
        self.resources = ResourceDirectory(settings=settings, codec=self.codec)
        self.reviewer = Reviewer(
            codec=self.codec, county=self.county, policy=self.policy, resources=self.resources.current
        )
        self.sender = SharedSender(settings)
        self.gate_readiness = Readiness(GATE_STAGE)
        self.readiness = Readiness(STAGE)
        """The review stage's: ready once its table is restored for the assignment and the inbox backlog found then
        is handled (measured from the records the agent has handled; before its first record of a partition, from
        the consumer's position)."""
        self._backlog = Backlog()
        self._handled: dict[int, int] = {}
        """The next inbox offset to handle, per partition, since the last table recovery."""
        self._recovered = False
        self._interrupted: dict[Any, tuple[ReviewItem, int]] = {}
        self.known = KnownOffsets()
        """Offsets the broker stored, by what it acknowledged and what the review table read: see _brokerloss."""
        self.on_broker_lost = on_broker_lost or _raise
        """Ends the process once the review items are rescued (the CLI's: one error line, exit 1 at once)."""
        self._active: set[int] = set()
        self._losing: asyncio.Task[None] | None = None
        self.app = self._build_app()

    # --- faust ---------------------------------------------------------------------------------------------------

    def _build_app(self) -> FirebusFaustApp:
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
            recovery_consistency_check=False,  # see _changelog_ends: the same check, and what a loss means here
            stream_processing_timeout=settings.processors_stall_timeout_s,
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
                acks=False,
                key_serializer="raw",
                value_serializer="raw",
            ),
        )
        self.state = ReviewState(lambda: self.reviews.data, self.codec, partitions=self.review_partitions)
        # Decoded items of an earlier assignment may be stale (another worker may have owned their partitions since).
        app.firebus_on_recovered.append(self.state.forget)
        app.firebus_on_recovered.append(self._on_recovered)
        app.timer(MEASURE_INTERVAL_S, name="measure")(self._measure)
        app.firebus_on_recovered.append(self._note_active_partitions)
        app.firebus_on_changelog_ends.append(self._changelog_ends)
        app.task(self._check_broker)
        app.task(self._follow_resources)
        if self.with_gate:
            app.task(self._run_gate)
        inbox = app.topic(REVIEW_INBOX.name, key_serializer="raw", value_serializer="raw")
        app.agent(inbox, name="review")(self._agent)
        app.timer(settings.review_tick_s, name="escalate")(self._escalate)
        return app

    async def _agent(self, stream: Any) -> None:
        batch_size, within = self.settings.processors_batch_size, self.settings.processors_batch_within_s
        async for events in stream.take_events(batch_size, within=within):
            self.app.firebus_streams_took({event.message.tp for event in events})
            await self.handle_batch([self._inbox_record(e.message) for e in events])
            self._handled.update((e.message.partition, e.message.offset + 1) for e in events)

    @staticmethod
    def _inbox_record(message: Any) -> InboxRecord:
        value = message.value or b""
        source = source_from_header(value, message.headers or (), key=message.key) or SourceRecord(
            message.topic, message.partition, message.offset, message.key, value
        )
        return InboxRecord(message.partition, source)

    async def _follow_resources(self) -> None:
        await self.resources.follow()

    async def _run_gate(self) -> None:
        await GateRunner(self.settings, self.gate, self._store, self.gate_readiness).run()

    # --- health ------------------------------------------------------------------------------------------------------

    def _on_recovered(self) -> None:
        self._handled.clear()
        self._recovered = True

    async def _measure(self) -> None:
        if not self._recovered or self.app.in_recovery:
            restoring = "restoring the review table from its changelog"
            self.readiness.not_ready(restoring if self._recovered else "joining the consumer group")
            return
        consumer = self.app.consumer
        await measure(
            [tp for tp in consumer.assignment() if tp.topic == REVIEW_INBOX.name],
            self._next_offset,
            consumer.highwater,
            group=APP_ID,
            backlog=self._backlog,
            readiness=self.readiness,
        )

    async def _next_offset(self, tp: Any) -> int:
        handled = self._handled.get(tp.partition)
        if handled is None:
            handled = await self.app.consumer.position(tp)
        return handled or 0

    # --- the batch ---------------------------------------------------------------------------------------------------

    async def handle_batch(self, records: Sequence[InboxRecord]) -> None:
        started = time.perf_counter()
        now = datetime.now(UTC)
        metrics.EVENTS_IN.labels(stage=STAGE, topic=REVIEW_INBOX.name).inc(len(records))
        steps: list[tuple[int, Step]] = []
        for record in records:
            step = self._step(record, now)
            # Later records of the batch must see this one's effect (an event and its cancel may share a batch).
            self.state.note((*step.before, *step.after))
            for resource in (outgoing for outgoing in step.outgoing if outgoing.topic is RESOURCES_STATE):
                self.resources.apply(resource.value)
            steps.append((record.partition, step))
        if self._interrupted:
            await self._finish_interrupted_releases(now)
        decided = time.perf_counter()
        releasing = any(item.status is ReviewStatus.RELEASING for _, step in steps for item in step.before)
        states = [record for partition, step in steps for record in self.state.persist(partition, step.before)]
        outgoing = [record for _, step in steps for record in step.outgoing]
        if releasing:
            await self._send(states)  # the `releasing` marks are stored before any tier record is sent
            await self._send(outgoing)
        else:
            await self._send([*states, *outgoing])
        sent = time.perf_counter()
        # The tier records are stored: mark the items `released`, stored before the inputs' offsets commit.
        await self._send([record for partition, step in steps for record in self.state.persist(partition, step.after)])
        log.debug(
            "batch_handled",
            records=len(records),
            decide_ms=round((decided - started) * 1000, 1),
            send_ms=round((sent - decided) * 1000, 1),
            flush_ms=round((time.perf_counter() - sent) * 1000, 1),
        )

    def _step(self, record: InboxRecord, now: datetime) -> Step:
        """What one inbox record changes; a record this stage cannot handle is a dead letter, never a stop."""
        source = record.source
        try:
            contract, decoded = self.codec.decode_data(source.value or b"")
            envelope = self.codec.to_model(contract, decoded)
            if isinstance(envelope, ReviewDecision):
                return self._decision_step(envelope, source, record.partition, now)
            if not isinstance(envelope, Event):
                raise TypeError(f"a {contract.name} has no place in the review inbox")
            existing = self.state.lookup(envelope.header.event_id)
            if existing is not None and existing.status is ReviewStatus.RELEASING:
                self._interrupted[existing.event_id] = (existing, record.partition)
            admitted = _Admitted(envelope, source.value or b"", (contract, decoded))
            return self.reviewer.on_accepted(admitted, source, self.state.lookup, now=now)
        except Exception as exc:  # the gate forwards only what it checked; anything else must still not stop us
            reason = f"the review stage could not handle this record: {type(exc).__name__}: {exc}"
            log.error("review_record_poison", source=source.position, error=repr(exc))
            rejected = dead_letter(source, DeadLetterReason.POISON, reason, now=now, stage=STAGE)
            return Step(outgoing=rejection_records(self.codec, rejected))

    def _decision_step(self, decision: ReviewDecision, source: SourceRecord, partition: int, now: datetime) -> Step:
        item = self.state.lookup(decision.event_id)
        if item is not None and item.status is ReviewStatus.RELEASING:
            self._interrupted[item.event_id] = (item, partition)
        step = self.reviewer.on_decision(decision, source, self.state.lookup, now=now)
        log.info(
            "review_decided",
            event_id=str(decision.event_id),
            trace_id=decision.trace_id,
            verdict=decision.verdict.value,
            reviewer=decision.reviewer,
            applied=bool(step.before),
        )
        return step

    async def _send(self, records: Sequence[Record]) -> None:
        await self._store(records)
        metrics.count_by_topic(metrics.EVENTS_OUT, STAGE, (record.topic.name for record in records))

    async def _store(self, records: Sequence[Record]) -> None:
        """Send, and note what the broker acknowledged storing (it tells a wiped broker from a working one)."""
        for ack in await self.sender.send(records):
            self.known.note(TopicPartition(ack.topic, ack.partition), ack.offset)

    # --- a wiped or replaced broker (see processors/_brokerloss.py) -----------------------------------------------

    def _note_active_partitions(self) -> None:
        actives = self.app.assignor.assigned_actives()
        self._active = {tp.partition for tp in actives if tp.topic == REVIEW_ITEMS.name}

    async def _changelog_ends(self, ends: Mapping[Any, int], read: Mapping[Any, int]) -> bool:
        for tp, offset in read.items():
            self.known.note(TopicPartition(tp.topic, tp.partition), offset)
        behind = self.known.behind({TopicPartition(tp.topic, tp.partition): end for tp, end in ends.items()})
        if behind:
            self._broker_lost(BrokerLoss(tuple(behind)))
        return not behind

    async def _check_broker(self) -> None:
        probe = BrokerProbe(self.settings)
        while self._losing is None:
            await asyncio.sleep(self.settings.processors_broker_check_s)
            loss = await probe.check(self.known.snapshot())
            if loss is not None:
                self._broker_lost(loss)

    def _broker_lost(self, loss: BrokerLoss) -> None:
        if self._losing is None:  # once, whoever notices first; its own task, which no rebalance cancels
            self._losing = asyncio.ensure_future(self._rescue_and_exit(loss))

    async def _rescue_and_exit(self, loss: BrokerLoss) -> None:
        try:
            rescued = await self._rescue(loss)
        except Exception as exc:  # whatever failed here, the worker must not carry on against this broker
            log.error("broker_lost", lost=str(loss), rescue_failed=repr(exc))
            rescued = f"saving the review items this worker held failed: {exc!r}"
        self.on_broker_lost(BrokerLostError(f"the broker no longer has what it stored ({loss}): {rescued}"))

    async def _rescue(self, loss: BrokerLoss) -> str:
        """Save the review items of the partitions this worker was active for; what the error line says of them."""
        held = self.state.held(self._active)
        path = save_rescued(rescue_directory(self.settings), self.codec, held, now=datetime.now(UTC))
        kept = await still_on_broker(self.settings, self.codec, (str(item.event_id) for item in held), within_s=10)
        pending = sum(1 for item in held if item.status is ReviewStatus.PENDING)
        log.error(
            "broker_lost",
            lost=str(loss),
            review_items_held=len(held),
            pending=pending,
            no_longer_on_broker=len(held) - kept,
            rescued_to=str(path),
        )
        return (
            f"this worker held {len(held) - kept} review item(s) that the broker no longer has ({len(held)} held, "
            f"{pending} awaiting review), saved in {path}; `firebus processors` writes them back when it starts "
            "again (on an empty broker, after `firebus topics create`)"
        )

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
            released = item.model_copy(update={"status": ReviewStatus.RELEASED})
            await self._send(self.state.persist(partition, [released]))
        log.warning("releases_finished_after_interruption", items=len(interrupted), resent=resent, landed=len(landed))

    # --- deadlines -------------------------------------------------------------------------------------------------

    async def _escalate(self) -> None:
        if self.app.in_recovery:
            return  # the store is not whole yet, and the items' owners may be changing
        now = datetime.now(UTC)
        active = {tp.partition for tp in self.app.assignor.assigned_actives() if tp.topic in _CO_PARTITIONED_NAMES}
        unsettled = self.state.unsettled(active)
        figures = queue_figures(unsettled, now)
        for status in (ReviewStatus.PENDING, ReviewStatus.RELEASING):
            metrics.REVIEW_QUEUE_DEPTH.labels(status=status.value).set(figures.depth.get(status, 0))
        metrics.REVIEW_OLDEST_PENDING_AGE.set(figures.oldest_pending_age_s)
        metrics.REVIEW_OVERDUE.set(figures.overdue)
        step = self.reviewer.on_tick(unsettled, now=now)
        states = [
            record for item in step.before for record in self.state.persist(self.state.partition_of(item), [item])
        ]
        # Settled items past retention leave memory and the changelog: what a year of events would otherwise hold.
        expired = self.state.expired(active, before=now - timedelta(seconds=self.settings.review_retention_s))
        tombstones = self.state.purge(expired)
        if tombstones:
            log.info("review_items_purged", items=len(tombstones), retention_s=self.settings.review_retention_s)
        await self._send([*states, *step.outgoing, *tombstones])


def _raise(error: BrokerLostError) -> NoReturn:
    raise error


def _tune_collector() -> None:
    """Everything built so far (modules, contracts, the app) lives as long as the process: keep it out of the
    collector's scans, and collect the young generation less often. Each event allocates many short-lived objects and
    no cycles; measured, the cyclic collector took about 15% of the per-event CPU with the defaults."""
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


class Stage(StrEnum):
    """What one processors process runs: both stages (the default, one process per worker), or one of them, so the
    gate's checks (signatures, decoding) and the review stage's faust work use a core each."""

    ALL = "all"
    INTAKE = "intake"
    REVIEW = "review"


class _HealthService(mode.Service):
    """The health server as a service of the faust worker: started before the app (so /healthz answers while the
    worker joins its groups), in the worker's event loop, and stopped with it."""

    def __init__(self, server: HealthServer) -> None:
        super().__init__()
        self.server = server

    async def on_start(self) -> None:
        await self.server.start()

    async def on_stop(self) -> None:
        await self.server.close()


def check_settings(settings: Settings) -> None:
    """What a worker reads before it reaches Kafka (county, review policy, units' keys): a bad file is the caller's
    one error line now, rather than a worker's at each of its restarts."""
    county = load_county(settings.config)
    load_policy(settings.review_policy, county)
    registered_public_keys(county, settings.key_directory)


def run_worker(
    settings: Settings, stage: Stage = Stage.ALL, *, on_broker_lost: Callable[[BrokerLostError], NoReturn] = _raise
) -> None:
    """Run the processors worker in this process until it is stopped (Ctrl-C or SIGTERM), or until its broker
    turns out to have lost what it stored (``on_broker_lost`` ends the process)."""
    # The port first: a taken one is a one-line error before anything reaches Kafka.
    health = HealthServer(
        host=settings.health_host, port=settings.processors_health_port, setting="processors_health_port"
    ).bind()
    if stage is Stage.INTAKE:
        asyncio.run(_run_gate_alone(settings, health))
        return
    # The review state lives on the partition its events arrive on: check the topics agree before anything runs.
    # Review items an earlier worker rescued from a lost broker go back to the review state before it is restored.
    checking = asyncio.new_event_loop()
    try:
        review_partitions = checking.run_until_complete(co_partitioned_count(settings))
        checking.run_until_complete(restore_rescued(settings, Codec(), partitions=review_partitions))
    finally:
        checking.close()
    processors = Processors(
        settings=settings,
        review_partitions=review_partitions,
        with_gate=stage is Stage.ALL,
        on_broker_lost=on_broker_lost,
    )
    health.stages += [processors.gate_readiness, processors.readiness] if stage is Stage.ALL else [processors.readiness]
    _tune_collector()
    # firebus's logging stays (faust's would print its own format, aiokafka's outage noise unfiltered, at any level).
    worker = faust.Worker(
        processors.app, _HealthService(health), quiet=True, redirect_stdouts=False, override_logging=False
    )
    worker.spinner = None  # a terminal progress spinner, written to the stage's log file
    log.info(
        "processors_starting",
        stage=stage.value,
        bootstrap=settings.bootstrap_servers,
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
        review_partitions=review_partitions,
    )
    worker.execute_from_commandline()


async def _run_gate_alone(settings: Settings, health: HealthServer) -> None:
    """The intake gate without faust: a consumer group, the checks and a producer, until SIGTERM or Ctrl-C."""
    county = load_county(settings.config)
    validator = IntakeValidator(
        codec=Codec(), county=county, public_keys=registered_public_keys(county, settings.key_directory)
    )
    readiness = Readiness(GATE_STAGE)
    health.stages.append(readiness)
    gate = GateRunner(
        settings, IntakeGate(validator=validator, codec=validator.codec), SharedSender(settings).send, readiness
    )
    _tune_collector()
    await health.start()
    running = asyncio.ensure_future(gate.run())
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, running.cancel)
    log.info("processors_starting", stage=Stage.INTAKE.value, bootstrap=settings.bootstrap_servers)
    try:
        with contextlib.suppress(asyncio.CancelledError):
            await running
    finally:
        await health.close()


__all__ = ["APP_ID", "Processors", "Stage", "check_settings", "run_worker"]
