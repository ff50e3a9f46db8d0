"""Finish an interrupted release: find which of its tier records already landed.

Used only when a replay meets an item left ``releasing`` by a crash: the tier topics are read (without a consumer
group) from shortly before the release began, and the release ids found there are the ones not to send again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import datetime, timedelta
from uuid import UUID

import structlog

from firebus.codec import Codec
from firebus.errors import DecodeError, InvalidEventError
from firebus.kafka import client_options, fetched_end_offsets, start_reader
from firebus.records import Release
from firebus.settings import Settings
from firebus.topics import Topic

# Producer clocks and the broker's append time may differ; look back this far before the release began.
LOOK_BACK = timedelta(minutes=2)
SCAN_LIMIT_S = 30.0

log = structlog.get_logger(__name__)


async def landed_release_ids(
    settings: Settings, codec: Codec, topics: Iterable[Topic], *, since: datetime, wanted: Iterable[UUID]
) -> set[UUID]:
    """The subset of ``wanted`` release ids present on ``topics`` from ``since - LOOK_BACK`` to their current end."""
    missing = set(wanted)
    found: set[UUID] = set()
    consumer, partitions = await start_reader(settings, list(topics), purpose="reconcile")
    try:
        consumer.assign(partitions)
        start_ms = int((since - LOOK_BACK).timestamp() * 1000)
        starts = await consumer.offsets_for_times(dict.fromkeys(partitions, start_ms))
        ends = await fetched_end_offsets(
            client_options(settings, client_id=f"{settings.client_id}-reconcile"), partitions
        )
        remaining = {}
        for tp in partitions:
            found_offset = starts.get(tp)
            start = found_offset.offset if found_offset is not None else ends[tp]
            if start < ends[tp]:
                consumer.seek(tp, start)
                remaining[tp] = ends[tp]
        deadline = asyncio.get_running_loop().time() + SCAN_LIMIT_S
        while remaining and missing - found:
            if asyncio.get_running_loop().time() > deadline:
                # Unknown is treated as not landed: a resent release keeps its id, which every sink applies once.
                log.warning("release_scan_incomplete", unread_partitions=len(remaining), found=len(found))
                break
            batches = await consumer.getmany(*remaining, timeout_ms=500)
            for messages in batches.values():
                for message in messages:
                    release_id = _release_id(codec, message.value)
                    if release_id in missing:
                        found.add(release_id)
            for tp in list(remaining):
                if await consumer.position(tp) >= remaining[tp]:
                    del remaining[tp]
        return found
    finally:
        await consumer.stop()


def _release_id(codec: Codec, value: bytes | None) -> UUID | None:
    if not value:
        return None
    try:
        record = codec.decode(value)
    except (DecodeError, InvalidEventError):
        return None
    return record.release_id if isinstance(record, Release) else None
