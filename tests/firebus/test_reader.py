"""Reading whatever a producer stored: the core reader and the topic scan step over batches no client can read,
lose nothing around them, and report each one with its position (real broker, batches written as raw bytes)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from uuid import uuid4

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from firebus.kafka import Reader, ScanStart, TopicScan, client_options, read_to_end
from firebus.settings import Settings
from firebus.topics import DAY_MS, CleanupPolicy, Topic
from tests.rawkafka import CODECS, produce_raw, record_batch

PARTITIONS = 2


@pytest.fixture
async def topic(settings: Settings) -> Topic:
    """A topic of this test's own, two partitions."""
    name = f"test.reader.{uuid4().hex[:12]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, PARTITIONS, 1)])
    finally:
        await admin.close()
    return Topic(
        name, PARTITIONS, DAY_MS, CleanupPolicy.DELETE, "test", "test", value_schemas=(), writers=(), readers=()
    )


async def send(settings: Settings, topic: Topic, partition: int, *values: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all")
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic.name, value, partition=partition)
    finally:
        await producer.stop()


async def store(settings: Settings, topic: Topic, partition: int, batch: bytes) -> None:
    code = await produce_raw(settings.bootstrap_servers, TopicPartition(topic.name, partition), batch)
    assert code == 0, f"the broker refused the raw batch (error {code})"


async def read_all(settings: Settings, topic: Topic, polls: int = 8) -> tuple[dict[int, list[bytes]], list[str]]:
    """What a Reader returns over a few polls: values per partition, and the unreadable batches it reported."""
    consumer = AIOKafkaConsumer(**client_options(settings), group_id=None, fetch_max_wait_ms=50)
    await consumer.start()
    reader = Reader(consumer, client_options(settings))
    values: dict[int, list[bytes]] = {}
    unreadable: list[str] = []
    try:
        consumer.assign([TopicPartition(topic.name, p) for p in range(PARTITIONS)])
        await consumer.seek_to_beginning()
        for _ in range(polls):
            polled = await reader.poll(timeout_ms=300)
            for tp, records in polled.records.items():
                values.setdefault(tp.partition, []).extend(record.value or b"" for record in records)
            unreadable += [batch.where for batch in polled.unreadable]
    finally:
        await reader.close()
        await consumer.stop()
    return values, unreadable


@pytest.mark.parametrize("codec", [name for name in CODECS if name != "none"])
async def test_every_codec_is_read(settings: Settings, topic: Topic, codec: str) -> None:
    """gzip, snappy, lz4 and zstd batches, as any Kafka client writes them, are read like uncompressed ones."""
    await store(settings, topic, 0, record_batch([b"one", b"two", b"three"], codec=codec))
    values, unreadable = await read_all(settings, topic, polls=3)
    assert values == {0: [b"one", b"two", b"three"]}
    assert unreadable == []


@pytest.mark.parametrize(
    ("codec", "damage"),
    [("gzip", "payload"), ("snappy", "payload"), ("lz4", "payload"), ("zstd", "payload"), ("none", "crc")],
)
async def test_an_unreadable_batch_is_stepped_over_and_nothing_around_it_is_lost(
    settings: Settings, topic: Topic, codec: str, damage: str
) -> None:
    """A damaged batch between good records: the records before and after it, and every record of the other
    partition (which a plain getmany drains and then drops when the damaged batch raises), all arrive once; the
    batch is reported with its exact offsets."""
    await send(settings, topic, 0, b"before")
    await send(settings, topic, 1, b"other-1")
    bad = record_batch([b"x" * 300] * 3, codec=codec, damage_payload=damage == "payload", bad_crc=damage == "crc")
    await store(settings, topic, 0, bad)
    await send(settings, topic, 0, b"after")
    await send(settings, topic, 1, b"other-2")

    values, unreadable = await read_all(settings, topic)

    assert values == {0: [b"before", b"after"], 1: [b"other-1", b"other-2"]}
    assert unreadable == [f"{topic.name}/0/1..3"]


async def test_a_scan_reads_to_the_end_past_unreadable_batches(settings: Settings, topic: Topic) -> None:
    """TopicScan (what every firebus reader uses) ends at the ends of its start and hands over the stepped-over
    batch instead of raising."""
    await send(settings, topic, 0, b"a", b"b")
    await store(settings, topic, 0, record_batch([b"z" * 100] * 2, codec="zstd", damage_payload=True))
    await send(settings, topic, 0, b"c")
    await send(settings, topic, 1, b"d")
    seen: list[bytes] = []
    stepped_over = []
    async with TopicScan(settings, [topic], purpose="test") as scan:
        assert scan.total == 6
        async for step in scan:
            seen += [record.value or b"" for record in step.records]
            stepped_over += step.unreadable
    assert sorted(seen) == [b"a", b"b", b"c", b"d"]
    assert [(batch.first_offset, batch.next_offset) for batch in stepped_over] == [(2, 4)]
    assert "zstd" in stepped_over[0].reason
    assert stepped_over[0].data.startswith(bytes(8)[:7])  # the batch as stored, from its base offset
    assert sorted(value for _key, value in await read_to_end(settings, topic) if value) == [b"a", b"b", b"c", b"d"]


async def test_a_scan_from_the_end_follows_only_what_comes_next(settings: Settings, topic: Topic) -> None:
    await send(settings, topic, 0, b"old")
    async with TopicScan(settings, [topic], purpose="test", start=ScanStart.END, follow=True, idle_ms=200) as scan:
        assert scan.caught_up
        await send(settings, topic, 1, b"new")
        async for step in scan:
            if step.records:
                assert [record.value for record in step.records] == [b"new"]
                break


async def test_a_scan_from_a_moment_starts_at_the_first_record_appended_since(settings: Settings, topic: Topic) -> None:
    await send(settings, topic, 0, b"earlier")
    await asyncio.sleep(0.05)  # append times must differ by more than the broker's millisecond resolution
    moment = datetime.now(UTC)
    await asyncio.sleep(0.05)
    await send(settings, topic, 0, b"later")
    async with TopicScan(settings, [topic], purpose="test", start=moment) as scan:
        seen = [record.value async for step in scan for record in step.records]
    assert seen == [b"later"]


async def test_an_error_that_is_not_about_stored_bytes_is_raised(settings: Settings, topic: Topic) -> None:
    """The reader only steps over bytes it can show are unreadable; anything else reaches the caller as it was."""
    never_started = AIOKafkaConsumer(**client_options(settings), group_id=None)
    reader = Reader(never_started, client_options(settings))
    try:
        with pytest.raises(AttributeError):
            await reader.poll(TopicPartition(topic.name, 0), timeout_ms=100)
    finally:
        await reader.close()


async def test_a_poll_with_nothing_assigned_waits_in_the_consumer_instead_of_returning_at_once(
    settings: Settings,
) -> None:
    """With no partition assigned (a group member given none: more members than partitions), a poll still waits in
    the consumer: a loop of polls lets the rest of the program run, and each poll counts for the group."""
    consumer = AIOKafkaConsumer(**client_options(settings), group_id=None, fetch_max_wait_ms=50)
    await consumer.start()
    consumer.assign([])
    reader = Reader(consumer, client_options(settings))
    others_ran = 0

    async def other() -> None:
        nonlocal others_ran
        while True:
            others_ran += 1
            await asyncio.sleep(0)

    running = asyncio.create_task(other())
    try:
        await asyncio.sleep(0)
        before = others_ran
        polled = await reader.poll(timeout_ms=50)
        assert not polled
        assert others_ran > before
    finally:
        running.cancel()
        await reader.close()
        await consumer.stop()
