"""Redaction for tiered sharing: the sample events lose exactly their tagged fields per tier, reviewer redactions
apply below HQ only, and — for records generated from every tagged contract's own schema — nothing tagged above a
tier survives, nothing else changes, and the result still round-trips through the codec.
"""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firebus.codec import Codec, event_model
from firebus.contracts import Contract, ContractSet, build_contract, default_contracts
from firebus.events import Audience, EventType, Header, Publisher
from processors.redaction import Redacted, RedactionPlan, redact
from producers import load_draft

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "events"
NOW = datetime(2026, 3, 12, 8, 0, tzinfo=UTC)
CODEC = Codec()
CONTRACTS = default_contracts()
TAGGED = sorted((c for c in CONTRACTS if c.audience_tags), key=lambda c: c.stem)
STEP = re.compile(r"\[\]|\{\}|[^.\[\]{}]+")


def sample(event_type: EventType) -> tuple[Contract, dict[str, Any]]:
    """The example draft of ``event_type`` as a full event, encoded and decoded back to the record fastavro gives."""
    draft = load_draft(EXAMPLES / f"{event_type.value}.json")
    header = Header(
        event_id=UUID(int=1),
        event_type=event_type,
        schema_version=1,
        kind=draft.kind,
        references=draft.references,
        incident_id=draft.incident_id,
        publisher=Publisher(unit="forestry", person=draft.person or "张三", contact=draft.contact),
        classification=draft.classification,
        audience=draft.audience,
        audience_townships=draft.audience_townships,
        severity=draft.severity,
        urgency=draft.urgency,
        occurred_at=draft.occurred_at or NOW,
        published_at=NOW,
        townships=draft.townships,
        trace_id="trace-1",
        signature=b"\x01" * 64,
    )
    event = event_model(event_type)(header=header, body=draft.body)
    return CODEC.decode_data(CODEC.encode(event))


def values_at(record: Any, path: str) -> list[Any]:
    """Every value ``path`` reaches in ``record`` (through each list item and map value; ``None`` ends a branch)."""
    values = [record]
    for step in STEP.findall(path):
        values = [v for v in values if v is not None]
        if step == "[]":
            values = [item for v in values for item in v]
        elif step == "{}":
            values = [item for v in values for item in v.values()]
        else:
            values = [v[step] for v in values if step in v]
    return values


def is_default(value: Any, default: Any) -> bool:
    return type(value) is type(default) and value == default


# --- the sample events -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tier", "expected"),
    [
        (
            Audience.PUBLIC,
            (
                "body.place.lat",
                "body.place.lon",
                "body.reporter_name",
                "body.reporter_phone",
                "header.publisher.contact",
            ),
        ),
        (Audience.MEMBERS, ("body.reporter_name", "body.reporter_phone")),
        (Audience.HQ, ()),
    ],
)
def test_fire_report_loses_exactly_its_tagged_fields_per_tier(tier: Audience, expected: tuple[str, ...]):
    """The sample fire report loses coordinates and contact to the public, the reporter to members, nothing to HQ."""
    contract, record = sample(EventType.FIRE_REPORT)
    result = redact(contract, record, tier)
    assert isinstance(result, Redacted)
    assert result.redacted_fields == expected
    for path in expected:
        assert values_at(result.record, path) == [None]
    unchanged = {path for path in contract.field_paths if path not in expected}
    for path in unchanged - {"body.place", "body", "header", "header.publisher"}:
        assert values_at(result.record, path) == values_at(record, path), path
    if tier is Audience.HQ:
        assert result.record == record


@pytest.mark.parametrize(
    ("event_type", "tier", "expected"),
    [
        (EventType.CASE_UPDATE, Audience.PUBLIC, ("body.suspects",)),
        (EventType.CASE_UPDATE, Audience.MEMBERS, ("body.suspects",)),
        (EventType.CASE_UPDATE, Audience.HQ, ()),
        (EventType.RESOURCE, Audience.PUBLIC, ("body.contact_phone", "body.lat", "body.lon")),
        (EventType.RESOURCE, Audience.MEMBERS, ()),
        (EventType.TRAFFIC_CONTROL, Audience.PUBLIC, ("body.officer_phone",)),
        (EventType.RISK_WARNING, Audience.PUBLIC, ()),
        (EventType.DIRECTIVE, Audience.PUBLIC, ()),
        (EventType.CONSULTATION, Audience.PUBLIC, ()),
        (EventType.WORK_UPDATE, Audience.PUBLIC, ()),
    ],
)
def test_other_samples_lose_their_tagged_fields(event_type: EventType, tier: Audience, expected: tuple[str, ...]):
    """Each sample lists exactly the tagged fields that held a value (empty contacts and geometry are not listed)."""
    contract, record = sample(event_type)
    result = redact(contract, record, tier)
    assert result.redacted_fields == expected
    if event_type is EventType.CASE_UPDATE and tier is not Audience.HQ:
        assert result.record["body"]["suspects"] == []
        assert record["body"]["suspects"] != []


def test_field_already_at_default_is_not_listed():
    """A tagged field that is already null is left alone and not reported as redacted."""
    contract, record = sample(EventType.FIRE_REPORT)
    record["body"]["reporter_phone"] = None
    result = redact(contract, record, Audience.MEMBERS)
    assert result.redacted_fields == ("body.reporter_name",)
    assert result.record["body"]["reporter_phone"] is None


def test_input_is_not_mutated_and_untouched_parts_are_shared():
    """Redaction copies only the containers on a changed path; the input stays exactly as it was."""
    contract, record = sample(EventType.FIRE_REPORT)
    before = copy.deepcopy(record)
    result = redact(contract, record, Audience.PUBLIC, ["body.forces[].equipment"])
    assert record == before
    assert result.record is not record
    assert result.record["body"]["place"] is not record["body"]["place"]
    assert result.record["body"]["forces"][0] is not record["body"]["forces"][0]
    assert result.record["body"]["forces"][0]["equipment"] == []
    assert record["body"]["forces"][0]["equipment"] == ["风力灭火机", "二号工具"]
    assert result.record["header"]["references"] is record["header"]["references"]
    assert result.record["body"]["discovered_at"] is record["body"]["discovered_at"]


def test_unchanged_record_is_still_a_new_top_level_dict():
    """Even when nothing is redacted the caller gets its own top-level dict, never the input object."""
    contract, record = sample(EventType.WORK_UPDATE)
    for tier in Audience:
        result = redact(contract, record, tier)
        assert result.record == record
        assert result.record is not record


def test_extra_paths_apply_below_hq_only():
    """A reviewer's extra redactions are applied and listed for members and public, never for HQ."""
    contract, record = sample(EventType.FIRE_REPORT)
    extra = ["body.suspected_cause", "body.forces", "header.signature", "body.place.village"]
    members = redact(contract, record, Audience.MEMBERS, extra)
    assert members.redacted_fields == (
        "body.forces",
        "body.place.village",
        "body.reporter_name",
        "body.reporter_phone",
        "body.suspected_cause",
        "header.signature",
    )
    assert members.record["body"]["forces"] == []
    assert members.record["body"]["suspected_cause"] is None
    assert members.record["header"]["signature"] == b""
    assert members.record["body"]["place"]["lat"] == record["body"]["place"]["lat"]
    hq = redact(contract, record, Audience.HQ, extra)
    assert hq.record == record
    assert hq.redacted_fields == ()


def test_extra_path_under_a_hidden_field_is_harmless():
    """An extra path below a field already hidden for the tier neither fails nor is listed twice."""
    contract, record = sample(EventType.CASE_UPDATE)
    result = redact(contract, record, Audience.PUBLIC, ["body.suspects[].age", "body.suspects", "body.penalty"])
    assert result.redacted_fields == ("body.suspects",)
    assert result.record["body"]["suspects"] == []


@pytest.mark.parametrize(
    "path",
    ["body.nonexistent", "body.place.latitude", "body.forces[]", "body.status", "body.forces[].unit", "", "body"],
)
@pytest.mark.parametrize("tier", list(Audience))
def test_bad_extra_path_is_a_value_error_naming_it(path: str, tier: Audience):
    """A path that is not a field with a default is refused at every tier, and the error names it."""
    contract, record = sample(EventType.FIRE_REPORT)
    with pytest.raises(ValueError, match=re.escape(repr(path))):
        redact(contract, record, tier, [path])


def test_field_paths_cover_nested_arrays_and_tags():
    """``Contract.field_paths`` lists every field, nested ones with ``[]``, and every tagged path of every contract."""
    contract = CONTRACTS.for_event_type(EventType.FIRE_REPORT)
    paths = contract.field_paths
    assert {"header", "header.publisher.contact", "body.place.lat", "body.forces[].equipment"} <= paths
    for each in CONTRACTS:
        assert set(each.audience_tags) <= each.field_paths


@pytest.mark.parametrize("contract", list(CONTRACTS), ids=lambda c: c.stem)
def test_plan_agrees_with_the_contracts_tags_and_is_cached(contract: Contract):
    """The plan's tags are exactly the contract's audience tags, and the plan is built once per contract."""
    plan = RedactionPlan.for_contract(contract)
    assert plan is RedactionPlan.for_contract(contract)
    tags = {path: info.min_audience for path, info in plan.fields.items() if info.min_audience is not None}
    assert tags == dict(contract.audience_tags)


SYNTHETIC = {
    "type": "record",
    "name": "Synthetic",
    "namespace": "firebus",
    "firebus.version": 1,
    "fields": [
        {
            "name": "owner",
            "type": {
                "type": "record",
                "name": "Person",
                "fields": [
                    {"name": "name", "type": "string"},
                    {"name": "phone", "type": ["null", "string"], "default": None, "firebus.min_audience": "hq"},
                ],
            },
        },
        {"name": "deputy", "type": ["null", "firebus.Person"], "default": None},
        {"name": "staff", "type": {"type": "map", "values": "firebus.Person"}, "default": {}},
        {"name": "token", "type": "bytes", "default": "\u00ff", "firebus.min_audience": "members"},
        {
            "name": "seen_at",
            "type": {"type": "long", "logicalType": "timestamp-millis"},
            "default": 1000,
            "firebus.min_audience": "members",
        },
        {"name": "ref", "type": {"type": "string", "logicalType": "uuid"}, "default": str(UUID(int=7))},
    ],
}


def test_named_reuse_maps_nullable_unions_and_typed_defaults():
    """A tagged record reused by name is redacted at every use, through maps and unions, to fastavro-typed defaults."""
    contract = build_contract("synthetic", SYNTHETIC, where="test")
    record: dict[str, Any] = {
        "owner": {"name": "a", "phone": "1"},
        "deputy": {"name": "b", "phone": "2"},
        "staff": {"x": {"name": "c", "phone": "3"}, "y": {"name": "d", "phone": None}},
        "token": b"secret",
        "seen_at": NOW,
        "ref": UUID(int=1),
    }
    result = redact(contract, record, Audience.PUBLIC, ["ref"])
    assert result.redacted_fields == ("deputy.phone", "owner.phone", "ref", "seen_at", "staff{}.phone", "token")
    assert result.record == {
        "owner": {"name": "a", "phone": None},
        "deputy": {"name": "b", "phone": None},
        "staff": {"x": {"name": "c", "phone": None}, "y": {"name": "d", "phone": None}},
        "token": b"\xff",
        "seen_at": datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC),
        "ref": UUID(int=7),
    }
    assert result.record["staff"]["y"] is record["staff"]["y"]
    codec = Codec(ContractSet({"synthetic": contract}, {}))
    assert codec.decode_data(codec.encode_data(contract, result.record))[1] == result.record
    assert redact(contract, {**record, "deputy": None}, Audience.MEMBERS).redacted_fields == (
        "owner.phone",
        "staff{}.phone",
    )


# --- the property: records generated from each contract's own schema ---------------------------------------

TIMESTAMPS = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)).map(
    lambda moment: moment.replace(microsecond=moment.microsecond // 1000 * 1000)
)
PRIMITIVES: dict[str, st.SearchStrategy[Any]] = {
    "null": st.none(),
    "boolean": st.booleans(),
    "int": st.integers(-(2**31), 2**31 - 1),
    "long": st.integers(-(2**63), 2**63 - 1),
    "float": st.floats(allow_nan=False, allow_infinity=False, width=32),
    "double": st.floats(allow_nan=False, allow_infinity=False),
    "bytes": st.binary(max_size=8),
    "string": st.text(max_size=8),
}


def records_for(schema: Any) -> st.SearchStrategy[dict[str, Any]]:
    """A strategy for records of an expanded Avro schema, as fastavro would decode them."""
    named: dict[str, st.SearchStrategy[Any]] = {}

    def strategy(node: Any, namespace: str) -> st.SearchStrategy[Any]:
        if isinstance(node, list):
            return st.one_of([strategy(branch, namespace) for branch in node])
        if isinstance(node, str):
            if node in PRIMITIVES:
                return PRIMITIVES[node]
            return named[node] if node in named else named[f"{namespace}.{node}"]
        kind = node["type"]
        logical = node.get("logicalType")
        if logical == "uuid":
            return st.uuids()
        if logical == "timestamp-millis":
            return TIMESTAMPS
        if kind in ("record", "enum"):
            full = node["name"] if "." in node["name"] else f"{node.get('namespace', namespace)}.{node['name']}"
            inner = full.rpartition(".")[0]
            if kind == "enum":
                named[full] = st.sampled_from(node["symbols"])
            else:
                named[full] = st.fixed_dictionaries({f["name"]: strategy(f["type"], inner) for f in node["fields"]})
            return named[full]
        if kind == "array":
            return st.lists(strategy(node["items"], namespace), max_size=3)
        if kind == "map":
            return st.dictionaries(st.text(max_size=4), strategy(node["values"], namespace), max_size=3)
        return strategy(kind, namespace)

    return strategy(schema, "")


@cache
def generated(stem: str) -> tuple[st.SearchStrategy[dict[str, Any]], list[str]]:
    contract = CONTRACTS.current(stem)
    with_default = sorted(
        path for path, info in RedactionPlan.for_contract(contract).fields.items() if info.has_default
    )
    return records_for(contract.schema), with_default


def related(path: str, other: str) -> bool:
    """Whether ``other`` is ``path`` or lies below it."""
    return other == path or (other.startswith(path) and other[len(path)] in ".[{")


def test_every_audience_tagged_contract_is_covered():
    """The property below runs over the eight event types and the release record."""
    assert {c.stem for c in TAGGED} == {t.value for t in EventType} | {"release"}


@pytest.mark.parametrize("contract", TAGGED, ids=lambda c: c.stem)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_nothing_tagged_above_a_tier_survives_and_nothing_else_changes(contract: Contract, data: st.DataObject):
    """For any record of the contract, hidden fields hold their defaults, all else is untouched, and it round-trips."""
    records, with_default = generated(contract.stem)
    record = data.draw(records, label="record")
    extra = data.draw(st.lists(st.sampled_from(with_default), max_size=2, unique=True), label="extra_paths")
    assert CODEC.decode_data(CODEC.encode_data(contract, record))[1] == record
    before = copy.deepcopy(record)
    plan = RedactionPlan.for_contract(contract)
    paths = contract.field_paths
    for tier in Audience:
        result = redact(contract, record, tier, extra)
        assert record == before
        hidden = {p for p, tag in contract.audience_tags.items() if tag.rank > tier.rank}
        if tier is not Audience.HQ:
            hidden |= set(extra)
        else:
            assert result.record == record
        for path in hidden:
            default = plan.fields[path].default
            assert all(is_default(value, default) for value in values_at(result.record, path)), path
        expected_listed = {
            p for p in hidden if not all(is_default(v, plan.fields[p].default) for v in values_at(record, p))
        }
        expected_listed -= {p for p in expected_listed for h in hidden if h != p and related(h, p)}
        assert set(result.redacted_fields) == expected_listed
        assert list(result.redacted_fields) == sorted(result.redacted_fields)
        for path in paths:
            if not any(related(path, h) or related(h, path) for h in hidden):
                assert values_at(result.record, path) == values_at(record, path), path
        assert result.record.keys() == record.keys()
        assert CODEC.decode_data(CODEC.encode_data(contract, result.record))[1] == result.record
