"""The portal's view of the bus: one board per tier, the HQ live list, and the SSE listeners waiting for it."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any
from uuid import UUID

import structlog

from consumers.portal.board import Board, Notice
from firebus.codec import Codec
from firebus.errors import DecodeError, InvalidEventError
from firebus.events import Audience, Event
from firebus.records import Release

log = structlog.get_logger(__name__)

LIVE_KEPT = 200
LISTENER_BACKLOG = 100


class PortalState:
    """Everything the pages read; the follower writes it, on the portal's one event loop."""

    def __init__(self, *, codec: Codec | None = None) -> None:
        self.codec = codec or Codec()
        self.boards: dict[Audience, Board] = {tier: Board() for tier in Audience}
        self.live: deque[Event[Any]] = deque(maxlen=LIVE_KEPT)
        self._live_ids: set[UUID] = set()
        self._listeners: set[asyncio.Queue[Event[Any]]] = set()
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
        """Keep an HQ live event (newest first) and hand it to every listener; False for one seen before."""
        if event.header.event_id in self._live_ids:
            return False
        if len(self.live) == self.live.maxlen:
            self._live_ids.discard(self.live[-1].header.event_id)
        self._live_ids.add(event.header.event_id)
        self.live.appendleft(event)
        for queue in list(self._listeners):
            if queue.qsize() < LISTENER_BACKLOG:
                queue.put_nowait(event)
        return True

    def listen(self) -> asyncio.Queue[Event[Any]]:
        queue: asyncio.Queue[Event[Any]] = asyncio.Queue()
        self._listeners.add(queue)
        return queue

    def unlisten(self, queue: asyncio.Queue[Event[Any]]) -> None:
        self._listeners.discard(queue)

    @property
    def listeners(self) -> int:
        return len(self._listeners)
