"""Pydantic models of the governance records: review decisions, audit events, dead letters.

Like :mod:`firebus.events`, pinned field by field to their ``.avsc`` files by the tests.
"""

from __future__ import annotations

from enum import StrEnum
from uuid import UUID

from pydantic import Field

from firebus.events import Audience, EventType, MessageKind, Record, ResourceKind, ResourceStatus, Severity
from firebus.types import Int32, Int64, UtcDatetime


class Verdict(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"


class ReviewerKind(StrEnum):
    HUMAN = "human"
    POLICY_RULE = "policy_rule"


class ReviewDecision(Record):
    decision_id: UUID
    event_id: UUID
    event_type: EventType
    verdict: Verdict
    reviewer: str
    reviewer_kind: ReviewerKind
    policy_version: str | None = None
    tiers: list[Audience] = Field(default_factory=list)
    redactions: list[str] = Field(default_factory=list)
    reason: str | None = None
    decided_at: UtcDatetime
    trace_id: str


class AuditAction(StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    QUARANTINED = "quarantined"
    DECIDED = "decided"
    REDACTED = "redacted"
    ESCALATED = "escalated"
    RELEASED = "released"
    WITHDRAWN = "withdrawn"
    DELIVERED = "delivered"
    DELIVERY_FAILED = "delivery_failed"
    OTHER = "other"


class AuditEvent(Record):
    audit_id: UUID
    action: AuditAction
    event_id: UUID | None = None
    event_type: EventType | None = None
    actor: str
    publisher_unit: str | None = None
    tier: Audience | None = None
    reason: str | None = None
    details: dict[str, str] = Field(default_factory=dict)
    at: UtcDatetime
    trace_id: str | None = None


class DeadLetterReason(StrEnum):
    CORRUPT = "corrupt"
    UNKNOWN_SCHEMA = "unknown_schema"
    SCHEMA_INVALID = "schema_invalid"
    BAD_SIGNATURE = "bad_signature"
    UNKNOWN_UNIT = "unknown_unit"
    OUTSIDE_DUTIES = "outside_duties"
    BAD_TIMESTAMP = "bad_timestamp"
    BAD_REFERENCE = "bad_reference"
    POISON = "poison"
    OTHER = "other"


class DeadLetter(Record):
    dead_letter_id: UUID
    reason_code: DeadLetterReason
    reason: str
    stage: str
    source_topic: str
    source_partition: Int32
    source_offset: Int64
    key: bytes | None = None
    value: bytes
    event_id: str | None = None
    at: UtcDatetime


class NearbyResource(Record):
    resource_id: str
    resource_kind: ResourceKind
    name: str
    township: str
    status: ResourceStatus
    distance_km: float = Field(ge=0)
    lat: float | None = None
    lon: float | None = None
    contact_phone: str | None = None


class Release(Record):
    release_id: UUID
    tier: Audience
    event_id: UUID
    event_type: EventType
    kind: MessageKind
    thread_id: UUID
    incident_id: str | None = None
    publisher_unit: str
    decision: ReviewDecision
    redacted_fields: list[str] = Field(default_factory=list)
    nearby_resources: list[NearbyResource] = Field(default_factory=list)
    released_at: UtcDatetime
    event: bytes


class ReviewStatus(StrEnum):
    PENDING = "pending"
    RELEASING = "releasing"
    RELEASED = "released"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"
    OTHER = "other"


class ReviewItem(Record):
    event_id: UUID
    event_type: EventType
    kind: MessageKind
    thread_id: UUID
    partition_key: str
    status: ReviewStatus
    publisher_unit: str
    publisher_person: str
    audience: Audience
    severity: Severity
    townships: list[str] = Field(default_factory=list)
    received_at: UtcDatetime
    deadline: UtcDatetime
    escalated: bool = False
    decision: ReviewDecision | None = None
    release_ids: list[UUID] = Field(default_factory=list)
    releasing_since: UtcDatetime | None = None
    note: str | None = None
    event: bytes
