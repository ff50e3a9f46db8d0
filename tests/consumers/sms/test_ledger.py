"""The SMS ledger: first plan wins, parts are claimed and settled, and a crash leaves nothing to send twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

from consumers.sms.ledger import Ledger, Message, MessageStatus, PartStatus
from firebus.events import Audience, EventType

NOW = datetime(2026, 3, 14, 10, 0, tzinfo=UTC)


def message(**changes: object) -> Message:
    fields: dict[str, object] = {
        "event_id": uuid4(),
        "phone": "13800000302",
        "recipient": "manghe_duty",
        "release_id": uuid4(),
        "event_type": EventType.FIRE_REPORT,
        "tier": Audience.MEMBERS,
        "text": "火情",
        "parts": 1,
        "reference": 7,
        "status": MessageStatus.PENDING,
        "due_at": NOW,
    }
    return Message(**{**fields, **changes})  # type: ignore[arg-type]


def test_the_first_plan_of_an_event_for_a_phone_wins_also_after_reopening(tmp_path: Path) -> None:
    """Planning the same event for the same phone again, even from another release or process, changes nothing."""
    first = message()
    ledger = Ledger(tmp_path / "sms.sqlite3")
    assert ledger.plan(first, NOW)
    ledger.close()
    reopened = Ledger(tmp_path / "sms.sqlite3")
    assert not reopened.plan(message(event_id=first.event_id, release_id=uuid4(), text="别的"), NOW)
    assert reopened.message(first.event_id, first.phone) == first
    reopened.close()


def test_deferred_messages_become_pending_when_due(tmp_path: Path) -> None:
    """A deferred message is not pending before its due time and is pending from it on."""
    ledger = Ledger(tmp_path / "sms.sqlite3")
    held = message(status=MessageStatus.DEFERRED, due_at=NOW + timedelta(hours=8))
    ledger.plan(held, NOW)
    assert ledger.release_due(NOW + timedelta(hours=7)) == 0
    assert ledger.pending() == []
    assert ledger.release_due(NOW + timedelta(hours=8)) == 1
    assert [m.event_id for m in ledger.pending()] == [held.event_id]
    ledger.close()


def test_a_claim_left_by_a_crash_becomes_uncertain_and_an_unclaimed_part_is_forgotten(tmp_path: Path) -> None:
    """On restart a part claimed but never settled is uncertain (never re-sent); an unclaimed one may go again."""
    planned = message(parts=3)
    ledger = Ledger(tmp_path / "sms.sqlite3")
    ledger.plan(planned, NOW)
    ledger.claim(planned.event_id, planned.phone, 1, NOW)
    ledger.settle_part(planned.event_id, planned.phone, 1, status=PartStatus.SENT, reply="0: Accepted", now=NOW)
    ledger.claim(planned.event_id, planned.phone, 2, NOW)
    ledger.claim(planned.event_id, planned.phone, 3, NOW)
    ledger.unclaim(planned.event_id, planned.phone, 3)
    ledger.close()
    reopened = Ledger(tmp_path / "sms.sqlite3")
    assert reopened.recover(NOW) == 1
    assert reopened.parts(planned.event_id, planned.phone) == {1: PartStatus.SENT, 2: PartStatus.UNCERTAIN}
    assert reopened.sent_at(planned.event_id, planned.phone) == [NOW]
    reopened.close()


def test_settling_records_the_status_and_reason(tmp_path: Path) -> None:
    """A failed message keeps the gateway's reason."""
    planned = message()
    ledger = Ledger(tmp_path / "sms.sqlite3")
    ledger.plan(planned, NOW)
    ledger.settle(planned.event_id, planned.phone, MessageStatus.FAILED, NOW, "bad number")
    settled = ledger.message(planned.event_id, planned.phone)
    assert settled is not None
    assert (settled.status, settled.reason) == (MessageStatus.FAILED, "bad number")
    ledger.close()
