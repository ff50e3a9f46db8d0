"""The intake boundary end to end: what an outside producer writes — any partition, no key, any codec, broken batches,
bad references — against a real `firebus processors` worker on the embedded broker.

Raw batches are built byte by byte (tests/rawkafka.py), as a librdkafka producer with its own partitioner would
send them, or as a broken one would.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from aiokafka import TopicPartition

from firebus.broker import EmbeddedBroker, free_port
from firebus.codec import Codec
from firebus.county import County
from firebus.events import Audience, Event, EventType, MessageKind
from firebus.kafka import TopicScan, create_topics, producer_options, read_to_end
from firebus.records import DeadLetter, DeadLetterReason, Release, ReviewStatus, Verdict
from firebus.settings import Compression, Settings
from firebus.topics import DEAD_LETTER, HQ_LIVE, INTAKE, REVIEW_DECISIONS, REVIEW_ITEMS, TIERS, Topic
from processors._sender import partition_for
from producers import Draft, FirebusClient, ReviewDesk, load_draft
from tests.processors.conftest import Worker, decoded, pending_item, wait_for_records
from tests.rawkafka import CODECS, produce_raw, record_batch
from tests.samples import EXAMPLES

CODEC = Codec()
FIRE_REPORTS = INTAKE[EventType.FIRE_REPORT]


def fire_report(**changes: Any) -> Draft:
    return load_draft(EXAMPLES / "fire_report.json").model_copy(update=changes)


async def signed(settings: Settings, county: County, unit: str, draft: Draft) -> Event[Any]:
    """``draft`` as the unit would sign it; sent by hand, not by the library."""
    return FirebusClient(settings=settings, unit=unit, county=county).prepare(draft)


def elsewhere(event: Event[Any], partitions: int) -> int:
    """A partition other than the one the event's partition key hashes to: a foreign partitioner's choice."""
    return (partition_for(event.partition_key().encode(), partitions) + 1) % partitions


async def store(settings: Settings, topic: Topic, partition: int, batch: bytes) -> None:
    code = await produce_raw(settings.bootstrap_servers, TopicPartition(topic.name, partition), batch)
    assert code == 0, f"the broker refused the batch (error {code})"


async def on_topic(settings: Settings, topic: Topic, match: Callable[[Any], bool]) -> list[Any]:
    return [record for record in decoded(CODEC, await read_to_end(settings, topic)) if match(record)]


async def fence(settings: Settings, county: County) -> UUID:
    """Publish a marker fire report and wait until it is on HQ live: the gate has handled everything before it."""
    async with FirebusClient(settings=settings, unit="forestry", county=county) as client:
        marker = (await client.publish(fire_report(incident_id=f"FENCE-{uuid4().hex[:8]}"))).event_id
    await wait_for_records(settings, HQ_LIVE, lambda record: _is(record, marker))
    return marker


def _is(record: Any, event_id: UUID) -> bool:
    return isinstance(record, Event) and record.header.event_id == event_id


async def test_events_from_any_partition_with_any_codec_meet_their_review_state(
    worker: Worker, settings: Settings, county: County
) -> None:
    """Signed fire reports written to the 'wrong' partition, without a key, in every codec: each reaches HQ live,
    is approved through the desk, released exactly once per tier, and the review state agrees everywhere — one item
    per event, on the partition of its partition key, released, and a second approval is refused."""
    events = []
    for index, codec in enumerate(CODECS):
        event = await signed(settings, county, "forestry", fire_report(incident_id=f"ANY-{codec}-{uuid4().hex[:6]}"))
        keyed = index % 2 == 0
        batch = record_batch(
            [CODEC.encode(event)], codec=codec, keys=[event.partition_key().encode() if keyed else None]
        )
        await store(settings, FIRE_REPORTS, elsewhere(event, FIRE_REPORTS.partitions), batch)
        events.append(event)
    ids = {event.header.event_id for event in events}

    live = await wait_for_records(
        settings, HQ_LIVE, lambda r: isinstance(r, Event) and r.header.event_id in ids, count=5
    )
    assert Counter(record.header.event_id for record in live) == dict.fromkeys(ids, 1)

    desk = ReviewDesk(settings=settings, county=county)
    for event in events:
        item = await pending_item(desk, event.header.event_id)
        await desk.publish(item, desk.decision(item, reviewer="hq-wang", verdict=Verdict.APPROVE))

    def released(record: Any) -> bool:
        return isinstance(record, Release) and record.event_id in ids

    for tier in (Audience.MEMBERS, Audience.HQ):
        releases = await wait_for_records(settings, TIERS[tier], released, count=len(ids))
        assert Counter(release.event_id for release in releases) == dict.fromkeys(ids, 1), tier

    items = await desk.items()
    assert {items[event_id].status for event_id in ids} == {ReviewStatus.RELEASED}
    with pytest.raises(Exception, match="not pending"):
        desk.decision(items[events[0].header.event_id], reviewer="hq-li", verdict=Verdict.APPROVE)

    consumer_view = await _item_partitions(settings, ids)
    for event in events:
        expected = partition_for(event.partition_key().encode(), REVIEW_ITEMS.partitions)
        assert consumer_view[event.header.event_id] == {expected}, "review state split over partitions"


async def test_broken_batches_each_become_one_dead_letter_and_the_worker_goes_on(
    worker: Worker, settings: Settings, county: County
) -> None:
    """A damaged batch in every codec, and one with a bad CRC: each is one dead letter (reason corrupt) naming its
    offsets, the worker keeps running and handles what comes after, and nothing is dead-lettered twice."""
    topic = INTAKE[EventType.WORK_UPDATE]
    broken = {
        codec: record_batch([b"x" * 300] * 3, codec=codec, damage_payload=True) for codec in CODECS if codec != "none"
    }
    broken["crc"] = record_batch([b"y" * 50] * 2, bad_crc=True)
    for batch in broken.values():
        await store(settings, topic, 1, batch)
    await fence(settings, county)

    def mine(record: Any) -> bool:
        # Unreadable-batch letters only: other tests' letters from this partition must not make up the count.
        return (
            isinstance(record, DeadLetter)
            and record.source_topic == topic.name
            and record.source_partition == 1
            and record.reason_code is DeadLetterReason.CORRUPT
            and ".." in record.reason
        )

    unreadable = await wait_for_records(settings, DEAD_LETTER, mine, count=len(broken))
    assert len(unreadable) >= len(broken)
    reasons = " ".join(letter.reason for letter in unreadable)
    for name in ("gzip", "snappy", "lz4", "zstd", "CRC"):
        assert name in reasons
    assert worker.process is not None
    assert worker.process.returncode is None, "the worker stopped"

    await fence(settings, county)
    again = await on_topic(settings, DEAD_LETTER, mine)
    assert Counter(letter.dead_letter_id for letter in again).most_common(1)[0][1] == 1, "a batch dead-lettered twice"


async def test_an_update_that_fails_its_reference_check_is_never_shown_live(
    worker: Worker, settings: Settings, county: County
) -> None:
    """An update of an unknown event, and one of another unit's event, are dead letters (bad_reference) and do not
    reach HQ live, where only events that passed every intake check are shown."""
    async with FirebusClient(settings=settings, unit="emergency", county=county) as emergency:
        others = (await emergency.publish(fire_report(incident_id="REF-OTHER"))).event_id
    await wait_for_records(settings, HQ_LIVE, lambda record: _is(record, others))
    async with FirebusClient(settings=settings, unit="forestry", county=county) as forestry:
        unknown = (
            await forestry.publish(fire_report(kind=MessageKind.UPDATE, references=[uuid4()], incident_id="REF-NONE"))
        ).event_id
        foreign = (
            await forestry.publish(fire_report(kind=MessageKind.UPDATE, references=[others], incident_id="REF-OTHER"))
        ).event_id
    await fence(settings, county)

    letters = await wait_for_records(
        settings,
        DEAD_LETTER,
        lambda r: isinstance(r, DeadLetter) and r.event_id in {str(unknown), str(foreign)},
        count=2,
    )
    assert {letter.reason_code for letter in letters} == {DeadLetterReason.BAD_REFERENCE}
    await fence(settings, county)
    assert await on_topic(settings, HQ_LIVE, lambda record: _is(record, unknown) or _is(record, foreign)) == []


async def test_a_decision_without_a_key_is_a_dead_letter(worker: Worker, settings: Settings, county: County) -> None:
    """The gate places a decision by its key (the event's partition key); one without is refused with the reason."""
    async with FirebusClient(settings=settings, unit="forestry", county=county) as client:
        event_id = (await client.publish(fire_report(incident_id=f"NOKEY-{uuid4().hex[:6]}"))).event_id
    desk = ReviewDesk(settings=settings, county=county)
    item = await pending_item(desk, event_id)
    decision = desk.decision(item, reviewer="hq-wang", verdict=Verdict.APPROVE)
    await store(settings, REVIEW_DECISIONS, 0, record_batch([CODEC.encode(decision)]))

    letters = await wait_for_records(
        settings, DEAD_LETTER, lambda r: isinstance(r, DeadLetter) and r.event_id == str(event_id)
    )
    assert "no record key" in letters[0].reason
    assert (await desk.items())[event_id].status is ReviewStatus.PENDING


async def _item_partitions(settings: Settings, event_ids: set[UUID]) -> dict[UUID, set[int]]:
    """Every partition of the review items topic holding a state of each of ``event_ids``."""
    found: dict[UUID, set[int]] = {}
    async with TopicScan(settings, [REVIEW_ITEMS], purpose="test-items") as scan:
        async for step in scan:
            for record in step.records:
                event_id = UUID(record.key.decode()) if record.key else None
                if event_id in event_ids:
                    found.setdefault(event_id, set()).add(record.partition)
    return found


@pytest.mark.parametrize("codec", [codec for codec in Compression if codec is not Compression.NONE])
async def test_firebus_producers_write_every_codec(
    worker: Worker, settings: Settings, county: County, codec: Compression
) -> None:
    """The client library (like every firebus producer, through producer_options) writes with the configured codec,
    and the worker reads it."""
    compressing = settings.model_copy(update={"compression": codec})
    assert producer_options(compressing, client_id="test")["compression_type"] == codec.value
    async with FirebusClient(settings=compressing, unit="forestry", county=county) as client:
        event_id = (await client.publish(fire_report(incident_id=f"CODEC-{codec.value}"))).event_id
    await wait_for_records(settings, HQ_LIVE, lambda record: _is(record, event_id))


async def test_the_gate_and_the_review_stage_run_as_processes_of_their_own(
    settings: Settings, county: County, tmp_path: Path
) -> None:
    """`firebus processors --stage intake` and `--stage review` together are the whole worker: a report goes live
    from the gate process and is released by the review process; the gate SIGKILLed and restarted loses nothing."""
    async with EmbeddedBroker(port=free_port(), log_path=tmp_path / "broker.log") as broker:
        isolated = settings.model_copy(update={"bootstrap": broker.bootstrap_servers, "home": tmp_path})
        await create_topics(isolated)
        gate = Worker(isolated, tmp_path / "gate.log", stage="intake")
        review = Worker(isolated, tmp_path / "review.log", stage="review")
        await gate.start()
        await review.start()
        try:
            async with FirebusClient(settings=isolated, unit="forestry", county=county) as client:
                first = (await client.publish(fire_report(incident_id="SPLIT-1"))).event_id
                await wait_for_records(isolated, HQ_LIVE, lambda record: _is(record, first))
                await gate.kill()
                second = (await client.publish(fire_report(incident_id="SPLIT-2"))).event_id
                await gate.start()
                await wait_for_records(isolated, HQ_LIVE, lambda record: _is(record, second))
            desk = ReviewDesk(settings=isolated, county=county)
            for event_id in (first, second):
                item = await pending_item(desk, event_id)
                await desk.publish(item, desk.decision(item, reviewer="hq-wang", verdict=Verdict.APPROVE))
            releases = await wait_for_records(
                isolated,
                TIERS[Audience.MEMBERS],
                lambda record: isinstance(record, Release) and record.event_id in {first, second},
                count=2,
            )
            assert sorted(str(release.event_id) for release in releases) == sorted([str(first), str(second)])
        finally:
            await gate.stop()
            await review.stop()
