"""The statistics' lean decoding gives exactly the facts a full decode gives, and still rejects what is corrupt."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import BytesIO
from typing import Any
from uuid import UUID, uuid4

import pytest
from fastavro import parse_schema, schemaless_reader, schemaless_writer

from consumers.analytics._bench import generated_releases
from consumers.analytics._decoding import LeanDecoder, RecursiveSchemaError, canonical_uuid, lean_schema
from consumers.analytics._sources import _Collector
from firebus.codec import Codec, event_model
from firebus.contracts import ContractSet, build_contract
from firebus.county import County
from firebus.errors import CorruptRecordError
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
from producers import load_draft
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


def test_lean_facts_equal_full_decode_facts_for_every_event_type(county: County) -> None:
    """Releases of every simulated event type and of every example draft, and audit records of every action,
    give equal facts, value types included, through the lean decoder and through a full decode."""
    codec = Codec()
    values = [value for _topic, _key, value in generated_releases(county, 800)]
    values += example_releases(codec) + audits(codec)
    lean = collected(_Collector(codec), values)
    full = collected(FullCollector(codec), values)
    assert {fact.event_type for fact in lean.facts.releases} == {event_type.value for event_type in EventType}
    assert lean.skipped == full.skipped == 0
    assert lean.facts == full.facts
    for ours, theirs in zip(
        [*lean.facts.releases, *lean.facts.audits], [*full.facts.releases, *full.facts.audits], strict=True
    ):
        assert [type(value) for value in ours] == [type(value) for value in theirs]


def test_a_non_canonical_uuid_text_reads_as_its_canonical_form() -> None:
    """A UUID written as upper-case text (fastavro writes a string as given) is the canonical text, as via UUID."""
    codec = Codec()
    audit_id = uuid4()
    record = AuditEvent(audit_id=audit_id, action=AuditAction.OTHER, actor="x", at=AT).model_dump()
    value = codec.encode_data(codec.contracts.current("audit_event"), {**record, "audit_id": str(audit_id).upper()})
    lean = collected(_Collector(codec), [value])
    assert lean.facts.audits == collected(FullCollector(codec), [value]).facts.audits
    assert lean.facts.audits[0].audit_id == str(audit_id)
    assert canonical_uuid("{" + str(audit_id).upper() + "}") == str(audit_id)
    with pytest.raises(CorruptRecordError):
        canonical_uuid("not-a-uuid")


def test_truncated_or_overlong_records_are_corrupt() -> None:
    """The lean decoder reads exactly the writer's bytes: a record cut short or followed by more bytes is corrupt."""
    codec = Codec()
    value = audits(codec)[1]
    decoder = LeanDecoder(codec)
    assert decoder.lean_of(codec.writer_of(value))[1] is not None
    for broken in (value[:-3], value + b"\x00"):
        with pytest.raises(CorruptRecordError):
            decoder.decode_data(broken)
        with pytest.raises(CorruptRecordError):
            codec.decode_data(broken)


def test_data_of_an_older_writer_version_is_resolved_in_full_by_the_codec() -> None:
    """A writer that is not the current version is not read lean: the codec decodes and resolves it."""
    shipped = Codec().contracts
    current = shipped.current("audit_event")
    older_schema = json.loads(json.dumps(current.schema))
    older_schema["fields"] = [f for f in older_schema["fields"] if f["name"] != "trace_id"]
    older = build_contract("audit_event", older_schema, where="test")
    codec = Codec(ContractSet({c.stem: c for c in shipped}, {older.fingerprint: older}))
    record = AuditEvent(audit_id=uuid4(), action=AuditAction.DELIVERED, actor="x", at=AT).model_dump()
    value = codec.encode_data(older, {k: v for k, v in record.items() if k != "trace_id"})
    decoder = LeanDecoder(codec)
    assert decoder.lean_of(older)[1] is None
    contract, decoded = decoder.decode_data(value)
    assert contract is current
    assert decoded == codec.decode_data(value)[1]
    assert isinstance(decoded["audit_id"], UUID)


def test_a_lean_schema_keeps_needed_values_and_cheapens_the_rest() -> None:
    """Needed values keep their types (a top-level UUID becomes text); others get a same-encoding cheaper type."""
    contract = Codec().contracts.current("release")
    schema, text_uuids = lean_schema(contract.schema, frozenset({"event_id", "decision.decided_at"}))
    parse_schema(schema, named_schemas={})
    fields = {f["name"]: f["type"] for f in schema["fields"]}
    assert text_uuids == ["event_id"]
    assert fields["event_id"] == "string"
    assert fields["release_id"] == "bytes"
    assert fields["tier"] == "int"
    assert fields["released_at"] == "long"
    decision = {f["name"]: f["type"] for f in fields["decision"]["fields"]}
    assert decision["decided_at"] == {"type": "long", "logicalType": "timestamp-millis"}
    assert decision["reviewer"] == "bytes"
    assert replace(contract).schema == contract.schema  # the contract's schema is left as it was


def test_a_lean_schema_reads_what_the_full_schema_reads_at_needed_paths() -> None:
    """Needed values under arrays, maps, unions, named types used twice and fixed decimals decode as in full;
    a recursive schema has no lean copy."""
    uuid_type = {"type": "string", "logicalType": "uuid"}
    schema = {
        "type": "record",
        "name": "Outer",
        "namespace": "test",
        "fields": [
            {"name": "ids", "type": {"type": "array", "items": uuid_type}},
            {"name": "maybe", "type": ["null", uuid_type]},
            {"name": "price", "type": {"type": "fixed", "name": "Price", "size": 4, "logicalType": "decimal",
                                        "precision": 8, "scale": 2}},
            {"name": "first", "type": {"type": "record", "name": "Part", "fields": [
                {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
                {"name": "label", "type": "string"},
                {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["a", "b"]}},
            ]}},
            {"name": "second", "type": "test.Part"},
            {"name": "parts", "type": {"type": "map", "values": "Part"}},
        ],
    }  # fmt: skip
    needed = frozenset({"ids", "maybe", "price", "second.label", "second.kind", "parts{}.at"})
    lean, text_uuids = lean_schema(schema, needed)
    assert text_uuids == ["maybe"]
    part = {"at": AT, "label": "x", "kind": "b"}
    record = {
        "ids": [uuid4()],
        "maybe": uuid4(),
        "price": Decimal("12.34"),
        "first": part,
        "second": part,
        "parts": {"k": part},
    }
    buffer = BytesIO()
    schemaless_writer(buffer, parse_schema(schema), record)
    read: Any = schemaless_reader(BytesIO(buffer.getvalue()), parse_schema(lean, named_schemas={}), None)
    assert read["ids"] == record["ids"]
    assert read["maybe"] == str(record["maybe"])
    assert read["price"] == record["price"]
    assert read["first"] == {"at": int(AT.timestamp() * 1000), "label": b"x", "kind": 1}
    assert read["second"] == {"at": int(AT.timestamp() * 1000), "label": "x", "kind": "b"}
    assert read["parts"] == {"k": {"at": AT, "label": b"x", "kind": 1}}
    recursive = {
        "type": "record",
        "name": "Node",
        "fields": [{"name": "next", "type": ["null", "Node"]}],
    }
    with pytest.raises(RecursiveSchemaError):
        lean_schema(recursive, frozenset())
