"""The portal follows the tier topics, the HQ live topic, the review state's changelog and the audit topic without a
consumer group.

It reads each from the beginning (so a restarted portal shows everything again) and keeps following; the state's
``ready`` is set once it has caught up with the ends the topics had when it started.
"""

from __future__ import annotations

import asyncio

import structlog

from consumers.portal.state import PortalState
from firebus.errors import DecodeError, InvalidEventError
from firebus.events import Event
from firebus.kafka import TopicScan
from firebus.records import AuditEvent, Release, ReviewItem
from firebus.settings import Settings
from firebus.topics import AUDIT, HQ_LIVE, REVIEW_ITEMS, TIERS

log = structlog.get_logger(__name__)

FOLLOWED = (*TIERS.values(), HQ_LIVE, REVIEW_ITEMS, AUDIT)


async def follow(settings: Settings, state: PortalState, stop: asyncio.Event) -> None:
    """Feed ``state`` from the followed topics until ``stop`` is set."""
    async with TopicScan(settings, FOLLOWED, purpose="portal", follow=True, idle_ms=300) as scan:
        log.info("portal_following", topics=[topic.name for topic in FOLLOWED], backlog=scan.total)
        async for step in scan:
            for record in step.records:
                _apply(state, record.value, (record.partition, record.offset))
            if scan.caught_up and not state.ready.is_set():
                state.ready.set()
                log.info("portal_caught_up", **{tier.value: len(board) for tier, board in state.boards.items()})
            if stop.is_set():
                return


def _apply(state: PortalState, value: bytes | None, position: tuple[int, int]) -> None:
    if not value:
        return
    try:
        record = state.codec.decode(value)
    except (DecodeError, InvalidEventError) as exc:
        log.warning("portal_record_unreadable", error=str(exc))
        return
    if isinstance(record, Release):
        state.add_release(record, position)
    elif isinstance(record, Event):
        state.add_live(record)
    elif isinstance(record, ReviewItem):
        state.apply_item(record)
    elif isinstance(record, AuditEvent):
        state.add_audit(record)
