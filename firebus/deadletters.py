"""Where a consumed record came from, deterministic audit ids, and the dead letter every stage writes the same way.

Shared by the processors and the sink runner: a record that can never be handled becomes a
:class:`~firebus.records.DeadLetter` (the original bytes, the reason, the stage and the source position) together
with the :class:`~firebus.records.AuditEvent` that tells the office about it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import NAMESPACE_URL, UUID, uuid5

from firebus.records import AuditAction, AuditEvent, DeadLetter, DeadLetterReason

# Changing the namespace or the join below changes every audit id, and the archive keeps audit records by id.
_AUDIT_NAMESPACE = uuid5(NAMESPACE_URL, "https://firebus/audit")


def audit_id(*parts: object) -> UUID:
    """Deterministic audit id: a replayed step produces the same audit record, which the archive keeps once."""
    return uuid5(_AUDIT_NAMESPACE, ":".join(str(part) for part in parts))


@dataclass(frozen=True)
class SourceRecord:
    """One record as consumed: where it came from and its bytes."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None

    @property
    def position(self) -> str:
        """``topic/partition/offset``: how audit details and dead-letter ids name the record."""
        return f"{self.topic}/{self.partition}/{self.offset}"


@dataclass(frozen=True)
class Rejected:
    """A record that goes no further: its dead letter and the audit record saying why."""

    dead_letter: DeadLetter
    audit: AuditEvent


def dead_letter(
    source: SourceRecord,
    reason_code: DeadLetterReason,
    reason: str,
    *,
    now: datetime,
    stage: str,
    event_id: str | None = None,
) -> Rejected:
    """A rejection: the original bytes with the reason and where they came from, plus its audit record."""
    where = source.position
    letter = DeadLetter(
        dead_letter_id=audit_id("dead_letter", where),
        reason_code=reason_code,
        reason=reason,
        stage=stage,
        source_topic=source.topic,
        source_partition=source.partition,
        source_offset=source.offset,
        key=source.key,
        value=source.value or b"",
        event_id=event_id,
        at=now,
    )
    audit = AuditEvent(
        audit_id=audit_id("rejected", where),
        action=AuditAction.REJECTED,
        event_id=UUID(event_id) if event_id else None,
        actor=stage,
        reason=f"{reason_code.value}: {reason}",
        details={"source": where},
        at=now,
    )
    return Rejected(letter, audit)
