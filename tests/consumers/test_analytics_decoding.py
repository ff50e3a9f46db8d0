"""The statistics' projected decoding gives exactly the facts a full decode gives, and still rejects what is corrupt."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import BytesIO
from typing import Any
from uuid import UUID, uuid4

import pytest
from fastavro import parse_schema, schemaless_reader, schemaless_writer

from consumers.analytics._bench import generated_releases
from consumers.analytics._decoding import ProjectedDecoder, canonical_uuid, compile_reader
from consumers.analytics._sources import _Collector
from firebus.codec import PREFIX_LENGTH, Codec, event_model
from firebus.contracts import ContractSet, build_contract
from firebus.county import County
from firebus.errors import CorruptRecordError, RecursiveSchemaError
from firebus.events import Audience, EventType, Header, Publisher, ResourceKind, ResourceStatus
from firebus.records import (
    AuditAction,
    AuditEvent,
    NearbyResource,
    Release,
    ReviewDecision,
    ReviewerKind,
    Verdict,
)
from producers import load_draft, simulated_events
from tests.samples import EXAMPLES

AT = datetime(2026, 3, 11, 15, 30, tzinfo=UTC)


class FullCollector(_Collector):
    """The collector as it was: every record decoded in full and resolved by the codec."""

    def __init__(self, codec: Codec) -> None:
        super().__init__(codec)
        self.decoder = codec  # type: ignore[assignment]


def collected(collector: _Collector, values: list[bytes]) -> _Collector:
    for value in values:
        collector.add(value)
    return collector


def example_releases(codec: Codec) -> list[bytes]:
    """A release of each example draft (every event type, every header field filled), to a tier each, with
    redacted fields and nearby resources."""
    made = []
    for number, event_type in enumerate(EventType):
        draft = load_draft(EXAMPLES / f"{event_type.value}.json")
        event_id = uuid4()
        header = Header(
            event_id=event_id,
            event_type=event_type,
            schema_version=1,
            kind=draft.kind,
            references=[*draft.references, uuid4()],
            incident_id=draft.incident_id,
            publisher=Publisher(unit="forestry", person=draft.person or "张三", contact=draft.contact or "13800000000"),
            classification=draft.classification,
            audience=draft.audience,
            audience_townships=draft.audience_townships,
            severity=draft.severity,
            urgency=draft.urgency,
            occurred_at=draft.occurred_at or AT,
            published_at=AT,
            townships=draft.townships or ["manghe", "dongye"],
            trace_id="trace-1",
            signature=b"\x01" * 64,
        )
        event = event_model(event_type)(header=header, body=draft.body)
        decision = ReviewDecision(
            decision_id=uuid4(),
            event_id=event_id,
            event_type=event_type,
            verdict=Verdict.APPROVE,
            reviewer="hq-wang",
            reviewer_kind=ReviewerKind.HUMAN,
            tiers=list(Audience),
            redactions=["body.reporter_phone"],
            reason="ok",
            decided_at=AT + timedelta(seconds=number),
            trace_id="trace-1",
        )
        resource = NearbyResource(
            resource_id="w1",
            resource_kind=ResourceKind.WATER_POINT,
            name="水源",
            township="manghe",
            status=ResourceStatus.AVAILABLE,
            distance_km=1.5,
            lat=35.1,
        )
        release = Release(
            release_id=uuid4(),
            tier=list(Audience)[number % len(Audience)],
            event_id=event_id,
            event_type=event_type,
            kind=draft.kind,
            thread_id=event_id,
            incident_id=draft.incident_id,
            publisher_unit="forestry",
            decision=decision,
            redacted_fields=["header.publisher.contact"],
            nearby_resources=[resource, resource],
            released_at=AT + timedelta(seconds=number, milliseconds=50),
            event=codec.encode(event),
        )
        made.append(codec.encode(release))
    return made


def audits(codec: Codec) -> list[bytes]:
    """Audit records of every action, with and without the optional values the statistics read."""
    made = []
    for number, action in enumerate(AuditAction):
        made.append(
            codec.encode(
                AuditEvent(
                    audit_id=uuid4(),
                    action=action,
                    event_id=uuid4() if number % 2 else None,
                    event_type=list(EventType)[number % len(EventType)] if number % 3 else None,
                    actor="bench",
                    tier="members" if number % 2 else None,
                    reason="schema_invalid: header.severity" if number % 4 == 1 else None,
                    details={"sink": "sms", "verdict": "reject"} if number % 2 else {},
                    at=AT,
                )
            )
        )
    return made


def test_projected_facts_equal_full_decode_facts_for_every_event_type(county: County) -> None:
    """Releases of every simulated event type and of every example draft, and audit records of every action,
    give equal facts, value types included, through the projected decoder and through a full decode."""
    codec = Codec()
    values = [value for _topic, _key, value in generated_releases(simulated_events(county, 400, seed=2026), 800)]
    values += example_releases(codec) + audits(codec)
    projected = collected(_Collector(codec), values)
    reference = collected(FullCollector(codec), values)
    assert {fact.event_type for fact in projected.facts.releases} == {event_type.value for event_type in EventType}
    assert projected.skipped == reference.skipped == 0
    assert projected.facts == reference.facts
    for ours, theirs in zip(
        [*projected.facts.releases, *projected.facts.audits],
        [*reference.facts.releases, *reference.facts.audits],
        strict=True,
    ):
        assert [type(value) for value in ours] == [type(value) for value in theirs]


def test_a_non_canonical_uuid_text_reads_as_its_canonical_form() -> None:
    """A UUID written as upper-case text (fastavro writes a string as given) is the canonical text, as via UUID."""
    codec = Codec()
    audit_id = uuid4()
    record = AuditEvent(audit_id=audit_id, action=AuditAction.OTHER, actor="x", at=AT).model_dump()
    value = codec.encode_data(codec.contracts.current("audit_event"), {**record, "audit_id": str(audit_id).upper()})
    projected = collected(_Collector(codec), [value])
    assert projected.facts.audits == collected(FullCollector(codec), [value]).facts.audits
    assert projected.facts.audits[0].audit_id == str(audit_id)
    assert canonical_uuid("{" + str(audit_id).upper() + "}") == str(audit_id)
    with pytest.raises(CorruptRecordError):
        canonical_uuid("not-a-uuid")


def test_truncated_or_overlong_records_are_corrupt(county: County) -> None:
    """The projected reader steps over exactly the writer's bytes: every record cut short, or followed by more
    bytes, is corrupt (as for a full decode)."""
    codec = Codec()
    decoder = ProjectedDecoder(codec)
    release = next(value for _topic, _key, value in generated_releases(simulated_events(county, 1, seed=2026), 1))
    for value in (release, decoder.decode_data(release)[1]["event"], *example_releases(codec)[:2], audits(codec)[1]):
        assert decoder.reader_of(codec.writer_of(value))[1] is not None
        for broken in (*(value[:end] for end in range(PREFIX_LENGTH, len(value))), value + b"\x00"):
            with pytest.raises(CorruptRecordError):
                decoder.decode_data(broken)


def test_data_of_an_older_writer_version_is_resolved_in_full_by_the_codec() -> None:
    """A writer that is not the current version is not read projected: the codec decodes and resolves it."""
    shipped = Codec().contracts
    current = shipped.current("audit_event")
    older_schema = json.loads(json.dumps(current.schema))
    older_schema["fields"] = [f for f in older_schema["fields"] if f["name"] != "trace_id"]
    older = build_contract("audit_event", older_schema, where="test")
    codec = Codec(ContractSet({c.stem: c for c in shipped}, {older.fingerprint: older}))
    record = AuditEvent(audit_id=uuid4(), action=AuditAction.DELIVERED, actor="x", at=AT).model_dump()
    value = codec.encode_data(older, {k: v for k, v in record.items() if k != "trace_id"})
    decoder = ProjectedDecoder(codec)
    assert decoder.reader_of(older)[1] is None
    contract, decoded = decoder.decode_data(value)
    assert contract is current
    assert decoded == codec.decode_data(value)[1]
    assert isinstance(decoded["audit_id"], UUID)


UUID_TYPE = {"type": "string", "logicalType": "uuid"}
EVERY_TYPE: dict[str, Any] = {
    "type": "record",
    "name": "Outer",
    "namespace": "test",
    "fields": [
        {"name": "id", "type": UUID_TYPE},
        {"name": "ids", "type": {"type": "array", "items": UUID_TYPE}},
        {"name": "maybe", "type": ["null", UUID_TYPE]},
        {"name": "flag", "type": "boolean"},
        {"name": "small", "type": "int"},
        {"name": "big", "type": "long"},
        {"name": "ratio", "type": "float"},
        {"name": "exact", "type": "double"},
        {"name": "raw", "type": "bytes"},
        {"name": "text", "type": "string"},
        {"name": "nothing", "type": "null"},
        {"name": "price", "type": {"type": "fixed", "name": "Price", "size": 4, "logicalType": "decimal",
                                    "precision": 8, "scale": 2}},
        {"name": "day", "type": {"type": "int", "logicalType": "date"}},
        {"name": "first", "type": {"type": "record", "name": "Part", "fields": [
            {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
            {"name": "label", "type": "string"},
            {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["a", "b", "c"]}},
            {"name": "tags", "type": {"type": "map", "values": {"type": "array", "items": "string"}}},
        ]}},
        {"name": "second", "type": "test.Part"},
        {"name": "parts", "type": {"type": "map", "values": "Part"}},
        {"name": "either", "type": ["null", "Part", "string", "long"]},
        {"name": "code", "type": {"type": "fixed", "name": "Code", "size": 3}},
    ],
}  # fmt: skip


def every_type_records() -> list[dict[str, Any]]:
    """Values of :data:`EVERY_TYPE`, with multi-byte varints, empty and long collections and every union branch."""
    made = []
    for number, either in enumerate([None, "text", 2**40, "part"]):
        part = {
            "at": AT + timedelta(days=number * 4000, milliseconds=number),
            "label": "标签" * number,
            "kind": "abc"[number % 3],
            "tags": {f"k{i}": [f"v{j}" for j in range(i)] for i in range(number * 40)},
        }
        made.append(
            {
                "id": uuid4(),
                "ids": [uuid4() for _ in range(number * 70)],
                "maybe": uuid4() if number % 2 else None,
                "flag": bool(number % 2),
                "small": -(2**31) if number == 3 else number - 1,
                "big": 2**62 if number == 2 else -(number * 1000),
                "ratio": 1.5 * number,
                "exact": -0.1 * number,
                "raw": bytes(range(256))[: number * 80],
                "text": "火" * (number * 50),
                "nothing": None,
                "price": Decimal(f"{number}12.34"),
                "day": (AT + timedelta(days=number)).date(),
                "first": part,
                "second": part,
                "parts": {"x": part, "y": part} if number else {},
                "either": part if either == "part" else either,
                "code": b"abc",
            }
        )
    return made


def encoded(schema: Any, record: dict[str, Any]) -> bytes:
    buffer = BytesIO()
    buffer.write(b"\xc3\x01" + bytes(8))
    schemaless_writer(buffer, parse_schema(schema, named_schemas={}), record)
    return buffer.getvalue()


def full(schema: Any, value: bytes) -> Any:
    return schemaless_reader(BytesIO(value[PREFIX_LENGTH:]), parse_schema(schema, named_schemas={}), None)


@pytest.mark.parametrize("record", every_type_records(), ids=["null", "string", "long", "record"])
def test_a_reader_of_every_field_reads_what_fastavro_reads(record: dict[str, Any]) -> None:
    """Every Avro type (named types used twice, unions, maps of arrays, multi-byte varints, logical types) reads
    as fastavro reads it; a top-level UUID as its canonical text."""
    value = encoded(EVERY_TYPE, record)
    reader, _source = compile_reader(EVERY_TYPE, frozenset(f["name"] for f in EVERY_TYPE["fields"]))
    read, end = reader(value)
    assert end == len(value)
    expected = full(EVERY_TYPE, value)
    assert read == {**expected, "id": str(expected["id"]), "maybe": expected["maybe"] and str(expected["maybe"])}
    assert [type(v) for v in read.values()] == [
        type(v) for v in {**expected, "id": "", "maybe": read["maybe"]}.values()
    ]


@pytest.mark.parametrize("record", every_type_records(), ids=["null", "string", "long", "record"])
def test_a_projected_reader_reads_only_the_needed_paths(record: dict[str, Any]) -> None:
    """Needed paths inside records, maps and unions are read (with the records on the way); the rest is skipped."""
    value = encoded(EVERY_TYPE, record)
    expected = full(EVERY_TYPE, value)
    needed = frozenset({"second.label", "parts{}.at", "either.kind", "first.tags{}[]", "code"})
    read, end = compile_reader(EVERY_TYPE, needed)[0](value)
    assert end == len(value)
    assert read == {
        "first": {"tags": expected["first"]["tags"]},
        "second": {"label": expected["second"]["label"]},
        "parts": {key: {"at": part["at"]} for key, part in expected["parts"].items()},
        "either": {"kind": expected["either"]["kind"]} if isinstance(expected["either"], dict) else expected["either"],
        "code": b"abc",
    }
    nothing, end = compile_reader(EVERY_TYPE, frozenset())[0](value)
    assert (nothing, end) == ({}, len(value))


def test_array_blocks_that_give_their_byte_size_are_read_and_skipped() -> None:
    """A negative block count is followed by the block's size in bytes (Avro spec): read, or stepped over whole."""
    schema = {"type": "record", "name": "R", "fields": [
        {"name": "xs", "type": {"type": "array", "items": "string"}},
        {"name": "n", "type": "int"},
    ]}  # fmt: skip
    # xs: a block of -2 items (6 bytes: "ab", "cd"), a block of 1 item ("e"), the end; then n = 3
    value = b"\xc3\x01" + bytes(8) + b"\x03\x0c\x04ab\x04cd\x02\x02e\x00\x06"
    assert full(schema, value) == {"xs": ["ab", "cd", "e"], "n": 3}
    assert compile_reader(schema, frozenset({"xs", "n"}))[0](value) == ({"xs": ["ab", "cd", "e"], "n": 3}, len(value))
    assert compile_reader(schema, frozenset({"n"}))[0](value) == ({"n": 3}, len(value))


def test_a_recursive_schema_has_no_projected_reader() -> None:
    recursive = {"type": "record", "name": "Node", "fields": [{"name": "next", "type": ["null", "Node"]}]}
    with pytest.raises(RecursiveSchemaError):
        compile_reader(recursive, frozenset())
