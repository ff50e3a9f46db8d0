"""Read-only looks at a running bus, for ``firebus status``: how far behind each consumer group is, when each topic
last got a record, and which dead letters arrived since a moment. None of them joins a group or commits anything.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from firebus.codec import Codec
from firebus.errors import BrokerError, DecodeError, InvalidEventError
from firebus.kafka import TopicScan, client_options, fetched_end_offsets, start_admin, start_reader
from firebus.records import DeadLetter
from firebus.settings import Settings
from firebus.topics import DEAD_LETTER, Topic

GROUP_PREFIX = "firebus-"
"""Every firebus consumer group's name starts so: ``firebus-intake``, ``firebus-processors``, ``firebus-sink-*``."""

LAST_RECORD_WAIT_S = 10.0


async def firebus_groups(settings: Settings) -> list[str]:
    """The consumer groups the broker knows whose names are firebus's, sorted."""
    admin = await start_admin(settings)
    try:
        listed = await admin.list_consumer_groups()
    except KafkaError as exc:
        raise BrokerError(f"listing consumer groups failed: {exc!r}") from exc
    finally:
        await admin.close()
    return sorted({group for group, *_ in listed if str(group).startswith(GROUP_PREFIX)})


async def consumer_lag(settings: Settings, groups: Sequence[str], topics: Iterable[Topic]) -> dict[str, dict[str, int]]:
    """Per group, per topic it has committed offsets on: records between its committed offsets and the ends."""
    reader, partitions = await start_reader(settings, list(topics), purpose="status")
    await reader.stop()
    options = client_options(settings, client_id=f"{settings.client_id}-status")
    try:
        ends = await fetched_end_offsets(options, partitions)
    except KafkaError as exc:
        raise BrokerError(f"reading end offsets failed: {exc!r}") from exc
    lags: dict[str, dict[str, int]] = {}
    for group in groups:
        # A consumer in the group that subscribes to nothing: it asks for the group's offsets, it never joins.
        consumer = AIOKafkaConsumer(**options, group_id=group, enable_auto_commit=False)
        try:
            await consumer.start()
            committed = await asyncio.gather(*(consumer.committed(tp) for tp in partitions))
        except KafkaError as exc:
            raise BrokerError(f"reading the offsets of group {group} failed: {exc!r}") from exc
        finally:
            await consumer.stop()
        per_topic: dict[str, int] = {}
        for tp, offset in zip(partitions, committed, strict=True):
            if offset is not None:
                per_topic[tp.topic] = per_topic.get(tp.topic, 0) + max(ends[tp] - offset, 0)
        lags[group] = dict(sorted(per_topic.items()))
    return lags


async def last_record_times(settings: Settings, topics: Sequence[Topic]) -> dict[str, datetime | None]:
    """Per topic, the timestamp of its newest record (None: empty, or nothing came back in time)."""
    settings = settings.model_copy(update={"fetch_max_wait_ms": 10})  # answers now, not when a wait expires
    consumer, partitions = await start_reader(settings, topics, purpose="status")
    latest: dict[str, datetime | None] = {topic.name: None for topic in topics}
    try:
        options = client_options(settings, client_id=f"{settings.client_id}-status")
        ends = await fetched_end_offsets(options, partitions)
        beginnings: dict[TopicPartition, int] = await consumer.beginning_offsets(partitions)
        waiting = {tp for tp in partitions if ends[tp] > beginnings[tp]}
        if not waiting:
            return latest
        consumer.assign(sorted(waiting))
        for tp in waiting:
            consumer.seek(tp, ends[tp] - 1)
        deadline = asyncio.get_running_loop().time() + LAST_RECORD_WAIT_S
        while waiting and asyncio.get_running_loop().time() < deadline:
            polled = await consumer.getmany(*waiting, timeout_ms=200)
            for tp, records in polled.items():
                if not records:
                    continue
                moment = datetime.fromtimestamp(max(record.timestamp for record in records) / 1000, UTC)
                known = latest[tp.topic]
                latest[tp.topic] = moment if known is None else max(known, moment)
                waiting.discard(tp)
                consumer.pause(tp)
    except KafkaError as exc:
        raise BrokerError(f"reading the newest records failed: {exc!r}") from exc
    finally:
        await consumer.stop()
    return latest


async def dead_letters_since(settings: Settings, since: datetime, codec: Codec) -> Counter[str]:
    """Dead letters written at or after ``since``, counted by reason code."""
    reasons: Counter[str] = Counter()
    async with TopicScan(settings, [DEAD_LETTER], purpose="status", start=since) as scan:
        async for step in scan:
            for record in step.records:
                try:
                    letter = codec.decode(record.value or b"")
                except (DecodeError, InvalidEventError):
                    reasons["unreadable"] += 1
                    continue
                if isinstance(letter, DeadLetter) and letter.at >= since:
                    reasons[letter.reason_code.value] += 1
            reasons["unreadable"] += len(step.unreadable)
    return +reasons
