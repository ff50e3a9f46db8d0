"""Text hygiene (firebus.text): every string a record carries is refused, with its field and what is wrong, when it
holds a control, bidi-control, noncharacter or surrogate code point, is not NFC, or breaks its field's length limits
or pattern; and an event's ``header.schema_version`` must be the version its bytes were written with.
"""

from __future__ import annotations

import copy
import unicodedata
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firebus.codec import Codec
from firebus.contracts import Contract, build_contract, default_contracts
from firebus.events import EventType
from firebus.text import FORBIDDEN_CHARACTERS, nfc, text_problems
from tests.samples import sample_event

CONTRACTS = default_contracts()
CODEC = Codec(CONTRACTS)
FIRE = CONTRACTS.for_event_type(EventType.FIRE_REPORT)
NOW = datetime(2026, 3, 12, 6, 0, tzinfo=UTC)


def sample_record(event_type: EventType) -> tuple[Contract, dict[str, Any]]:
    """The example event of ``event_type``, encoded and decoded as intake sees it."""
    return CODEC.decode_data(CODEC.encode(sample_event(event_type)))


def fire_with(description: str) -> dict[str, Any]:
    record = copy.deepcopy(sample_record(EventType.FIRE_REPORT)[1])
    record["body"]["place"]["description"] = description
    return record


def messages(record: dict[str, Any], contract: Contract = FIRE) -> list[str]:
    return [str(problem) for problem in text_problems(contract, record)]


@pytest.mark.parametrize("event_type", list(EventType), ids=lambda t: t.value)
def test_every_example_event_is_clean(event_type: EventType) -> None:
    """The shipped examples break no text rule."""
    contract, record = sample_record(event_type)
    assert text_problems(contract, record) == []


@pytest.mark.parametrize(
    ("character", "kind"),
    [
        ("\x00", "control character U+0000"),
        ("\x01", "control character U+0001"),
        ("\r", "control character U+000D"),
        ("\x0b", "control character U+000B"),
        ("\x0c", "control character U+000C"),
        ("\x1b", "control character U+001B"),
        ("\x7f", "control character U+007F"),
        ("\x85", "control character U+0085"),
        ("\x9f", "control character U+009F"),
        ("\u202a", "bidirectional control U+202A"),
        ("\u202e", "bidirectional control U+202E"),
        ("\u2066", "bidirectional control U+2066"),
        ("\u2069", "bidirectional control U+2069"),
        ("\ufdd0", "noncharacter U+FDD0"),
        ("\ufffe", "noncharacter U+FFFE"),
        ("\uffff", "noncharacter U+FFFF"),
        ("\U0001fffe", "noncharacter U+1FFFE"),
        ("\U0010ffff", "noncharacter U+10FFFF"),
        ("\ud800", "surrogate code point U+D800"),
    ],
)
def test_a_forbidden_character_is_named_with_its_position(character: str, kind: str) -> None:
    """Each forbidden code point is refused as U+XXXX at its index, on the field's path."""
    assert messages(fire_with(f"东侧{character}山坡")) == [f"body.place.description: {kind} at index 2"]


def test_several_forbidden_characters_are_counted() -> None:
    """The first forbidden character is named and the others counted."""
    assert messages(fire_with("\x00a\x00\u202e")) == [
        "body.place.description: control character U+0000 at index 0 (and 2 more forbidden)"
    ]


@pytest.mark.parametrize(
    "text",
    [
        "第一行\n第二行\t制表",
        "　全角空格　",  # U+3000 ideographic space
        "<b>&amp;</b> \"quoted\" 'single' ]]> <![CDATA[",
        "火 🔥 𠀋 \U0001f9ef",  # astral characters, assigned
        "café",  # é precomposed (NFC)
        "ﬁ ¼ Å",  # compatibility characters stay (NFC, not NFKC)
        "\u200d\u200c\u00ad\ufeff",  # joiners, soft hyphen, BOM: format characters that are not bidi controls
        "\u2028\u2029",  # line and paragraph separators
        "\ue000",  # private use
    ],
)
def test_ordinary_and_xml_special_text_is_clean(text: str) -> None:
    """Newlines, tabs, full-width spaces, markup characters, astral and format characters are fine."""
    assert messages(fire_with(text)) == []


def test_text_not_in_nfc_is_refused() -> None:
    """A decomposed é (e + combining acute) is refused; its NFC form is the same text and passes."""
    decomposed = "Cafe\u0301 东侧"
    assert messages(fire_with(decomposed)) == ["body.place.description: not in Unicode normal form NFC"]
    assert messages(fire_with(unicodedata.normalize("NFC", decomposed))) == []


def test_lengths_are_code_points_against_the_schema_limits() -> None:
    """description allows 500 code points: 500 astral characters pass, 501 do not."""
    assert FIRE.fields["body.place.description"].max_length == 500
    assert messages(fire_with("🔥" * 500)) == []
    assert messages(fire_with("🔥" * 501)) == ["body.place.description: 501 characters, more than the limit of 500"]


def test_array_items_and_nested_records_are_named_with_their_indexes() -> None:
    """Each string of an array, at any depth, is checked and named with its indexes."""
    _contract, record = sample_record(EventType.FIRE_REPORT)
    record["body"]["forces"] = [
        {"unit": "第一队", "personnel": 3, "vehicles": 0, "equipment": ["风力灭火机"]},
        {"unit": "", "personnel": 3, "vehicles": 0, "equipment": ["ok", "x" * 101]},
    ]
    record["header"]["townships"] = ["manghe", "\u202emanghe"]
    assert messages(record) == [
        "header.townships[1]: bidirectional control U+202E at index 0",
        "body.forces[1].unit: 0 characters, fewer than the minimum of 1",
        "body.forces[1].equipment[1]: 101 characters, more than the limit of 100",
    ]


@pytest.mark.parametrize("trace_id", ["", "-leading-dash", "has space", "x" * 65, "中文", "a\n"])
def test_trace_id_must_match_its_pattern(trace_id: str) -> None:
    """header.trace_id: 1-64 letters, digits and . _ : - starting with a letter or digit."""
    _contract, record = sample_record(EventType.WORK_UPDATE)
    record["header"]["trace_id"] = trace_id
    contract = CONTRACTS.for_event_type(EventType.WORK_UPDATE)
    problems = text_problems(contract, record)
    assert problems
    assert {problem.field for problem in problems} == {"header.trace_id"}
    assert any("does not match ^[0-9A-Za-z][0-9A-Za-z._:-]{0,63}$" in problem.message for problem in problems)


@pytest.mark.parametrize("trace_id", [uuid4().hex, str(uuid4()), "trace-1", "00-4bf92f3577b34da6a3ce929d0e0e4736", "a"])
def test_usual_trace_ids_match(trace_id: str) -> None:
    """The library's uuid4 hex, a UUID with dashes, short names and W3C-style ids are valid trace ids."""
    _contract, record = sample_record(EventType.WORK_UPDATE)
    record["header"]["trace_id"] = trace_id
    assert text_problems(CONTRACTS.for_event_type(EventType.WORK_UPDATE), record) == []


def test_map_keys_and_values_are_checked() -> None:
    """A map's keys and string values are text too (the audit record's details)."""
    audit = CONTRACTS.current("audit_event")
    record = {"action": "other", "details": {"fine": "ok", "bad\x00key": "v", "k": "\u202ev"}}
    assert [str(p) for p in text_problems(audit, record)] == [
        "details['bad\\x00key']: key control character U+0000 at index 3",
        "details['k']: bidirectional control U+202E at index 0",
    ]


def test_every_problem_of_a_record_is_listed() -> None:
    """Problems in the header and the body are all reported, in schema order."""
    record = fire_with("\x00")
    record["header"]["publisher"]["person"] = "A\u030a"
    record["body"]["suspected_cause"] = "x" * 600
    assert [problem.field for problem in text_problems(FIRE, record)] == [
        "header.publisher.person",
        "body.place.description",
        "body.suspected_cause",
    ]


def test_uuid_and_non_text_fields_are_not_text() -> None:
    """UUIDs, enums and numbers are not checked as text (their types check them)."""
    assert not FIRE.fields["header.event_id"].text
    assert not FIRE.fields["header.references"].text
    assert not FIRE.fields["header.kind"].text
    assert not FIRE.fields["body.forces"].text
    assert FIRE.fields["body.forces[].equipment"].text


def test_nfc_normalises_every_string_and_key() -> None:
    """nfc() composes every string, map keys included, and leaves other values alone."""
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    value = {"e\u0301": ["A\u030a", 3, None, moment], "plain": "ascii"}
    assert nfc(value) == {"é": ["Å", 3, None, moment], "plain": "ascii"}


@given(st.text())
def test_forbidden_characters_are_exactly_the_refused_classes(text: str) -> None:
    """A string is refused for its characters exactly when it holds a C0 (not tab/LF), DEL, C1, bidi control,
    surrogate or noncharacter code point — checked code point by code point, independently of the regex."""
    expected = any(_forbidden(ord(character)) for character in text)
    assert (FORBIDDEN_CHARACTERS.search(text) is not None) is expected
    refused = any("at index" in str(problem) for problem in text_problems(FIRE, fire_with(text)))
    assert refused is expected


def _forbidden(code: int) -> bool:
    return (
        (code < 0x20 and code not in (0x09, 0x0A))
        or 0x7F <= code <= 0x9F
        or 0x202A <= code <= 0x202E
        or 0x2066 <= code <= 0x2069
        or 0xD800 <= code <= 0xDFFF
        or 0xFDD0 <= code <= 0xFDEF
        or code & 0xFFFE == 0xFFFE
    )


# --- schema_version ------------------------------------------------------------------------------------------


def test_schema_version_must_be_the_writers_version() -> None:
    """An event claiming a version its bytes were not written with (7, 0) is refused; its own version passes."""
    contract, record = sample_record(EventType.FIRE_REPORT)
    writer = CONTRACTS.by_fingerprint(contract.fingerprint)
    assert writer is not None
    assert CONTRACTS.schema_version_problems(writer, record) == []
    for claimed in (7, 0, -1):
        record["header"]["schema_version"] = claimed
        (problem,) = CONTRACTS.schema_version_problems(writer, record)
        assert problem.field == "header.schema_version"
        assert problem.message == f"{claimed}, but the event was written with version {writer.version}"


def test_records_without_a_header_have_no_schema_version() -> None:
    """Governance records carry no schema_version; nothing to check."""
    audit = CONTRACTS.current("audit_event")
    assert CONTRACTS.schema_version_problems(audit, {"action": "other"}) == []


CHAIN: dict[str, Any] = {
    "type": "record",
    "name": "Link",
    "namespace": "firebus",
    "firebus.version": 1,
    "fields": [
        {"name": "label", "type": "string", "firebus.max_length": 5},
        {"name": "next", "type": ["null", "Link"], "default": None},
    ],
}


def test_text_of_a_recursive_record_is_checked_at_every_depth() -> None:
    """A record that contains itself is checked however deep the data goes, with the same limits."""
    chain = build_contract("chain", CHAIN, where="chain.avsc")
    record = {"label": "a", "next": {"label": "b", "next": {"label": "c\x00", "next": {"label": "toolong"}}}}
    assert [str(problem) for problem in text_problems(chain, record)] == [
        "next.next.label: control character U+0000 at index 1",
        "next.next.next.label: 7 characters, more than the limit of 5",
    ]
