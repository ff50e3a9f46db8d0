"""A realistic fire season for the sample county, for demos, tests and benchmarks (``firebus simulate``).

Deterministic for a seed: the same seed gives the same drafts in the same order. Everything goes through the client
library, so every simulated event is validated and signed like a real one. Fires have a lifecycle (reported →
verified → suppressing → contained → extinguished, or a false alarm), published as updates by the unit that
reported them; police close roads and open cases on some incidents; forecasters issue warnings; units report
their work; forestry and emergency keep the resource inventory current.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from firebus.codec import Codec
from firebus.county import County, UnitKind
from firebus.events import (
    Audience,
    CaseKind,
    CaseStatus,
    CaseUpdate,
    Classification,
    Consultation,
    ConsultationPeriod,
    Deployment,
    Event,
    FirePlace,
    FireReport,
    FireStatus,
    MessageKind,
    Resource,
    ResourceKind,
    ResourceStatus,
    RiskWarning,
    Severity,
    SignalColour,
    TrafficControl,
    TrafficMeasure,
    Urgency,
    WorkCategory,
    WorkUpdate,
)
from firebus.settings import Settings
from producers._client import FirebusClient
from producers._drafts import Draft

# Rough centre of each sample township (WGS-84), so coordinates and distances look like the county's.
_CENTRE = (35.49, 112.41)
_LIFECYCLE = (FireStatus.VERIFIED, FireStatus.SUPPRESSING, FireStatus.CONTAINED, FireStatus.EXTINGUISHED)
_SIGNAL_FOR_LEVEL = {3: SignalColour.BLUE, 4: SignalColour.ORANGE, 5: SignalColour.RED}
_CAUSES = ("上坟烧纸", "农事用火", "雷击", "吸烟", "不明")


@dataclass(frozen=True)
class Planned:
    """One draft to publish as ``unit``; ``follows`` names an earlier planned alert it updates or cancels."""

    unit: str
    draft: Draft
    key: str
    follows: str | None = None


@dataclass
class _Fire:
    key: str
    unit: str
    township: str
    lat: float
    lon: float
    started: datetime
    steps: list[FireStatus] = field(default_factory=list)


class SeasonSimulator:
    """Plans ``count`` events over the ``days`` before ``end``; call :meth:`plan` and publish in order."""

    def __init__(self, county: County, *, seed: int, end: datetime, days: int = 60) -> None:
        self.county = county
        self.random = random.Random(seed)  # noqa: S311  (a reproducible simulation, not a secret)
        self.end = end
        self.start = end - timedelta(days=days)
        self.townships = [t.id for t in county.townships]
        self.township_names = {t.id: t.name for t in county.townships}
        self.township_units = {t: u.id for u in county.units if u.kind is UnitKind.TOWNSHIP for t in u.townships}
        self.members = [u.id for u in county.units if u.kind is UnitKind.MEMBER]

    def plan(self, count: int) -> Iterator[Planned]:
        """The drafts, in event-time order within each incident; ``follows`` is resolved by the publisher."""
        moments = sorted(self.start + (self.end - self.start) * self.random.random() for _ in range(count))
        fires: list[_Fire] = []
        for number, moment in enumerate(moments):
            yield self._next(number, moment, fires)

    def _next(self, number: int, moment: datetime, fires: list[_Fire]) -> Planned:
        roll = self.random.random()
        burning = [fire for fire in fires if fire.steps]
        if burning and roll < 0.25:
            return self._fire_update(self.random.choice(burning), moment, number)
        if roll < 0.40:
            return self._new_fire(number, moment, fires)
        if burning and roll < 0.47:
            return self._traffic(self.random.choice(burning), moment, number)
        if burning and roll < 0.52:
            return self._case(self.random.choice(burning), moment, number)
        if roll < 0.62:
            return self._warning(moment, number)
        if roll < 0.72:
            return self._resource(moment, number)
        if roll < 0.76:
            return self._consultation(moment, number)
        return self._work(moment, number)

    # --- fires -------------------------------------------------------------------------------------------------------

    def _new_fire(self, number: int, moment: datetime, fires: list[_Fire]) -> Planned:
        township = self.random.choice(self.townships)
        unit = self.township_units.get(township) if self.random.random() < 0.4 else None
        unit = unit or "forestry"
        false_alarm = self.random.random() < 0.15
        steps = [FireStatus.FALSE_ALARM] if false_alarm else list(_LIFECYCLE)
        fire = _Fire(
            key=f"YC-{moment:%Y%m%d}-{number:05d}",
            unit=unit,
            township=township,
            lat=_CENTRE[0] + self.random.uniform(-0.2, 0.2),
            lon=_CENTRE[1] + self.random.uniform(-0.25, 0.25),
            started=moment,
            steps=steps,
        )
        fires.append(fire)
        body = self._fire_body(fire, FireStatus.REPORTED, moment)
        draft = self._draft(body, moment, fire.township, Severity.SEVERE, Urgency.IMMEDIATE, incident=fire.key)
        return Planned(unit, draft, key=fire.key)

    def _fire_update(self, fire: _Fire, moment: datetime, number: int) -> Planned:
        status = fire.steps.pop(0)
        body = self._fire_body(fire, status, moment)
        severity = Severity.MODERATE if status in (FireStatus.CONTAINED, FireStatus.EXTINGUISHED) else Severity.SEVERE
        kind = MessageKind.CANCEL if status is FireStatus.FALSE_ALARM else MessageKind.UPDATE
        draft = self._draft(body, moment, fire.township, severity, Urgency.IMMEDIATE, incident=fire.key, kind=kind)
        return Planned(fire.unit, draft, key=f"{fire.key}/{number}", follows=fire.key)

    def _fire_body(self, fire: _Fire, status: FireStatus, moment: datetime) -> FireReport:
        size = self.random.uniform(0.1, 8.0) * (_LIFECYCLE.index(status) + 1 if status in _LIFECYCLE else 1)
        return FireReport(
            place=FirePlace(township=fire.township, lat=round(fire.lat, 5), lon=round(fire.lon, 5)),
            discovered_at=fire.started,
            status=status,
            burned_area_ha=round(size, 2),
            forces=[Deployment(unit="县森林消防专业队", personnel=self.random.randint(10, 60), vehicles=2)],
            suspected_cause=self.random.choice(_CAUSES),
            reporter_phone=f"139{self.random.randint(0, 99_999_999):08d}",
        )

    def _traffic(self, fire: _Fire, moment: datetime, number: int) -> Planned:
        body = TrafficControl(
            road=self.random.choice(("S331 省道", "S222 省道", "X603 县道")),
            section=f"{fire.township} 林区路段",
            measure=self.random.choice(list(TrafficMeasure)),
            starts_at=moment,
            ends_at=moment + timedelta(hours=self.random.randint(2, 24)),
            reason="森林火灾扑救，保障扑火车辆通行",
        )
        draft = self._draft(body, moment, fire.township, Severity.MODERATE, Urgency.IMMEDIATE, incident=fire.key)
        draft = draft.model_copy(update={"classification": Classification.PUBLIC, "audience": Audience.PUBLIC})
        return Planned("police", draft, key=f"{fire.key}/traffic/{number}")

    def _case(self, fire: _Fire, moment: datetime, number: int) -> Planned:
        body = CaseUpdate(
            case_number=f"阳公(森)立字〔{moment:%Y}〕{number:03d}号",
            case_kind=self.random.choice(list(CaseKind)),
            status=self.random.choice((CaseStatus.OPENED, CaseStatus.INVESTIGATING, CaseStatus.PENALIZED)),
            summary="火情相关违法用火行为查处",
        )
        draft = self._draft(body, moment, fire.township, Severity.MINOR, Urgency.EXPECTED, incident=fire.key)
        return Planned("police", draft, key=f"{fire.key}/case/{number}")

    # --- the rest ----------------------------------------------------------------------------------------------------

    def _warning(self, moment: datetime, number: int) -> Planned:
        level = self.random.choice((3, 3, 4, 4, 5))
        areas = self.random.sample(self.townships, k=3)
        body = RiskWarning(
            danger_level=level,
            signal=_SIGNAL_FOR_LEVEL[level],
            area="、".join(self.township_names[township] for township in areas),
            valid_from=moment,
            valid_to=moment + timedelta(days=1),
            measures=["严禁野外用火", "加强巡山护林"],
        )
        severity = {3: Severity.MODERATE, 4: Severity.SEVERE, 5: Severity.EXTREME}[level]
        draft = self._draft(body, moment, areas[0], severity, Urgency.EXPECTED, townships=areas)
        draft = draft.model_copy(update={"classification": Classification.PUBLIC, "audience": Audience.PUBLIC})
        return Planned(self.random.choice(("meteorology", "emergency")), draft, key=f"warning/{number}")

    def _resource(self, moment: datetime, number: int) -> Planned:
        kind = self.random.choice(
            (ResourceKind.WATER_POINT, ResourceKind.WATCHTOWER, ResourceKind.CHECKPOINT, ResourceKind.PROFESSIONAL_TEAM)
        )
        township = self.random.choice(self.townships)
        body = Resource(
            resource_id=f"{kind.value}-{township}-{self.random.randint(1, 9)}",
            resource_kind=kind,
            name=f"{township} {kind.value}",
            township=township,
            lat=round(_CENTRE[0] + self.random.uniform(-0.2, 0.2), 5),
            lon=round(_CENTRE[1] + self.random.uniform(-0.25, 0.25), 5),
            status=self.random.choice((ResourceStatus.AVAILABLE, ResourceStatus.AVAILABLE, ResourceStatus.IN_USE)),
        )
        draft = self._draft(body, moment, township, Severity.UNKNOWN, Urgency.UNKNOWN)
        return Planned("forestry", draft, key=f"resource/{number}")

    def _consultation(self, moment: datetime, number: int) -> Planned:
        body = Consultation(
            period=self.random.choice(list(ConsultationPeriod)), judgement="近期气温偏高、降水偏少，火险等级较高。"
        )
        draft = self._draft(body, moment, None, Severity.MODERATE, Urgency.EXPECTED)
        return Planned(self.random.choice(("emergency", "hq_office")), draft, key=f"consultation/{number}")

    def _work(self, moment: datetime, number: int) -> Planned:
        body = WorkUpdate(
            category=self.random.choice(list(WorkCategory)), title="防火工作动态", text="开展防火宣传与隐患排查。"
        )
        draft = self._draft(body, moment, None, Severity.MINOR, Urgency.PAST)
        draft = draft.model_copy(update={"classification": Classification.PUBLIC, "audience": Audience.PUBLIC})
        return Planned(self.random.choice(self.members), draft, key=f"work/{number}")

    @staticmethod
    def _draft(
        body: FireReport | TrafficControl | CaseUpdate | RiskWarning | Resource | Consultation | WorkUpdate,
        moment: datetime,
        township: str | None,
        severity: Severity,
        urgency: Urgency,
        *,
        incident: str | None = None,
        kind: MessageKind = MessageKind.ALERT,
        townships: list[str] | None = None,
    ) -> Draft:
        restricted = isinstance(body, CaseUpdate)
        return Draft(
            body=body,
            kind=kind,
            incident_id=incident,
            classification=Classification.RESTRICTED if restricted else Classification.INTERNAL,
            audience=Audience.HQ if restricted else Audience.MEMBERS,
            severity=severity,
            urgency=urgency,
            occurred_at=moment,
            townships=townships or ([township] if township else []),
        )


def resolve(planned: Planned, published: dict[str, UUID]) -> Draft | None:
    """The draft with its reference filled in from what was published; None when the original never was."""
    if planned.follows is None:
        return planned.draft
    original = published.get(planned.follows)
    if original is None:
        return None
    return planned.draft.model_copy(update={"references": [original]})


def simulated_events(county: County, count: int, *, seed: int, days: int = 60) -> list[Event[Any]]:
    """``count`` unsigned events of a simulated season, each published two minutes after it occurred: load for
    benchmarks whose readers never check signatures (no unit needs a key)."""
    codec = Codec()
    now = datetime.now(UTC)
    return [
        planned.draft.to_event(
            codec=codec,
            unit=planned.unit,
            person="simulated",
            published_at=(planned.draft.occurred_at or now) + timedelta(minutes=2),
        )
        for planned in SeasonSimulator(county, seed=seed, end=now, days=days).plan(count)
    ]


@dataclass
class SimulationReport:
    published: int = 0
    skipped: int = 0
    by_type: dict[str, int] = field(default_factory=dict)


async def publish_season(
    settings: Settings,
    county: County,
    *,
    count: int,
    seed: int,
    rate: float | None = None,
    days: int = 60,
    progress: Callable[[int], None] | None = None,
) -> SimulationReport:
    """Publish a simulated season through the client library, one client per unit, at ``rate`` events/s or flat out."""
    simulator = SeasonSimulator(county, seed=seed, end=datetime.now(UTC), days=days)
    clients: dict[str, FirebusClient] = {}
    published: dict[str, UUID] = {}
    report = SimulationReport()
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        for index, planned in enumerate(simulator.plan(count)):
            draft = resolve(planned, published)
            if draft is None:
                report.skipped += 1
                continue
            client = clients.get(planned.unit)
            if client is None:
                client = clients[planned.unit] = FirebusClient(settings=settings, unit=planned.unit, county=county)
                await client.start()
            published[planned.key] = (await client.publish(draft)).event_id
            report.published += 1
            report.by_type[draft.event_type.value] = report.by_type.get(draft.event_type.value, 0) + 1
            if progress is not None:
                progress(index + 1)
            if rate:
                await asyncio.sleep(max(0.0, started + (index + 1) / rate - loop.time()))
    finally:
        for client in clients.values():
            await client.stop()
    return report
