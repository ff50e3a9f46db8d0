"""Upward reporting (归口报送): which released events go up, which are urgent, the deadlines, and the report itself.

The policy is versioned data (``firebus/data/reporting_policy.toml`` is the sample). A released fire report becomes
an upward report: the same body, published by the county HQ office as registered at the level above, with an
:class:`~firebus.events.Origin` naming the original unit, person, event id, signature and bytes. Obligations (first
report within 30 minutes of the fire being found, full account within 1 hour of extinction) are tracked in an
:class:`ObligationBook`; one about to be missed is escalated once.

Everything here is pure: no Kafka, no clock; callers pass ``now``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any
from uuid import UUID, uuid5

from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, PositiveInt, ValidationError, model_validator

from firebus.county import County
from firebus.errors import ConfigurationError
from firebus.events import (
    Event,
    EventType,
    FirePlace,
    FireReport,
    FireStatus,
    FireThreat,
    Origin,
    Publisher,
    Urgency,
)
from firebus.settings import read_config_file

DESCRIPTION_LIMIT = 500
"""``FirePlace.description``'s maximum length in the schema."""

INCIDENT_LIMIT = 64
FINAL_STATUSES = frozenset({FireStatus.EXTINGUISHED, FireStatus.FALSE_ALARM})


class Obligation(StrEnum):
    """What an upward report fulfils."""

    FIRST_REPORT = "first_report"
    """The first report of a fire to the level above."""
    FOLLOW_UP = "follow_up"
    """Any later report while the fire burns (续报)."""
    FINAL_ACCOUNT = "final_account"
    """The full account once the open flame is out or the fire proved a false alarm (终报)."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SensitivePeriod(_Frozen):
    name: str = Field(min_length=1)
    from_: date = Field(alias="from")
    to: date

    @model_validator(mode="after")
    def _ordered(self) -> SensitivePeriod:
        if self.to < self.from_:
            raise ValueError(f"sensitive period {self.name!r} ends ({self.to}) before it starts ({self.from_})")
        return self


class Immediate(_Frozen):
    """Conditions that make a report urgent (速报); an absent key switches its condition off."""

    burned_area_ha: NonNegativeFloat | None = None
    deaths: PositiveInt | None = None
    serious_injuries: PositiveInt | None = None
    threatens: frozenset[FireThreat] = frozenset()
    open_flame_hours: PositiveInt | None = None
    satellite_pixels: PositiveInt | None = None
    needs_support: bool = False
    in_news: bool = False
    sensitive_periods: tuple[SensitivePeriod, ...] = ()


class Deadlines(_Frozen):
    first_report_minutes: PositiveInt
    final_account_minutes: PositiveInt
    warn_minutes: PositiveInt


class Upward(_Frozen):
    types: frozenset[EventType] = Field(min_length=1)

    @model_validator(mode="after")
    def _fire_reports_only(self) -> Upward:
        others = sorted(t.value for t in self.types if t is not EventType.FIRE_REPORT)
        if others:
            raise ValueError(f"only fire_report goes up in this version, not {', '.join(others)}")
        return self


class Downward(_Frozen):
    types: frozenset[EventType] = frozenset()


class ReportingPolicy(_Frozen):
    """One version of the office's upward-reporting policy."""

    version: str = Field(min_length=1)
    upward: Upward
    deadlines: Deadlines
    immediate: Immediate = Immediate()
    downward: Downward = Downward()

    def goes_up(self, event_type: EventType) -> bool:
        return event_type in self.upward.types

    def comes_down(self, event_type: EventType) -> bool:
        return event_type in self.downward.types

    def immediate_reasons(self, report: FireReport, *, now: datetime, county: County) -> list[str]:
        """The ids of the immediate-report conditions ``report`` meets, in policy order (empty: routine)."""
        rules = self.immediate
        reasons = []
        if rules.burned_area_ha is not None and (report.burned_area_ha or 0) >= rules.burned_area_ha:
            reasons.append("burned_area_ha")
        if rules.deaths is not None and report.deaths >= rules.deaths:
            reasons.append("deaths")
        if rules.serious_injuries is not None and report.serious_injuries >= rules.serious_injuries:
            reasons.append("serious_injuries")
        reasons += [f"threatens:{threat.value}" for threat in report.threatens if threat in rules.threatens]
        if (
            rules.open_flame_hours is not None
            and report.status not in FINAL_STATUSES
            and report.status is not FireStatus.CONTAINED
            and now - report.discovered_at >= timedelta(hours=rules.open_flame_hours)
        ):
            reasons.append("open_flame_hours")
        if rules.satellite_pixels is not None and (report.satellite_pixels or 0) >= rules.satellite_pixels:
            reasons.append("satellite_pixels")
        if rules.needs_support and report.needs_support:
            reasons.append("needs_support")
        if rules.in_news and report.in_news:
            reasons.append("in_news")
        found_on = report.discovered_at.astimezone(county.zone).date()
        reasons += [
            f"sensitive_period:{period.name}"
            for period in rules.sensitive_periods
            if period.from_ <= found_on <= period.to
        ]
        return reasons

    def due_at(self, obligation: Obligation, report: FireReport, *, at: datetime) -> datetime | None:
        """When ``obligation`` falls due for ``report`` (``at``: when the report became known, the fallback for an
        extinction time the reporter left out). A follow-up has no deadline of its own."""
        if obligation is Obligation.FIRST_REPORT:
            return report.discovered_at + timedelta(minutes=self.deadlines.first_report_minutes)
        if obligation is Obligation.FINAL_ACCOUNT:
            out = report.extinguished_at or at
            return out + timedelta(minutes=self.deadlines.final_account_minutes)
        return None


def load_reporting_policy(path: Path) -> ReportingPolicy:
    """Read and check an upward-reporting policy file; errors are one line naming the file and the entry."""
    raw: dict[str, Any] = read_config_file(path)
    try:
        return ReportingPolicy.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ConfigurationError(f"reporting policy {path}: {f'{where}: ' if where else ''}{first['msg']}") from exc


# --- the upward report -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UpwardIdentity:
    """Who reports up for this county, as the level above knows it."""

    level: str
    """This installation's id (the county id): the origin's level."""
    unit: str
    """The county HQ office's unit id in the upper registry; the bridge signs with its key."""
    person: str
    """Person responsible for upward reports (the office on duty)."""
    area: str
    """This county's area (township) id in the upper registry."""
    contact: str | None = None


def upward_event_id(original: UUID, level: str) -> UUID:
    """Deterministic per original and level: a report sent again after a crash has the id it had, so the upper
    level's review (one item per event id) keeps exactly one."""
    return uuid5(original, f"firebus.upward:{level}")


def thread_of(event: Event[Any]) -> UUID:
    """The original alert's id: what an update or cancel belongs to."""
    header = event.header
    return header.references[0] if header.references else header.event_id


def obligation_of(report: FireReport, *, first_sent: bool) -> Obligation:
    """What an upward report of ``report`` fulfils, given whether its fire was reported up already."""
    if report.status in FINAL_STATUSES:
        return Obligation.FINAL_ACCOUNT
    return Obligation.FOLLOW_UP if first_sent else Obligation.FIRST_REPORT


@dataclass(frozen=True)
class Released:
    """An event released at this level, as the bridge finds it: the original bytes and who released it."""

    event: Event[Any]
    raw: bytes
    public_key: bytes
    reviewer: str
    released_at: datetime


def upward_report(
    released: Released,
    *,
    identity: UpwardIdentity,
    policy: ReportingPolicy,
    county: County,
    obligation: Obligation,
    now: datetime,
) -> Event[FireReport]:
    """The unsigned upward report of a released fire report (the caller signs it as ``identity.unit``)."""
    event = released.event
    body = event.body
    assert isinstance(body, FireReport)  # noqa: S101  (only fire reports go up in this version)
    header = event.header
    reasons = policy.immediate_reasons(body, now=now, county=county)
    due = policy.due_at(obligation, body, at=released.released_at)
    late = max(0, int((now - due).total_seconds())) if due is not None else 0
    township = next((t.name for t in county.townships if t.id == body.place.township), body.place.township)
    where = "".join(
        part
        for part in (township, body.place.village, body.place.description and f"：{body.place.description}")
        if part
    )
    origin = Origin(
        level=identity.level,
        event_id=header.event_id,
        unit=header.publisher.unit,
        person=header.publisher.person,
        public_key=released.public_key,
        signature=header.signature,
        event=released.raw,
        reviewer=released.reviewer,
        released_at=released.released_at,
        policy_version=policy.version,
        immediate=reasons,
        obligation=obligation.value,
        due_at=due,
        late_seconds=late,
    )
    incident = f"{identity.level}/{header.incident_id or thread_of(event)}"[:INCIDENT_LIMIT]
    upward_header = header.model_copy(
        update={
            "event_id": upward_event_id(header.event_id, identity.level),
            "references": [upward_event_id(ref, identity.level) for ref in header.references],
            "incident_id": incident,
            "publisher": Publisher(unit=identity.unit, person=identity.person, contact=identity.contact),
            "audience_townships": [],
            "townships": [identity.area],
            "urgency": Urgency.IMMEDIATE if reasons else header.urgency,
            "published_at": now,
            "signature": b"",
            "origin": origin,
        }
    )
    place = FirePlace(
        township=identity.area, description=where[:DESCRIPTION_LIMIT] or None, lat=body.place.lat, lon=body.place.lon
    )
    return event.model_copy(update={"header": upward_header, "body": body.model_copy(update={"place": place})})


# --- deadlines ---------------------------------------------------------------------------------------------------


@dataclass
class Due:
    """One obligation of one fire: when it falls due, when it was met, whether the office was warned."""

    thread: UUID
    obligation: Obligation
    due_at: datetime
    incident: str | None
    township: str
    met_at: datetime | None = None
    escalated: bool = False


@dataclass
class ObligationBook:
    """Every upward obligation of the county's fires, from the moment the HQ office learns of a fire.

    Fed with what the county holds (every fire report it validated, reviewed or not) and what went up; asked
    which obligations are about to be missed. Idempotent: the same input twice changes nothing.
    """

    policy: ReportingPolicy
    dues: dict[tuple[UUID, Obligation], Due] = field(default_factory=dict)

    def learn(self, event: Event[Any], *, received_at: datetime) -> None:
        """A fire report the county holds: opens its first-report obligation, and its final account once out."""
        body = event.body
        if not isinstance(body, FireReport) or not self.policy.goes_up(event.header.event_type):
            return
        thread = thread_of(event)
        self._open(thread, Obligation.FIRST_REPORT, body, event, received_at)
        if body.status in FINAL_STATUSES:
            self._open(thread, Obligation.FINAL_ACCOUNT, body, event, received_at)

    def _open(self, thread: UUID, obligation: Obligation, body: FireReport, event: Event[Any], at: datetime) -> None:
        due = self.policy.due_at(obligation, body, at=at)
        assert due is not None  # noqa: S101  (first report and final account always have one)
        found = self.dues.get((thread, obligation))
        if found is None:
            self.dues[(thread, obligation)] = Due(
                thread, obligation, due, event.header.incident_id, body.place.township
            )
        elif due < found.due_at:
            found.due_at = due

    def met(self, thread: UUID, obligation: Obligation, *, at: datetime) -> None:
        """An upward report went: a first report or a follow-up meets the first report, a final account both."""
        met = {Obligation.FIRST_REPORT} | (
            {Obligation.FINAL_ACCOUNT} if obligation is Obligation.FINAL_ACCOUNT else set()
        )
        for kind in met:
            due = self.dues.setdefault((thread, kind), Due(thread, kind, at, None, "", met_at=at))
            if due.met_at is None or at < due.met_at:
                due.met_at = at

    def escalated(self, thread: UUID, obligation: Obligation) -> None:
        due = self.dues.get((thread, obligation))
        if due is not None:
            due.escalated = True

    def about_to_be_missed(self, now: datetime) -> list[Due]:
        """Unmet obligations within the warning time of their deadline (or past it), not yet escalated."""
        warn = timedelta(minutes=self.policy.deadlines.warn_minutes)
        return sorted(
            (
                due
                for due in self.dues.values()
                if due.met_at is None and not due.escalated and now >= due.due_at - warn
            ),
            key=lambda due: due.due_at,
        )


def escalation_key(thread: UUID, obligation: Obligation) -> str:
    """What makes an escalation's audit id: one per fire and obligation, whatever restarts happen."""
    return f"upward-overdue:{obligation.value}:{thread}"
