"""The normalised facts every statistic is computed from, and how each source's records become them.

Every source — the topics, the PostgreSQL archive, the Avro files — yields the same two kinds of fact: one
:class:`ReleaseFact` per cleared release (an event released to one tier) and one :class:`AuditFact` per audit
record. The raw-dict builders read fastavro's output directly (no pydantic), so a long replay stays fast.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from firebus.errors import ConfigurationError


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


@dataclass
class Facts:
    """What a source read: releases and audit records, possibly with duplicates (see :func:`deduplicated`)."""

    releases: list[ReleaseFact] = field(default_factory=list)
    audits: list[AuditFact] = field(default_factory=list)


def release_fact(release: Mapping[str, Any], event: Mapping[str, Any]) -> ReleaseFact:
    """The fact of one release, from its Avro record and the Avro record of the event it carries."""
    header = event["header"]
    body = event.get("body") or {}
    decision = release["decision"]
    status = body.get("status") if release["event_type"] == "fire_report" else None
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

    def inside(moment: datetime) -> bool:
        return (start is None or moment >= start) and (end is None or moment < end)

    releases = [fact for fact in facts.releases if inside(fact.occurred_at)]
    released = {fact.event_id for fact in releases}
    everything = {fact.event_id for fact in facts.releases}
    audits = [
        fact
        for fact in facts.audits
        if fact.event_id in released or (fact.event_id not in everything and inside(fact.at))
    ]
    return Facts(releases=releases, audits=audits)


def merged(parts: Iterable[Facts]) -> Facts:
    """One :class:`Facts` of several."""
    total = Facts()
    for part in parts:
        total.releases += part.releases
        total.audits += part.audits
    return total


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
