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
from firebus.kafka import TopicScan
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
    deadline = asyncio.get_running_loop().time() + SCAN_LIMIT_S
    async with TopicScan(settings, list(topics), purpose="reconcile", start=since - LOOK_BACK) as scan:
        async for step in scan:
            found.update(
                release_id for record in step.records if (release_id := _release_id(codec, record.value)) in missing
            )
            if not missing - found:
                break
            if asyncio.get_running_loop().time() > deadline:
                # Unknown is treated as not landed: a resent release keeps its id, which every sink applies once.
                log.warning("release_scan_incomplete", found=len(found), still_missing=len(missing - found))
                break
    return found


def _release_id(codec: Codec, value: bytes | None) -> UUID | None:
    if not value:
        return None
    try:
        record = codec.decode(value)
    except (DecodeError, InvalidEventError):
        return None
    return record.release_id if isinstance(record, Release) else None
