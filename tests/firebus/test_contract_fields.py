"""Every contract knows its fields: every addressable path (``[]`` for array items, ``{}`` for map values) with its
minimum audience, decoded default and text limits, following every use of a named type — so a tagged field of a
record reused by name is tagged at each path it is reached by, and redaction hides it there too.
"""

from __future__ import annotations

import json
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from firebus.codec import Codec
from firebus.contracts import (
    HEADER_FILE,
    MAX_LENGTH_ATTR,
    MIN_LENGTH_ATTR,
    PATTERN_ATTR,
    Contract,
    build_contract,
    default_contracts,
    load_contracts,
    load_history,
)
from firebus.errors import ContractError
from firebus.events import Audience, EventType
from firebus.records import ReviewDecision, ReviewerKind, Verdict
from processors.redaction import redact
from schemas import AVRO_DIR

CONTACT: dict[str, Any] = {
    "type": "record",
    "name": "Contact",
    "fields": [
        {"name": "name", "type": "string"},
        {"name": "phone", "type": ["null", "string"], "default": None, "firebus.min_audience": "hq"},
        {"name": "email", "type": ["null", "string"], "default": None, "firebus.min_audience": "members"},
    ],
}

HANDOVER: dict[str, Any] = {
    "type": "record",
    "name": "Handover",
    "namespace": "firebus",
    "firebus.version": 1,
    "fields": [
        {"name": "header", "type": "firebus.Header"},
        {"name": "outgoing", "type": CONTACT},
        {"name": "incoming", "type": "firebus.Contact"},
        {"name": "deputy", "type": ["null", "Contact"], "default": None},
        {"name": "witnesses", "type": {"type": "array", "items": "firebus.Contact"}, "default": []},
        {"name": "on_call", "type": {"type": "map", "values": "Contact"}, "default": {}},
    ],
}

REUSED_TAGS: dict[str, Any] = {
    f"{prefix}.{name}": tag
    for prefix in ("outgoing", "incoming", "deputy", "witnesses[]", "on_call{}")
    for name, tag in (("phone", Audience.HQ), ("email", Audience.MEMBERS))
}


def load_one(tmp_path: Path, stem: str, schema: dict[str, Any]) -> Contract:
    """``schema`` loaded as ``<stem>.avsc`` next to a copy of the shipped header, as the shipped files are."""
    shutil.copy(AVRO_DIR / HEADER_FILE, tmp_path / HEADER_FILE)
    (tmp_path / f"{stem}.avsc").write_text(json.dumps(schema), encoding="utf-8")
    return load_contracts(tmp_path).current(stem)


def test_named_record_reused_by_name_is_tagged_at_every_path(tmp_path: Path):
    """The tagged fields of ``Contact`` are tagged where it is defined and wherever it is referred to by name."""
    contract = load_one(tmp_path, "handover", HANDOVER)
    tags = dict(contract.audience_tags)
    assert tags.pop("header.publisher.contact") == Audience.MEMBERS
    assert tags.pop("header.origin") == Audience.HQ
    assert tags == REUSED_TAGS
    for path, tag in REUSED_TAGS.items():
        info = contract.fields[path]
        assert (info.path, info.min_audience, info.default) == (path, tag, None)


def test_reused_record_is_redacted_at_every_path(tmp_path: Path):
    """Redaction, reading only the contract's fields, hides the phone of every contact from members."""
    contract = load_one(tmp_path, "handover", HANDOVER)
    person = {"name": "张三", "phone": "13800000000", "email": "z@example.org"}
    record = {
        "outgoing": person,
        "incoming": person,
        "deputy": person,
        "witnesses": [person],
        "on_call": {"night": person},
    }
    result = redact(contract, record, Audience.MEMBERS)
    assert result.redacted_fields == tuple(sorted(p for p, tag in REUSED_TAGS.items() if tag is Audience.HQ))
    members_see = {"name": "张三", "phone": None, "email": "z@example.org"}
    assert result.record == {
        "outgoing": members_see,
        "incoming": members_see,
        "deputy": members_see,
        "witnesses": [members_see],
        "on_call": {"night": members_see},
    }


def test_fields_are_every_path_in_document_order():
    """A field comes before the fields within it; arrays add ``[]``, maps ``{}``; ``field_paths`` is their set."""
    schema = {**HANDOVER, "fields": HANDOVER["fields"][1:]}
    contract = build_contract("handover", schema, where="handover.avsc")
    expected = []
    for prefix in ("outgoing", "incoming", "deputy", "witnesses", "on_call"):
        inner = {"witnesses": "witnesses[]", "on_call": "on_call{}"}.get(prefix, prefix)
        expected += [prefix, f"{inner}.name", f"{inner}.phone", f"{inner}.email"]
    assert list(contract.fields) == expected
    assert contract.field_paths == frozenset(expected)
    assert not contract.fields["outgoing"].has_default
    assert contract.fields["witnesses"].default == []
    assert contract.fields["on_call"].default == {}


def test_a_path_reached_twice_keeps_the_stricter_tag():
    """Two records of a union sharing a field name: the narrower audience wins, whichever comes first."""
    first: dict[str, Any] = {"name": "A", "fields": [{"name": "x", "type": ["null", "string"], "default": None}]}
    second = {"name": "B", "fields": [{**first["fields"][0], "firebus.min_audience": "hq"}]}
    third = {"name": "C", "fields": [{**first["fields"][0], "firebus.min_audience": "members"}]}
    branches = [{"type": "record", **each} for each in (first, second, third)]
    schema = {**HANDOVER, "fields": [{"name": "either", "type": branches}]}
    contract = build_contract("either", schema, where="either.avsc")
    assert dict(contract.audience_tags) == {"either.x": Audience.HQ}


def test_a_recursive_record_has_each_of_its_paths_once():
    """A record inside itself is not followed again: its fields have their first paths only."""
    chain = {
        **HANDOVER,
        "fields": [
            {"name": "label", "type": "string"},
            {"name": "next", "type": ["null", "firebus.Link"], "default": None},
        ],
        "name": "Link",
    }
    assert list(build_contract("chain", chain, where="chain.avsc").fields) == ["label", "next"]


@pytest.mark.parametrize(
    ("tag", "keep_default", "message"),
    [
        ("public", True, "public restricts nothing"),
        ("everyone", True, "must be members or hq, not 'everyone'"),
        ("hq", False, "needs a default"),
    ],
)
def test_bad_tag_is_one_contract_error_naming_file_and_path(tag: str, keep_default: bool, message: str):
    """A misused tag is refused with one error that names the file and the field's first path."""
    phone = {**CONTACT["fields"][1], "firebus.min_audience": tag}
    if not keep_default:
        del phone["default"]
    contact = {**CONTACT, "fields": [CONTACT["fields"][0], phone]}
    schema = {**HANDOVER, "fields": [{"name": "outgoing", "type": contact}, *HANDOVER["fields"][2:]]}
    with pytest.raises(ContractError, match=f"^handover.avsc: outgoing.phone: .*{re.escape(message)}"):
        build_contract("handover", schema, where="handover.avsc")


@pytest.mark.parametrize("contract", list(default_contracts()), ids=lambda c: c.stem)
def test_shipped_tags_are_the_tagged_fields(contract: Contract):
    """For every shipped contract the audience tags are exactly the tagged fields, each with a default."""
    tagged = {path: info.min_audience for path, info in contract.fields.items() if info.min_audience is not None}
    assert tagged == dict(contract.audience_tags)
    assert all(contract.fields[path].has_default for path in tagged)


# --- text limits ---------------------------------------------------------------------------------------------

EVENT_STEMS = [contract.stem for contract in default_contracts() if contract.event_type is not None]


def strip_text_limits(schema: Any) -> Any:
    """``schema`` without any firebus.max_length / min_length / pattern attribute, at any depth."""
    if isinstance(schema, list):
        return [strip_text_limits(item) for item in schema]
    if isinstance(schema, dict):
        return {
            key: strip_text_limits(value)
            for key, value in schema.items()
            if key not in (MAX_LENGTH_ATTR, MIN_LENGTH_ATTR, PATTERN_ATTR)
        }
    return schema


@pytest.mark.parametrize("contract", [c for c in default_contracts() if c.requires_text_limits], ids=lambda c: c.stem)
def test_every_text_field_of_events_and_decisions_has_a_maximum_length(contract: Contract):
    """Each text field of the event schemas (header included) and of review_decision declares firebus.max_length."""
    text_fields = [info for info in contract.fields.values() if info.text]
    assert text_fields
    assert all(info.max_length is not None and info.max_length <= 20000 for info in text_fields), text_fields


def test_the_event_schemas_and_review_decision_require_limits():
    """The rule covers exactly the eight event schemas and review_decision."""
    required = sorted(contract.stem for contract in default_contracts() if contract.requires_text_limits)
    assert required == sorted([*EVENT_STEMS, "review_decision"])


@pytest.mark.parametrize("contract", list(default_contracts()), ids=lambda c: c.stem)
def test_text_limits_leave_the_fingerprint_as_frozen(contract: Contract):
    """Limits are attributes, outside the Parsing Canonical Form: the fingerprint is the frozen version's, and the
    schema without them has the same canonical form."""
    frozen = load_history(AVRO_DIR)
    assert frozen[contract.fingerprint].version == contract.version
    stripped = build_contract(contract.stem, strip_text_limits(contract.schema), where="stripped")
    assert stripped.canonical == contract.canonical
    assert stripped.fingerprint == contract.fingerprint


@pytest.mark.parametrize(
    ("stem", "field", "path"),
    [
        ("work_update", "title", "body.title"),
        ("header", "trace_id", "header.trace_id"),
        ("fire_report", "equipment", "body.forces[].equipment"),
        ("review_decision", "reason", "reason"),
    ],
)
def test_a_text_field_without_a_maximum_length_is_refused(tmp_path: Path, stem: str, field: str, path: str):
    """Removing one field's firebus.max_length makes loading fail with an error naming the field's path."""
    shutil.copytree(AVRO_DIR, tmp_path / "avro")
    avsc = tmp_path / "avro" / f"{stem}.avsc"
    schema = json.loads(avsc.read_text(encoding="utf-8"))
    found = _field_named(schema, field)
    del found[MAX_LENGTH_ATTR]
    avsc.write_text(json.dumps(schema), encoding="utf-8")
    with pytest.raises(
        ContractError, match=rf"every text field needs firebus.max_length; missing at .*{re.escape(path)}"
    ):
        load_contracts(tmp_path / "avro")


def _field_named(schema: Any, name: str) -> dict[str, Any]:
    found = []

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, dict):
            if node.get("name") == name and "type" in node and MAX_LENGTH_ATTR in node:
                found.append(node)
            for value in node.values():
                walk(value)

    walk(schema)
    (only,) = found
    return only


def test_a_schema_outside_the_rule_needs_no_limits(tmp_path: Path):
    """A record that is neither an event nor a decision (the handover above) loads without any limits."""
    contract = load_one(tmp_path, "handover", HANDOVER)
    assert contract.fields["outgoing.name"].text
    assert contract.fields["outgoing.name"].max_length is None


def test_limits_are_parsed_into_the_field_info():
    """max_length, min_length and pattern of a string, an array of strings and a map reach FieldInfo."""
    schema = {
        **HANDOVER,
        "fields": [
            {"name": "code", "type": "string", MAX_LENGTH_ATTR: 8, MIN_LENGTH_ATTR: 2, PATTERN_ATTR: "^[A-Z]+$"},
            {"name": "tags", "type": {"type": "array", "items": "string"}, MAX_LENGTH_ATTR: 20},
            {"name": "notes", "type": {"type": "map", "values": "long"}, MAX_LENGTH_ATTR: 30},
            {"name": "maybe", "type": ["null", "string"], "default": None, MAX_LENGTH_ATTR: 5},
        ],
    }
    fields = build_contract("limited", schema, where="limited.avsc").fields
    assert (fields["code"].max_length, fields["code"].min_length) == (8, 2)
    assert fields["code"].pattern is not None
    assert fields["code"].pattern.pattern == "^[A-Z]+$"
    assert (fields["tags"].text, fields["tags"].max_length) == (True, 20)
    assert (fields["notes"].text, fields["notes"].max_length) == (True, 30)
    assert (fields["maybe"].text, fields["maybe"].max_length, fields["maybe"].min_length) == (True, 5, 0)


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ({"type": "string", MAX_LENGTH_ATTR: 0}, "firebus.max_length must be a positive integer, not 0"),
        ({"type": "string", MAX_LENGTH_ATTR: "10"}, "firebus.max_length must be a positive integer, not '10'"),
        ({"type": "string", MAX_LENGTH_ATTR: True}, "firebus.max_length must be a positive integer, not True"),
        ({"type": "string", MIN_LENGTH_ATTR: -1}, "firebus.min_length must be a non-negative integer, not -1"),
        ({"type": "string", MAX_LENGTH_ATTR: 3, MIN_LENGTH_ATTR: 4}, "firebus.min_length 4 is more than"),
        ({"type": "string", PATTERN_ATTR: "("}, "firebus.pattern '(' is not a regular expression"),
        ({"type": "int", MAX_LENGTH_ATTR: 3}, "are for text fields"),
        ({"type": {"type": "string", "logicalType": "uuid"}, MAX_LENGTH_ATTR: 36}, "are for text fields"),
    ],
)
def test_bad_limits_are_one_contract_error_naming_file_and_path(field: dict[str, Any], message: str):
    """A misused limit is refused with one error naming the file and the field's path."""
    schema = {**HANDOVER, "fields": [{"name": "code", **field}]}
    with pytest.raises(ContractError, match=f"^limited.avsc: code: .*{re.escape(message)}"):
        build_contract("limited", schema, where="limited.avsc")


def test_records_are_checked_with_the_current_contract_whatever_version_wrote_them():
    """History files are never edited and carry no limits; decoding resolves every record to the current contract,
    whose limits are the ones the text rules apply."""
    codec = Codec()
    current = codec.contracts.current("review_decision")
    writer = codec.contracts.by_fingerprint(current.fingerprint)
    assert writer is not None
    assert writer is not current
    assert writer.fields["reason"].max_length is None
    decision = ReviewDecision(
        decision_id=uuid4(),
        event_id=uuid4(),
        event_type=EventType.WORK_UPDATE,
        verdict=Verdict.REJECT,
        reviewer="hq-wang",
        reviewer_kind=ReviewerKind.HUMAN,
        reason="重复报送",
        decided_at=datetime(2026, 3, 12, tzinfo=UTC),
        trace_id="t",
    )
    decoded, _record = codec.decode_data(codec.encode(decision))
    assert decoded is current
    assert decoded.fields["reason"].max_length == 2000
