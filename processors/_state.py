"""The review items a processors worker holds: faust's table store, and a decoded view of the open ones.

The store maps event ids to encoded :class:`~firebus.records.ReviewItem`\\s; faust restores it from the changelog
(``firebus.review.items``) whenever partitions are assigned. It also holds standby copies of other workers'
partitions, which only their owner may change. Item states become durable by the changelog records
:meth:`ReviewState.persist` returns, which the worker sends (and awaits) with the records they announce.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, MutableMapping
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from firebus.codec import Codec
from firebus.records import ReviewItem, ReviewStatus
from firebus.topics import REVIEW_ITEMS, Topic
from processors._sender import partition_for
from processors.outgoing import Outgoing
from processors.review import SETTLED


@dataclass(frozen=True)
class Tombstone:
    """A record with no value: a compacted topic drops ``key`` (the sender's record, like an Outgoing)."""

    topic: Topic
    key: bytes
    partition: int
    value: None = None
    headers: tuple[tuple[str, bytes], ...] = ()


class ReviewState:
    """Look items up, keep their new states, and say which are this worker's to escalate."""

    def __init__(self, store: Callable[[], MutableMapping[bytes, bytes]], codec: Codec, *, partitions: int) -> None:
        self._store = store
        """The table's store, asked for at each use: faust creates it lazily."""
        self.codec = codec
        self.partitions = partitions
        """The co-partitioned topics' partition count on the broker (see firebus.topics.CO_PARTITIONED)."""
        self._open: dict[UUID, ReviewItem] = {}
        """Decoded open items (and, within a batch, every item it touched); the store holds them all, encoded."""
        self._settled: dict[UUID, datetime] = {}
        """Items known to be released, rejected or withdrawn, and when they settled: final, so escalation need not
        decode them again, and each leaves the store once past its retention (:meth:`expired`)."""

    def lookup(self, event_id: UUID) -> ReviewItem | None:
        item = self._open.get(event_id)
        if item is None:
            # The store itself, asked first: a lookup of a key it does not hold (every new event) raises inside.
            key, store = str(event_id).encode(), self._store()
            stored = store[key] if key in store else None  # noqa: SIM401  (see above)
            if stored is not None:
                decoded = self.codec.decode(stored)
                if not isinstance(decoded, ReviewItem):
                    raise TypeError(f"{type(decoded).__name__} stored as the review item of {event_id}")
                item = decoded
                self._remember(item)
        return item

    def note(self, items: Iterable[ReviewItem]) -> None:
        """Later records of a batch must see this one's effect (an event and its cancel may share a batch) before
        the batch's states are persisted."""
        for item in items:
            self._open[item.event_id] = item

    def persist(self, partition: int, items: Iterable[ReviewItem]) -> list[Outgoing]:
        """Keep the items' new states locally; the returned changelog records make them durable once sent."""
        records = []
        for item in items:
            key, value = str(item.event_id).encode(), self.codec.encode(item)
            self._store()[key] = value
            self._remember(item)
            records.append(Outgoing(REVIEW_ITEMS, key, value, partition))
        return records

    def partition_of(self, item: ReviewItem) -> int:
        """The inbox (and changelog) partition an item lives on: the default partition of its partition key."""
        return partition_for(item.partition_key.encode(), self.partitions)

    def _remember(self, item: ReviewItem) -> None:
        """Keep an open item decoded; a settled one stays only in the store (read again on the rare lookup of an
        update's or a cancel's original), so the decoded state does not grow with every event ever reviewed."""
        if item.status in SETTLED:
            self._open.pop(item.event_id, None)
            self._settled[item.event_id] = settled_at(item)
        else:
            self._open[item.event_id] = item
            self._settled.pop(item.event_id, None)

    def held(self, partitions: set[int]) -> list[ReviewItem]:
        """Every item the store holds for ``partitions``, settled or not (what a lost broker's worker rescues)."""
        items = (self.lookup(UUID(key.decode())) for key in list(self._store().keys()))
        return [item for item in items if item is not None and self.partition_of(item) in partitions]

    def forget(self) -> None:
        """After a rebalance: what was derived from the old assignment may be stale (others owned those partitions)."""
        self._open.clear()
        self._settled.clear()

    def expired(self, active_partitions: set[int], *, before: datetime) -> list[ReviewItem]:
        """Settled items of the partitions this worker is active for that settled before ``before``; as known from
        the last :meth:`unsettled` scan (which decodes each item once after a rebalance). Never a pending one."""
        old = [event_id for event_id, settled in self._settled.items() if settled < before]
        items = (self.lookup(event_id) for event_id in old)
        return [
            item
            for item in items
            if item is not None and item.status in SETTLED and self.partition_of(item) in active_partitions
        ]

    def purge(self, items: Iterable[ReviewItem]) -> list[Tombstone]:
        """Drop the items from the store and the decoded view; the returned tombstones drop them from the changelog
        (and so from every later restore and every reader of the topic) once sent."""
        records = []
        store = self._store()
        for item in items:
            key = str(item.event_id).encode()
            store.pop(key, None)
            self._open.pop(item.event_id, None)
            self._settled.pop(item.event_id, None)
            records.append(Tombstone(REVIEW_ITEMS, key, self.partition_of(item)))
        return records

    def unsettled(self, active_partitions: set[int]) -> list[ReviewItem]:
        """The items not known to be settled, of the partitions this worker is active for (its store also holds
        standby copies of other workers' partitions, which only their owner may change)."""
        event_ids = (UUID(key.decode()) for key in list(self._store().keys()))
        items = (self.lookup(event_id) for event_id in event_ids if event_id not in self._settled)
        return [
            item
            for item in items
            if item is not None and item.status not in SETTLED and self.partition_of(item) in active_partitions
        ]


def settled_at(item: ReviewItem) -> datetime:
    """When a settled item settled, as far as it says: its release began or its decision was made; a withdrawn
    item records neither, and counts from its receipt (its retention may so end early, never late)."""
    return max(
        item.received_at,
        item.releasing_since or item.received_at,
        item.decision.decided_at if item.decision is not None else item.received_at,
    )


@dataclass(frozen=True)
class QueueFigures:
    """What the review queue of a worker's partitions looks like at one moment (the metrics' review gauges)."""

    depth: dict[ReviewStatus, int]
    """Open items by status (pending, releasing)."""
    oldest_pending_age_s: float
    """Age of the oldest pending item; 0 when none is pending."""
    overdue: int
    """Pending items past their deadline (escalated or not)."""


def queue_figures(items: Iterable[ReviewItem], now: datetime) -> QueueFigures:
    """The figures of the open ``items`` (as :meth:`ReviewState.unsettled` returns them) at ``now``."""
    open_items = [item for item in items if item.status not in SETTLED]
    pending = [item for item in open_items if item.status is ReviewStatus.PENDING]
    oldest = min((item.received_at for item in pending), default=now)
    return QueueFigures(
        depth=dict(Counter(item.status for item in open_items)),
        oldest_pending_age_s=max(0.0, (now - oldest).total_seconds()),
        overdue=sum(1 for item in pending if item.deadline < now),
    )
