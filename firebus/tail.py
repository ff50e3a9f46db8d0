"""Follow a topic: every record of all its partitions as it arrives (``firebus tail`` shows them decoded).

Reads without a consumer group, so tailing never moves any live group's offsets.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiokafka import ConsumerRecord

from firebus.kafka import ScanStart, TopicScan, UnreadableBatch
from firebus.settings import Settings
from firebus.topics import Topic


async def tail(
    settings: Settings,
    topic: Topic,
    *,
    from_beginning: bool = False,
    limit: int | None = None,
    idle_timeout_s: float | None = None,
) -> AsyncIterator[ConsumerRecord[bytes, bytes] | UnreadableBatch]:
    """Yield every record on all partitions of ``topic``, and every batch that cannot be read (stepped over).

    Stops after ``limit`` records, or after ``idle_timeout_s`` seconds without one; otherwise runs until cancelled.
    """
    start = ScanStart.BEGINNING if from_beginning else ScanStart.END
    idle_ms = int((idle_timeout_s if idle_timeout_s is not None else 1.0) * 1000)
    seen = 0
    async with TopicScan(settings, [topic], purpose="tail", start=start, follow=True, idle_ms=idle_ms) as scan:
        async for step in scan:
            items: list[ConsumerRecord[bytes, bytes] | UnreadableBatch] = [*step.unreadable, *step.records]
            for item in items:
                yield item
                if isinstance(item, ConsumerRecord):
                    seen += 1
                    if limit is not None and seen >= limit:
                        return
            if not items and idle_timeout_s is not None:
                return
