"""Intake validation, pure: every sample event passes; everything broken becomes a dead letter with its reason and
the original bytes; a ``secret`` event is quarantined and only an audit record (with the phone-or-letter notice)
leaves the stage.

Events are built by the client library (``FirebusClient.prepare``, no broker) from ``examples/events``, or — for
what the library would refuse — as models signed with :func:`firebus.signing.sign_event`. Records are
:class:`~processors.intake.SourceRecord` objects on the registry's intake topic names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from firebus.codec import Codec
from firebus.county import County
from firebus.deadletters import Rejected, SourceRecord, audit_id
from firebus.events import Classification, Event, EventType, Publisher
from firebus.records import AuditAction, AuditEvent, DeadLetter, DeadLetterReason
from firebus.settings import Settings
from firebus.signing import load_signing_key, registered_public_keys, sign_event
from firebus.topics import INTAKE
from processors.intake import Accepted, IntakeValidator, Quarantined
from producers import FirebusClient, load_draft

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "events"
NOW = datetime(2026, 3, 12, 6, 0, tzinfo=UTC)
CODEC = Codec()

# A unit whose duties include the sample's type (and, for townships, whose area covers it).
PUBLISHER = {
    EventType.CASE_UPDATE: "police",
    EventType.CONSULTATION: "hq_office",
    EventType.DIRECTIVE: "hq_office",
    EventType.FIRE_REPORT: "forestry",
    EventType.RESOURCE: "forestry",
    EventType.RISK_WARNING: "meteorology",
    EventType.TRAFFIC_CONTROL: "police",
    EventType.WORK_UPDATE: "forestry",
}

# Strings of the sample fire report's body that must never leave a quarantine.
FIRE_BODY_TEXT = ("桑林村", "蟒河景区东侧山坡", "蟒河镇半专业扑火队", "上坟烧纸", "李护林", "13900001111")


@dataclass
class Kit:
    """Everything a test needs to build records: the county, the units' keys, a validator."""

    county: County
    keys_dir: Path
    settings: Settings
    validator: IntakeValidator

    def client(self, unit: str) -> FirebusClient:
        return FirebusClient(settings=self.settings, unit=unit, county=self.county)

    def key(self, unit: str) -> Ed25519PrivateKey:
        return load_signing_key(self.keys_dir, unit)

    def sample(self, event_type: EventType, *, unit: str | None = None, now: datetime = NOW) -> Event[Any]:
        """The example draft of ``event_type``, prepared and signed by ``unit`` (default: its usual publisher)."""
        draft = load_draft(EXAMPLES / f"{event_type.value}.json")
        return self.client(unit or PUBLISHER[event_type]).prepare(draft, now=now)

    def check(self, source: SourceRecord) -> Any:
        return self.validator.check(source, now=NOW)


@pytest.fixture(scope="module")
def kit(county: County, keys_dir: Path) -> Kit:
    settings = Settings(keys_dir=keys_dir, home=keys_dir)
    validator = IntakeValidator(codec=CODEC, county=county, public_keys=registered_public_keys(county, keys_dir))
    return Kit(county, keys_dir, settings, validator)


def on_intake(value: bytes | None, event_type: EventType = EventType.FIRE_REPORT, *, offset: int = 7) -> SourceRecord:
    """A record as consumed from ``event_type``'s intake topic."""
    return SourceRecord(topic=INTAKE[event_type].name, partition=2, offset=offset, key=b"YC-2026-0312-01", value=value)


def resigned(kit: Kit, event: Event[Any], *, key_of: str, **header: Any) -> bytes:
    """``event`` with ``header`` fields changed, signed with ``key_of``'s key, encoded."""
    changed = event.model_copy(update={"header": event.header.model_copy(update=header)})
    return CODEC.encode(sign_event(CODEC, changed, kit.key(key_of)))


def flip_signature_byte(raw: bytes, signature: bytes) -> bytes:
    """``raw`` with one byte in the middle of ``signature`` inverted."""
    at = raw.index(signature) + len(signature) // 2
    return raw[:at] + bytes([raw[at] ^ 0xFF]) + raw[at + 1 :]


# --- accepted ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("event_type", list(EventType), ids=lambda t: t.value)
def test_every_sample_event_is_accepted_with_its_audit(kit: Kit, event_type: EventType) -> None:
    """Each example event, signed by a unit with that duty, is accepted as is, with an ``accepted`` audit record."""
    event = kit.sample(event_type)
    raw = CODEC.encode(event)
    source = on_intake(raw, event_type)

    verdict = kit.check(source)

    assert isinstance(verdict, Accepted), verdict
    assert verdict.raw == raw
    assert verdict.event == event
    audit = verdict.audit
    assert audit.action is AuditAction.ACCEPTED
    assert audit.audit_id == audit_id("accepted", event.header.event_id)
    assert audit.event_id == event.header.event_id
    assert audit.event_type is event_type
    assert audit.publisher_unit == PUBLISHER[event_type]
    assert audit.trace_id == event.header.trace_id
    assert audit.details["source"] == f"{source.topic}/{source.partition}/{source.offset}"
    assert audit.at == NOW
    assert CODEC.decode(CODEC.encode(audit)) == audit


def test_the_acceptance_audit_id_does_not_depend_on_where_the_record_was_read(kit: Kit) -> None:
    """A redelivered event (another offset) gets the same ``accepted`` audit id, so the archive keeps it once."""
    raw = CODEC.encode(kit.sample(EventType.FIRE_REPORT))

    first = kit.check(on_intake(raw, offset=1))
    again = kit.check(on_intake(raw, offset=99))

    assert isinstance(first, Accepted)
    assert isinstance(again, Accepted)
    assert first.audit.audit_id == again.audit.audit_id


# --- rejected ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    source: SourceRecord
    code: DeadLetterReason
    names: tuple[str, ...]
    """Substrings the dead letter's reason must contain: it names the problem."""
    event_id: str | None = None


def _empty(kit: Kit) -> Case:
    return Case(on_intake(b""), DeadLetterReason.CORRUPT, ("empty",))


def _none(kit: Kit) -> Case:
    return Case(on_intake(None), DeadLetterReason.CORRUPT, ("empty",))


def _garbage(kit: Kit) -> Case:
    return Case(on_intake("火情 not avro at all".encode()), DeadLetterReason.CORRUPT, ("C3 01",))


def _garbled_body(kit: Kit) -> Case:
    raw = CODEC.encode(kit.sample(EventType.FIRE_REPORT))
    return Case(on_intake(raw[:10] + b"\xff" * 40), DeadLetterReason.CORRUPT, ("corrupt",))


def _truncated(kit: Kit) -> Case:
    raw = CODEC.encode(kit.sample(EventType.FIRE_REPORT))
    return Case(on_intake(raw[:-10]), DeadLetterReason.CORRUPT, ("FireReportEvent", "corrupt"))


def _truncated_prefix(kit: Kit) -> Case:
    raw = CODEC.encode(kit.sample(EventType.FIRE_REPORT))
    return Case(on_intake(raw[:6]), DeadLetterReason.CORRUPT, ("6 bytes", "prefix"))


def _trailing_bytes(kit: Kit) -> Case:
    raw = CODEC.encode(kit.sample(EventType.FIRE_REPORT))
    return Case(on_intake(raw + b"\x00\x01"), DeadLetterReason.CORRUPT, ("unexpected bytes",))


def _unknown_fingerprint(kit: Kit) -> Case:
    raw = CODEC.encode(kit.sample(EventType.FIRE_REPORT))
    forged = raw[:2] + bytes.fromhex("0123456789abcdef") + raw[10:]
    return Case(on_intake(forged), DeadLetterReason.UNKNOWN_SCHEMA, ("fingerprint", "0123456789abcdef"))


def _wrong_intake_topic(kit: Kit) -> Case:
    raw = CODEC.encode(kit.sample(EventType.FIRE_REPORT))
    topic = INTAKE[EventType.WORK_UPDATE].name
    return Case(on_intake(raw, EventType.WORK_UPDATE), DeadLetterReason.SCHEMA_INVALID, ("fire_report", topic))


def _not_an_event(kit: Kit) -> Case:
    audit = AuditEvent(audit_id=audit_id("x"), action=AuditAction.OTHER, actor="someone", at=NOW)
    topic = INTAKE[EventType.FIRE_REPORT].name
    return Case(on_intake(CODEC.encode(audit)), DeadLetterReason.SCHEMA_INVALID, ("AuditEvent", topic))


def _bad_signature(kit: Kit) -> Case:
    event = kit.sample(EventType.FIRE_REPORT)
    raw = flip_signature_byte(CODEC.encode(event), event.header.signature)
    eid = str(event.header.event_id)
    return Case(on_intake(raw), DeadLetterReason.BAD_SIGNATURE, ("does not verify", "forestry", eid), eid)


def _missing_signature(kit: Kit) -> Case:
    event = kit.sample(EventType.FIRE_REPORT)
    unsigned = event.model_copy(update={"header": event.header.model_copy(update={"signature": b""})})
    eid = str(event.header.event_id)
    return Case(on_intake(CODEC.encode(unsigned)), DeadLetterReason.BAD_SIGNATURE, ("no valid signature",), eid)


def _another_units_key(kit: Kit) -> Case:
    event = kit.sample(EventType.FIRE_REPORT)
    raw = CODEC.encode(sign_event(CODEC, event, kit.key("emergency")))
    eid = str(event.header.event_id)
    return Case(on_intake(raw), DeadLetterReason.BAD_SIGNATURE, ("does not verify", "forestry"), eid)


def _unknown_unit(kit: Kit) -> Case:
    event = kit.sample(EventType.FIRE_REPORT)
    ghost = event.header.publisher.model_copy(update={"unit": "ghost_unit"})
    header = event.header.model_copy(update={"publisher": ghost, "signature": b""})
    raw = CODEC.encode(sign_event(CODEC, event.model_copy(update={"header": header}), Ed25519PrivateKey.generate()))
    eid = str(event.header.event_id)
    return Case(on_intake(raw), DeadLetterReason.UNKNOWN_UNIT, ("ghost_unit", "registry"), eid)


def _outside_duties(kit: Kit) -> Case:
    event = kit.sample(EventType.FIRE_REPORT)
    police = Publisher(unit="police", person="刘警官")
    raw = resigned(kit, event, key_of="police", publisher=police)
    eid = str(event.header.event_id)
    return Case(on_intake(raw), DeadLetterReason.OUTSIDE_DUTIES, ("police", "fire_report"), eid)


def _outside_area(kit: Kit) -> Case:
    event = kit.sample(EventType.FIRE_REPORT)  # a fire in 蟒河镇 …
    xihe = Publisher(unit="twp_xihe", person="西河乡值班员")  # … reported by 西河乡, with its own key
    raw = resigned(kit, event, key_of="twp_xihe", publisher=xihe)
    eid = str(event.header.event_id)
    return Case(on_intake(raw), DeadLetterReason.OUTSIDE_DUTIES, ("twp_xihe", "manghe"), eid)


def _published_in_the_future(kit: Kit) -> Case:
    event = kit.sample(EventType.FIRE_REPORT, now=NOW + timedelta(hours=1))
    eid = str(event.header.event_id)
    return Case(on_intake(CODEC.encode(event)), DeadLetterReason.BAD_TIMESTAMP, ("header.published_at", "future"), eid)


def _too_old(kit: Kit) -> Case:
    event = kit.sample(EventType.FIRE_REPORT)
    raw = resigned(kit, event, key_of="forestry", occurred_at=NOW - timedelta(days=400))
    eid = str(event.header.event_id)
    return Case(on_intake(raw), DeadLetterReason.BAD_TIMESTAMP, ("header.occurred_at", "year old"), eid)


def _model_invalid(kit: Kit) -> Case:
    event = kit.sample(EventType.FIRE_REPORT)
    contract, record = CODEC.decode_data(CODEC.encode(event))
    record["body"]["place"]["lat"] = 200.0  # a double, as the schema says; not a latitude, as the model says
    raw = CODEC.encode_data(contract, record)
    eid = str(event.header.event_id)
    return Case(on_intake(raw), DeadLetterReason.SCHEMA_INVALID, ("body.place.lat", "90"), eid)


def _rule_breach(kit: Kit) -> Case:
    event = kit.sample(EventType.FIRE_REPORT)
    raw = resigned(kit, event, key_of="forestry", incident_id=None)
    eid = str(event.header.event_id)
    return Case(on_intake(raw), DeadLetterReason.SCHEMA_INVALID, ("header.incident_id", "incident"), eid)


def rewritten(kit: Kit, change: Callable[[dict[str, Any]], None], event_type: EventType) -> tuple[SourceRecord, str]:
    """The sample of ``event_type`` with its decoded record changed by ``change``, properly signed again: what a
    client without our library could write."""
    event = kit.sample(event_type)
    contract, record = CODEC.decode_data(CODEC.encode(event))
    change(record)
    record["header"]["signature"] = b""
    changed = CODEC.to_model(contract, record)
    assert isinstance(changed, Event)
    signed = sign_event(CODEC, changed, kit.key(PUBLISHER[event_type]))
    return on_intake(CODEC.encode(signed), event_type), str(event.header.event_id)


def _text_case(change: Callable[[dict[str, Any]], None], *names: str, event_type: EventType = EventType.FIRE_REPORT):
    def case(kit: Kit) -> Case:
        source, eid = rewritten(kit, change, event_type)
        return Case(source, DeadLetterReason.SCHEMA_INVALID, names, eid)

    return case


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    *parents, last = path.split(".")

    def change(record: dict[str, Any]) -> None:
        node = record
        for name in parents:
            node = node[name]
        node[last] = value

    return change


CASES: dict[str, Callable[[Kit], Case]] = {
    "empty value": _empty,
    "no value (tombstone)": _none,
    "corrupt bytes": _garbage,
    "garbled body": _garbled_body,
    "truncated record": _truncated,
    "truncated inside the prefix": _truncated_prefix,
    "trailing bytes": _trailing_bytes,
    "unknown fingerprint": _unknown_fingerprint,
    "wrong intake topic": _wrong_intake_topic,
    "non-event record on an intake topic": _not_an_event,
    "bad signature": _bad_signature,
    "missing signature": _missing_signature,
    "signed with another unit's key": _another_units_key,
    "unknown unit": _unknown_unit,
    "outside duties": _outside_duties,
    "outside area": _outside_area,
    "published in the future": _published_in_the_future,
    "occurred over a year ago": _too_old,
    "schema-valid but model-invalid": _model_invalid,
    "fire report without an incident": _rule_breach,
    "NUL in free text": _text_case(_set("body.place.description", "东侧\x00山坡"), "body.place.description", "U+0000"),
    "carriage return in a name": _text_case(
        _set("header.publisher.person", "赵\r林"), "header.publisher.person", "U+000D"
    ),
    "right-to-left override": _text_case(
        _set("body.suspected_cause", "\u202e纸烧坟上"), "body.suspected_cause", "U+202E"
    ),
    "100,000 characters of text": _text_case(
        _set("body.text", "火" * 100_000), "body.text", "100000 characters", "5000", event_type=EventType.WORK_UPDATE
    ),
    "text not in NFC": _text_case(_set("body.place.village", "桑林村 Cafe\u0301"), "body.place.village", "NFC"),
    "empty trace id": _text_case(_set("header.trace_id", ""), "header.trace_id", "minimum of 1"),
    "empty township id": _text_case(_set("header.townships", [""]), "header.townships[0]", "minimum of 1"),
    "schema_version 7": _text_case(_set("header.schema_version", 7), "header.schema_version", "7", "version 2"),
}


def test_every_text_problem_of_a_record_is_named_in_one_dead_letter(kit: Kit) -> None:
    """A record with several bad fields is one dead letter whose reason names each of them, indexes included."""

    def change(record: dict[str, Any]) -> None:
        record["header"]["trace_id"] = "has space"
        record["header"]["schema_version"] = 3
        record["body"]["forces"][0]["equipment"] = ["ok", "\u2066隔离\u2069"]
        record["body"]["reporter_phone"] = "1" * 41

    source, _eid = rewritten(kit, change, EventType.FIRE_REPORT)
    verdict = kit.check(source)
    assert isinstance(verdict, Rejected), verdict
    assert verdict.dead_letter.reason_code is DeadLetterReason.SCHEMA_INVALID
    assert verdict.dead_letter.reason.split("; ") == [
        "header.trace_id: does not match ^[0-9A-Za-z][0-9A-Za-z._:-]{0,63}$",
        "body.forces[0].equipment[1]: bidirectional control U+2066 at index 0 (and 1 more forbidden)",
        "body.reporter_phone: 41 characters, more than the limit of 40",
        "header.schema_version: 3, but the event was written with version 2",
    ]


@pytest.mark.parametrize("name", list(CASES))
def test_a_broken_record_becomes_a_dead_letter_with_its_reason_and_original_bytes(kit: Kit, name: str) -> None:
    """A bad record is Rejected: reason code, a reason naming the problem, the original bytes, where it came from."""
    case = CASES[name](kit)

    verdict = kit.check(case.source)

    assert isinstance(verdict, Rejected), verdict
    letter = verdict.dead_letter
    assert letter.reason_code is case.code, letter.reason
    for needle in case.names:
        assert needle in letter.reason, f"{needle!r} not in {letter.reason!r}"
    assert letter.value == (case.source.value or b"")
    assert letter.key == case.source.key
    assert (letter.source_topic, letter.source_partition, letter.source_offset) == (
        case.source.topic,
        case.source.partition,
        case.source.offset,
    )
    assert letter.stage == "processors.intake"
    assert letter.event_id == case.event_id
    assert letter.at == NOW
    assert CODEC.decode(CODEC.encode(letter)) == letter

    audit = verdict.audit
    assert audit.action is AuditAction.REJECTED
    assert audit.reason is not None
    assert audit.reason.startswith(f"{case.code.value}: ")
    assert letter.reason in audit.reason
    assert audit.details["source"] == f"{case.source.topic}/{case.source.partition}/{case.source.offset}"
    assert audit.event_id == (UUID(case.event_id) if case.event_id else None)
    assert CODEC.decode(CODEC.encode(audit)) == audit


def test_a_dead_letter_id_is_the_same_when_the_same_record_is_read_again(kit: Kit) -> None:
    """Replaying a bad record yields the same dead-letter and audit ids; another offset yields others."""
    first = kit.check(on_intake(b"", offset=3))
    again = kit.check(on_intake(b"", offset=3))
    other = kit.check(on_intake(b"", offset=4))

    assert isinstance(first, Rejected)
    assert isinstance(again, Rejected)
    assert isinstance(other, Rejected)
    assert first.dead_letter.dead_letter_id == again.dead_letter.dead_letter_id
    assert first.audit.audit_id == again.audit.audit_id
    assert other.dead_letter.dead_letter_id != first.dead_letter.dead_letter_id


def test_the_rejected_record_is_encodable_as_a_dead_letter(kit: Kit) -> None:
    """The dead letter of corrupt bytes decodes as a DeadLetter carrying those very bytes."""
    garbage = b"\xc3\x01\x00\x00"
    verdict = kit.check(on_intake(garbage))

    assert isinstance(verdict, Rejected)
    decoded = CODEC.decode(CODEC.encode(verdict.dead_letter))
    assert isinstance(decoded, DeadLetter)
    assert decoded.value == garbage


# --- quarantined -------------------------------------------------------------------------------------------


def test_a_secret_event_is_quarantined_with_only_an_audit_that_tells_to_use_phone_or_letter(kit: Kit) -> None:
    """A ``secret`` event (the library would refuse it) is Quarantined; its audit carries the notice, not the body."""
    event = kit.sample(EventType.FIRE_REPORT)
    raw = resigned(kit, event, key_of="forestry", classification=Classification.SECRET)
    source = on_intake(raw)

    verdict = kit.check(source)

    assert isinstance(verdict, Quarantined), verdict
    audit = verdict.audit
    assert audit.action is AuditAction.QUARANTINED
    assert audit.audit_id == audit_id("quarantined", event.header.event_id)
    assert audit.event_id == event.header.event_id
    assert audit.event_type is EventType.FIRE_REPORT
    assert audit.publisher_unit == "forestry"
    assert audit.reason is not None
    assert "phone or official letter" in audit.reason
    assert "电话" in audit.details["notice"]
    assert "公函" in audit.details["notice"]
    assert audit.details["source"] == f"{source.topic}/{source.partition}/{source.offset}"
    encoded = CODEC.encode(audit)
    dumped = audit.model_dump_json()
    for text in (*FIRE_BODY_TEXT, "35.2583", "112.3671"):
        assert text not in dumped
        assert text.encode() not in encoded
    assert set(vars(verdict)) == {"audit"}


def test_a_secret_event_with_a_forged_signature_is_still_quarantined_not_forwarded(kit: Kit) -> None:
    """A ``secret`` event with a bad signature is quarantined too: a dead letter would carry its classified bytes."""
    event = kit.sample(EventType.FIRE_REPORT)
    raw = resigned(kit, event, key_of="emergency", classification=Classification.SECRET)

    verdict = kit.check(on_intake(raw))

    assert isinstance(verdict, Quarantined)
    assert "桑林村" not in verdict.audit.model_dump_json()


def test_a_secret_events_header_text_that_breaks_the_text_rules_stays_out_of_its_quarantine_audit(kit: Kit) -> None:
    """The quarantine audit names who published; a person or trace id with control characters is left out of it (the
    audit trail is rendered and archived), never copied."""
    event = kit.sample(EventType.FIRE_REPORT)
    hostile = event.header.publisher.model_copy(update={"person": "赵\x00林\u202e"})
    raw = resigned(
        kit, event, key_of="forestry", classification=Classification.SECRET, publisher=hostile, trace_id="a\x01b"
    )

    verdict = kit.check(on_intake(raw))

    assert isinstance(verdict, Quarantined)
    dumped = verdict.audit.model_dump_json()
    assert "\\u0000" not in dumped
    assert "\u202e" not in dumped
    assert verdict.audit.trace_id is None
    assert verdict.audit.details["person"] != hostile.person


def _secret_on_wrong_topic(kit: Kit) -> SourceRecord:
    event = kit.sample(EventType.FIRE_REPORT)
    raw = resigned(kit, event, key_of="forestry", classification=Classification.SECRET)
    return on_intake(raw, EventType.WORK_UPDATE)


def _secret_model_invalid(kit: Kit) -> SourceRecord:
    event = kit.sample(EventType.FIRE_REPORT)
    contract, record = CODEC.decode_data(resigned(kit, event, key_of="forestry", classification=Classification.SECRET))
    record["body"]["place"]["lat"] = 200.0
    return on_intake(CODEC.encode_data(contract, record))


@pytest.mark.parametrize(
    "build", [_secret_on_wrong_topic, _secret_model_invalid], ids=["wrong intake topic", "model-invalid"]
)
def test_a_secret_event_is_quarantined_even_when_it_is_also_broken(
    kit: Kit, build: Callable[[Kit], SourceRecord]
) -> None:
    """A ``secret`` event that is also on the wrong topic or model-invalid is quarantined, never dead-lettered."""
    verdict = kit.check(build(kit))

    assert isinstance(verdict, Quarantined), verdict
