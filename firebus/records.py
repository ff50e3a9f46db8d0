"""Pydantic models of the governance records: review decisions, audit events, dead letters.

Like :mod:`firebus.events`, pinned field by field to their ``.avsc`` files by the tests.
"""

from __future__ import annotations

from enum import StrEnum
from uuid import UUID

from pydantic import Field

from firebus.events import Audience, EventType, Record
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
