"""The audit trail the HQ console searches, kept in memory from the followed audit topic.

Bounded: the newest :data:`AUDIT_KEPT` records (about a season's decisions at county scale); the whole trail stays
on the topic and in the archive (PostgreSQL ``audit`` table). A search scans at most that many prepared entries, so
it costs the same however long the topic's history is; a search for one event id is a dictionary lookup, and one
for an action reads that action's records only.
"""

from __future__ import annotations

import itertools
from collections import deque
from typing import NamedTuple
from uuid import UUID

from firebus.records import AuditEvent

AUDIT_KEPT = 100_000
AUDIT_SHOWN = 50
"""Records per page of the search: the newest first."""


class _Entry(NamedTuple):
    record: AuditEvent
    haystack: str
    """What free text is matched against, lowercased once when the record arrives."""


class AuditSearch(NamedTuple):
    records: list[AuditEvent]
    """The newest matching records first, at most ``limit``."""
    total: int
    """How many kept records match."""


def haystack(record: AuditEvent, extra: str = "") -> str:
    """The searchable text of a record: event id, type, unit, actor, reason, tier, details, and ``extra`` (the
    zh-CN words shown for them, so an officer can search for what they see)."""
    parts = (
        record.event_id,
        record.event_type,
        record.publisher_unit,
        record.actor,
        record.reason,
        record.tier,
        *record.details.values(),
    )
    return " ".join([*(str(part) for part in parts if part is not None), extra]).lower()


class AuditLog:
    """The newest audit records, each once (by audit id), in arrival order."""

    def __init__(self, *, kept: int = AUDIT_KEPT) -> None:
        self._entries: deque[_Entry] = deque(maxlen=kept)
        self._by_action: dict[str, deque[_Entry]] = {}
        self._ids: set[UUID] = set()
        self._by_event: dict[UUID, list[AuditEvent]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, record: AuditEvent, extra: str = "") -> bool:
        """Keep ``record``; False when it is here already (the topic is at least once)."""
        if record.audit_id in self._ids:
            return False
        if len(self._entries) == self._entries.maxlen:
            self._forget(self._entries[0].record)
        entry = _Entry(record, haystack(record, extra))
        self._entries.append(entry)
        self._by_action.setdefault(record.action.value, deque()).append(entry)
        self._ids.add(record.audit_id)
        if record.event_id is not None:
            self._by_event.setdefault(record.event_id, []).append(record)
        return True

    def _forget(self, record: AuditEvent) -> None:
        # The oldest record kept is the oldest of its action too: arrival order is kept in both.
        self._by_action[record.action.value].popleft()
        self._ids.discard(record.audit_id)
        if record.event_id is not None:
            kept = self._by_event.get(record.event_id, [])
            if kept and kept[0].audit_id == record.audit_id:
                kept.pop(0)
            if not kept:
                self._by_event.pop(record.event_id, None)

    def search(self, *, text: str = "", action: str = "", limit: int = AUDIT_SHOWN, skip: int = 0) -> AuditSearch:
        """Records with ``action`` (if given) whose text contains ``text`` (case-insensitive), newest first: the
        ``limit`` after the first ``skip``, and how many match in all."""
        needle = text.strip().lower()
        event_id = _as_uuid(needle)
        if event_id is not None:
            kept = self._by_event.get(event_id, [])
            matching = [record for record in reversed(kept) if not action or record.action.value == action]
        else:
            source = self._by_action.get(action, deque()) if action else self._entries
            if not needle:
                # Nothing to match: the page is a slice, the total the length (no scan at all).
                page = [entry.record for entry in itertools.islice(reversed(source), skip, skip + limit)]
                return AuditSearch(page, len(source))
            # One comprehension over the prepared texts: the whole search is this scan, bounded by AUDIT_KEPT.
            matching = [entry.record for entry in reversed(source) if needle in entry.haystack]
        return AuditSearch(matching[skip : skip + limit], len(matching))


def _as_uuid(text: str) -> UUID | None:
    if len(text) != 36:
        return None
    try:
        return UUID(text)
    except ValueError:
        return None
