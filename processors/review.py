"""Review gating (每发必审), lifecycle and release: the processors' state machine, as plain functions.

Every validated event becomes a :class:`~firebus.records.ReviewItem`. It leaves for the members or the public only
by a decision: a registered HQ reviewer who is not the publisher, or a named rule of the office's versioned policy
(member tier and HQ only — public release always needs a human). Each step returns the item states to persist and
the records to send; the faust shell does the I/O. A release is written in two phases — the item is persisted as
``releasing`` before the tier records are sent and as ``released`` after — so a replay after a crash can finish an
interrupted release without sending it twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from functools import lru_cache
from typing import Any, Protocol
from uuid import UUID, uuid5

from firebus.catalogue import FIRE_RELATED_TYPES
from firebus.codec import Codec
from firebus.contracts import Contract
from firebus.county import County, reviewer_may_decide
from firebus.deadletters import SourceRecord, audit_id, dead_letter
from firebus.events import Audience, Event, MessageKind, Resource
from firebus.records import (
    AuditAction,
    AuditEvent,
    DeadLetterReason,
    NearbyResource,
    ReviewDecision,
    ReviewerKind,
    ReviewItem,
    ReviewStatus,
    Verdict,
)
from firebus.topics import HQ_LIVE, RESOURCES_STATE, TIERS
from processors.enrichment import enrich_fire_report
from processors.outgoing import Outgoing, audit_records, rejection_records
from processors.policy import ReviewPolicy, overdue
from processors.redaction import redact

STAGE = "processors.review"

# Tiers an event may reach, by its audience: an event for the public is also shown to members and HQ.
_TIERS_FOR_AUDIENCE = {
    Audience.PUBLIC: (Audience.PUBLIC, Audience.MEMBERS, Audience.HQ),
    Audience.MEMBERS: (Audience.MEMBERS, Audience.HQ),
    Audience.HQ: (Audience.HQ,),
}
_OPEN = frozenset({ReviewStatus.PENDING})
SETTLED = frozenset({ReviewStatus.RELEASED, ReviewStatus.REJECTED, ReviewStatus.WITHDRAWN})
"""Final review states: no decision, escalation or redelivery changes them."""


@dataclass(frozen=True)
class TierRelease:
    """One tier's release, already encoded: what its tier record and its audit records need."""

    release_id: UUID
    tier: Audience
    redacted_fields: list[str]
    value: bytes


@dataclass
class Step:
    """What one input changes: item states to persist before sending, records to send, states to persist after."""

    before: list[ReviewItem] = field(default_factory=list)
    outgoing: list[Outgoing] = field(default_factory=list)
    after: list[ReviewItem] = field(default_factory=list)

    def extend(self, other: Step) -> None:
        self.before += other.before
        self.outgoing += other.outgoing
        self.after += other.after


ItemLookup = Callable[[UUID], ReviewItem | None]


class Admitted(Protocol):
    """An event the intake gate accepted, as the review stage holds it (the gate's own verdict is one)."""

    @property
    def event(self) -> Event[Any]: ...
    @property
    def raw(self) -> bytes:
        """The event's bytes exactly as published."""

    @property
    def decoded(self) -> tuple[Contract, Mapping[str, Any]]:
        """``raw`` decoded to the current version of its contract, which releases start from."""


class Lifecycle(StrEnum):
    """What an update's or a cancel's references make of it."""

    REFUSED = "refused"
    """Dead-lettered: a reference unknown here, or another unit's or another type's event."""
    SETTLED = "settled"
    """A cancel of what was never published: it withdrew the original and needs no review itself."""
    OPEN = "open"
    """Reviewed like any publication."""


def report_live(event: Event[Any], raw: bytes) -> list[Outgoing]:
    """Reporting to HQ is not publication: a fire-related event goes to the HQ live topic, as published, once it has
    passed every intake check (the reference check included, for an update or a cancel)."""
    if event.header.event_type not in FIRE_RELATED_TYPES:
        return []
    return [Outgoing(HQ_LIVE, event.partition_key().encode(), raw)]


def allowed_tiers(audience: Audience) -> tuple[Audience, ...]:
    return _TIERS_FOR_AUDIENCE[audience]


def release_id(decision_id: UUID, tier: Audience) -> UUID:
    """Deterministic per (decision, tier), so a finished-after-crash release has the ids it started with."""
    return uuid5(decision_id, tier.value)


class Reviewer:
    """The review stage's logic, configured once per worker."""

    def __init__(
        self,
        *,
        codec: Codec,
        county: County,
        policy: ReviewPolicy,
        resources: Callable[[], Iterable[Resource]],
    ) -> None:
        self.codec = codec
        self.county = county
        self.policy = policy
        self._resources = resources
        # Each tier's release starts from the same decoded record; redaction never mutates it.
        self._decoded = lru_cache(maxsize=256)(codec.decode_data)
        self._release_contract = codec.contracts.current("release")

    # --- audit helpers -----------------------------------------------------------------------------------------

    def audit_records(self, audit: AuditEvent | dict[str, Any], *, notify_office: bool = False) -> list[Outgoing]:
        return audit_records(self.codec, audit, notify_office=notify_office)

    def _item_audit(self, item: ReviewItem, action: AuditAction, now: datetime, **fields: Any) -> dict[str, Any]:
        """The audit record of a step on an item, as the codec writes it.

        Every value comes from an already validated item or decision; a model round trip per audit record (several
        per event) would cost more than the rest of the step.
        """
        discriminator = fields.pop("discriminator", "")
        return {
            **_AUDIT_DEFAULTS,
            "audit_id": audit_id(action.value, item.event_id, discriminator),
            "action": action,
            "event_id": item.event_id,
            "event_type": item.event_type,
            "publisher_unit": item.publisher_unit,
            "at": now,
            "actor": STAGE,
            **fields,
        }

    # --- intake --------------------------------------------------------------------------------------------------

    def on_accepted(self, accepted: Admitted, source: SourceRecord, lookup: ItemLookup, *, now: datetime) -> Step:
        """An event the intake gate accepted: check what it updates or cancels, then hold it for review or apply a
        rule. ``source`` is where it was published (dead letters and audits name it)."""
        event, header = accepted.event, accepted.event.header
        step = Step()
        if lookup(header.event_id) is not None:
            return step  # a redelivery: its review state is already kept
        item = ReviewItem(
            event_id=header.event_id,
            event_type=header.event_type,
            kind=header.kind,
            thread_id=header.references[0] if header.references else header.event_id,
            partition_key=event.partition_key(),
            status=ReviewStatus.PENDING,
            publisher_unit=header.publisher.unit,
            publisher_person=header.publisher.person,
            audience=header.audience,
            severity=header.severity,
            townships=header.townships,
            received_at=now,
            deadline=now + self.policy.deadline_for(header.event_type),
            event=accepted.raw,
        )
        settled = False
        if header.kind is not MessageKind.ALERT:
            lifecycle, outcome = self._lifecycle(item, event, source, lookup, now)
            step.extend(lifecycle)
            if outcome is Lifecycle.REFUSED:
                return step
            settled = outcome is Lifecycle.SETTLED
            # An alert went to HQ live from the intake gate; an update or cancel only now its references hold.
            step.outgoing += report_live(event, accepted.raw)
        if isinstance(event.body, Resource):
            step.outgoing.append(Outgoing(RESOURCES_STATE, event.body.resource_id.encode(), accepted.raw))
        if settled:
            return step
        rule = self.policy.matching_rule(event)
        if rule is None:
            step.before.append(item)
            return step
        decision = ReviewDecision(
            decision_id=uuid5(header.event_id, f"policy:{self.policy.version}:{rule.id}"),
            event_id=header.event_id,
            event_type=header.event_type,
            verdict=Verdict.APPROVE,
            reviewer=rule.id,
            reviewer_kind=ReviewerKind.POLICY_RULE,
            policy_version=self.policy.version,
            tiers=[tier for tier in allowed_tiers(item.audience) if tier is not Audience.PUBLIC],
            reason=rule.description or None,
            decided_at=now,
            trace_id=header.trace_id,
        )
        step.extend(self._approve(item, event, decision, now, decoded=accepted.decoded))
        return step

    def _lifecycle(
        self, item: ReviewItem, event: Event[Any], source: SourceRecord, lookup: ItemLookup, now: datetime
    ) -> tuple[Step, Lifecycle]:
        """Updates and cancels: withdraw what was not yet reviewed; review the rest like any publication."""
        referenced = [found for ref in event.header.references if (found := lookup(ref)) is not None]
        foreign = [
            original
            for original in referenced
            if original.event_type is not item.event_type or original.publisher_unit != item.publisher_unit
        ]
        if foreign:
            reason = "; ".join(
                f"{original.event_id} is a {original.event_type.value} of {original.publisher_unit}"
                for original in foreign
            )
            why = f"an {item.kind.value} may only change its own unit's events of the same type: {reason}"
            return self._dead_letter(source, why, item.event_id, now), Lifecycle.REFUSED
        if not referenced:
            refs = ", ".join(str(ref) for ref in event.header.references)
            reason = (
                f"{item.kind.value} references {refs}, unknown here; "
                "an update or cancel must keep the original's incident id"
            )
            return self._dead_letter(source, reason, item.event_id, now), Lifecycle.REFUSED
        step = Step()
        for original in referenced:
            if original.status in _OPEN:
                note = f"{'cancelled' if item.kind is MessageKind.CANCEL else 'superseded'} by {item.event_id}"
                step.before.append(original.model_copy(update={"status": ReviewStatus.WITHDRAWN, "note": note}))
                step.outgoing += self.audit_records(self._item_audit(original, AuditAction.WITHDRAWN, now, reason=note))
        published = any(original.status in (ReviewStatus.RELEASED, ReviewStatus.RELEASING) for original in referenced)
        if item.kind is MessageKind.CANCEL and not published:
            note = "nothing published to cancel: " + ", ".join(str(original.event_id) for original in referenced)
            step.before.append(item.model_copy(update={"status": ReviewStatus.WITHDRAWN, "note": note}))
            return step, Lifecycle.SETTLED
        return step, Lifecycle.OPEN

    def _dead_letter(self, source: SourceRecord, reason: str, event_id: UUID, now: datetime) -> Step:
        rejected = dead_letter(
            source, DeadLetterReason.BAD_REFERENCE, reason, now=now, stage=STAGE, event_id=str(event_id)
        )
        return Step(outgoing=rejection_records(self.codec, rejected))

    # --- decisions -----------------------------------------------------------------------------------------------

    def on_decision(self, decision: ReviewDecision, source: SourceRecord, lookup: ItemLookup, *, now: datetime) -> Step:
        item = lookup(decision.event_id)
        refusal = self._refusal(decision, item)
        if refusal is not None:
            return self._dead_letter(source, refusal, decision.event_id, now)
        assert item is not None  # noqa: S101  (_refusal returns a reason when there is no item)
        if item.decision is not None and item.decision.decision_id == decision.decision_id:
            return Step()  # a redelivered decision that was applied already
        if decision.verdict is Verdict.REJECT:
            rejected_item = item.model_copy(update={"status": ReviewStatus.REJECTED, "decision": decision})
            audit = self._item_audit(
                item,
                AuditAction.DECIDED,
                now,
                actor=decision.reviewer,
                reason=decision.reason,
                details={"verdict": "reject"},
                discriminator=decision.decision_id,
            )
            return Step(before=[rejected_item], outgoing=self.audit_records(audit))
        event = self.codec.decode(item.event)
        assert isinstance(event, Event)  # noqa: S101
        return self._approve(item, event, decision, now)

    def _refusal(self, decision: ReviewDecision, item: ReviewItem | None) -> str | None:
        if item is None:
            return (
                f"decision {decision.decision_id} is about event {decision.event_id}, which is not awaiting review here"
            )
        if item.decision is not None and item.decision.decision_id == decision.decision_id:
            return None
        if item.status not in _OPEN:
            return f"event {item.event_id} is already {item.status.value}; decision {decision.decision_id} ignored"
        if decision.reviewer_kind is not ReviewerKind.HUMAN:
            return "only the processors apply policy rules; a published decision must be a human reviewer's"
        not_allowed = reviewer_may_decide(self.county, decision.reviewer, item.publisher_person, item.publisher_unit)
        if not_allowed is not None:
            return not_allowed
        redactable = self.codec.contracts.for_event_type(item.event_type).redactable_paths
        unknown = sorted(set(decision.redactions) - redactable)
        if unknown:
            return f"cannot redact {', '.join(unknown)}: not optional fields of {item.event_type.value}"
        wider = [tier.value for tier in decision.tiers if tier not in allowed_tiers(item.audience)]
        if wider:
            return f"event {item.event_id} is for the {item.audience.value} tier at most, not {', '.join(wider)}"
        return None

    # --- release -------------------------------------------------------------------------------------------------

    def releases_for(
        self,
        item: ReviewItem,
        event: Event[Any],
        decision: ReviewDecision,
        now: datetime,
        *,
        decoded: tuple[Contract, Mapping[str, Any]] | None = None,
    ) -> list[TierRelease]:
        """One release per tier the decision opens (all the audience allows when it names none)."""
        tiers = [tier for tier in allowed_tiers(item.audience) if not decision.tiers or tier in decision.tiers]
        nearby = enrich_fire_report(event, self._resources())
        return [self.release_for(item, event, decision, tier, now, nearby=nearby, decoded=decoded) for tier in tiers]

    def _approve(
        self,
        item: ReviewItem,
        event: Event[Any],
        decision: ReviewDecision,
        now: datetime,
        *,
        decoded: tuple[Contract, Mapping[str, Any]] | None = None,
    ) -> Step:
        releases = self.releases_for(item, event, decision, now, decoded=decoded)
        ids = [release.release_id for release in releases]
        releasing = item.model_copy(
            update={
                "status": ReviewStatus.RELEASING,
                "decision": decision,
                "release_ids": ids,
                "releasing_since": now,
            }
        )
        step = Step(before=[releasing])
        decided = self._item_audit(
            item,
            AuditAction.DECIDED,
            now,
            actor=decision.reviewer,
            reason=decision.reason,
            details=_decision_details(decision),
            discriminator=decision.decision_id,
        )
        step.outgoing += self.audit_records(decided)
        step.outgoing += self.release_records(releasing, releases, now)
        step.after.append(releasing.model_copy(update={"status": ReviewStatus.RELEASED}))
        return step

    def release_records(self, item: ReviewItem, releases: Iterable[TierRelease], now: datetime) -> list[Outgoing]:
        """The tier records of a release and their audit records (``item`` carries the decision)."""
        assert item.decision is not None  # noqa: S101  (only a decided item is released)
        records = []
        key = item.partition_key.encode()
        for release in releases:
            records.append(Outgoing(TIERS[release.tier], key, release.value))
            details = {"release_id": str(release.release_id), "reviewer": item.decision.reviewer}
            records += self.audit_records(
                self._item_audit(
                    item,
                    AuditAction.RELEASED,
                    now,
                    tier=release.tier,
                    details=details,
                    discriminator=release.release_id,
                )
            )
            if release.redacted_fields:
                fields = ", ".join(release.redacted_fields)
                records += self.audit_records(
                    self._item_audit(
                        item,
                        AuditAction.REDACTED,
                        now,
                        tier=release.tier,
                        reason=fields,
                        details=details,
                        discriminator=release.release_id,
                    )
                )
        return records

    def release_for(
        self,
        item: ReviewItem,
        event: Event[Any],
        decision: ReviewDecision,
        tier: Audience,
        now: datetime,
        *,
        nearby: list[NearbyResource] | None = None,
        decoded: tuple[Contract, Mapping[str, Any]] | None = None,
    ) -> TierRelease:
        """The event as released to one tier: redacted per the schema's tags and the reviewer, and enriched."""
        contract, record = decoded or self._decoded(item.event)
        redacted = redact(contract, record, tier, decision.redactions)
        event_record = redacted.record
        if redacted.redacted_fields:
            event_record = {**event_record, "header": {**event_record["header"], "signature": b""}}
        if nearby is None:
            nearby = enrich_fire_report(event, self._resources())
        # Built as the plain record the codec writes (a model round trip per tier costs more than the rest).
        identifier = release_id(decision.decision_id, tier)
        release_record: dict[str, Any] = {
            "release_id": identifier,
            "tier": tier.value,
            "event_id": item.event_id,
            "event_type": item.event_type.value,
            "kind": item.kind.value,
            "thread_id": item.thread_id,
            "incident_id": event.header.incident_id,
            "publisher_unit": item.publisher_unit,
            "decision": decision.model_dump(),
            "redacted_fields": [],
            "nearby_resources": [resource.model_dump() for resource in nearby],
            "released_at": now,
            # Unredacted (the HQ tier), the event goes out exactly as published, signature intact.
            "event": self.codec.encode_data(contract, event_record) if redacted.redacted_fields else item.event,
        }
        wrapped = redact(self._release_contract, release_record, tier)
        fields = sorted({*redacted.redacted_fields, *wrapped.redacted_fields})
        value = self.codec.encode_data(self._release_contract, {**wrapped.record, "redacted_fields": fields})
        return TierRelease(identifier, tier, fields, value)

    # --- deadlines -----------------------------------------------------------------------------------------------

    def on_tick(self, items: Iterable[ReviewItem], *, now: datetime) -> Step:
        """Escalate every pending item past its deadline, once."""
        step = Step()
        for item in items:
            if item.status is ReviewStatus.PENDING and overdue(item.deadline, now, item.escalated):
                step.before.append(item.model_copy(update={"escalated": True}))
                late = now - item.deadline
                audit = self._item_audit(
                    item,
                    AuditAction.ESCALATED,
                    now,
                    reason=(
                        f"awaiting review since {item.received_at.isoformat()}, "
                        f"{int(late.total_seconds() // 60)} min past its deadline"
                    ),
                    details={"deadline": item.deadline.isoformat()},
                )
                step.outgoing += self.audit_records(audit, notify_office=True)
        return step


_AUDIT_DEFAULTS: dict[str, Any] = {
    name: info.get_default(call_default_factory=True)
    for name, info in AuditEvent.model_fields.items()
    if not info.is_required()
}


def _decision_details(decision: ReviewDecision) -> dict[str, str]:
    details = {
        "verdict": decision.verdict.value,
        "reviewer_kind": decision.reviewer_kind.value,
        "decision_id": str(decision.decision_id),
    }
    if decision.policy_version:
        details["policy_version"] = decision.policy_version
    if decision.redactions:
        details["redactions"] = ", ".join(decision.redactions)
    return details
