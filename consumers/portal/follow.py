"""The portal follows the tier topics, the HQ live topic and the review state's changelog without a consumer group.

It reads each from the beginning (so a restarted portal shows everything again) and keeps following; the state's
``ready`` is set once it has caught up with the ends the topics had when it started.
"""

from __future__ import annotations

import asyncio

import structlog
from aiokafka.errors import KafkaError

from consumers.portal.state import PortalState
from firebus.errors import DecodeError, InvalidEventError
from firebus.events import Event
from firebus.kafka import client_options, fetched_end_offsets, start_reader
from firebus.records import Release, ReviewItem
from firebus.settings import Settings
from firebus.topics import HQ_LIVE, REVIEW_ITEMS, TIERS

log = structlog.get_logger(__name__)

FOLLOWED = (*TIERS.values(), HQ_LIVE, REVIEW_ITEMS)


async def follow(settings: Settings, state: PortalState, stop: asyncio.Event) -> None:
    """Feed ``state`` from the followed topics until ``stop`` is set."""
    options = client_options(settings, client_id=f"{settings.client_id}-portal")
    consumer, partitions = await start_reader(settings, FOLLOWED, purpose="portal")
    try:
        behind = {tp: end for tp, end in (await fetched_end_offsets(options, partitions)).items() if end > 0}
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        if not behind:
            state.ready.set()
        log.info("portal_following", topics=[topic.name for topic in FOLLOWED], backlog=sum(behind.values()))
        while not stop.is_set():
            try:
                batches = await consumer.getmany(timeout_ms=300)
            except KafkaError as exc:
                log.warning("portal_follow_retry", error=str(exc))
                await asyncio.sleep(1.0)
                continue
            for tp, messages in batches.items():
                for message in messages:
                    _apply(state, message.value)
                if messages and tp in behind and messages[-1].offset + 1 >= behind[tp]:
                    del behind[tp]
            if not behind and not state.ready.is_set():
                state.ready.set()
                log.info("portal_caught_up", **{tier.value: len(board) for tier, board in state.boards.items()})
    finally:
        await consumer.stop()


def _apply(state: PortalState, value: bytes | None) -> None:
    if not value:
        return
    try:
        record = state.codec.decode(value)
    except (DecodeError, InvalidEventError) as exc:
        log.warning("portal_record_unreadable", error=str(exc))
        return
    if isinstance(record, Release):
        state.add_release(record)
    elif isinstance(record, Event):
        state.add_live(record)
    elif isinstance(record, ReviewItem):
        state.apply_item(record)
