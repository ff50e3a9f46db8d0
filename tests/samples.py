"""Samples shared by the tests: the shipped drafts (examples/events) with the unit that publishes each, and a
review item."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

from firebus.events import Audience, EventType, MessageKind, Severity
from firebus.records import ReviewItem, ReviewStatus

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
