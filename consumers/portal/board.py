"""What the portal shows of a tier: released notices folded into threads (an alert with its updates and cancels).

Pure state, fed one :class:`~firebus.records.Release` at a time by the follower. Keyed by event id, so a release
seen twice (a replay, a re-release after a crash) never shows twice; a thread's current state is its latest notice,
and the rest is its history.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from firebus.events import Event, EventType, MessageKind
from firebus.records import Release


@dataclass(frozen=True)
class Notice:
    """One released event as its tier sees it: the release record and the (redacted) event it carries."""

    release: Release
    event: Event[Any]

    @property
    def event_id(self) -> UUID:
        return self.release.event_id

    @property
    def event_type(self) -> EventType:
        return self.release.event_type

    @property
    def kind(self) -> MessageKind:
        return self.release.kind

    @property
    def published_at(self) -> datetime:
        return self.event.header.published_at

    @property
    def order(self) -> tuple[datetime, datetime]:
        return self.event.header.published_at, self.release.released_at


@dataclass
class Thread:
    """An alert and everything that updated or cancelled it, oldest first."""

    thread_id: UUID
    notices: list[Notice] = field(default_factory=list)

    @property
    def current(self) -> Notice:
        """The latest notice: what holds now."""
        return self.notices[-1]

    @property
    def original(self) -> Notice | None:
        return next((notice for notice in self.notices if notice.event_id == self.thread_id), None)

    @property
    def cancelled(self) -> bool:
        return self.current.kind is MessageKind.CANCEL

    @property
    def history(self) -> list[Notice]:
        """Every notice but the current one, newest first."""
        return list(reversed(self.notices[:-1]))

    @property
    def updated_at(self) -> tuple[datetime, datetime]:
        return self.current.order

    @property
    def townships(self) -> set[str]:
        return {township for notice in self.notices for township in notice.event.header.townships}


class Board:
    """Every thread of one tier, with each event at most once."""

    def __init__(self) -> None:
        self._threads: dict[UUID, Thread] = {}
        self._notices: dict[UUID, Notice] = {}

    def __len__(self) -> int:
        return len(self._notices)

    def add(self, notice: Notice) -> bool:
        """Fold one notice in; False when its event is already on the board."""
        if notice.event_id in self._notices:
            return False
        self._notices[notice.event_id] = notice
        thread = self._threads.setdefault(notice.release.thread_id, Thread(notice.release.thread_id))
        thread.notices.append(notice)
        thread.notices.sort(key=lambda each: each.order)
        return True

    def notice(self, event_id: UUID) -> Notice | None:
        return self._notices.get(event_id)

    def thread(self, thread_id: UUID) -> Thread | None:
        return self._threads.get(thread_id)

    def thread_of(self, event_id: UUID) -> Thread | None:
        notice = self._notices.get(event_id)
        return None if notice is None else self._threads.get(notice.release.thread_id)

    def threads(self, *, event_type: EventType | None = None, township: str | None = None) -> list[Thread]:
        """Threads newest activity first, optionally only of one event type or concerning one township."""
        chosen: Iterable[Thread] = self._threads.values()
        if event_type is not None:
            chosen = (thread for thread in chosen if thread.current.event_type is event_type)
        if township:
            chosen = (thread for thread in chosen if township in thread.townships)
        return sorted(chosen, key=lambda thread: thread.updated_at, reverse=True)
