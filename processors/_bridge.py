"""``firebus bridge``: the county bus and the bus of the level above, joined through the HQ office (上下贯通).

Upward, what the county released goes up as the county HQ office's signed report, with its origin; downward, what
the upper HQ office releases to its members comes into the county's intake as that registered upstream unit's
publication, to be reviewed here. The decisions are :mod:`processors.reporting`; this module is the Kafka shell.

Exactly once, on any Kafka (Tansu has no idempotent producer): the bridge keeps no local state. It rebuilds
everything on start from topics — what went up from its own ledger topic on the *upper* cluster
(``firebus.bridge.upward.<county>``, one record per original, written after the upper intake acknowledged the
report), what came down from the county's intake topics, which escalations were made from the county's notices.
A crash between the report and its ledger record sends the report again with the same deterministic event id;
the upper level's review keeps one item per event id, so one report is reviewed and released.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from firebus.codec import Codec
from firebus.county import County, load_county
from firebus.deadletters import audit_id
from firebus.errors import ConfigurationError, FirebusError
from firebus.events import Audience, Event, EventType, FireReport
from firebus.kafka import TopicScan, create_topics, producer_options, read_to_end
from firebus.records import AuditAction, AuditEvent, Release, ReviewItem, ReviewStatus
from firebus.settings import SAMPLE_REPORTING_POLICY, Settings, read_config_file
from firebus.signing import load_signing_key, registered_public_keys, sign_event
from firebus.topics import AUDIT, HQ_NOTICES, INTAKE, REVIEW_ITEMS, TIERS, Topic, upward_ledger
from processors.reporting import (
    Due,
    Obligation,
    ObligationBook,
    Released,
    ReportingPolicy,
    UpwardIdentity,
    escalation_key,
    load_reporting_policy,
    obligation_of,
    thread_of,
    upward_report,
)

T = TypeVar("T")
STAGE = "bridge"
log = structlog.get_logger(__name__)

_OBLIGATION_NAMES = {
    Obligation.FIRST_REPORT: "首报",
    Obligation.FOLLOW_UP: "续报",
    Obligation.FINAL_ACCOUNT: "终报",
}


class BridgeConfig(BaseModel):
    """The ``[bridge]`` table of a config file: where the upper bus is and who this level is up there."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    upper_bootstrap: str = Field(min_length=1, description="Bootstrap servers of the upper level's Kafka.")
    upper_unit: str = Field(min_length=1, description="This HQ office's unit id in the upper registry (signs).")
    upper_area: str = Field(min_length=1, description="This county's area (township) id in the upper registry.")
    person: str = Field(default="值班室", min_length=1, description="Person responsible for upward reports.")
    contact: str | None = None
    upstream_unit: str | None = Field(
        default=None,
        description="The upper HQ office's unit id in this registry (kind upstream); unset: nothing comes down.",
    )
    policy: Path | None = Field(default=None, description="Upward-reporting policy (TOML); default the sample.")
    tick_s: float = Field(default=5.0, gt=0, description="How often deadlines are checked.")
    retry_s: float = Field(default=1.0, gt=0, description="Pause before a send to an unreachable bus is tried again.")


def load_bridge_config(path: Path) -> BridgeConfig | None:
    """The ``[bridge]`` table of ``path``, or None when it has none."""
    raw = read_config_file(path).get("bridge")
    if raw is None:
        return None
    try:
        return BridgeConfig.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ConfigurationError(f"config file {path}: bridge.{where}: {first['msg']}") from exc


def upper_settings(settings: Settings, config: BridgeConfig) -> Settings:
    """The county's settings pointed at the upper bus (same security settings, a client id of its own)."""
    return settings.model_copy(update={"bootstrap": config.upper_bootstrap, "client_id": f"{settings.client_id}-upper"})


class Bridge:
    """One county's bridge to the level above. ``run`` until cancelled; restartable at any instant."""

    def __init__(
        self,
        *,
        settings: Settings,
        config: BridgeConfig,
        codec: Codec,
        county: County,
        public_keys: dict[str, Ed25519PublicKey],
        policy: ReportingPolicy,
        signing_key: Ed25519PrivateKey,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self.upper = upper_settings(settings, config)
        self.config = config
        self.codec = codec
        self.county = county
        self.public_keys = public_keys
        self.policy = policy
        self.signing_key = signing_key
        self.clock = clock
        self.identity = UpwardIdentity(
            level=county.county.id,
            unit=config.upper_unit,
            person=config.person,
            area=config.upper_area,
            contact=config.contact,
        )
        self.ledger: Topic = upward_ledger(county.county.id)
        self.book = ObligationBook(policy)
        self.sent: dict[UUID, UUID] = {}
        """Original event id → thread, for everything reported up."""
        self.sent_threads: set[UUID] = set()
        self.came_down: set[UUID] = set()
        self.escalations: set[UUID] = set()
        self.ready = asyncio.Event()
        self._county_producer: AIOKafkaProducer | None = None
        self._upper_producer: AIOKafkaProducer | None = None

    # --- start: everything from topics ---------------------------------------------------------------------------

    async def _recover(self) -> None:
        await self._retrying("create_ledger", lambda: create_topics(self.upper, [self.ledger]))
        ledger = await self._retrying("read_ledger", lambda: read_to_end(self.upper, self.ledger))
        for _key, value in ledger:
            if value:
                self._note_sent(self.codec.decode(value))
        for _key, value in await read_to_end(self.settings, HQ_NOTICES):
            if value:
                notice = self.codec.decode(value)
                if isinstance(notice, AuditEvent) and notice.actor == STAGE:
                    self.escalations.add(notice.audit_id)
        for event_type in sorted(self.policy.downward.types):
            for _key, value in await read_to_end(self.settings, INTAKE[event_type]):
                self._note_came_down(value)
        log.info(
            "bridge_recovered",
            level=self.identity.level,
            reported_up=len(self.sent),
            came_down=len(self.came_down),
            escalations=len(self.escalations),
        )

    def _note_sent(self, upward: Any) -> None:
        if not isinstance(upward, Event) or upward.header.origin is None:
            return
        origin = upward.header.origin
        original = self.codec.decode(origin.event)
        assert isinstance(original, Event)  # noqa: S101  (the bridge wrote it from a verified event)
        thread = thread_of(original)
        self.sent[origin.event_id] = thread
        self.sent_threads.add(thread)
        self.book.met(thread, Obligation(origin.obligation), at=upward.header.published_at)

    def _note_came_down(self, value: bytes | None) -> None:
        if not value or self.config.upstream_unit is None:
            return
        try:
            event = self.codec.decode(value)
        except FirebusError:
            return  # not the bridge's: the gate dead-letters what does not decode
        if isinstance(event, Event) and event.header.publisher.unit == self.config.upstream_unit:
            self.came_down.add(event.header.event_id)

    # --- sending, patiently ----------------------------------------------------------------------------------------

    async def _retrying(self, what: str, attempt: Callable[[], Awaitable[T]]) -> T:
        """``attempt`` until it succeeds: a bus unreachable for minutes is caught up afterwards, nothing skipped."""
        failures = 0
        while True:
            try:
                return await asyncio.wait_for(attempt(), timeout=self.settings.request_timeout_ms / 1000 * 2)
            except (KafkaError, FirebusError, TimeoutError, OSError) as exc:
                failures += 1
                log.warning("bridge_retry", what=what, failures=failures, error=repr(exc))
                await asyncio.sleep(self.config.retry_s)

    async def _send(self, producer: AIOKafkaProducer, topic: Topic, key: bytes, value: bytes) -> None:
        await self._retrying(f"send:{topic.name}", lambda: producer.send_and_wait(topic.name, value, key=key))

    # --- upward ----------------------------------------------------------------------------------------------------

    async def _upward(self) -> None:
        assert self._upper_producer is not None  # noqa: S101
        async with TopicScan(self.settings, [REVIEW_ITEMS], purpose="bridge-upward", follow=True) as scan:
            async for step in scan:
                for record in step.records:
                    if record.value:
                        await self._on_item(record.value)

    async def _on_item(self, value: bytes) -> None:
        item = self.codec.decode(value)
        if not isinstance(item, ReviewItem) or not self.policy.goes_up(item.event_type):
            return
        event = self.codec.decode(item.event)
        assert isinstance(event, Event)  # noqa: S101
        if event.header.publisher.unit == self.config.upstream_unit:
            return  # it came from above; it does not go back up
        self.book.learn(event, received_at=item.received_at)
        if item.status is not ReviewStatus.RELEASED or item.decision is None or item.event_id in self.sent:
            return
        key = self.public_keys.get(event.header.publisher.unit)
        if key is None:
            log.error("bridge_no_public_key", event_id=str(item.event_id), unit=event.header.publisher.unit)
            return
        now = self.clock()
        thread = thread_of(event)
        body = event.body
        assert isinstance(body, FireReport)  # noqa: S101  (the policy lets fire reports only go up)
        obligation = obligation_of(body, first_sent=thread in self.sent_threads)
        released = Released(
            event=event,
            raw=item.event,
            public_key=key.public_bytes_raw(),
            reviewer=item.decision.reviewer,
            released_at=item.decision.decided_at,
        )
        report = upward_report(
            released, identity=self.identity, policy=self.policy, county=self.county, obligation=obligation, now=now
        )
        signed = self.codec.encode(sign_event(self.codec, report, self.signing_key))
        assert self._upper_producer is not None  # noqa: S101
        await self._send(self._upper_producer, INTAKE[EventType.FIRE_REPORT], report.partition_key().encode(), signed)
        # Only now the ledger: a crash before this line sends the report again, with the same event id.
        await self._send(self._upper_producer, self.ledger, str(item.event_id).encode(), signed)
        self.sent[item.event_id] = thread
        self.sent_threads.add(thread)
        self.book.met(thread, obligation, at=now)
        origin = report.header.origin
        assert origin is not None  # noqa: S101
        log.info(
            "bridge_reported_up",
            event_id=str(item.event_id),
            upward_id=str(report.header.event_id),
            obligation=obligation.value,
            immediate=origin.immediate,
            late_seconds=origin.late_seconds,
        )

    # --- deadlines -------------------------------------------------------------------------------------------------

    async def _deadlines(self) -> None:
        while True:
            await self.check_deadlines()
            await asyncio.sleep(self.config.tick_s)

    async def check_deadlines(self) -> None:
        for due in self.book.about_to_be_missed(self.clock()):
            notice_id = audit_id(escalation_key(due.thread, due.obligation))
            if notice_id not in self.escalations:
                await self._escalate(due, notice_id)
                self.escalations.add(notice_id)
            self.book.escalated(due.thread, due.obligation)

    async def _escalate(self, due: Due, notice_id: UUID) -> None:
        assert self._county_producer is not None  # noqa: S101
        local = due.due_at.astimezone(self.county.zone).strftime("%m月%d日%H:%M")
        name = _OBLIGATION_NAMES[due.obligation]
        fire = due.incident or str(due.thread)
        notice = AuditEvent(
            audit_id=notice_id,
            action=AuditAction.ESCALATED,
            event_id=due.thread,
            event_type=EventType.FIRE_REPORT,
            actor=STAGE,
            reason=f"火情 {fire} 的{name}须于 {local} 前报送上级，至今未报：请尽快审核放行或直接报送",
            details={
                "obligation": due.obligation.value,
                "due_at": due.due_at.isoformat(),
                "level": self.identity.level,
                "policy_version": self.policy.version,
            },
            at=self.clock(),
            trace_id=None,
        )
        value = self.codec.encode(notice)
        key = str(due.thread).encode()
        for topic in (HQ_NOTICES, AUDIT):
            await self._send(self._county_producer, topic, key, value)
        log.warning("bridge_escalated", thread=str(due.thread), obligation=due.obligation.value, due_at=due.due_at)

    # --- downward --------------------------------------------------------------------------------------------------

    async def _downward(self) -> None:
        if self.config.upstream_unit is None or not self.policy.downward.types:
            return
        while True:
            try:
                async with TopicScan(
                    self.upper, [TIERS[Audience.MEMBERS]], purpose="bridge-downward", follow=True
                ) as scan:
                    async for step in scan:
                        for record in step.records:
                            if record.value:
                                await self._on_release(record.value)
            except FirebusError as exc:
                log.warning("bridge_downward_retry", error=repr(exc))
                await asyncio.sleep(self.config.retry_s)

    async def _on_release(self, value: bytes) -> None:
        release = self.codec.decode(value)
        if (
            not isinstance(release, Release)
            or release.publisher_unit != self.config.upstream_unit
            or not self.policy.comes_down(release.event_type)
            or release.event_id in self.came_down
        ):
            return
        event = self.codec.decode(release.event)
        assert isinstance(event, Event)  # noqa: S101
        if event.header.audience_townships:
            return  # addressed to named areas of the upper level: not a release to every member
        if not event.header.signature:
            log.error("bridge_downward_unsigned", event_id=str(release.event_id), redacted=release.redacted_fields)
            return
        assert self._county_producer is not None  # noqa: S101
        await self._send(
            self._county_producer, INTAKE[release.event_type], event.partition_key().encode(), release.event
        )
        self.came_down.add(release.event_id)
        log.info("bridge_came_down", event_id=str(release.event_id), event_type=release.event_type.value)

    # --- run -------------------------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Recover from the topics, then report up, bring down and watch deadlines until cancelled."""
        self._county_producer = AIOKafkaProducer(**producer_options(self.settings, client_id=f"{STAGE}-county"))
        self._upper_producer = AIOKafkaProducer(**producer_options(self.upper, client_id=f"{STAGE}-upper"))
        await self._retrying("start_county_producer", self._county_producer.start)
        await self._retrying("start_upper_producer", self._upper_producer.start)
        try:
            await self._recover()
            self.ready.set()
            async with asyncio.TaskGroup() as group:
                group.create_task(self._upward())
                group.create_task(self._downward())
                group.create_task(self._deadlines())
        finally:
            await self._county_producer.stop()
            await self._upper_producer.stop()


def bridge_from_settings(settings: Settings) -> Bridge:
    """The bridge the config file's ``[bridge]`` table describes, with its county, keys and policy."""
    config = load_bridge_config(settings.config)
    if config is None:
        raise ConfigurationError(
            f"config file {settings.config} has no [bridge] table; set upper_bootstrap, upper_unit and upper_area"
        )
    county = load_county(settings.config)
    policy_path = config.policy or SAMPLE_REPORTING_POLICY
    if not policy_path.is_absolute():
        policy_path = settings.config.parent / policy_path
    if config.upstream_unit is not None:
        county.unit(config.upstream_unit)  # an unknown upstream unit is a configuration error, said at once
    return Bridge(
        settings=settings,
        config=config,
        codec=Codec(),
        county=county,
        public_keys=registered_public_keys(county, settings.key_directory),
        policy=load_reporting_policy(policy_path),
        signing_key=load_signing_key(settings.key_directory, config.upper_unit),
    )


async def run_bridge(settings: Settings) -> None:
    await bridge_from_settings(settings).run()
