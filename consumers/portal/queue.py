"""The HQ console's review queue: urgency order, filters, paging and the header's counts.

Pure functions over the pending :class:`~firebus.records.ReviewItem` values the portal already follows (no Kafka,
no I/O), so a page costs the same however long the review topic's history is. The order, top first:

1. fire reports still within their review deadline, **newest first** — a new fire lands on top, where the officer
   looks, while there is still time to act on it;
2. overdue items (past their deadline, or escalated): fire reports first, then the longest overdue first;
3. everything else, the nearest deadline first.

Each item also gets a ``rank`` string that sorts the same way, so the console's script can put an item pushed over
the live stream at its place among the ones shown without knowing the rules.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum
from math import ceil
from typing import NamedTuple

from firebus.events import EventType
from firebus.records import ReviewItem

PAGE_SIZE = 25
"""Items per page: a page the officer can scan, a DOM the phone can carry."""
_FAR = 10**15
"""Greater than any millisecond timestamp we meet (year 33658): newest-first keys count down from it."""


class Band(IntEnum):
    """Where in the queue an item sorts (lower is higher up)."""

    FRESH_FIRE = 0
    OVERDUE = 1
    ROUTINE = 2


def is_overdue(item: ReviewItem, now: datetime) -> bool:
    """Past its review deadline, or already escalated by the processors."""
    return item.escalated or item.deadline <= now


def is_fire(item: ReviewItem) -> bool:
    return item.event_type is EventType.FIRE_REPORT


def band(item: ReviewItem, now: datetime) -> Band:
    if is_overdue(item, now):
        return Band.OVERDUE
    return Band.FRESH_FIRE if is_fire(item) else Band.ROUTINE


def rank(item: ReviewItem, now: datetime) -> str:
    """A string that sorts items in queue order (top first); ties broken by event id, so the order is total."""
    where = band(item, now)
    moment = _FAR - _ms(item.received_at) if where is Band.FRESH_FIRE else _ms(item.deadline)
    fire = 0 if is_fire(item) else 1
    return f"{int(where)}{fire}{moment:016d}{item.event_id}"


@dataclass(frozen=True)
class QueueFilter:
    """What the officer narrowed the queue to; empty strings / False mean no narrowing."""

    event_type: str = ""
    township: str = ""
    unit: str = ""
    overdue: bool = False

    @property
    def active(self) -> bool:
        return bool(self.event_type or self.township or self.unit or self.overdue)

    def admits(self, item: ReviewItem, now: datetime) -> bool:
        if self.event_type and item.event_type.value != self.event_type:
            return False
        if self.township and self.township not in item.townships:
            return False
        if self.unit and item.publisher_unit != self.unit:
            return False
        return not self.overdue or is_overdue(item, now)

    def query(self, *, page: int = 1) -> str:
        """The query string of this filter (and page), for links: ``type=fire_report&page=2``."""
        from urllib.parse import urlencode  # noqa: PLC0415

        pairs = [("type", self.event_type), ("township", self.township), ("unit", self.unit)]
        pairs += [("overdue", "1" if self.overdue else ""), ("page", str(page) if page > 1 else "")]
        return urlencode([(key, value) for key, value in pairs if value])


class Counts(NamedTuple):
    """The console header: how many wait, how many are overdue, how many of each type."""

    total: int
    overdue: int
    by_type: dict[EventType, int]


def counts(items: Iterable[ReviewItem], now: datetime) -> Counts:
    total = overdue = 0
    by_type: Counter[EventType] = Counter()
    for item in items:
        total += 1
        overdue += is_overdue(item, now)
        by_type[item.event_type] += 1
    return Counts(total, overdue, {event_type: by_type[event_type] for event_type in EventType if by_type[event_type]})


@dataclass(frozen=True)
class QueuePage:
    """One page of the filtered queue, in urgency order."""

    items: list[ReviewItem]
    page: int
    pages: int
    matching: int
    ranks: dict[str, str] = field(default_factory=dict)
    """Each shown item's :func:`rank`, by event id (as text)."""


def queue_page(items: Iterable[ReviewItem], chosen: QueueFilter, now: datetime, *, page: int = 1) -> QueuePage:
    """The ``page``-th page (from 1; clamped to the pages there are) of the items ``chosen`` admits."""
    ranked = sorted((rank(item, now), item) for item in items if chosen.admits(item, now))
    pages = max(1, ceil(len(ranked) / PAGE_SIZE))
    page = min(max(page, 1), pages)
    shown = ranked[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    return QueuePage(
        items=[item for _, item in shown],
        page=page,
        pages=pages,
        matching=len(ranked),
        ranks={str(item.event_id): key for key, item in shown},
    )


def page_number(text: str | None) -> int:
    """A page number from the query string; anything that is not a positive number is page 1."""
    return int(text) if text and text.isdigit() and 0 < len(text) < 7 and int(text) > 0 else 1


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)
