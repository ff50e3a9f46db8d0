"""A wiped or replaced broker: the worker notices, says so once, rescues the review items it held, and the next
worker writes them back; what it logs meanwhile is counted."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from aiokafka import TopicPartition

from firebus.broker import EmbeddedBroker, free_port
from firebus.codec import Codec
from firebus.county import County
from firebus.events import Audience, EventType
from firebus.kafka import create_topics, read_to_end
from firebus.records import Release, ReviewDecision, ReviewerKind, ReviewItem, ReviewStatus, Verdict
from firebus.settings import Settings
from firebus.topics import REVIEW_ITEMS, TIERS
from processors._brokerloss import (
    Behind,
    BrokerLoss,
    KnownOffsets,
    load_rescued,
    rescue_directory,
    restore_rescued,
    save_rescued,
)
from producers import FirebusClient, ReviewDesk, load_draft
from tests.processors.conftest import Worker, decoded
from tests.samples import review_item

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "events"
HELD = 12
CODEC = Codec()
STALL_LINES = ("Stream has not started processing", "Stream stopped processing")


def log_lines(path: Path) -> list[dict[str, object] | str]:
    """The worker's log: JSON objects, and the few plain lines (the CLI's error line)."""
    found: list[dict[str, object] | str] = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            found.append(json.loads(line))
        except json.JSONDecodeError:
            found.append(line)
    return found


def events_named(lines: list[dict[str, object] | str], name: str) -> list[dict[str, object]]:
    return [line for line in lines if isinstance(line, dict) and line.get("event") == name]


async def review_items(settings: Settings) -> dict[UUID, ReviewItem]:
    return {
        record.event_id: record
        for record in decoded(CODEC, await read_to_end(settings, REVIEW_ITEMS))
        if isinstance(record, ReviewItem)
    }


async def until(check: object, what: str, *, within_s: float = 90) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while not await check():  # type: ignore[operator]
        assert loop.time() < deadline, what
        await asyncio.sleep(0.3)


async def test_a_replaced_broker_is_noticed_said_once_and_no_review_item_is_lost(
    settings: Settings, county: County, tmp_path: Path
) -> None:
    """The broker a worker holds pending reviews on is stopped, and an empty one (topics created) takes its port: the
    worker exits 1 with one `broker_lost` log line and one `firebus: error:` line naming the review changelog's
    partitions and the items it held (no faust ConsistencyError, no RocksDB hint); the outage's Kafka library lines
    come as one warning when they start and one when they stop; faust's stall check never cries wolf (its timeout cut
    to 1 s, the worker up for well over its 2.5 s check period). The next worker writes the rescued items back: the
    review desk lists every one as pending again, and an approval releases it."""
    port = free_port()
    home = tmp_path / "home"
    env = {"FIREBUS_PROCESSORS_BROKER_CHECK_S": "1", "FIREBUS_PROCESSORS_STALL_TIMEOUT_S": "1"}
    broker = EmbeddedBroker(port=port, log_path=tmp_path / "broker.log")
    await broker.start()
    try:
        isolated = settings.model_copy(update={"bootstrap": broker.bootstrap_servers, "home": home})
        await create_topics(isolated)
        first = Worker(isolated, tmp_path / "processors-1.log", env=env)
        await first.start()
        async with FirebusClient(settings=isolated, unit="forestry", county=county) as client:
            held = [(await client.publish(load_draft(EXAMPLES / "fire_report.json"))).event_id for _ in range(HELD)]

        async def all_pending() -> bool:
            items = await review_items(isolated)
            return all(event_id in items and items[event_id].status is ReviewStatus.PENDING for event_id in held)

        await until(all_pending, "the worker never held the reviews")

        await broker.stop()
        broker = EmbeddedBroker(port=port, log_path=tmp_path / "broker.log")
        await broker.start()
        await create_topics(isolated)
        assert await asyncio.wait_for(first.process.wait(), timeout=90) == 1  # type: ignore[union-attr]

        lines = log_lines(first.log_path)
        errors = [line for line in lines if isinstance(line, str) and line.startswith("firebus: error:")]
        assert len(errors) == 1, lines
        assert f"{REVIEW_ITEMS.name} partitions" in errors[0]
        assert f"held {HELD} review item(s) that the broker no longer has" in errors[0]
        [lost] = events_named(lines, "broker_lost")
        assert lost["level"] == "error"
        assert lost["review_items_held"] == lost["pending"] == lost["no_longer_on_broker"] == HELD
        text = first.log_path.read_text()
        assert "ConsistencyError" not in text
        assert "RocksDB" not in text
        assert not any(stall in text for stall in STALL_LINES)
        library = [
            line for line in lines if isinstance(line, dict) and str(line.get("logger", "")).startswith("aiokafka")
        ]
        assert library == []
        assert len(events_named(lines, "kafka_client_errors")) == 1
        assert len(events_named(lines, "kafka_client_errors_stopped")) <= 1

        assert await review_items(isolated) == {}  # the new broker has none of them
        second = Worker(isolated, tmp_path / "processors-2.log", env=env)
        await second.start()
        try:
            await until(all_pending, "the rescued reviews were not written back")
            [restored] = events_named(log_lines(second.log_path), "review_items_restored")
            assert restored["restored"] == HELD
            desk = ReviewDesk(settings=isolated, county=county)
            items = await desk.items()
            await desk.publish(items[held[0]], desk.decision(items[held[0]], reviewer="hq-li", verdict=Verdict.APPROVE))

            async def released() -> bool:
                on_tier = decoded(CODEC, await read_to_end(isolated, TIERS[Audience.HQ]))
                return any(isinstance(record, Release) and record.event_id == held[0] for record in on_tier)

            await until(released, "an approved rescued review was not released")
        finally:
            await second.stop()
        assert [path.suffix for path in rescue_directory(isolated).iterdir()] == [".restored"]
    finally:
        await broker.stop()


# --- the pieces ------------------------------------------------------------------------------------------------------


def test_a_partition_ending_at_or_before_a_stored_record_is_behind() -> None:
    """The highest offset noted counts, whatever order acknowledgements come back in (the gate and the review stage
    send concurrently); an end offset at or before it is a loss, one past it is not, and a partition nothing is known
    of is never behind."""
    known = KnownOffsets()
    tp = TopicPartition(REVIEW_ITEMS.name, 1)
    for offset in (40, 41, 3, 41):
        known.note(tp, offset)
    assert known.snapshot() == {tp: 41}
    assert known.behind({tp: 42}) == []
    assert known.behind({tp: 41}) == [Behind(tp, 41, 41)]
    assert known.behind({tp: 0}) == [Behind(tp, 0, 41)]
    assert known.behind({TopicPartition(REVIEW_ITEMS.name, 2): 0}) == []


def test_a_loss_names_the_review_state_first() -> None:
    """The description leads with the review changelog's partitions, then other topics, then a count of the rest."""
    loss = BrokerLoss(
        (
            Behind(TopicPartition("firebus.audit", 0), 0, 51),
            Behind(TopicPartition(REVIEW_ITEMS.name, 2), 0, 9),
            Behind(TopicPartition(REVIEW_ITEMS.name, 0), 1, 12),
            Behind(TopicPartition("firebus.hq.live", 1), 0, 4),
            Behind(TopicPartition("firebus.tier.public", 1), 0, 4),
        ),
        ("firebus.review.inbox",),
    )
    assert str(loss) == (
        "firebus.review.inbox is missing; "
        f"{REVIEW_ITEMS.name} partitions 0, 2 end at offsets 1, 0, before offsets 12, 9 it had stored; "
        "firebus.audit partitions 0 end at offsets 0, before offsets 51 it had stored; 2 more topics likewise"
    )


def decided_item(status: ReviewStatus) -> ReviewItem:
    item = review_item(status, partition_key=str(uuid4()))
    decision = ReviewDecision(
        decision_id=uuid4(),
        event_id=item.event_id,
        event_type=EventType.FIRE_REPORT,
        verdict=Verdict.APPROVE,
        reviewer="hq-li",
        reviewer_kind=ReviewerKind.HUMAN,
        tiers=[Audience.MEMBERS],
        decided_at=datetime.now(UTC),
        trace_id=uuid4().hex,
    )
    return item.model_copy(update={"decision": decision, "event": b"\xc3\x01 kept as is"})


def test_a_rescue_file_gives_back_the_items_as_they_were(tmp_path: Path) -> None:
    """Items saved to a rescue file (any Avro reader opens it) come back equal, a decided one included."""
    items = [review_item(ReviewStatus.PENDING), decided_item(ReviewStatus.RELEASED)]
    path = save_rescued(tmp_path, CODEC, items, now=datetime.now(UTC))
    assert path.parent == tmp_path
    assert load_rescued(CODEC, path) == items


async def test_a_restore_writes_back_only_what_the_broker_lacks(settings: Settings, tmp_path: Path) -> None:
    """Of the rescued items, those the broker's review state already holds are left alone; the others are written to
    the changelog on their partition, and the file is marked restored (a second start writes nothing)."""
    async with EmbeddedBroker(port=free_port(), log_path=tmp_path / "broker.log") as broker:
        isolated = settings.model_copy(update={"bootstrap": broker.bootstrap_servers, "home": tmp_path / "home"})
        await create_topics(isolated)
        there, lost = review_item(partition_key=str(uuid4())), review_item(partition_key=str(uuid4()))
        save_rescued(rescue_directory(isolated), CODEC, [there], now=datetime.now(UTC))
        assert (await restore_rescued(isolated, CODEC, partitions=REVIEW_ITEMS.partitions)) is not None
        save_rescued(rescue_directory(isolated), CODEC, [there, lost], now=datetime.now(UTC))

        report = await restore_rescued(isolated, CODEC, partitions=REVIEW_ITEMS.partitions)
        assert report is not None
        assert (report.restored, report.already_there) == (1, 1)
        on_broker = await review_items(isolated)
        assert on_broker == {there.event_id: there, lost.event_id: lost}
        assert await restore_rescued(isolated, CODEC, partitions=REVIEW_ITEMS.partitions) is None


@pytest.mark.parametrize("status", [ReviewStatus.PENDING, ReviewStatus.REJECTED])
def test_a_rescue_file_is_named_for_its_moment_and_never_overwritten(tmp_path: Path, status: ReviewStatus) -> None:
    """Two rescues at different moments are two files; a name taken is an error, not an overwrite."""
    moment = datetime(2026, 3, 12, 1, 15, 30, 123456, tzinfo=UTC)
    path = save_rescued(tmp_path, CODEC, [review_item(status)], now=moment)
    assert path.name == "review-items-20260312T011530123456Z.avro"
    with pytest.raises(FileExistsError):
        save_rescued(tmp_path, CODEC, [review_item(status)], now=moment)
