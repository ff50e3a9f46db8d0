"""The normalised facts every statistic is computed from, and how each source's records become them.

Every source — the topics, the PostgreSQL archive, the Avro files — yields the same two kinds of fact: one
:class:`ReleaseFact` per cleared release (an event released to one tier) and one :class:`AuditFact` per audit
record, held as columns (:class:`Facts`: two polars data frames of :data:`RELEASE_SCHEMA` and :data:`AUDIT_SCHEMA`),
so a season's replay is a few Arrow buffers rather than millions of Python objects. The row builders
(:func:`release_fact`, :func:`audit_fact`) serve the row-wise sources (the archive's tables) and tests.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import polars as pl

from firebus.errors import ConfigurationError

TIME: pl.DataType = pl.Datetime("us", "UTC")
"""Every fact's instants: UTC, microseconds (Avro's timestamp-millis and PostgreSQL's timestamptz both fit)."""


class ReleaseFact(NamedTuple):
    """One release: the event (its header times and fire status) as released to one tier."""

    event_id: str
    tier: str
    event_type: str
    incident_id: str | None
    townships: tuple[str, ...]
    occurred_at: datetime
    published_at: datetime
    decided_at: datetime
    reviewer: str
    reviewer_kind: str
    released_at: datetime
    fire_status: str | None
    discovered_at: datetime | None = None
    burned_area_ha: float | None = None
    suspected_cause: str | None = None
    personnel: int | None = None
    vehicles: int | None = None


FIRE_COLUMNS = ("discovered_at", "burned_area_ha", "suspected_cause", "personnel", "vehicles")
"""A fire report's body as the monthly report reads it (null for other event types): ``personnel`` and ``vehicles``
are the sums over the report's ``forces``."""


class AuditFact(NamedTuple):
    """One audit record, with the details the statistics use pulled out."""

    audit_id: str
    action: str
    event_id: str | None
    event_type: str | None
    tier: str | None
    reason: str | None
    sink: str | None
    verdict: str | None
    at: datetime


_RELEASE_COLUMNS: dict[str, pl.DataType] = {
    "event_id": pl.String(),
    "tier": pl.String(),
    "event_type": pl.String(),
    "incident_id": pl.String(),
    "townships": pl.List(pl.String),
    "occurred_at": TIME,
    "published_at": TIME,
    "decided_at": TIME,
    "reviewer": pl.String(),
    "reviewer_kind": pl.String(),
    "released_at": TIME,
    "fire_status": pl.String(),
    "discovered_at": TIME,
    "burned_area_ha": pl.Float64(),
    "suspected_cause": pl.String(),
    "personnel": pl.Int64(),
    "vehicles": pl.Int64(),
}
RELEASE_SCHEMA = pl.Schema(_RELEASE_COLUMNS)
"""The columns of :attr:`Facts.releases`: the fields of :class:`ReleaseFact`."""

_AUDIT_COLUMNS: dict[str, pl.DataType] = {
    "audit_id": pl.String(),
    "action": pl.String(),
    "event_id": pl.String(),
    "event_type": pl.String(),
    "tier": pl.String(),
    "reason": pl.String(),
    "sink": pl.String(),
    "verdict": pl.String(),
    "at": TIME,
}
AUDIT_SCHEMA = pl.Schema(_AUDIT_COLUMNS)
"""The columns of :attr:`Facts.audits`: the fields of :class:`AuditFact`."""


def _no_releases() -> pl.DataFrame:
    return RELEASE_SCHEMA.to_frame()


def _no_audits() -> pl.DataFrame:
    return AUDIT_SCHEMA.to_frame()


@dataclass
class Facts:
    """What a source read, as columns: releases and audit records, possibly with duplicates (the statistics count
    a release once per ``(event_id, tier)`` and an audit record once per ``audit_id``)."""

    releases: pl.DataFrame = field(default_factory=_no_releases)
    audits: pl.DataFrame = field(default_factory=_no_audits)

    @classmethod
    def of(cls, releases: Sequence[ReleaseFact] = (), audits: Sequence[AuditFact] = ()) -> Facts:
        """The facts of rows (the archive's tables, tests)."""
        return cls(
            releases=pl.DataFrame(list(releases), schema=RELEASE_SCHEMA, orient="row"),
            audits=pl.DataFrame(list(audits), schema=AUDIT_SCHEMA, orient="row"),
        )

    def release_facts(self) -> list[ReleaseFact]:
        """The releases as rows (small sets: tests, notebooks)."""
        return [ReleaseFact._make((*row[:4], tuple(row[4]), *row[5:])) for row in self.releases.iter_rows()]

    def audit_facts(self) -> list[AuditFact]:
        """The audit records as rows (small sets: tests, notebooks)."""
        return [AuditFact(*row) for row in self.audits.iter_rows()]


def release_fact(release: Mapping[str, Any], event: Mapping[str, Any]) -> ReleaseFact:
    """The fact of one release, from its Avro record and the Avro record of the event it carries."""
    header = event["header"]
    body = event.get("body") or {}
    decision = release["decision"]
    fire = release["event_type"] == "fire_report"
    status = body.get("status") if fire else None
    forces = (body.get("forces") or []) if fire else []
    return ReleaseFact(
        event_id=str(release["event_id"]),
        tier=str(release["tier"]),
        event_type=str(release["event_type"]),
        incident_id=release.get("incident_id"),
        townships=tuple(header.get("townships") or ()),
        occurred_at=header["occurred_at"],
        published_at=header["published_at"],
        decided_at=decision["decided_at"],
        reviewer=str(decision["reviewer"]),
        reviewer_kind=str(decision["reviewer_kind"]),
        released_at=release["released_at"],
        fire_status=str(status) if status is not None else None,
        discovered_at=body.get("discovered_at") if fire else None,
        burned_area_ha=body.get("burned_area_ha") if fire else None,
        suspected_cause=body.get("suspected_cause") if fire else None,
        personnel=sum(int(force["personnel"]) for force in forces) if fire else None,
        vehicles=sum(int(force.get("vehicles") or 0) for force in forces) if fire else None,
    )


def audit_fact(audit: Mapping[str, Any]) -> AuditFact:
    """The fact of one audit record, from its Avro record (or an archive row shaped like one)."""
    details: Mapping[str, str] = audit.get("details") or {}
    event_id = audit.get("event_id")
    return AuditFact(
        audit_id=str(audit["audit_id"]),
        action=str(audit["action"]),
        event_id=str(event_id) if event_id is not None else None,
        event_type=audit.get("event_type"),
        tier=audit.get("tier"),
        reason=audit.get("reason"),
        sink=details.get("sink"),
        verdict=details.get("verdict"),
        at=audit["at"],
    )


def within(facts: Facts, start: datetime | None = None, end: datetime | None = None) -> Facts:
    """The facts of an event-time window ``[start, end)``.

    A release is in when its event's ``occurred_at`` is; an audit record is in when it is about an event released
    in the window, or — for events never released (rejections, quarantines) — when its own ``at`` is.
    """
    if start is None and end is None:
        return facts

    def inside(column: str) -> pl.Expr:
        condition = pl.lit(value=True)
        if start is not None:  # polars compares instants of one zone only
            condition &= pl.col(column) >= start.astimezone(UTC)
        if end is not None:
            condition &= pl.col(column) < end.astimezone(UTC)
        return condition

    releases = facts.releases.filter(inside("occurred_at"))
    released = releases["event_id"].unique()
    everything = facts.releases["event_id"].unique()
    event_id = pl.col("event_id")
    audits = facts.audits.filter(
        event_id.is_in(released.implode()).fill_null(value=False)
        | (~event_id.is_in(everything.implode()).fill_null(value=False) & inside("at"))
    )
    return Facts(releases=releases, audits=audits)


def merged(parts: Iterable[Facts]) -> Facts:
    """One :class:`Facts` of several."""
    parts = list(parts)
    return Facts(
        releases=pl.concat([_no_releases(), *(part.releases for part in parts)]),
        audits=pl.concat([_no_audits(), *(part.audits for part in parts)]),
    )


def event_time(text: str | None, zone: ZoneInfo) -> datetime | None:
    """A window bound from an ISO date or date-time; one without a zone is in ``zone`` (the county's)."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigurationError(
            f"{text!r} is not an ISO date or date-time (2026-03-01, 2026-03-01T08:00+08:00)"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)
