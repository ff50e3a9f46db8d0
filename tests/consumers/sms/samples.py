"""Sample events and their releases for the SMS tests, built as the processors would release them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from firebus.codec import Codec
from firebus.events import (
    Audience,
    Classification,
    Deployment,
    Event,
    EventBody,
    FirePlace,
    FireReport,
    FireStatus,
    Header,
    MessageKind,
    Publisher,
    Severity,
    Urgency,
    WorkCategory,
    WorkUpdate,
)
from firebus.records import Release, ReviewDecision, ReviewerKind, Verdict

CODEC = Codec()
AT = datetime(2026, 3, 14, 10, 2, tzinfo=UTC)  # 18:02 in Yangcheng


def header(body: type[EventBody], **changes: Any) -> Header:
    fields: dict[str, Any] = {
        "event_id": uuid4(),
        "event_type": body.event_type,
        "schema_version": 1,
        "kind": MessageKind.ALERT,
        "incident_id": "YC-2026-0314-01",
        "publisher": Publisher(unit="forestry", person="李林", contact="0356-4221119"),
        "classification": Classification.INTERNAL,
        "audience": Audience.MEMBERS,
        "severity": Severity.SEVERE,
        "urgency": Urgency.IMMEDIATE,
        "occurred_at": AT,
        "published_at": AT,
        "townships": ["manghe"],
        "trace_id": uuid4().hex,
    }
    return Header(**{**fields, **changes})


def fire_report(**changes: Any) -> FireReport:
    fields: dict[str, Any] = {
        "place": FirePlace(township="manghe", village="桑林村", description="后山"),
        "discovered_at": AT,
        "status": FireStatus.SUPPRESSING,
        "burned_area_ha": 2.5,
        "forces": [Deployment(unit="forestry", personnel=35, vehicles=4)],
    }
    return FireReport(**{**fields, **changes})


def fire_event(body: FireReport | None = None, **header_changes: Any) -> Event[Any]:
    return Event[FireReport](header=header(FireReport, **header_changes), body=body or fire_report())


def work_event(**header_changes: Any) -> Event[Any]:
    body = WorkUpdate(
        category=WorkCategory.INSPECTION, title="蟒河镇开展林区隐患排查", text="排查坟头、地头用火隐患12处。"
    )
    changes = {"severity": Severity.MINOR, "urgency": Urgency.EXPECTED, "incident_id": None, **header_changes}
    return Event[WorkUpdate](header=header(WorkUpdate, **changes), body=body)


def release_of(event: Event[Any], tier: Audience = Audience.MEMBERS, release_id: UUID | None = None) -> Release:
    """The release the processors would make of ``event`` for ``tier`` (no redaction needed for these samples)."""
    decision = ReviewDecision(
        decision_id=uuid4(),
        event_id=event.header.event_id,
        event_type=event.event_type,
        verdict=Verdict.APPROVE,
        reviewer="hq_reviewer_wang",
        reviewer_kind=ReviewerKind.HUMAN,
        tiers=[Audience.MEMBERS, Audience.HQ],
        decided_at=AT,
        trace_id=event.header.trace_id,
    )
    return Release(
        release_id=release_id or uuid4(),
        tier=tier,
        event_id=event.header.event_id,
        event_type=event.event_type,
        kind=event.header.kind,
        thread_id=event.header.event_id,
        incident_id=event.header.incident_id,
        publisher_unit=event.header.publisher.unit,
        decision=decision,
        released_at=AT,
        event=CODEC.encode(event),
    )
