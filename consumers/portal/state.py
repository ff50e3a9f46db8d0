"""The portal's view of the bus: one board per tier, the HQ live list, the review queue, the audit trail, the system
banner's alerts, and the SSE listeners waiting for changes to the live list, the queue and the banner.

Every page reads this state, never a topic: a page costs the same however long the topics' history is."""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import structlog

from consumers.portal.alerts import Alert
from consumers.portal.audit_log import AuditLog
from consumers.portal.board import Board, Notice
from consumers.portal.released import ReleaseLog
from firebus.codec import Codec
from firebus.errors import DecodeError, InvalidEventError
from firebus.events import Audience, Event
from firebus.records import AuditEvent, Release, ReviewItem, ReviewStatus

log = structlog.get_logger(__name__)

LIVE_KEPT = 200
LIVE_REMEMBERED = 20_000
"""HQ live event ids remembered after they leave the shown list: the topic is at least once (a processors restart
sends some events again, possibly long after), and a repeat must not come back to the top of the list."""
LISTENER_BACKLOG = 100


@dataclass(frozen=True)
class SystemStatus:
    """The system banner changed: these are its lines now (none: all is well)."""

    alerts: tuple[Alert, ...]


ConsoleUpdate = Event[Any] | ReviewItem | SystemStatus
"""What an HQ console listener is handed: a live fire event, a review item whose state changed, or the banner."""


class PortalState:
    """Everything the pages read; the follower writes it, on the portal's one event loop."""

    def __init__(self, *, codec: Codec | None = None) -> None:
        self.codec = codec or Codec()
        self.boards: dict[Audience, Board] = {tier: Board() for tier in Audience}
        self.released: dict[Audience, ReleaseLog] = {tier: ReleaseLog() for tier in Audience}
        self.live: deque[Event[Any]] = deque(maxlen=LIVE_KEPT)
        self._live_seen: OrderedDict[UUID, None] = OrderedDict()
        self.pending: dict[UUID, ReviewItem] = {}
        """Items awaiting review, from the review state's changelog."""
        self.audit = AuditLog()
        self.audit_words: Callable[[AuditEvent], str] = lambda record: ""
        """The zh-CN words shown for an audit record, so a search finds what the officer sees (set by the app)."""
        self._listeners: set[asyncio.Queue[ConsoleUpdate]] = set()
        self.ready = asyncio.Event()
        self.alerts: tuple[Alert, ...] = ()
        """What the system banner shows: stages down, Kafka unreachable (see :mod:`consumers.portal.watch`)."""
        self.follower_problem: str | None = None
        """Why the portal no longer follows the topics, when it stopped doing so."""

    def add_release(self, release: Release, position: tuple[int, int] | None = None) -> bool:
        """Fold a tier record into its board (and, read at ``position`` (partition, offset), into the tier's
        release log the HTTP API pages through); False when its event was there already or cannot be read."""
        try:
            event = self.codec.decode(release.event)
        except (DecodeError, InvalidEventError) as exc:
            log.warning("portal_release_unreadable", event_id=str(release.event_id), error=str(exc))
            return False
        if not isinstance(event, Event):
            return False
        notice = Notice(release=release, event=event)
        added = self.boards[release.tier].add(notice)
        if added and position is not None:
            self.released[release.tier].add(*position, notice)
        return added

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

    def add_audit(self, record: AuditEvent) -> bool:
        """Keep an audit record for the console's search; False for one kept already."""
        return self.audit.add(record, self.audit_words(record))

    def set_alerts(self, alerts: tuple[Alert, ...]) -> bool:
        """Show ``alerts`` in the banner; False when they are the ones shown already."""
        if alerts == self.alerts:
            return False
        self.alerts = alerts
        self._tell(SystemStatus(alerts))
        return True

    def _tell(self, update: ConsoleUpdate) -> None:
        for queue in list(self._listeners):
            # A banner change is never dropped: it is rare, and a console must not keep showing all is well.
            if queue.qsize() < LISTENER_BACKLOG or isinstance(update, SystemStatus):
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
