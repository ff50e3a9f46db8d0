"""Samples shared by the tests: the shipped drafts (examples/events) with the unit that publishes each, and a
review item."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

from firebus.codec import event_model
from firebus.contracts import default_contracts
from firebus.events import Audience, Event, EventType, Header, MessageKind, Publisher, Severity
from firebus.records import ReviewItem, ReviewStatus
from producers import load_draft

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "events"

SAMPLE_PUBLISHER: dict[EventType, str] = {
    EventType.FIRE_REPORT: "forestry",
    EventType.CASE_UPDATE: "forestry",
    EventType.RESOURCE: "forestry",
    EventType.TRAFFIC_CONTROL: "police",
    EventType.RISK_WARNING: "meteorology",
    EventType.DIRECTIVE: "hq_office",
    EventType.CONSULTATION: "emergency",
    EventType.WORK_UPDATE: "forestry",
}
"""A unit whose duties include each sample's type (forestry as well as police may publish case updates)."""


def sample_event(event_type: EventType, *, now: datetime = datetime(2026, 3, 12, 6, 0, tzinfo=UTC)) -> Event[Any]:
    """The example draft of ``event_type`` as an unsigned event of its usual publisher, stamped at ``now`` the way
    the client library stamps it (for tests that need no keys)."""
    draft = load_draft(EXAMPLES / f"{event_type.value}.json")
    header = Header(
        event_id=uuid4(),
        event_type=event_type,
        schema_version=default_contracts().for_event_type(event_type).version,
        kind=draft.kind,
        references=draft.references,
        incident_id=draft.incident_id,
        publisher=Publisher(unit=SAMPLE_PUBLISHER[event_type], person=draft.person or "值班员", contact=draft.contact),
        classification=draft.classification,
        audience=draft.audience,
        audience_townships=draft.audience_townships,
        severity=draft.severity,
        urgency=draft.urgency,
        occurred_at=draft.occurred_at or now,
        published_at=now,
        townships=draft.townships,
        trace_id=uuid4().hex,
    )
    return event_model(event_type)(header=header, body=draft.body)


def review_item(status: ReviewStatus = ReviewStatus.PENDING, **changes: Any) -> ReviewItem:
    """A forestry fire report's review item (a fresh event id unless given), with ``changes`` applied."""
    event_id = changes.pop("event_id", uuid4())
    received = datetime(2026, 3, 12, 6, 0, tzinfo=UTC)
    fields: dict[str, Any] = {
        "event_id": event_id,
        "event_type": EventType.FIRE_REPORT,
        "kind": MessageKind.ALERT,
        "thread_id": event_id,
        "partition_key": "YC-2026-0312-01",
        "status": status,
        "publisher_unit": "forestry",
        "publisher_person": "赵林",
        "audience": Audience.MEMBERS,
        "severity": Severity.SEVERE,
        "received_at": received,
        "deadline": received,
        "event": b"",
    }
    return ReviewItem(**{**fields, **changes})
