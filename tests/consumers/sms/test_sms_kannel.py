"""End to end through a real Kannel: sink → smsbox sendsms → bearerbox → HTTP SMSC → the receiver the tests read."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from structlog.testing import capture_logs

from consumers import Delivery, SinkRunner
from consumers.sms import Ledger, MessageStatus, PartStatus, SmsSink, Texts, segment, units
from firebus.county import County
from firebus.errors import SinkUnavailableError
from firebus.events import Audience, Event, Severity, Urgency
from firebus.kafka import client_options
from firebus.records import Release
from firebus.settings import Settings
from firebus.topics import TIERS
from tests.consumers.sms.conftest import Kannel, Receiver, Unanswered
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


def marker(incident_id: str | None = None) -> Event[Any]:
    """A later record to fence with: a work update that goes to one phone only (13800000302), quiet hours or not."""
    return work_event(incident_id=incident_id, urgency=Urgency.IMMEDIATE)


async def fence(sink: SmsSink, receiver: Receiver) -> None:
    """Deliver a marker and wait until it has arrived: Kannel hands parts to the SMSC in the order it took them, so
    every part the sink handed over before the marker has arrived too, and a check that nothing else came is sound."""
    later = marker()
    await sink.deliver(delivery(release_of(later)))
    await receiver.wait_for(1, reference(later))


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
    await receiver.wait_for(len(MANGHE_MEMBERS), reference(event))
    await fence(sink, receiver)
    got = receiver.messages(containing=reference(event))
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
    await receiver.wait_for(len(HQ_OFFICERS), reference(event))
    await fence(sink, receiver)
    assert Counter(sms.to for sms in receiver.messages(containing=reference(event))) == Counter(HQ_OFFICERS)


async def test_a_minor_report_elsewhere_reaches_only_whom_it_concerns(
    make_sink: Callable[..., Any], receiver: Receiver
) -> None:
    """A minor report in 凤城镇 goes to forestry and the 凤城镇 official only, not to other townships or minimums."""
    sink = await make_sink()
    place = fire_report().place.model_copy(update={"township": "fengcheng", "village": "西关村"})
    event = fire_event(fire_report(place=place), townships=["fengcheng"], severity=Severity.MINOR)
    await sink.deliver(delivery(release_of(event)))
    await receiver.wait_for(2, reference(event))
    await fence(sink, receiver)
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
    await sink.send_due()  # what the pump does: nothing is due at 23:30
    await fence(sink, receiver)
    assert receiver.messages(containing=reference(routine)) == []
    held = sink.ledger.messages(routine.header.event_id)
    assert [message.status for message in held] == [MessageStatus.DEFERRED]
    assert held[0].due_at == datetime(2026, 3, 14, 23, 0, tzinfo=UTC)  # 07:00 local
    now[0] = datetime(2026, 3, 14, 23, 0, 1, tzinfo=UTC)
    got = await receiver.wait_for(1, reference(routine), within_s=10)
    assert [sms.to for sms in got] == ["13800000302"]
    assert sink.ledger.messages(routine.header.event_id)[0].status is MessageStatus.SENT


async def test_held_messages_due_while_the_gateway_is_down_cost_one_warning_and_go_when_it_is_back(
    make_sink: Callable[..., Any], receiver: Receiver, kannel: Kannel
) -> None:
    """A message held for quiet hours falls due while Kannel is stopped: the pump keeps trying every 0.2 s and warns
    once, and once Kannel is back the message goes and one line says the held messages are sent again."""
    now = [datetime(2026, 3, 14, 15, 30, tzinfo=UTC)]  # 23:30 in Yangcheng
    sink = await make_sink(sms_quiet_hours="22:00-07:00", clock=lambda: now[0], pump_interval_s=0.2)
    routine = work_event()
    await sink.deliver(delivery(release_of(routine)))
    assert [message.status for message in sink.ledger.messages(routine.header.event_id)] == [MessageStatus.DEFERRED]
    with capture_logs() as logs:
        await kannel.stop()
        try:
            now[0] = datetime(2026, 3, 14, 23, 0, 1, tzinfo=UTC)  # 07:00: due
            deadline = asyncio.get_running_loop().time() + 30
            while sum(line["event"] == "sms_deferred_retry" for line in logs) < 2:  # three failed tries
                assert asyncio.get_running_loop().time() < deadline, "the pump did not keep trying"
                await asyncio.sleep(0.05)
        finally:
            await kannel.start()
        await receiver.wait_for(1, reference(routine), within_s=30)
        deadline = asyncio.get_running_loop().time() + 30
        while not any(line["event"] == "sms_deferred_sent_again" for line in logs):
            assert asyncio.get_running_loop().time() < deadline, "no line said the held messages went again"
            await asyncio.sleep(0.05)
    assert [line["event"] for line in logs if line["log_level"] == "warning"] == ["sms_deferred_waiting"]


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
    await fence(second, receiver)
    assert Counter(sms.to for sms in receiver.messages(containing=reference(event))) == Counter(MANGHE_MEMBERS)


async def deliver_as_the_runner_does(sink: SmsSink, release: Release) -> None:
    """Deliver ``release``, and again while the sink says the gateway is unavailable (the runner's retry)."""
    for _attempt in range(3):
        try:
            await sink.deliver(delivery(release))
        except SinkUnavailableError:
            continue
        return
    raise AssertionError("the sink never took the release")


def assert_handed_over_once_first_uncertain(hop: Unanswered, sink: SmsSink, event: Event[Any]) -> None:
    """Every part of the event's messages reached the gateway exactly once; the message whose first part got no
    answer is uncertain (its other part sent), every other message sent."""
    handed = Counter((part.to, part.text, part.udh) for part in hop.requests)
    assert max(handed.values()) == 1, [part for part, count in handed.items() if count > 1]
    assert len(handed) == 2 * len(MANGHE_MEMBERS)
    unknown = hop.requests[0].to
    event_id = event.header.event_id
    assert {message.phone: message.status for message in sink.ledger.messages(event_id)} == {
        phone: MessageStatus.UNCERTAIN if phone == unknown else MessageStatus.SENT for phone in MANGHE_MEMBERS
    }
    assert sink.ledger.parts(event_id, unknown) == {1: PartStatus.UNCERTAIN, 2: PartStatus.SENT}


@pytest.mark.parametrize("drop", [False, True], ids=["time-out", "connection-dropped"])
async def test_a_part_the_gateway_may_have_taken_is_never_handed_over_again(
    make_sink: Callable[..., Any], receiver: Receiver, kannel: Kannel, drop: bool
) -> None:
    """A part Kannel took but whose answer never reached the sink (a time-out, a dropped connection: the outcome is
    unknown) is not handed over again, not by a retry, a redelivery or a restarted sink; the phone has it once."""
    event = fire_event()
    release = release_of(event)
    async with Unanswered(kannel.url, drop=drop) as hop:
        sink = await make_sink(sms_gateway_url=hop.url, sms_timeout_s=1.0)
        await deliver_as_the_runner_does(sink, release)
        await deliver_as_the_runner_does(sink, release)
        await sink.close()
        restarted = await make_sink(sms_gateway_url=hop.url, sms_timeout_s=1.0)
        await deliver_as_the_runner_does(restarted, release)
    assert_handed_over_once_first_uncertain(hop, restarted, event)
    got = await receiver.wait_for(len(MANGHE_MEMBERS), reference(event))
    assert {sms.to for sms in got} == MANGHE_MEMBERS  # the part whose answer was lost did go out


async def test_a_part_in_flight_when_the_sink_died_is_never_handed_over_again(
    make_sink: Callable[..., Any], receiver: Receiver, kannel: Kannel
) -> None:
    """The sink dies while the gateway holds a part's answer (claimed, never settled): restarted on the same ledger it
    counts that part uncertain and sends the rest of the message, never that part again."""
    event = fire_event()
    release = release_of(event)
    async with Unanswered(kannel.url) as hop:
        sink = await make_sink(sms_gateway_url=hop.url)
        sending = asyncio.create_task(sink.deliver(delivery(release)))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while not hop.requests:
            assert loop.time() < deadline, "the sink never asked the gateway"
            await asyncio.sleep(0.01)
        sending.cancel()  # the crash, while the gateway holds its answer
        await asyncio.gather(sending, return_exceptions=True)
        await sink.close()
        restarted = await make_sink(sms_gateway_url=hop.url)
        await deliver_as_the_runner_does(restarted, release)
    assert_handed_over_once_first_uncertain(hop, restarted, event)
    got = await receiver.wait_for(len(MANGHE_MEMBERS), reference(event))
    assert {sms.to for sms in got} == MANGHE_MEMBERS


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


async def fence_through_the_broker(settings: Settings, receiver: Receiver, incidents: list[str]) -> None:
    """Publish a marker in each incident (its key: same partition, behind the incident's releases) and wait until
    each has arrived: the runner has delivered everything published before, and Kannel passed it on."""
    markers = [marker(incident) for incident in incidents]
    await publish(settings, [release_of(later) for later in markers])
    for later in markers:
        await receiver.wait_for(1, reference(later), within_s=60)


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
    incidents = "YC-2026-0314-R"
    await receiver.wait_for(3, incidents, within_s=60)
    task.cancel()  # a crash as far as offsets go: the batch was never committed
    await asyncio.gather(task, return_exceptions=True)
    assert len(receiver.messages(containing=incidents)) < 3 * len(MANGHE_MEMBERS)

    second = SinkRunner(SmsSink(settings=paced, county=county), settings=paced)
    task, stop = run(second)
    try:
        await fence_through_the_broker(paced, receiver, [event.header.incident_id or "" for event in events])
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


async def test_the_runner_waits_out_a_gateway_outage_in_its_group_and_delivers_once_it_is_up(
    runner_settings: Settings, county: County, receiver: Receiver, kannel: Kannel
) -> None:
    """With Kannel stopped for longer than the group's poll interval the sink raises SinkUnavailableError and the
    runner retries, in its group and quietly (one warning, no partition taken from it); back up, one line says so
    and each SMS goes once."""
    await skip_backlog(runner_settings)
    waiting = runner_settings.model_copy(update={"group_poll_interval_s": 3.0})
    event = fire_event(incident_id="YC-2026-0314-D1")
    with capture_logs() as logs:
        await kannel.stop()
        try:
            await publish(waiting, [release_of(event)])
            runner = SinkRunner(SmsSink(settings=waiting, county=county), settings=waiting)
            task, stop = run(runner)
            deadline = asyncio.get_running_loop().time() + 60
            while runner.outage is None or runner.outage.down_s < 2 * waiting.group_poll_interval_s:
                assert asyncio.get_running_loop().time() < deadline, "the runner never waited on the gateway"
                assert not task.done(), task
                await asyncio.sleep(0.1)
            assert receiver.messages(containing=reference(event)) == []
        finally:
            await kannel.start()
        try:
            await receiver.wait_for(len(MANGHE_MEMBERS), reference(event), within_s=60)
            await fence_through_the_broker(waiting, receiver, ["YC-2026-0314-D1"])
        finally:
            await finish(task, stop)
    assert Counter(sms.to for sms in receiver.messages(containing=reference(event))) == Counter(MANGHE_MEMBERS)
    assert runner.stats.delivered >= 1
    ours = [line for line in logs if line.get("sink") == "sms"]
    assert [line["event"] for line in ours if line["log_level"] == "warning"] == ["sink_unavailable"]
    [back] = [line for line in ours if line["event"] == "sink_back"]
    assert back["down_s"] >= 2 * waiting.group_poll_interval_s
    assert [line for line in ours if line["event"] in ("sink_partitions_moved", "sink_commit_failed")] == []


def test_the_sink_reads_the_members_and_hq_tiers_only() -> None:
    """The SMS sink is named sms and reads the members and HQ tier topics, never the public one."""
    assert SmsSink.name == "sms"
    assert [topic.name for topic in SmsSink.topics] == [TIERS[Audience.MEMBERS].name, TIERS[Audience.HQ].name]
