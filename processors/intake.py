"""Intake validation: schema, text hygiene, signature, the units registry, the duty matrix and sane timestamps.

Pure: bytes in, a verdict out. What fails becomes a dead letter with the reason and the original bytes; a
``secret`` event is quarantined — its body goes nowhere, the office is told to use phone or official letter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from firebus.codec import Codec
from firebus.contracts import Contract
from firebus.county import County
from firebus.deadletters import Rejected, SourceRecord, audit_id, dead_letter
from firebus.errors import CorruptRecordError, InvalidEventError, SignatureError, UnknownSchemaError
from firebus.events import Classification, Event, EventType
from firebus.records import AuditAction, AuditEvent, DeadLetterReason
from firebus.rules import CLASSIFIED_NOTICE, Breach, governance_violations
from firebus.signing import check_origin, check_signature
from firebus.text import text_problems
from firebus.topics import INTAKE

STAGE = "processors.intake"

_REASON_FOR_BREACH = {
    Breach.UNKNOWN_UNIT: DeadLetterReason.UNKNOWN_UNIT,
    Breach.OUTSIDE_DUTIES: DeadLetterReason.OUTSIDE_DUTIES,
    Breach.OUTSIDE_AREA: DeadLetterReason.OUTSIDE_DUTIES,
    Breach.BAD_TIMESTAMP: DeadLetterReason.BAD_TIMESTAMP,
    Breach.BAD_REFERENCE: DeadLetterReason.BAD_REFERENCE,
}


@dataclass(frozen=True)
class Accepted:
    event: Event[Any]
    raw: bytes
    audit: AuditEvent
    decoded: tuple[Contract, Mapping[str, Any]]
    """``raw`` decoded to the current version of its contract, which releases start from."""


@dataclass(frozen=True)
class Quarantined:
    """A classified event: only this audit record (also sent to the office's notices) leaves the stage."""

    audit: AuditEvent


IntakeVerdict = Accepted | Rejected | Quarantined


class IntakeValidator:
    """Checks one intake record against everything the county requires before it may go further."""

    def __init__(self, *, codec: Codec, county: County, public_keys: Mapping[str, Ed25519PublicKey]) -> None:
        self.codec = codec
        self.county = county
        self.public_keys = public_keys
        self._unit_ids = frozenset(unit.id for unit in county.units)

    def check(self, source: SourceRecord, *, now: datetime) -> IntakeVerdict:
        raw = source.value
        if not raw:
            return dead_letter(source, DeadLetterReason.CORRUPT, "empty record value", now=now, stage=STAGE)
        try:
            contract, record = self.codec.decode_data(raw)
        except UnknownSchemaError as exc:
            return dead_letter(source, DeadLetterReason.UNKNOWN_SCHEMA, str(exc), now=now, stage=STAGE)
        except CorruptRecordError as exc:
            return dead_letter(source, DeadLetterReason.CORRUPT, str(exc), now=now, stage=STAGE)
        if _classified(record):
            return Quarantined(self._quarantine_audit(contract, record, source, now))
        expected = next((t for t, topic in INTAKE.items() if topic.name == source.topic), None)
        if contract.event_type is None or contract.event_type is not expected:
            found = contract.event_type.value if contract.event_type else contract.name
            reason = f"a {found} record does not belong on {source.topic}"
            return dead_letter(source, DeadLetterReason.SCHEMA_INVALID, reason, now=now, stage=STAGE)
        event_id = str(record["header"]["event_id"])
        problems = text_problems(contract, record)
        problems += self.codec.contracts.schema_version_problems(self.codec.writer_of(raw), record)
        if problems:
            reason = "; ".join(str(problem) for problem in problems)
            return dead_letter(source, DeadLetterReason.SCHEMA_INVALID, reason, now=now, stage=STAGE, event_id=event_id)
        try:
            event = self.codec.to_model(contract, record)
        except InvalidEventError as exc:
            return dead_letter(
                source, DeadLetterReason.SCHEMA_INVALID, str(exc), now=now, stage=STAGE, event_id=event_id
            )
        assert isinstance(event, Event)  # noqa: S101  (an event contract decodes to an Event)
        if event.header.publisher.unit not in self._unit_ids:
            reason = f"unit {event.header.publisher.unit!r} is not in the units registry"
            return dead_letter(source, DeadLetterReason.UNKNOWN_UNIT, reason, now=now, stage=STAGE, event_id=event_id)
        try:
            written = (contract, record) if self.codec.writer_of(raw).fingerprint == contract.fingerprint else None
            check_signature(self.codec, raw, self.public_keys, as_written=written)
            if event.header.origin is not None:
                check_origin(self.codec, event.header.origin)
        except SignatureError as exc:
            return dead_letter(
                source, DeadLetterReason.BAD_SIGNATURE, str(exc), now=now, stage=STAGE, event_id=event_id
            )
        violations = governance_violations(event, self.county, now=now)
        if violations:
            code = _REASON_FOR_BREACH.get(violations[0].breach, DeadLetterReason.SCHEMA_INVALID)
            reason = "; ".join(str(violation.problem) for violation in violations)
            return dead_letter(source, code, reason, now=now, stage=STAGE, event_id=event_id)
        return Accepted(event, raw, self._accepted_audit(event, source, now), (contract, record))

    @staticmethod
    def _accepted_audit(event: Event[Any], source: SourceRecord, now: datetime) -> AuditEvent:
        header = event.header
        return AuditEvent.model_construct(  # from a validated event: no need to validate again
            audit_id=audit_id("accepted", header.event_id),
            action=AuditAction.ACCEPTED,
            event_id=header.event_id,
            event_type=header.event_type,
            actor=STAGE,
            publisher_unit=header.publisher.unit,
            details={"source": f"{source.topic}/{source.partition}/{source.offset}", "person": header.publisher.person},
            at=now,
            trace_id=header.trace_id,
        )

    @staticmethod
    def _quarantine_audit(
        contract: Contract, record: Mapping[str, Any], source: SourceRecord, now: datetime
    ) -> AuditEvent:
        """Only who, what type and where: nothing of the classified body. Header text that breaks the text rules is
        left out too (the audit trail is rendered by the portal and archived), and the notice says so."""
        header = record["header"]
        event_type = header.get("event_type")
        unclean = {problem.field for problem in text_problems(contract, record)}
        person = header["publisher"]["person"] if "header.publisher.person" not in unclean else "(不合规文本，已略去)"
        unit = header["publisher"]["unit"] if "header.publisher.unit" not in unclean else "(unreadable)"
        trace_id = header.get("trace_id") if "header.trace_id" not in unclean else None
        return AuditEvent(
            audit_id=audit_id("quarantined", header["event_id"]),
            action=AuditAction.QUARANTINED,
            event_id=header["event_id"],
            event_type=event_type if event_type in {t.value for t in EventType} else None,
            actor=STAGE,
            publisher_unit=unit,
            reason=CLASSIFIED_NOTICE,
            details={
                "source": f"{source.topic}/{source.partition}/{source.offset}",
                "person": person,
                "notice": "涉密信息不得在总线上共享：请改用电话或公函报送县森防办。",
            },
            at=now,
            trace_id=trace_id,
        )


def _classified(record: Mapping[str, Any]) -> bool:
    """A record carrying a header marked secret, whatever else is wrong with it."""
    header = record.get("header")
    return isinstance(header, Mapping) and header.get("classification") == Classification.SECRET.value
