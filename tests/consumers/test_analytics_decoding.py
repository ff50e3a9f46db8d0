"""The statistics' native decoding gives exactly the facts a full decode gives — whatever the batch boundaries and
writer versions — and leaves out (and counts) what does not decode."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest

from consumers.analytics import AuditFact, Facts, ReleaseFact, audit_fact, release_fact
from consumers.analytics._bench import generated_releases
from consumers.analytics._columns import Collector
from firebus.codec import Codec, event_model
from firebus.contracts import Contract, ContractSet, build_contract
from firebus.county import County
from firebus.errors import DecodeError
from firebus.events import Audience, EventType, Header, Publisher, ResourceKind, ResourceStatus
from firebus.records import AuditAction, AuditEvent, NearbyResource, Release, ReviewDecision, ReviewerKind, Verdict
from producers import load_draft, simulated_events
from tests.samples import EXAMPLES

AT = datetime(2026, 3, 11, 15, 30, tzinfo=UTC)


def full_decode(codec: Codec, values: list[bytes]) -> tuple[list[ReleaseFact], list[AuditFact]]:
    """The facts as the codec's full decode (fastavro, resolved to the current version) gives them."""
    releases, audits = [], []
    for value in values:
        try:
            contract, record = codec.decode_data(value)
            if contract.name == "firebus.Release":
                releases.append(release_fact(record, codec.decode_data(record["event"])[1]))
            elif contract.name == "firebus.AuditEvent":
                audits.append(audit_fact(record))
        except DecodeError:
            continue
    return releases, audits


def collected(codec: Codec, values: list[bytes], *, batch: int = 50_000) -> tuple[Facts, int]:
    collector = Collector(codec, batch=batch)
    for value in values:
        collector.add(value)
    return collector.facts(), collector.skipped


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
            event=codec.encode(event_model(event_type)(header=header, body=draft.body)),
        )
        made.append(codec.encode(release))
    return made


def audits(codec: Codec) -> list[bytes]:
    """Audit records of every action, with and without the optional values the statistics read."""
    return [
        codec.encode(
            AuditEvent(
                audit_id=uuid4(),
                action=action,
                event_id=uuid4() if number % 2 else None,
                event_type=list(EventType)[number % len(EventType)] if number % 3 else None,
                actor="bench",
                tier="members" if number % 2 else None,
                reason="schema_invalid: header.severity" if number % 4 == 1 else None,
                details={"sink": "sms", "verdict": "reject"} if number % 2 else {"other": "x"} if number % 3 else {},
                at=AT + timedelta(milliseconds=number),
            )
        )
        for number, action in enumerate(AuditAction)
    ]


@pytest.fixture(scope="module")
def values(county: County) -> list[bytes]:
    """Releases of every simulated event type and of every example draft, audit records of every action
    interleaved, some twice, and two values that are no firebus record."""
    codec = Codec()
    made = [value for _topic, _key, value in generated_releases(simulated_events(county, 400, seed=2026), 600)]
    made += example_releases(codec)
    for position, audit in enumerate(audits(codec)):
        made.insert(position * 37, audit)
    return [*made, *made[:25], b"not avro", b""]


def test_native_facts_equal_full_decode_facts(values: list[bytes]) -> None:
    """Every release (every event type) and audit record gives the facts, value for value, that a full decode
    gives; what is no firebus record is counted as skipped."""
    codec = Codec()
    facts, skipped = collected(codec, values)
    releases, audit_rows = full_decode(codec, values)
    assert {fact.event_type for fact in releases} == {event_type.value for event_type in EventType}
    assert facts.release_facts() == releases
    assert facts.audit_facts() == audit_rows
    assert skipped == 2


@pytest.mark.parametrize("batch", [1, 2, 37, 600, 10_000])
def test_batch_boundaries_change_nothing(values: list[bytes], batch: int) -> None:
    """Whatever the batch size (a batch per value, boundaries inside runs of one writer, one batch for all), the
    facts are the same, in the same order, and nothing is counted twice."""
    codec = Codec()
    whole, skipped = collected(codec, values, batch=len(values))
    facts, skipped_in_batches = collected(codec, values, batch=batch)
    assert facts.releases.equals(whole.releases)
    assert facts.audits.equals(whole.audits)
    assert skipped_in_batches == skipped == 2


def older(current: Contract, *, without: set[str]) -> Contract:
    """An older version of ``current`` that lacked the top-level fields ``without`` (added later, with defaults)."""
    schema: dict[str, Any] = json.loads(json.dumps(current.schema))
    schema["fields"] = [fld for fld in schema["fields"] if fld["name"] not in without]
    return build_contract(current.stem, schema, where="test")


def test_records_of_older_writer_versions_resolve_to_the_current_columns(values: list[bytes]) -> None:
    """Releases, the events inside them and audit records written with older versions (each lacking a field the
    statistics read) decode in their own containers, mixed with current ones in one batch, and resolve as the
    codec resolves them: the added field takes the current version's default."""
    shipped = Codec().contracts
    release_v0 = older(shipped.current("release"), without={"incident_id", "redacted_fields"})
    audit_v0 = older(shipped.current("audit_event"), without={"reason", "details", "trace_id"})
    header = next(f for f in shipped.current("fire_report").schema["fields"] if f["name"] == "header")["type"]
    fire_schema: dict[str, Any] = json.loads(json.dumps(shipped.current("fire_report").schema))
    fire_header = next(f for f in fire_schema["fields"] if f["name"] == "header")
    fire_header["type"] = {**header, "fields": [f for f in header["fields"] if f["name"] != "townships"]}
    fire_v0 = build_contract("fire_report", fire_schema, where="test")
    codec = Codec(
        ContractSet({c.stem: c for c in shipped}, {c.fingerprint: c for c in (release_v0, audit_v0, fire_v0)})
    )

    rewritten: list[bytes] = []
    for value in values[:300]:
        try:
            contract, record = codec.decode_data(value)
        except DecodeError:
            continue
        if contract.name == "firebus.Release":
            event_contract, event = codec.decode_data(record["event"])
            if event_contract.stem == "fire_report" and len(rewritten) % 2:
                header_record = {k: v for k, v in event["header"].items() if k != "townships"}
                record = {**record, "event": codec.encode_data(fire_v0, {**event, "header": header_record})}
            writer = release_v0 if len(rewritten) % 3 == 0 else contract
            rewritten.append(codec.encode_data(writer, {k: v for k, v in record.items() if k in writer.fields}))
        else:
            writer = audit_v0 if len(rewritten) % 2 else contract
            rewritten.append(codec.encode_data(writer, {k: v for k, v in record.items() if k in writer.fields}))
    writers = {codec.writer_of(value).fingerprint for value in rewritten}
    assert {release_v0.fingerprint, audit_v0.fingerprint} <= writers

    facts, skipped = collected(codec, rewritten, batch=120)
    releases, audit_rows = full_decode(codec, rewritten)
    assert skipped == 0
    # Each writer has its own container, so the facts come writer by writer within a batch.
    assert sorted(facts.release_facts()) == sorted(releases)
    assert sorted(facts.audit_facts(), key=str) == sorted(audit_rows, key=str)
    assert any(fact.townships == () for fact in releases if fact.event_type == "fire_report")
    assert any(fact.reason is None and fact.sink is None for fact in audit_rows)


def test_a_record_cut_short_is_left_out_and_the_rest_of_its_batch_kept(values: list[bytes]) -> None:
    """A release cut short fails its container; the group is decoded again a record at a time, so only that
    release is missing (and counted), and the others' facts are unchanged."""
    codec = Codec()
    whole, _skipped = collected(codec, values)
    position = next(i for i, value in enumerate(values) if codec.writer_of(value).stem == "release")
    broken = [*values[:position], values[position][:-3], *values[position + 1 :]]
    facts, skipped = collected(codec, broken)
    assert skipped == 3
    assert facts.release_facts() == whole.release_facts()[1:]
    assert facts.audit_facts() == whole.audit_facts()
