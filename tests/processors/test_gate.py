"""The intake gate's routing, without Kafka: what each consumed intake or decision record becomes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from firebus.codec import Codec
from firebus.county import County
from firebus.deadletters import SourceRecord
from firebus.events import Event, EventType, MessageKind
from firebus.kafka import UnreadableBatch
from firebus.records import AuditAction, AuditEvent, DeadLetter, DeadLetterReason, ReviewDecision, ReviewerKind, Verdict
from firebus.settings import Settings
from firebus.signing import registered_public_keys
from firebus.topics import AUDIT, DEAD_LETTER, HQ_LIVE, INTAKE, REVIEW_DECISIONS, REVIEW_INBOX
from processors.gate import IntakeGate, source_from_header
from processors.intake import IntakeValidator
from processors.outgoing import Outgoing
from producers import FirebusClient, load_draft
from tests.samples import EXAMPLES, SAMPLE_PUBLISHER

NOW = datetime(2026, 3, 12, 6, 0, tzinfo=UTC)
CODEC = Codec()


class Gate:
    def __init__(self, county: County, keys_dir: Path) -> None:
        self.county = county
        self.settings = Settings(keys_dir=keys_dir, home=keys_dir)
        keys = registered_public_keys(county, keys_dir)
        self.validator = IntakeValidator(codec=CODEC, county=county, public_keys=keys)
        self.gate = IntakeGate(validator=self.validator, codec=CODEC)
        self._offsets = iter(range(100, 10_000))

    def event(self, event_type: EventType, *, now: datetime = NOW, **changes: Any) -> Event[Any]:
        draft = load_draft(EXAMPLES / f"{event_type.value}.json").model_copy(update=changes)
        unit = SAMPLE_PUBLISHER[event_type]
        return FirebusClient(settings=self.settings, unit=unit, county=self.county).prepare(draft, now=now)

    def intake(self, event: Event[Any], *, partition: int = 2, key: bytes | None = None) -> SourceRecord:
        topic = INTAKE[event.header.event_type].name
        return SourceRecord(topic, partition, next(self._offsets), key, CODEC.encode(event))

    def route(self, *sources: SourceRecord) -> list[Outgoing]:
        return self.gate.route(list(sources), now=NOW)


@pytest.fixture(scope="module")
def gate(county: County, keys_dir: Path) -> Gate:
    return Gate(county, keys_dir)


def on(records: list[Outgoing], topic: Any) -> list[Outgoing]:
    return [record for record in records if record.topic is topic]


def event_ids(records: list[Outgoing]) -> list[Any]:
    events = [CODEC.decode(record.value) for record in records]
    assert all(isinstance(event, Event) for event in events), events
    return [event.header.event_id for event in events if isinstance(event, Event)]


def test_an_accepted_alert_goes_to_the_inbox_by_its_partition_key_and_to_hq_live(gate: Gate) -> None:
    """Whatever partition and key it arrived with, the event goes on unchanged, keyed by its own partition key and
    naming where it was published; a fire-related alert is on HQ live at once."""
    event = gate.event(EventType.FIRE_REPORT)
    source = gate.intake(event, partition=2, key=None)
    routed = gate.route(source)

    [inbox] = on(routed, REVIEW_INBOX)
    assert inbox.key == event.partition_key().encode()
    assert inbox.partition is None  # the sender places it by the key, as every Kafka client's default does
    assert inbox.value == source.value
    assert source_from_header(inbox.value, inbox.headers, key=inbox.key) == SourceRecord(
        source.topic, source.partition, source.offset, inbox.key, source.value
    )
    assert [record.value for record in on(routed, HQ_LIVE)] == [source.value]
    [audit] = [CODEC.decode(record.value) for record in on(routed, AUDIT)]
    assert isinstance(audit, AuditEvent)
    assert audit.action is AuditAction.ACCEPTED


def test_an_event_that_is_not_fire_related_never_goes_to_hq_live(gate: Gate) -> None:
    routed = gate.route(gate.intake(gate.event(EventType.WORK_UPDATE)))
    assert len(on(routed, REVIEW_INBOX)) == 1
    assert on(routed, HQ_LIVE) == []


def test_an_update_waits_for_its_reference_check_before_hq_live(gate: Gate) -> None:
    """The gate cannot know an update's original: the review stage sends it to HQ live once its references hold."""
    update = gate.event(EventType.FIRE_REPORT, kind=MessageKind.UPDATE, references=[uuid4()])
    routed = gate.route(gate.intake(update))
    assert len(on(routed, REVIEW_INBOX)) == 1
    assert on(routed, HQ_LIVE) == []


def test_a_batch_reaches_the_inbox_in_publication_order(gate: Gate) -> None:
    """A producer spreading one incident over partitions loses Kafka's order; within a batch the gate restores it."""
    original = gate.event(EventType.FIRE_REPORT, now=NOW - timedelta(seconds=30))
    update = gate.event(EventType.FIRE_REPORT, kind=MessageKind.UPDATE, references=[original.header.event_id], now=NOW)
    routed = gate.route(gate.intake(update, partition=0), gate.intake(original, partition=1))
    assert event_ids(on(routed, REVIEW_INBOX)) == [original.header.event_id, update.header.event_id]


def test_a_refused_event_is_a_dead_letter_and_goes_nowhere_else(gate: Gate) -> None:
    event = gate.event(EventType.FIRE_REPORT)
    garbled = gate.intake(event)
    garbled = SourceRecord(garbled.topic, garbled.partition, garbled.offset, None, (garbled.value or b"")[:-3])
    routed = gate.route(garbled)
    assert on(routed, REVIEW_INBOX) == on(routed, HQ_LIVE) == []
    [letter] = [CODEC.decode(record.value) for record in on(routed, DEAD_LETTER)]
    assert isinstance(letter, DeadLetter)
    assert letter.reason_code is DeadLetterReason.CORRUPT


def decision_record(decision: ReviewDecision, *, key: bytes | None) -> SourceRecord:
    return SourceRecord(REVIEW_DECISIONS.name, 0, 5, key, CODEC.encode(decision))


def a_decision(**changes: Any) -> ReviewDecision:
    fields: dict[str, Any] = {
        "decision_id": uuid4(),
        "event_id": uuid4(),
        "event_type": EventType.FIRE_REPORT,
        "verdict": Verdict.APPROVE,
        "reviewer": "hq-wang",
        "reviewer_kind": ReviewerKind.HUMAN,
        "decided_at": NOW,
        "trace_id": uuid4().hex,
    }
    return ReviewDecision.model_construct(**{**fields, **changes})


def test_a_keyed_decision_goes_to_the_inbox_by_its_key(gate: Gate) -> None:
    routed = gate.route(decision_record(a_decision(), key=b"YC-2026-0312-01"))
    [inbox] = routed
    assert (inbox.topic, inbox.key) == (REVIEW_INBOX, b"YC-2026-0312-01")


@pytest.mark.parametrize(
    ("decision", "key", "reason"),
    [
        (a_decision(), None, "no record key"),
        (a_decision(reason="核实\x00无误"), b"YC-1", "reason: control character U+0000"),
        (a_decision(reason="核实\u202e无误"), b"YC-1", "reason: bidirectional"),
    ],
    ids=["no key", "NUL in the reason", "bidi override in the reason"],
)
def test_a_decision_the_gate_cannot_place_or_that_breaks_a_text_rule_is_a_dead_letter(
    gate: Gate, decision: ReviewDecision, key: bytes | None, reason: str
) -> None:
    routed = gate.route(decision_record(decision, key=key))
    assert on(routed, REVIEW_INBOX) == []
    [letter] = [CODEC.decode(record.value) for record in on(routed, DEAD_LETTER)]
    assert isinstance(letter, DeadLetter)
    assert reason in letter.reason


def test_an_unreadable_batch_is_one_dead_letter_naming_its_offsets(gate: Gate) -> None:
    batch = UnreadableBatch("firebus.intake.fire_report", 1, 40, 43, "snappy batch cannot be read: corrupt", b"\x01")
    [letter_record, *_audit] = gate.gate.unreadable(batch, now=NOW)
    letter = CODEC.decode(letter_record.value)
    assert isinstance(letter, DeadLetter)
    assert (letter.reason_code, letter.source_partition, letter.source_offset) == (DeadLetterReason.CORRUPT, 1, 40)
    assert "offsets 40..42" in letter.reason
    assert letter.value == b"\x01"


def test_a_record_the_gate_cannot_handle_is_a_poison_dead_letter_and_the_rest_goes_on(
    county: County, keys_dir: Path
) -> None:
    exploding = Gate(county, keys_dir)
    event = exploding.event(EventType.FIRE_REPORT)
    good, bad = exploding.intake(event), exploding.intake(exploding.event(EventType.WORK_UPDATE))
    checked = exploding.validator.check

    def check(source: SourceRecord, *, now: datetime) -> Any:
        if source is bad:
            raise RuntimeError("a bug in a rule")
        return checked(source, now=now)

    exploding.validator.check = check  # type: ignore[method-assign]
    routed = exploding.route(bad, good)
    assert event_ids(on(routed, REVIEW_INBOX)) == [event.header.event_id]
    [letter] = [CODEC.decode(record.value) for record in on(routed, DEAD_LETTER)]
    assert isinstance(letter, DeadLetter)
    assert letter.reason_code is DeadLetterReason.POISON
    assert "a bug in a rule" in letter.reason
