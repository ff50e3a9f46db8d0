"""The portal's view of the bus: one board per tier, the HQ live list, the review queue, and the SSE listeners
waiting for changes to the last two."""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from typing import Any
from uuid import UUID

import structlog

from consumers.portal.board import Board, Notice
from firebus.codec import Codec
from firebus.errors import DecodeError, InvalidEventError
from firebus.events import Audience, Event
from firebus.records import Release, ReviewItem, ReviewStatus

log = structlog.get_logger(__name__)

LIVE_KEPT = 200
LIVE_REMEMBERED = 20_000
"""HQ live event ids remembered after they leave the shown list: the topic is at least once (a processors restart
sends some events again, possibly long after), and a repeat must not come back to the top of the list."""
LISTENER_BACKLOG = 100

ConsoleUpdate = Event[Any] | ReviewItem
"""What an HQ console listener is handed: a live fire event, or a review item whose state changed."""


class PortalState:
    """Everything the pages read; the follower writes it, on the portal's one event loop."""

    def __init__(self, *, codec: Codec | None = None) -> None:
        self.codec = codec or Codec()
        self.boards: dict[Audience, Board] = {tier: Board() for tier in Audience}
        self.live: deque[Event[Any]] = deque(maxlen=LIVE_KEPT)
        self._live_seen: OrderedDict[UUID, None] = OrderedDict()
        self.pending: dict[UUID, ReviewItem] = {}
        """Items awaiting review, from the review state's changelog."""
        self._listeners: set[asyncio.Queue[ConsoleUpdate]] = set()
        self.ready = asyncio.Event()

    def add_release(self, release: Release) -> bool:
        """Fold a tier record into its board; False when its event was there already or cannot be read."""
        try:
            event = self.codec.decode(release.event)
        except (DecodeError, InvalidEventError) as exc:
            log.warning("portal_release_unreadable", event_id=str(release.event_id), error=str(exc))
            return False
        if not isinstance(event, Event):
            return False
        return self.boards[release.tier].add(Notice(release=release, event=event))

    def add_live(self, event: Event[Any]) -> bool:
        """Keep an HQ live event (newest first) and hand it to every listener; False for one seen before.

        ``firebus.hq.live`` is at least once, with the event id as the idempotence key: one event is shown once,
        however often and however late it comes again."""
        if event.header.event_id in self._live_seen:
            return False
        self._live_seen[event.header.event_id] = None
        if len(self._live_seen) > LIVE_REMEMBERED:
            self._live_seen.popitem(last=False)
        self.live.appendleft(event)
        self._tell(event)
        return True

    def apply_item(self, item: ReviewItem) -> bool:
        """Keep the review queue current; False when the item's state changes nothing the queue shows."""
        if item.status is ReviewStatus.PENDING:
            if self.pending.get(item.event_id) == item:
                return False
            self.pending[item.event_id] = item
        elif self.pending.pop(item.event_id, None) is None:
            return False
        self._tell(item)
        return True

    def _tell(self, update: ConsoleUpdate) -> None:
        for queue in list(self._listeners):
            if queue.qsize() < LISTENER_BACKLOG:
                queue.put_nowait(update)

    def listen(self) -> asyncio.Queue[ConsoleUpdate]:
        queue: asyncio.Queue[ConsoleUpdate] = asyncio.Queue()
        self._listeners.add(queue)
        return queue

    def unlisten(self, queue: asyncio.Queue[ConsoleUpdate]) -> None:
        self._listeners.discard(queue)

    @property
    def listeners(self) -> int:
        return len(self._listeners)
