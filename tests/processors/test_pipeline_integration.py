"""The processors worker end to end, as its own process against the embedded broker."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

from aiokafka import AIOKafkaProducer

from firebus.codec import Codec
from firebus.county import County
from firebus.events import Audience, Classification, Event, EventType, MessageKind
from firebus.kafka import read_to_end
from firebus.records import AuditAction, AuditEvent, DeadLetter, DeadLetterReason, Release, ReviewStatus, Verdict
from firebus.settings import Settings
from firebus.signing import load_signing_key, sign_event
from firebus.topics import AUDIT, DEAD_LETTER, HQ_LIVE, HQ_NOTICES, INTAKE, TIERS
from producers import Draft, FirebusClient, ReviewDesk, load_draft
from tests.processors.conftest import Worker, decoded, pending_item, wait_for_records

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "events"


def sample(name: str, **changes: Any) -> Draft:
    return load_draft(EXAMPLES / f"{name}.json").model_copy(update=changes)


async def publish(settings: Settings, county: County, unit: str, draft: Draft) -> UUID:
    async with FirebusClient(settings=settings, unit=unit, county=county) as client:
        return (await client.publish(draft)).event_id


async def produce_raw(settings: Settings, topic: str, value: bytes, key: bytes = b"raw") -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


async def releases_of(settings: Settings, event_id: UUID, tier: Audience) -> list[Release]:
    records = decoded(Codec(), await read_to_end(settings, TIERS[tier]))
    return [record for record in records if isinstance(record, Release) and record.event_id == event_id]


async def publish_marker(settings: Settings, county: County, incident_id: str) -> UUID:
    """A later publication in ``incident_id`` to fence with (see :func:`pass_fence`): a public work update."""
    return await publish(settings, county, "forestry", sample("work_update", incident_id=incident_id))


async def pass_fence(settings: Settings, desk: ReviewDesk, marker_id: UUID) -> None:
    """Approve the marker and wait for its release on every tier. It shares its incident's key, so its decision is
    handled after every earlier decision about the incident and its tier records land behind theirs: once it is on
    every tier, whatever the processors released for the incident before it is there too."""
    item = await pending_item(desk, marker_id)
    await desk.publish(item, desk.decision(item, reviewer="hq-li", verdict=Verdict.APPROVE))
    for tier in Audience:
        await wait_for_records(settings, TIERS[tier], lambda r: isinstance(r, Release) and r.event_id == marker_id)


async def test_fire_report_goes_live_at_once_and_is_released_only_when_approved(
    worker: Worker, settings: Settings, county: County
) -> None:
    """A fire report is on HQ live before review; its approval, and nothing before it, releases it on members and hq,
    redacted and enriched."""
    await publish(settings, county, "forestry", sample("resource"))
    report = sample("fire_report")
    event_id = await publish(settings, county, "forestry", report)
    marker_id = await publish_marker(settings, county, report.incident_id or "")

    live = await wait_for_records(settings, HQ_LIVE, lambda r: isinstance(r, Event) and r.header.event_id == event_id)
    assert live[0].body.reporter_phone == "13900001111"  # the HQ office sees everything live

    desk = ReviewDesk(settings=settings, county=county)
    item = await pending_item(desk, event_id)
    assert item.status is ReviewStatus.PENDING
    decision = desk.decision(item, reviewer="hq-wang", verdict=Verdict.APPROVE, reason="核实")
    await desk.publish(item, decision)
    await pass_fence(settings, desk, marker_id)

    members = await releases_of(settings, event_id, Audience.MEMBERS)
    hq = await releases_of(settings, event_id, Audience.HQ)
    assert [release.decision.decision_id for release in members + hq] == [decision.decision_id] * 2  # none before it
    assert await releases_of(settings, event_id, Audience.PUBLIC) == []  # a members-audience event never goes public

    codec = Codec()
    member_event = codec.decode(members[0].event)
    assert isinstance(member_event, Event)
    assert member_event.body.reporter_phone is None
    assert member_event.body.place.lat == 35.2583
    assert set(members[0].redacted_fields) == {"body.reporter_name", "body.reporter_phone"}
    assert members[0].decision.reviewer == "hq-wang"
    assert members[0].publisher_unit == "forestry"
    assert [n.resource_id for n in members[0].nearby_resources] == ["wp-manghe-003"]
    hq_event = codec.decode(hq[0].event)
    assert isinstance(hq_event, Event)
    assert hq_event.body.reporter_phone == "13900001111"
    assert hq[0].redacted_fields == []

    audits = await wait_for_records(
        settings, AUDIT, lambda r: isinstance(r, AuditEvent) and r.event_id == event_id, count=5
    )
    actions = {audit.action for audit in audits}
    assert {AuditAction.ACCEPTED, AuditAction.DECIDED, AuditAction.RELEASED, AuditAction.REDACTED} <= actions


async def test_public_release_is_redacted_for_the_public(worker: Worker, settings: Settings, county: County) -> None:
    """An approved public risk warning reaches all three tiers; the public copy has no publisher phone."""
    event_id = await publish(settings, county, "meteorology", sample("risk_warning", contact="0356-1234567"))
    desk = ReviewDesk(settings=settings, county=county)
    item = await pending_item(desk, event_id)
    assert item.status is ReviewStatus.PENDING  # the policy never releases to the public without a human
    await desk.publish(item, desk.decision(item, reviewer="hq-li", verdict=Verdict.APPROVE))
    public = await wait_for_records(
        settings, TIERS[Audience.PUBLIC], lambda r: isinstance(r, Release) and r.event_id == event_id
    )
    released = Codec().decode(public[0].event)
    assert isinstance(released, Event)
    assert released.header.publisher.contact is None
    assert released.header.signature == b""  # redacted: the publisher's signature no longer applies
    members = await releases_of(settings, event_id, Audience.MEMBERS)
    assert len(members) == 1


async def test_rejected_event_never_appears_on_any_tier(worker: Worker, settings: Settings, county: County) -> None:
    """A rejected publication is recorded with its reason and never released."""
    incident_id = f"YC-REJECT-{uuid4().hex[:8]}"
    event_id = await publish(settings, county, "forestry", sample("work_update", incident_id=incident_id))
    marker_id = await publish_marker(settings, county, incident_id)
    desk = ReviewDesk(settings=settings, county=county)
    item = await pending_item(desk, event_id)
    await desk.publish(item, desk.decision(item, reviewer="hq-wang", verdict=Verdict.REJECT, reason="内容不实"))
    decided = await wait_for_records(
        settings,
        AUDIT,
        lambda r: isinstance(r, AuditEvent) and r.event_id == event_id and r.action is AuditAction.DECIDED,
    )
    assert decided[0].reason == "内容不实"
    await pass_fence(settings, desk, marker_id)
    for tier in Audience:
        assert await releases_of(settings, event_id, tier) == []
    assert (await desk.items())[event_id].status is ReviewStatus.REJECTED


async def test_policy_rule_releases_member_tier_without_a_human(
    worker: Worker, settings: Settings, county: County
) -> None:
    """A forestry resource update is released to members by the office's named rule, which is the reviewer of record."""
    event_id = await publish(settings, county, "forestry", sample("resource"))
    members = await wait_for_records(
        settings, TIERS[Audience.MEMBERS], lambda r: isinstance(r, Release) and r.event_id == event_id
    )
    assert members[0].decision.reviewer == "resource-by-owner"
    assert members[0].decision.policy_version


async def test_bad_input_lands_in_dead_letter_with_reasons(worker: Worker, settings: Settings, county: County) -> None:
    """Corrupt bytes, a bad signature and an event outside the publisher's duties each get a dead letter with why."""
    codec = Codec()
    topic = INTAKE[EventType.FIRE_REPORT].name
    await produce_raw(settings, topic, b"\xc3\x01not an avro record", key=b"corrupt-case")

    async with FirebusClient(settings=settings, unit="forestry", county=county) as client:
        event = client.prepare(sample("fire_report", incident_id="YC-TAMPER"))
    tampered = bytearray(codec.encode(event))
    tampered[-3] ^= 0x01  # inside the body: the signature no longer matches
    await produce_raw(settings, topic, bytes(tampered), key=b"YC-TAMPER")

    police_key = load_signing_key(settings.key_directory, "police")
    outside = event.model_copy(
        update={
            "header": event.header.model_copy(
                update={"publisher": event.header.publisher.model_copy(update={"unit": "police"})}
            )
        }
    )
    await produce_raw(settings, topic, codec.encode(sign_event(codec, outside, police_key)), key=b"YC-DUTY")

    letters = await wait_for_records(
        settings,
        DEAD_LETTER,
        lambda r: isinstance(r, DeadLetter) and r.key in (b"corrupt-case", b"YC-TAMPER", b"YC-DUTY"),
        count=3,
    )
    by_key = {letter.key: letter for letter in letters}
    assert by_key[b"corrupt-case"].reason_code in (DeadLetterReason.CORRUPT, DeadLetterReason.UNKNOWN_SCHEMA)
    assert by_key[b"YC-TAMPER"].reason_code is DeadLetterReason.BAD_SIGNATURE
    assert by_key[b"YC-TAMPER"].value == bytes(tampered)
    assert by_key[b"YC-DUTY"].reason_code is DeadLetterReason.OUTSIDE_DUTIES
    assert "may not publish fire_report" in by_key[b"YC-DUTY"].reason
    assert all(letter.source_topic == topic for letter in letters)


async def test_secret_is_quarantined_and_the_office_told(worker: Worker, settings: Settings, county: County) -> None:
    """A secret event that bypasses the client is quarantined: an audit and an office notice, its body nowhere."""
    codec = Codec()
    async with FirebusClient(settings=settings, unit="forestry", county=county) as client:
        event = client.prepare(sample("fire_report", incident_id="YC-SECRET"))
    secret = event.model_copy(
        update={"header": event.header.model_copy(update={"classification": Classification.SECRET})}
    )
    signed = sign_event(codec, secret, load_signing_key(settings.key_directory, "forestry"))
    await produce_raw(settings, INTAKE[EventType.FIRE_REPORT].name, codec.encode(signed), key=b"YC-SECRET")
    event_id = signed.header.event_id
    notices = await wait_for_records(
        settings, HQ_NOTICES, lambda r: isinstance(r, AuditEvent) and r.event_id == event_id
    )
    assert notices[0].action is AuditAction.QUARANTINED
    assert "official letter" in (notices[0].reason or "")
    live = decoded(codec, await read_to_end(settings, HQ_LIVE))
    assert all(not (isinstance(r, Event) and r.header.event_id == event_id) for r in live)


async def test_cancel_withdraws_an_unreviewed_event(worker: Worker, settings: Settings, county: County) -> None:
    """Cancelling an event still awaiting review withdraws it; nothing is ever released for it."""
    original = await publish(settings, county, "forestry", sample("fire_report", incident_id="YC-CANCEL"))
    desk = ReviewDesk(settings=settings, county=county)
    await pending_item(desk, original)
    cancel = sample("fire_report", incident_id="YC-CANCEL", kind=MessageKind.CANCEL, references=[original])
    cancel_id = await publish(settings, county, "forestry", cancel)
    marker_id = await publish_marker(settings, county, "YC-CANCEL")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while (await desk.items())[original].status is not ReviewStatus.WITHDRAWN:
        assert loop.time() < deadline, "the cancelled event was never withdrawn"
        await asyncio.sleep(0.3)
    await pass_fence(settings, desk, marker_id)
    for tier in Audience:
        assert await releases_of(settings, original, tier) == []
        assert await releases_of(settings, cancel_id, tier) == []
