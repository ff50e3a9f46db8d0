"""The client library against the real embedded broker: what is published lands, decoded and verified."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from structlog.testing import capture_logs

from firebus.broker import EmbeddedBroker, free_port
from firebus.codec import Codec
from firebus.county import County
from firebus.errors import (
    BrokerUnavailableError,
    ClassifiedEventError,
    DutyViolationError,
    InvalidEventError,
    UnknownUnitError,
)
from firebus.events import Classification, Event, EventType
from firebus.kafka import create_topics
from firebus.settings import Settings
from firebus.signing import check_signature, registered_public_keys
from firebus.topics import INTAKE
from producers import BlockingFirebusClient, Draft, FirebusClient, load_draft
from tests.samples import EXAMPLES, SAMPLE_PUBLISHER

PUBLISHER_OF = SAMPLE_PUBLISHER


def sample(event_type: EventType) -> Draft:
    return load_draft(EXAMPLES / f"{event_type.value}.json")


async def read_at(settings: Settings, topic: str, partition: int, offset: int) -> bytes:
    """The value stored at one offset, read without a consumer group."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers, group_id=None, fetch_max_wait_ms=50)
    await consumer.start()
    try:
        where = TopicPartition(topic, partition)
        consumer.assign([where])
        consumer.seek(where, offset)
        message = await asyncio.wait_for(consumer.getone(), timeout=10)
        assert message.offset == offset
        return bytes(message.value)
    finally:
        await consumer.stop()


@pytest.mark.parametrize("event_type", list(EventType), ids=str)
async def test_each_sample_lands_on_its_intake_topic_decoded_equal_and_verified(
    event_type: EventType, settings: Settings, county: County
) -> None:
    """Every sample event published through the client comes back from its intake topic equal and signed."""
    codec = Codec()
    async with FirebusClient(settings=settings, unit=PUBLISHER_OF[event_type], county=county) as client:
        event = client.prepare(sample(event_type))
        receipt = await client.send(event)
    assert receipt.topic == INTAKE[event_type].name
    assert receipt.event_id == event.header.event_id
    stored = await read_at(settings, receipt.topic, receipt.partition, receipt.offset)
    assert codec.decode(stored) == event
    assert (
        check_signature(codec, stored, registered_public_keys(county, settings.key_directory))
        == event.header.publisher.unit
    )


async def test_an_incidents_events_share_a_partition(settings: Settings, county: County) -> None:
    """Events of one incident are keyed by its id, so they land on one partition in publishing order."""
    async with FirebusClient(settings=settings, unit="forestry", county=county) as client:
        receipts = [await client.publish(sample(EventType.FIRE_REPORT)) for _ in range(5)]
    assert len({receipt.partition for receipt in receipts}) == 1
    offsets = [receipt.offset for receipt in receipts]
    assert offsets == sorted(offsets)


async def test_every_publish_log_line_carries_event_and_trace_ids(settings: Settings, county: County) -> None:
    """The client's log line about a published event names its event_id and trace_id."""
    async with FirebusClient(settings=settings, unit="forestry", county=county) as client:
        with capture_logs() as logs:
            receipt = await client.publish(sample(EventType.WORK_UPDATE))
    published = [line for line in logs if line["event"] == "event_published"]
    assert published == [
        {
            "event": "event_published",
            "log_level": "info",
            "event_id": str(receipt.event_id),
            "trace_id": receipt.trace_id,
            "event_type": "work_update",
            "topic": receipt.topic,
            "partition": receipt.partition,
            "offset": receipt.offset,
        }
    ]


@pytest.mark.parametrize(
    ("unit", "draft_change", "error", "fragment"),
    [
        ("police", {}, DutyViolationError, "may not publish fire_report"),
        ("forestry", {"classification": Classification.SECRET}, ClassifiedEventError, "phone or official letter"),
        ("forestry", {"incident_id": None}, InvalidEventError, "header.incident_id"),
    ],
    ids=["outside-duties", "secret", "no-incident"],
)
async def test_refused_drafts_never_reach_the_broker(  # noqa: PLR0917  (parametrised cases plus fixtures)
    unit: str,
    draft_change: dict[str, object],
    error: type[Exception],
    fragment: str,
    settings: Settings,
    county: County,
) -> None:
    """A draft breaking a rule raises its typed error and nothing is written to the intake topic."""
    topic = INTAKE[EventType.FIRE_REPORT]
    before = await end_offsets(settings, topic.name)
    async with FirebusClient(settings=settings, unit=unit, county=county) as client:
        with pytest.raises(error, match=fragment):
            await client.publish(sample(EventType.FIRE_REPORT).model_copy(update=draft_change))
    assert await end_offsets(settings, topic.name) == before


async def end_offsets(settings: Settings, topic: str) -> dict[int, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers, group_id=None)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        offsets = await consumer.end_offsets(partitions)
        return {tp.partition: offset for tp, offset in offsets.items()}
    finally:
        await consumer.stop()


def test_unknown_unit_is_refused_before_connecting(settings: Settings, county: County) -> None:
    """A unit missing from the registry cannot get a client at all."""
    with pytest.raises(UnknownUnitError, match="'fire_brigade' is not in the units registry"):
        FirebusClient(settings=settings, unit="fire_brigade", county=county)


async def test_unreachable_broker_is_a_clear_error(settings: Settings, county: County) -> None:
    """With no broker listening, starting the client fails with BrokerUnavailableError naming the address."""
    nowhere = settings.model_copy(update={"bootstrap": f"127.0.0.1:{free_port()}", "connect_timeout_s": 2.0})
    client = FirebusClient(settings=nowhere, unit="forestry", county=county)
    with pytest.raises(BrokerUnavailableError, match=f"cannot reach Kafka at {nowhere.bootstrap}"):
        await client.start()


async def test_publishing_survives_a_broker_outage(settings: Settings, county: County, tmp_path: Path) -> None:
    """A publish issued while the broker is down completes once it is back, without the caller retrying."""
    port = free_port()
    outage = settings.model_copy(update={"bootstrap": f"127.0.0.1:{port}", "request_timeout_ms": 4_000})
    broker = EmbeddedBroker(port=port, log_path=tmp_path / "broker.log")
    await broker.start()
    await create_topics(outage)
    try:
        async with FirebusClient(settings=outage, unit="forestry", county=county) as client:
            await client.publish(sample(EventType.WORK_UPDATE))
            await broker.stop()
            pending = asyncio.create_task(client.publish(sample(EventType.WORK_UPDATE)))
            await asyncio.sleep(2)
            assert not pending.done()
            await broker.start()
            await create_topics(outage)  # memory storage: the restarted broker starts empty
            receipt = await asyncio.wait_for(pending, timeout=60)
        assert receipt.topic == INTAKE[EventType.WORK_UPDATE].name
    finally:
        await broker.stop()


async def test_blocking_facade_publishes_from_plain_code(settings: Settings, county: County) -> None:
    """Non-async code publishes through BlockingFirebusClient and gets the same receipt."""

    def publish_blocking() -> object:
        with BlockingFirebusClient(settings=settings, unit="meteorology", county=county) as client:
            return client.publish(sample(EventType.RISK_WARNING))

    receipt = await asyncio.to_thread(publish_blocking)
    codec = Codec()
    stored = await read_at(settings, receipt.topic, receipt.partition, receipt.offset)  # type: ignore[attr-defined]
    decoded = codec.decode(stored)
    assert isinstance(decoded, Event)
    assert decoded.header.event_id == receipt.event_id  # type: ignore[attr-defined]
