"""The shipped sample drafts (examples/events) and the unit that publishes each, shared by the tests."""

from __future__ import annotations

from pathlib import Path

from firebus.events import EventType

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
