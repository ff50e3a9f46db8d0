"""The topic registry: the one place that names, sizes and configures every firebus topic.

Nothing else spells a topic name: code refers to the constants here (``INTAKE[EventType.FIRE_REPORT]``,
``HQ_LIVE`` …). ``firebus topics create|list|check`` applies and verifies this registry on any Kafka.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from firebus.events import Audience, EventType

DAY_MS = 24 * 60 * 60 * 1000
FOREVER = -1


class CleanupPolicy(StrEnum):
    DELETE = "delete"
    COMPACT = "compact"


@dataclass(frozen=True)
class Topic:
    """One topic: its name, size, retention and what its keys and values are."""

    name: str
    partitions: int
    retention_ms: int
    cleanup_policy: CleanupPolicy
    key: str
    value: str

    def configs(self) -> dict[str, str]:
        """Topic-level configuration, as Kafka spells it."""
        return {"retention.ms": str(self.retention_ms), "cleanup.policy": self.cleanup_policy.value}


REVIEW_PARTITIONS = 3
"""The review inbox and the review items are co-partitioned: an event, the decisions about it and its review state
share one partition number, so one worker holds all three."""

_EVENT_KEY = "incident id; else resource id; else the first referenced event id; else the event id"

INTAKE: dict[EventType, Topic] = {
    event_type: Topic(
        name=f"firebus.intake.{event_type.value}",
        partitions=3,
        retention_ms=30 * DAY_MS,
        cleanup_policy=CleanupPolicy.DELETE,
        key=f"recommended: {_EVENT_KEY} (any key, no key and any partition are accepted)",
        value=f"signed {event_type.value} event exactly as published; only the processors' intake gate reads it",
    )
    for event_type in EventType
}
"""Where department systems publish, one topic per event type. Publishers use any client, partitioner and codec:
the intake gate places what it accepts by the event's own partition key (:data:`REVIEW_INBOX`)."""

HQ_LIVE = Topic(
    name="firebus.hq.live",
    partitions=3,
    retention_ms=7 * DAY_MS,
    cleanup_policy=CleanupPolicy.DELETE,
    key=_EVENT_KEY,
    value="fire-related events the moment they pass validation, before review (reporting to HQ is not publication)",
)

REVIEW_DECISIONS = Topic(
    name="firebus.review.decisions",
    partitions=3,
    retention_ms=FOREVER,
    cleanup_policy=CleanupPolicy.DELETE,
    key="partition key of the event decided on (its ReviewItem.partition_key); the intake gate places decisions by it",
    value="ReviewDecision by an HQ reviewer (published by the review desk)",
)

REVIEW_INBOX = Topic(
    name="firebus.review.inbox",
    partitions=REVIEW_PARTITIONS,
    retention_ms=30 * DAY_MS,
    cleanup_policy=CleanupPolicy.DELETE,
    key=f"{_EVENT_KEY}; always on the default (murmur2) partition of that key, whatever the publisher did",
    value=(
        "what the intake gate accepted, bytes unchanged: a validated event or a review decision; header "
        "firebus-source names the intake record (topic/partition/offset). Written by the gate only"
    ),
)
"""firebus-owned and co-partitioned with :data:`REVIEW_ITEMS` (Kafka Streams' repartition topic): however an
outside producer partitioned its record, an event, every decision about it and its review state meet here."""

TIERS: dict[Audience, Topic] = {
    audience: Topic(
        name=f"firebus.tier.{audience.value}",
        partitions=3,
        retention_ms=FOREVER,
        cleanup_policy=CleanupPolicy.DELETE,
        key=_EVENT_KEY,
        value=f"approved events redacted for the {audience.value} tier",
    )
    for audience in Audience
}
"""Cleared events per sharing tier; sinks and analysts read these."""

AUDIT = Topic(
    name="firebus.audit",
    partitions=3,
    retention_ms=FOREVER,
    cleanup_policy=CleanupPolicy.DELETE,
    key="event id the audit record is about, else the audit id",
    value="AuditEvent: acceptance, rejection, quarantine, decision, redaction, escalation, release, delivery",
)

DEAD_LETTER = Topic(
    name="firebus.deadletter",
    partitions=1,
    retention_ms=90 * DAY_MS,
    cleanup_policy=CleanupPolicy.DELETE,
    key="source record key, when it had one",
    value="DeadLetter: the original bytes, the reason and where they came from",
)

REVIEW_ITEMS = Topic(
    name="firebus.review.items",
    partitions=REVIEW_PARTITIONS,
    retention_ms=FOREVER,
    cleanup_policy=CleanupPolicy.COMPACT,
    key="event id",
    value="ReviewItem: the review state of each validated event (changelog of the processors' review table)",
)

RESOURCES_STATE = Topic(
    name="firebus.resources.state",
    partitions=3,
    retention_ms=FOREVER,
    cleanup_policy=CleanupPolicy.COMPACT,
    key="resource id",
    value="latest validated resource event, signed (changelog of the processors' resources table)",
)

HQ_NOTICES = Topic(
    name="firebus.hq.notices",
    partitions=1,
    retention_ms=30 * DAY_MS,
    cleanup_policy=CleanupPolicy.DELETE,
    key="event id concerned",
    value="AuditEvent the HQ office must act on: quarantined classified events, overdue reviews",
)

ALL_TOPICS: tuple[Topic, ...] = (
    *INTAKE.values(),
    HQ_LIVE,
    REVIEW_DECISIONS,
    REVIEW_INBOX,
    REVIEW_ITEMS,
    RESOURCES_STATE,
    *TIERS.values(),
    AUDIT,
    DEAD_LETTER,
    HQ_NOTICES,
)

CO_PARTITIONED: tuple[Topic, ...] = (REVIEW_INBOX, REVIEW_ITEMS)
"""Topics that must share one partition count: the processors keep an event's review state on the partition number
its event and the decisions about it arrive on in the inbox. At least REVIEW_PARTITIONS; a deployment scales out by
creating both with more (``FIREBUS_REVIEW_PARTITIONS``). The intake and decision topics may have any count."""


def co_partitioning_problem(partitions: Mapping[str, int]) -> str | None:
    """A problem when the co-partitioned topics among ``partitions`` (topic name → count) differ in their counts."""
    counts = {topic.name: partitions[topic.name] for topic in CO_PARTITIONED if topic.name in partitions}
    if len(set(counts.values())) <= 1:
        return None
    listed = ", ".join(f"{name}={count}" for name, count in counts.items())
    return f"co-partitioned topics differ in partition count ({listed}); they must all have the same"


BENCH_RELAY = Topic(
    name="firebus.bench.relay",
    partitions=3,
    retention_ms=DAY_MS,
    cleanup_policy=CleanupPolicy.DELETE,
    key="as consumed",
    value="re-encoded events from the benchmark's raw aiokafka relay (created only by `firebus bench`)",
)
"""Not part of a deployment: the benchmark's baseline writes here."""

BENCH_SOURCE = Topic(
    name="firebus.bench.source",
    partitions=3,
    retention_ms=DAY_MS,
    cleanup_policy=CleanupPolicy.DELETE,
    key="as an intake topic",
    value="the benchmark's signed events, for its raw aiokafka relay (created only by `firebus bench`)",
)
"""Not part of a deployment: the benchmark's baseline reads here, so the processors never see its copy."""


def by_name(name: str) -> Topic | None:
    """The registered topic called ``name``, if any (CLI arguments arrive as names)."""
    return next((topic for topic in ALL_TOPICS if topic.name == name), None)
