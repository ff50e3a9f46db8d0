"""Dead letters and audit ids: the ids archived records already carry must never change."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from firebus.deadletters import SourceRecord, audit_id, dead_letter
from firebus.records import AuditAction, DeadLetterReason

NOW = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
SOURCE = SourceRecord("firebus.intake.fire_report", 2, 17, b"key", b"\xc3\x01garbled")


def test_audit_ids_are_pinned_to_the_values_already_archived() -> None:
    """The namespace and the join of the parts are part of the archive's contract: these exact UUIDs."""
    assert audit_id("dead_letter", SOURCE.position) == UUID("7d9129cd-d4b3-5da4-a391-a9d629b026dc")
    assert audit_id("rejected", SOURCE.position) == UUID("b55e7d8f-ff8f-5651-b70b-4374a283e13f")
    assert audit_id("delivered", "archive", UUID(int=7)) == UUID("b252c971-e9f2-5574-960d-3d19c812c38d")


def test_a_dead_letter_keeps_the_original_bytes_the_reason_and_the_position() -> None:
    """The letter and its audit record name the stage, the reason and the source position, ids derived from it."""
    event_id = "6f1c7d2e-58f4-4d0a-9c49-1f0f3c1e2a77"
    rejected = dead_letter(SOURCE, DeadLetterReason.CORRUPT, "truncated", now=NOW, stage="somewhere", event_id=event_id)
    letter, audit = rejected.dead_letter, rejected.audit
    assert (letter.source_topic, letter.source_partition, letter.source_offset) == ("firebus.intake.fire_report", 2, 17)
    assert (letter.key, letter.value, letter.stage, letter.reason) == (
        b"key",
        b"\xc3\x01garbled",
        "somewhere",
        "truncated",
    )
    assert letter.dead_letter_id == UUID("7d9129cd-d4b3-5da4-a391-a9d629b026dc")
    assert audit.audit_id == UUID("b55e7d8f-ff8f-5651-b70b-4374a283e13f")
    assert audit.action is AuditAction.REJECTED
    assert audit.event_id == UUID(event_id)
    assert audit.actor == "somewhere"
    assert audit.reason == "corrupt: truncated"
    assert audit.details == {"source": "firebus.intake.fire_report/2/17"}


def test_a_dead_letter_of_an_empty_record_stores_empty_bytes_and_no_event() -> None:
    """A tombstone (no value) still becomes a letter, with empty bytes and no event id."""
    rejected = dead_letter(SourceRecord("t", 0, 0, None, None), DeadLetterReason.POISON, "empty", now=NOW, stage="s")
    assert rejected.dead_letter.value == b""
    assert rejected.dead_letter.key is None
    assert rejected.audit.event_id is None
