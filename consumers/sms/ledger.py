"""The SMS ledger: one SQLite file recording every SMS planned, held, sent or failed, so none goes twice.

One row per (event, phone number) in ``messages`` — the first plan wins, a redelivered release finds its rows there —
and one row per part handed to the gateway in ``parts``. A part is *claimed* (``sending``) before the gateway is
asked and settled after: ``sent`` with the gateway's reply, deleted again when the gateway certainly did not take it
(so it is retried), or ``uncertain`` when that cannot be known (a time-out, or a crash between claim and reply).
An uncertain part is never sent again: for SMS to a person, never twice wins over at least once, and the ledger
and the log say which parts may be missing.

Every write is committed at once (autocommit, WAL, ``synchronous=FULL``): the ledger is durable before the runner
commits the offsets that would otherwise redeliver the release.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Literal
from uuid import UUID

from firebus.errors import ConfigurationError
from firebus.events import Audience, EventType

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    event_id    TEXT NOT NULL,
    phone       TEXT NOT NULL,
    recipient   TEXT NOT NULL,
    release_id  TEXT NOT NULL,
    event_type  TEXT NOT NULL,
    tier        TEXT NOT NULL,
    text        TEXT NOT NULL,
    parts       INTEGER NOT NULL,
    reference   INTEGER NOT NULL,
    status      TEXT NOT NULL,
    reason      TEXT,
    due_at      TEXT NOT NULL,
    planned_at  TEXT NOT NULL,
    settled_at  TEXT,
    PRIMARY KEY (event_id, phone)
);
CREATE INDEX IF NOT EXISTS messages_due ON messages (status, due_at);
CREATE TABLE IF NOT EXISTS parts (
    event_id    TEXT NOT NULL,
    phone       TEXT NOT NULL,
    part        INTEGER NOT NULL,
    status      TEXT NOT NULL,
    reply       TEXT,
    claimed_at  TEXT NOT NULL,
    settled_at  TEXT,
    PRIMARY KEY (event_id, phone, part)
);
"""


class MessageStatus(StrEnum):
    PENDING = "pending"  # to be sent now
    DEFERRED = "deferred"  # held for quiet hours until due_at
    SENT = "sent"  # every part accepted by the gateway
    UNCERTAIN = "uncertain"  # settled, but some part may not have been accepted; never re-sent
    FAILED = "failed"  # the gateway refused it for good (reason)


class PartStatus(StrEnum):
    SENDING = "sending"
    SENT = "sent"
    UNCERTAIN = "uncertain"


@dataclass(frozen=True)
class Message:
    """One SMS to one phone number about one event."""

    event_id: UUID
    phone: str
    recipient: str
    release_id: UUID
    event_type: EventType
    tier: Audience
    text: str
    parts: int
    reference: int
    status: MessageStatus
    due_at: datetime
    reason: str | None = None


class Ledger:
    """The ledger file, opened once per sink."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(path, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise ConfigurationError(f"SMS ledger {path}: {exc}") from exc
        self.path = path

    def close(self) -> None:
        self._db.close()

    def recover(self, now: datetime) -> int:
        """Parts claimed but never settled (the sink died while asking the gateway) become uncertain; how many."""
        cursor = self._db.execute(
            "UPDATE parts SET status = ?, reply = 'claimed before a restart; outcome unknown', settled_at = ?"
            " WHERE status = ?",
            (PartStatus.UNCERTAIN, _iso(now), PartStatus.SENDING),
        )
        return cursor.rowcount

    # --- messages ------------------------------------------------------------------------------------------------

    def plan(self, message: Message, now: datetime) -> bool:
        """Record ``message`` unless one for the same event and phone exists; True when it is new."""
        cursor = self._db.execute(
            "INSERT OR IGNORE INTO messages (event_id, phone, recipient, release_id, event_type, tier, text, parts,"
            " reference, status, reason, due_at, planned_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                str(message.event_id),
                message.phone,
                message.recipient,
                str(message.release_id),
                message.event_type.value,
                message.tier.value,
                message.text,
                message.parts,
                message.reference,
                message.status.value,
                message.reason,
                _iso(message.due_at),
                _iso(now),
            ),
        )
        return cursor.rowcount == 1

    def message(self, event_id: UUID, phone: str) -> Message | None:
        row = self._db.execute(f"{_SELECT} WHERE event_id = ? AND phone = ?", (str(event_id), phone)).fetchone()
        return None if row is None else _message(row)

    def messages(self, event_id: UUID | None = None) -> list[Message]:
        """Every message (of one event), oldest plan first."""
        if event_id is None:
            rows = self._db.execute(f"{_SELECT} ORDER BY planned_at, rowid").fetchall()
        else:
            rows = self._db.execute(f"{_SELECT} WHERE event_id = ? ORDER BY rowid", (str(event_id),)).fetchall()
        return [_message(row) for row in rows]

    def pending(self, event_id: UUID | None = None) -> list[Message]:
        """Messages to send now (of one event)."""
        return [message for message in self.messages(event_id) if message.status is MessageStatus.PENDING]

    def release_due(self, now: datetime) -> int:
        """Deferred messages whose time has come become pending; how many."""
        cursor = self._db.execute(
            "UPDATE messages SET status = ? WHERE status = ? AND due_at <= ?",
            (MessageStatus.PENDING, MessageStatus.DEFERRED, _iso(now)),
        )
        return cursor.rowcount

    def settle(
        self, event_id: UUID, phone: str, status: MessageStatus, now: datetime, reason: str | None = None
    ) -> None:
        self._db.execute(
            "UPDATE messages SET status = ?, reason = COALESCE(?, reason), settled_at = ?"
            " WHERE event_id = ? AND phone = ?",
            (status.value, reason, _iso(now), str(event_id), phone),
        )

    # --- parts ---------------------------------------------------------------------------------------------------

    def parts(self, event_id: UUID, phone: str) -> dict[int, PartStatus]:
        rows = self._db.execute(
            "SELECT part, status FROM parts WHERE event_id = ? AND phone = ?", (str(event_id), phone)
        ).fetchall()
        return {int(part): PartStatus(status) for part, status in rows}

    def claim(self, event_id: UUID, phone: str, part: int, now: datetime) -> None:
        self._db.execute(
            "INSERT INTO parts (event_id, phone, part, status, claimed_at) VALUES (?, ?, ?, ?, ?)",
            (str(event_id), phone, part, PartStatus.SENDING.value, _iso(now)),
        )

    def settle_part(
        self, event_id: UUID, phone: str, part: int, *, status: PartStatus, reply: str, now: datetime
    ) -> None:
        self._db.execute(
            "UPDATE parts SET status = ?, reply = ?, settled_at = ? WHERE event_id = ? AND phone = ? AND part = ?",
            (status.value, reply, _iso(now), str(event_id), phone, part),
        )

    def unclaim(self, event_id: UUID, phone: str, part: int) -> None:
        """The gateway certainly did not take the part: forget the claim, so it is sent when the gateway is back."""
        self._db.execute(
            "DELETE FROM parts WHERE event_id = ? AND phone = ? AND part = ? AND status = ?",
            (str(event_id), phone, part, PartStatus.SENDING.value),
        )

    def sent_at(self, event_id: UUID, phone: str) -> list[datetime]:
        """When each sent part of one message was accepted, in part order."""
        return self._sent_part_times("settled_at", event_id, phone)

    def handed_over_at(self, event_id: UUID, phone: str) -> list[datetime]:
        """When each sent part of one message was handed to the gateway (what the rate limit spaces), in part order."""
        return self._sent_part_times("claimed_at", event_id, phone)

    def _sent_part_times(
        self, column: Literal["settled_at", "claimed_at"], event_id: UUID, phone: str
    ) -> list[datetime]:
        rows = self._db.execute(
            f"SELECT {column} FROM parts WHERE event_id = ? AND phone = ? AND status = ? ORDER BY part",  # noqa: S608
            (str(event_id), phone, PartStatus.SENT.value),
        ).fetchall()
        return [datetime.fromisoformat(value) for (value,) in rows]


_SELECT = (
    "SELECT event_id, phone, recipient, release_id, event_type, tier, text, parts, reference, status, due_at, reason"
    " FROM messages"
)


def _message(row: tuple[str, ...]) -> Message:
    event_id, phone, recipient, release_id, event_type, tier, text, parts, reference, status, due_at, reason = row
    return Message(
        event_id=UUID(event_id),
        phone=phone,
        recipient=recipient,
        release_id=UUID(release_id),
        event_type=EventType(event_type),
        tier=Audience(tier),
        text=text,
        parts=int(parts),
        reference=int(reference),
        status=MessageStatus(status),
        due_at=datetime.fromisoformat(due_at),
        reason=reason,
    )


def _iso(moment: datetime) -> str:
    """UTC, fixed width, so text order is time order in SQL comparisons."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")
