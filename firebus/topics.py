"""The topic registry: the one place that names, sizes and configures every firebus topic.

Nothing else spells a topic name: code refers to the constants here (``INTAKE[EventType.FIRE_REPORT]``,
``HQ_LIVE`` …). ``firebus topics create|list|check`` applies and verifies this registry on any Kafka. Each topic
also declares what its values are (the schema stems of ``schemas/avro/``) and who writes and reads it, which is
what ``firebus asyncapi`` publishes for teams outside firebus.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from firebus.catalogue import FIRE_RELATED_TYPES
from firebus.events import Audience, EventType

DAY_MS = 24 * 60 * 60 * 1000
FOREVER = -1


class CleanupPolicy(StrEnum):
    DELETE = "delete"
    COMPACT = "compact"


class Actor(StrEnum):
    """A party that writes or reads firebus topics."""

    DEPARTMENT_SYSTEMS = "department_systems"
    PROCESSORS = "processors"
    REVIEW_DESK = "review_desk"
    PORTAL = "portal"
    SMS = "sms"
    ARCHIVE = "archive"
    ANALYSTS = "analysts"
    OPERATORS = "operators"
    BRIDGE = "bridge"

    @property
    def description(self) -> str:
        return _ACTOR_DESCRIPTIONS[self]


_ACTOR_DESCRIPTIONS = {
    Actor.DEPARTMENT_SYSTEMS: "Member units' and townships' systems: the firebus client library, `firebus publish`, "
    "or any Kafka client in any language that follows docs/wire-format.md.",
    Actor.PROCESSORS: "The firebus processors (`firebus processors`): intake checks, HQ live feed, review gating, "
    "redaction and release per tier.",
    Actor.REVIEW_DESK: "HQ office reviewers: `firebus review` and the HQ console's review queue.",
    Actor.PORTAL: "The portal (`firebus portal`): public notice board and feeds, member area, HQ console.",
    Actor.SMS: "The SMS sink: on-duty officials' text messages through the SMS gateway.",
    Actor.ARCHIVE: "The archive sink: PostgreSQL and Avro object container files.",
    Actor.ANALYSTS: "Analysts replaying topics for statistics (`firebus stats`).",
    Actor.OPERATORS: "Operators and the HQ office on duty, reading with `firebus tail` (or any Kafka client).",
    Actor.BRIDGE: "The bridge to the level above (`firebus bridge`): released fire reports up as the HQ office's "
    "signed reports with their origin, the upper HQ office's releases down into intake, deadline escalations.",
}


@dataclass(frozen=True)
class Topic:
    """One topic: its name, size, retention, what its keys and values are, and who writes and reads it."""

    name: str
    partitions: int
    retention_ms: int
    cleanup_policy: CleanupPolicy
    key: str
    value: str
    value_schemas: tuple[str, ...]
    """Stems of the ``schemas/avro/`` files its values are written with (``fire_report``, ``release`` …)."""
    writers: tuple[Actor, ...]
    readers: tuple[Actor, ...]

    def configs(self) -> dict[str, str]:
        """Topic-level configuration, as Kafka spells it."""
        return {"retention.ms": str(self.retention_ms), "cleanup.policy": self.cleanup_policy.value}


REVIEW_PARTITIONS = 3
"""The review inbox and the review items are co-partitioned: an event, the decisions about it and its review state
share one partition number, so one worker holds all three."""

_EVENT_KEY = "incident id; else resource id; else the first referenced event id; else the event id"

_INTAKE_KEY = (
    f"recommended, not required: UTF-8 of the event's partition key ({_EVENT_KEY}), which keeps one incident's "
    "events in order on this topic; firebus ignores the key and the partition a record arrives on"
)

_EVENT_STEMS = tuple(event_type.value for event_type in EventType)
"""An event type's schema file is named after the type: ``fire_report.avsc``."""

INTAKE: dict[EventType, Topic] = {
    event_type: Topic(
        name=f"firebus.intake.{event_type.value}",
        partitions=3,
        retention_ms=30 * DAY_MS,
        cleanup_policy=CleanupPolicy.DELETE,
        key=_INTAKE_KEY,
        value=f"signed {event_type.value} event exactly as published; only the processors' intake gate reads it",
        value_schemas=(event_type.value,),
        writers=(Actor.DEPARTMENT_SYSTEMS, Actor.BRIDGE),
        readers=(Actor.PROCESSORS, Actor.BRIDGE),
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
    value=(
        "fire-related events the moment they pass validation, before review (reporting to HQ is not publication). "
        "At least once: after a processors restart an event may come again, here or on another partition; its "
        "header.event_id is the idempotence key, and every reader shows or counts one per event id"
    ),
    value_schemas=tuple(event_type.value for event_type in EventType if event_type in FIRE_RELATED_TYPES),
    writers=(Actor.PROCESSORS,),
    readers=(Actor.PORTAL, Actor.OPERATORS),
)

REVIEW_DECISIONS = Topic(
    name="firebus.review.decisions",
    partitions=3,
    retention_ms=FOREVER,
    cleanup_policy=CleanupPolicy.DELETE,
    key="partition key of the event decided on (its ReviewItem.partition_key); the intake gate places decisions by it",
    value="ReviewDecision by an HQ reviewer (published by the review desk)",
    value_schemas=("review_decision",),
    writers=(Actor.REVIEW_DESK,),
    readers=(Actor.PROCESSORS,),
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
    value_schemas=(*_EVENT_STEMS, "review_decision"),
    writers=(Actor.PROCESSORS,),
    readers=(Actor.PROCESSORS,),
)
"""firebus-owned and co-partitioned with :data:`REVIEW_ITEMS` (Kafka Streams' repartition topic): however an
outside producer partitioned its record, an event, every decision about it and its review state meet here."""


def _tier_readers(audience: Audience) -> tuple[Actor, ...]:
    # Text messages go to on-duty officials: the SMS sink reads the member and HQ tiers, not the public one. A
    # lower level's bridge is a member of this one: it reads the member tier for what comes down.
    sms = () if audience is Audience.PUBLIC else (Actor.SMS,)
    bridge = (Actor.BRIDGE,) if audience is Audience.MEMBERS else ()
    return (Actor.PORTAL, *sms, Actor.ARCHIVE, Actor.ANALYSTS, *bridge)


TIERS: dict[Audience, Topic] = {
    audience: Topic(
        name=f"firebus.tier.{audience.value}",
        partitions=3,
        retention_ms=FOREVER,
        cleanup_policy=CleanupPolicy.DELETE,
        key=_EVENT_KEY,
        value=f"approved events redacted for the {audience.value} tier",
        value_schemas=("release",),
        writers=(Actor.PROCESSORS,),
        readers=_tier_readers(audience),
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
    value_schemas=("audit_event",),
    writers=(Actor.PROCESSORS, Actor.SMS, Actor.ARCHIVE, Actor.BRIDGE),
    readers=(Actor.PORTAL, Actor.ARCHIVE, Actor.ANALYSTS),
)

DEAD_LETTER = Topic(
    name="firebus.deadletter",
    partitions=1,
    retention_ms=90 * DAY_MS,
    cleanup_policy=CleanupPolicy.DELETE,
    key="source record key, when it had one",
    value="DeadLetter: the original bytes, the reason and where they came from",
    value_schemas=("dead_letter",),
    writers=(Actor.PROCESSORS, Actor.SMS, Actor.ARCHIVE),
    readers=(Actor.OPERATORS,),
)

REVIEW_ITEMS = Topic(
    name="firebus.review.items",
    partitions=REVIEW_PARTITIONS,
    retention_ms=FOREVER,
    cleanup_policy=CleanupPolicy.COMPACT,
    key="event id",
    value="ReviewItem: the review state of each validated event (changelog of the processors' review table)",
    value_schemas=("review_item",),
    writers=(Actor.PROCESSORS,),
    readers=(Actor.PROCESSORS, Actor.REVIEW_DESK, Actor.PORTAL, Actor.BRIDGE),
)

RESOURCES_STATE = Topic(
    name="firebus.resources.state",
    partitions=3,
    retention_ms=FOREVER,
    cleanup_policy=CleanupPolicy.COMPACT,
    key="resource id",
    value="latest validated resource event, signed (changelog of the processors' resources table)",
    value_schemas=("resource",),
    writers=(Actor.PROCESSORS,),
    readers=(Actor.PROCESSORS,),
)

HQ_NOTICES = Topic(
    name="firebus.hq.notices",
    partitions=1,
    retention_ms=30 * DAY_MS,
    cleanup_policy=CleanupPolicy.DELETE,
    key="event id concerned",
    value="AuditEvent the HQ office must act on: quarantined classified events, overdue reviews, upward reports "
    "about to be late",
    value_schemas=("audit_event",),
    writers=(Actor.PROCESSORS, Actor.BRIDGE),
    readers=(Actor.OPERATORS, Actor.BRIDGE),
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
    value_schemas=_EVENT_STEMS,
    writers=(Actor.OPERATORS,),
    readers=(Actor.OPERATORS,),
)
"""Not part of a deployment: the benchmark's baseline writes here."""

BENCH_SOURCE = Topic(
    name="firebus.bench.source",
    partitions=3,
    retention_ms=DAY_MS,
    cleanup_policy=CleanupPolicy.DELETE,
    key="as an intake topic",
    value="the benchmark's signed events, for its raw aiokafka relay (created only by `firebus bench`)",
    value_schemas=_EVENT_STEMS,
    writers=(Actor.OPERATORS,),
    readers=(Actor.OPERATORS,),
)
"""Not part of a deployment: the benchmark's baseline reads here, so the processors never see its copy."""


UPWARD_LEDGER_PREFIX = "firebus.bridge.upward."


def upward_ledger(level: str) -> Topic:
    """The bridge's ledger on the *upper* cluster: what one lower level (county id) reported up, one record per
    original. Not in :data:`ALL_TOPICS`: it lives on the level above, one per lower level, so each bridge reads its
    own share only (and an ACL can say so); the bridge creates it."""
    return Topic(
        name=f"{UPWARD_LEDGER_PREFIX}{level}",
        partitions=1,
        retention_ms=FOREVER,
        cleanup_policy=CleanupPolicy.COMPACT,
        key="original event id (at the lower level)",
        value="the upward report exactly as sent to the upper intake, written once the intake acknowledged it",
        value_schemas=("fire_report",),
        writers=(Actor.BRIDGE,),
        readers=(Actor.BRIDGE,),
    )


def by_name(name: str) -> Topic | None:
    """The registered topic called ``name``, if any (CLI arguments arrive as names)."""
    return next((topic for topic in ALL_TOPICS if topic.name == name), None)
