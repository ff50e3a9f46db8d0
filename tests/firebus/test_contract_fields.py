"""Every contract knows its fields: every addressable path (``[]`` for array items, ``{}`` for map values) with its
minimum audience and decoded default, following every use of a named type — so a tagged field of a record reused by
name is tagged at each path it is reached by, and redaction hides it there too.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from firebus.contracts import HEADER_FILE, Contract, build_contract, default_contracts, load_contracts
from firebus.errors import ContractError
from firebus.events import Audience
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
