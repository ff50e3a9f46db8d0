"""A tier's releases in the order the portal read them, paged with a cursor of topic positions (the HTTP API's
``GET /api/v1/records``).

A cursor says, for each partition of the tier topic, the offset to read from next. A page is the first records
after the cursor in reading order; each partition is read in offset order, so taking a prefix of that order takes
a prefix of every partition's remaining records: the next page starts exactly where this one ended, with no gap and
no repeat, even after the portal restarts and reads the partitions interleaved differently. An event released twice
to the tier (the tier topic is at least once) is kept the first time only, as on the boards.

Pure state, fed by the follower; the cursor's text form is opaque to callers (base64 of a small JSON object).
"""

from __future__ import annotations

import base64
import binascii
import bisect
import heapq
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice
from uuid import UUID

from consumers.portal.board import Notice
from firebus.events import Audience

Cursor = dict[int, int]
"""Partition → the offset to read from next (a partition not named: from its start)."""


@dataclass
class _Partition:
    offsets: list[int] = field(default_factory=list)
    entries: list[tuple[int, int, Notice]] = field(default_factory=list)
    """(reading order, offset, notice), ascending in both."""


class ReleaseLog:
    """One tier's releases, by topic position."""

    def __init__(self) -> None:
        self._partitions: dict[int, _Partition] = {}
        self._seen: set[UUID] = set()
        self._read = 0

    def __len__(self) -> int:
        return sum(len(partition.offsets) for partition in self._partitions.values())

    def add(self, partition: int, offset: int, notice: Notice) -> bool:
        """Keep a release read at ``partition``/``offset``; False for one kept before (same event) or a
        position not after the partition's last (the follower reads each partition forwards)."""
        kept = self._partitions.setdefault(partition, _Partition())
        if notice.event_id in self._seen or (kept.offsets and offset <= kept.offsets[-1]):
            return False
        self._seen.add(notice.event_id)
        self._read += 1
        kept.offsets.append(offset)
        kept.entries.append((self._read, offset, notice))
        return True

    def page(self, cursor: Cursor, limit: int) -> tuple[list[Notice], Cursor]:
        """Up to ``limit`` releases after ``cursor``, in reading order, and the cursor after them."""

        def after(partition: int, kept: _Partition) -> Iterator[tuple[int, int, int, Notice]]:
            start = bisect.bisect_left(kept.offsets, cursor.get(partition, 0))
            for read, offset, notice in islice(kept.entries, start, None):
                yield read, partition, offset, notice

        taken = list(islice(heapq.merge(*(after(p, kept) for p, kept in self._partitions.items())), limit))
        moved = dict(cursor)
        for _read, partition, offset, _notice in taken:
            moved[partition] = offset + 1
        return [notice for *_, notice in taken], moved


def encode_cursor(tier: Audience, cursor: Cursor) -> str:
    data = {"t": tier.value, "p": {str(partition): offset for partition, offset in sorted(cursor.items())}}
    text = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(text).decode().rstrip("=")


def decode_cursor(tier: Audience, text: str) -> Cursor:
    """The positions of a cursor this API gave out for ``tier``; ``ValueError`` saying why for anything else."""
    foreign = "not a cursor of this API"
    try:
        data = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        positions = data["p"] if isinstance(data, dict) and isinstance(data.get("p"), dict) else None
        cursor = {int(partition): int(offset) for partition, offset in (positions or {}).items()}
    except (binascii.Error, UnicodeDecodeError, json.JSONDecodeError, TypeError, ValueError):
        raise ValueError(foreign) from None
    if positions is None or any(partition < 0 or offset < 0 for partition, offset in cursor.items()):
        raise ValueError(foreign)
    if data.get("t") != tier.value:
        raise ValueError(f"a cursor of another tier, not {tier.value}")
    return cursor
