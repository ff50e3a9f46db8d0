"""End to end through a real Kannel: sink → smsbox sendsms → bearerbox → HTTP SMSC → the receiver the tests read."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from consumers import Delivery, SinkRunner
from consumers.sms import Ledger, MessageStatus, SmsSink, Texts, segment, units
from firebus.county import County
from firebus.events import Audience, Event, Severity, Urgency
from firebus.kafka import client_options
from firebus.records import Release
from firebus.settings import Settings
from firebus.topics import TIERS
from tests.consumers.sms.conftest import Kannel, Receiver
from tests.consumers.sms.samples import CODEC, fire_event, fire_report, release_of, work_event

pytestmark = pytest.mark.integration

MANGHE_MEMBERS = {
    "13800000201",  # forestry duty (minor)
    "13800000202",  # emergency duty (moderate)
    "13800000203",  # police (severe)
    "13800000302",  # manghe township official
    "13800000303",  # manghe ranger chief (moderate)
}
HQ_OFFICERS = {"13800000101", "13800000102", "13800000103"}


def delivery(release: Release) -> Delivery:
    return Delivery(TIERS[release.tier].name, 0, 0, None, CODEC.encode(release), release)


def reference(event: Event[Any]) -> str:
    return event.header.event_id.hex[:8]


@pytest.fixture
async def make_sink(sms_settings: Settings, county: County) -> AsyncIterator[Callable[..., Any]]:
    """Started SMS sinks on the test's settings (changes allowed), closed after the test."""
    started: list[SmsSink] = []

    async def make(**changes: Any) -> SmsSink:
        clock = changes.pop("clock", None)
        pump = changes.pop("pump_interval_s", 5.0)
        settings = sms_settings.model_copy(update=changes)
        sink = SmsSink(settings=settings, county=county, pump_interval_s=pump, **({"clock": clock} if clock else {}))
        await sink.start()
        started.append(sink)
        return sink

    yield make
    for sink in started:
        await sink.close()


async def test_a_released_fire_report_reaches_exactly_its_recipients_with_the_rendered_text(
    make_sink: Callable[..., Any], receiver: Receiver, county: County
) -> None:
    """A severe members-tier fire report in 蟒河镇 reaches the five matching phones, nobody else, as templated."""
    sink = await make_sink()
    event = fire_event()
    release = release_of(event)
    await sink.deliver(delivery(release))
    got = await receiver.wait_for(len(MANGHE_MEMBERS), reference(event))
    expected = Texts(county=county, max_parts=4).render(event, release)
    assert {sms.to for sms in got} == MANGHE_MEMBERS
    assert all(sms.text == expected for sms in got)
    assert all(sms.parts == len(segment(expected)) == 2 for sms in got)
    assert "蟒河镇桑林村后山，正在扑救" in expected
    assert {part.sender for part in receiver.parts if reference(event) in part.text} == {"12119"}
    assert all(message.status is MessageStatus.SENT for message in sink.ledger.messages(event.header.event_id))


async def test_an_hq_release_goes_to_the_hq_duty_officers_only(
    make_sink: Callable[..., Any], receiver: Receiver
) -> None:
    """The HQ-tier release of the same kind of report goes to the HQ officers and to none of the members' phones."""
    sink = await make_sink()
    event = fire_event()
    await sink.deliver(delivery(release_of(event, Audience.HQ)))
    got = await receiver.wait_for(len(HQ_OFFICERS), reference(event))
    await asyncio.sleep(0.5)
    assert Counter(sms.to for sms in receiver.messages(containing=reference(event))) == Counter(HQ_OFFICERS)
    assert not {sms.to for sms in got} & MANGHE_MEMBERS


async def test_a_minor_report_elsewhere_reaches_only_whom_it_concerns(
    make_sink: Callable[..., Any], receiver: Receiver
) -> None:
    """A minor report in 凤城镇 goes to forestry and the 凤城镇 official only, not to other townships or minimums."""
    sink = await make_sink()
    place = fire_report().place.model_copy(update={"township": "fengcheng", "village": "西关村"})
    event = fire_event(fire_report(place=place), townships=["fengcheng"], severity=Severity.MINOR)
    await sink.deliver(delivery(release_of(event)))
    await receiver.wait_for(2, reference(event))
    await asyncio.sleep(0.5)
    assert {sms.to for sms in receiver.messages(containing=reference(event))} == {"13800000201", "13800000301"}


async def test_a_long_text_arrives_in_joined_67_character_parts_with_wide_characters_intact(
    make_sink: Callable[..., Any], receiver: Receiver
) -> None:
    """A report too long for one SMS arrives as four UCS-2 parts of at most 67 units, rejoined exactly, 𬌗 intact."""
    sink = await make_sink()
    cause = "村民上坟烧纸引燃周边枯草𬌗，" * 12
    event = fire_event(fire_report(suspected_cause=cause), severity=Severity.EXTREME)
    await sink.deliver(delivery(release_of(event)))
    got = await receiver.wait_for(len(MANGHE_MEMBERS), reference(event))
    text = got[0].text
    assert all(sms.text == text and sms.parts == 4 for sms in got)
    assert "𬌗" in text
    assert text.endswith(f"（县林业局发布，编号YC-2026-0314-01·{reference(event)}）")
    wire = [part for part in receiver.parts if part.to == got[0].to and part.udh and reference(event) in text]
    assert all(units(part.text) <= 67 for part in wire)


async def test_the_rate_limit_spaces_parts_at_the_configured_rate(
    make_sink: Callable[..., Any], receiver: Receiver
) -> None:
    """At 300 parts a minute with a burst of one, ten parts take at least 1.8 seconds to reach the SMSC."""
    sink = await make_sink(sms_rate_per_minute=300, sms_burst=1)
    event = fire_event()
    started = asyncio.get_running_loop().time()
    await sink.deliver(delivery(release_of(event)))
    got = await receiver.wait_for(len(MANGHE_MEMBERS), reference(event))
    arrivals = sorted(part.at for part in receiver.parts if part.at >= started and part.to in MANGHE_MEMBERS)
    assert sum(sms.parts for sms in got) == 10
    # At the SMSC, unlimited they would all arrive within a fraction of a second; how long each part spends in the
    # gateway varies (the first one longest, seen: 0.2 s), so the span is checked with that much slack.
    assert arrivals[-1] - arrivals[0] >= 1.8 - 0.5
    handed = sorted(t for phone in MANGHE_MEMBERS for t in sink.ledger.handed_over_at(event.header.event_id, phone))
    # The k-th part is handed to the gateway no earlier than k intervals after the first (which had the burst's
    # token). Gaps between neighbours are not the property: a part woken late may be followed by one on time.
    assert all((at - handed[0]).total_seconds() >= k * 0.2 - 0.05 for k, at in enumerate(handed))


async def test_quiet_hours_hold_routine_messages_until_morning_but_not_urgent_ones(
    make_sink: Callable[..., Any], receiver: Receiver
) -> None:
    """At 23:30 a routine work update waits for 07:00 while a severe fire report goes at once; at 07:00 it goes."""
    now = [datetime(2026, 3, 14, 15, 30, tzinfo=UTC)]  # 23:30 in Yangcheng
    sink = await make_sink(sms_quiet_hours="22:00-07:00", clock=lambda: now[0], pump_interval_s=0.2)
    routine = work_event()
    urgent = fire_event(urgency=Urgency.EXPECTED, severity=Severity.SEVERE)
    await sink.deliver(delivery(release_of(routine)))
    await sink.deliver(delivery(release_of(urgent)))
    await receiver.wait_for(len(MANGHE_MEMBERS), reference(urgent))
    await asyncio.sleep(0.6)
    assert receiver.messages(containing=reference(routine)) == []
    held = sink.ledger.messages(routine.header.event_id)
    assert [message.status for message in held] == [MessageStatus.DEFERRED]
    assert held[0].due_at == datetime(2026, 3, 14, 23, 0, tzinfo=UTC)  # 07:00 local
    now[0] = datetime(2026, 3, 14, 23, 0, 1, tzinfo=UTC)
    got = await receiver.wait_for(1, reference(routine), within_s=10)
    assert [sms.to for sms in got] == ["13800000302"]
    assert sink.ledger.messages(routine.header.event_id)[0].status is MessageStatus.SENT


async def test_a_redelivered_release_sends_nothing_again(
    make_sink: Callable[..., Any], receiver: Receiver, sms_settings: Settings
) -> None:
    """The same release delivered twice, and again to a new sink on the same ledger, reaches each phone once."""
    event = fire_event()
    release = release_of(event)
    first = await make_sink()
    await first.deliver(delivery(release))
    await first.deliver(delivery(release))
    await first.close()
    second = await make_sink()
    await second.deliver(delivery(release))
    await receiver.wait_for(len(MANGHE_MEMBERS), reference(event))
    await asyncio.sleep(1.0)
    assert Counter(sms.to for sms in receiver.messages(containing=reference(event))) == Counter(MANGHE_MEMBERS)


# --- through the runner and the broker ---------------------------------------------------------------------------


@pytest.fixture
def runner_settings(sms_settings: Settings) -> Settings:
    return sms_settings.model_copy(update={"fetch_max_wait_ms": 50, "group_session_timeout_s": 4.0})


async def skip_backlog(settings: Settings) -> None:
    """Move the SMS sink's group to the end of its topics: other tests' releases are not this test's business."""
    consumer = AIOKafkaConsumer(
        *[topic.name for topic in SmsSink.topics],
        **client_options(settings, client_id="sms-test-skip"),
        group_id="firebus-sink-sms",
        enable_auto_commit=False,
        session_timeout_ms=4000,
        heartbeat_interval_ms=700,
    )
    await consumer.start()
    try:
        while not consumer.assignment():
            await consumer.getmany(timeout_ms=200)
        await consumer.seek_to_end()
        await consumer.commit({tp: await consumer.position(tp) for tp in consumer.assignment()})
    finally:
        await consumer.stop()


async def publish(settings: Settings, releases: list[Release]) -> None:
    producer = AIOKafkaProducer(**client_options(settings, client_id="sms-test-publish"), acks="all")
    await producer.start()
    try:
        for release in releases:
            key = (release.incident_id or str(release.event_id)).encode()
            await producer.send_and_wait(TIERS[release.tier].name, CODEC.encode(release), key=key)
    finally:
        await producer.stop()


def run(runner: SinkRunner) -> tuple[asyncio.Task[None], asyncio.Event]:
    stop = asyncio.Event()
    return asyncio.create_task(runner.run(stop)), stop


async def finish(task: asyncio.Task[None], stop: asyncio.Event) -> None:
    stop.set()
    await asyncio.wait_for(task, timeout=30)


async def test_a_sink_killed_mid_stream_and_restarted_sends_nothing_twice(
    runner_settings: Settings, county: County, receiver: Receiver
) -> None:
    """Cancelled mid-batch (nothing committed) and restarted on the same ledger, the sink sends no part twice."""
    await skip_backlog(runner_settings)
    paced = runner_settings.model_copy(update={"sms_rate_per_minute": 300, "sms_burst": 1})
    events = []
    for number in range(3):
        place = fire_report().place.model_copy(update={"village": f"桑林{number}村"})
        events.append(fire_event(fire_report(place=place), incident_id=f"YC-2026-0314-R{number}"))
    started = asyncio.get_running_loop().time()
    await publish(paced, [release_of(event) for event in events])

    first = SinkRunner(SmsSink(settings=paced, county=county), settings=paced)
    task, _stop = run(first)
    marker = "YC-2026-0314-R"
    await receiver.wait_for(3, marker, within_s=60)
    task.cancel()  # a crash as far as offsets go: the batch was never committed
    await asyncio.gather(task, return_exceptions=True)
    assert len(receiver.messages(containing=marker)) < 3 * len(MANGHE_MEMBERS)

    second = SinkRunner(SmsSink(settings=paced, county=county), settings=paced)
    task, stop = run(second)
    try:
        await receiver.wait_for(3 * len(MANGHE_MEMBERS) - 1, marker, within_s=60)
        await asyncio.sleep(2.0)
    finally:
        await finish(task, stop)

    parts = Counter((part.to, part.text, part.udh) for part in receiver.parts if part.at >= started)
    assert max(parts.values()) == 1, [part for part, count in parts.items() if count > 1]
    ledger = Ledger(paced.sms_ledger_path)
    try:
        uncertain = [
            m for e in events for m in ledger.messages(e.header.event_id) if m.status is MessageStatus.UNCERTAIN
        ]
    finally:
        ledger.close()
    assert len(uncertain) <= 1  # a part cut off inside its HTTP request is never re-sent: never twice wins
    for event in events:
        phones = Counter(sms.to for sms in receiver.messages(containing=reference(event)))
        expected = MANGHE_MEMBERS - {m.phone for m in uncertain if m.event_id == event.header.event_id}
        assert phones == Counter(expected), phones
    assert second.stats.delivered >= len(events)


async def test_the_runner_retries_while_the_gateway_is_down_and_delivers_once_it_is_up(
    runner_settings: Settings, county: County, receiver: Receiver, kannel: Kannel
) -> None:
    """With Kannel stopped the sink raises SinkUnavailableError and the runner retries; back up, each SMS goes once."""
    await skip_backlog(runner_settings)
    event = fire_event(incident_id="YC-2026-0314-D1")
    await kannel.stop()
    try:
        await publish(runner_settings, [release_of(event)])
        runner = SinkRunner(SmsSink(settings=runner_settings, county=county), settings=runner_settings)
        task, stop = run(runner)
        deadline = asyncio.get_running_loop().time() + 40
        while runner.stats.retries < 2:
            assert asyncio.get_running_loop().time() < deadline, "the runner never retried"
            await asyncio.sleep(0.1)
        assert receiver.messages(containing=reference(event)) == []
    finally:
        await kannel.start()
    try:
        await receiver.wait_for(len(MANGHE_MEMBERS), reference(event), within_s=60)
        await asyncio.sleep(1.0)
    finally:
        await finish(task, stop)
    assert Counter(sms.to for sms in receiver.messages(containing=reference(event))) == Counter(MANGHE_MEMBERS)
    assert runner.stats.delivered >= 1


def test_the_sink_reads_the_members_and_hq_tiers_only() -> None:
    """The SMS sink is named sms and reads the members and HQ tier topics, never the public one."""
    assert SmsSink.name == "sms"
    assert [topic.name for topic in SmsSink.topics] == [TIERS[Audience.MEMBERS].name, TIERS[Audience.HQ].name]
