"""Drafts and the client library's ``prepare``: reading JSON/YAML drafts with every problem listed, and turning a
draft into a complete, validated, signed event — all without a broker.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from firebus.codec import Codec
from firebus.county import County, load_county
from firebus.errors import (
    ClassifiedEventError,
    DutyViolationError,
    InvalidEventError,
    SigningKeyError,
    UnknownUnitError,
)
from firebus.events import Classification, EventType, MessageKind, WorkCategory, WorkUpdate
from firebus.settings import SAMPLE_CONFIG, Settings
from firebus.signing import SIGNATURE_LENGTH, check_signature, load_signing_key, registered_public_keys
from producers import Draft, FirebusClient, draft_from_mapping, load_draft
from producers._drafts import Draft as DraftModel
from tests.samples import EXAMPLES, SAMPLE_PUBLISHER

EXAMPLE_FILES = sorted(EXAMPLES.glob("*.json"))
NOW = datetime(2026, 3, 12, 8, 0, tzinfo=UTC)

SAMPLE_UNITS = {event_type.value: unit for event_type, unit in SAMPLE_PUBLISHER.items()}


@pytest.fixture(scope="module")
def settings(keys_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings with the session's keys; no broker is ever contacted."""
    return Settings(keys_dir=keys_dir, home=tmp_path_factory.mktemp("home"))


@pytest.fixture(scope="module")
def codec() -> Codec:
    return Codec()


def client(settings: Settings, county: County, unit: str, **kwargs: Any) -> FirebusClient:
    return FirebusClient(settings=settings, unit=unit, county=county, **kwargs)


def example(event_type: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXAMPLES / f"{event_type}.json").read_text(encoding="utf-8"))
    return data


# --- the examples ------------------------------------------------------------------------------------------------


def test_there_is_one_example_per_event_type():
    """examples/events holds exactly one draft per event type, named after it."""
    assert sorted(path.stem for path in EXAMPLE_FILES) == sorted(t.value for t in EventType)
    assert set(SAMPLE_UNITS) == {t.value for t in EventType}


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.stem)
def test_example_loads_and_prepares_for_its_unit(settings: Settings, county: County, codec: Codec, path: Path):
    """Every examples/events/*.json loads with load_draft and prepares cleanly (validated, signed) for its unit."""
    draft = load_draft(path)
    assert draft.event_type.value == path.stem
    event = client(settings, county, SAMPLE_UNITS[path.stem]).prepare(draft, now=NOW)
    assert event.header.event_type is draft.event_type
    assert event.body == draft.body
    assert codec.decode(codec.encode(event)) == event


@pytest.mark.parametrize(
    ("event_type", "unit"),
    [
        (t, unit.id)
        for t in SAMPLE_UNITS
        for unit in load_county(SAMPLE_CONFIG).units
        if t in unit.duties and not unit.townships
    ],
)
def test_example_prepares_for_every_countywide_unit_with_the_duty(
    settings: Settings, county: County, event_type: str, unit: str
):
    """Each example is publishable by every county-wide unit whose duties include its type."""
    event = client(settings, county, unit).prepare(load_draft(EXAMPLES / f"{event_type}.json"), now=NOW)
    assert event.header.publisher.unit == unit


def test_example_prepares_with_the_real_clock(settings: Settings, county: County):
    """Without an explicit now, prepare stamps the current UTC time (millisecond precision)."""
    before = datetime.now(UTC) - timedelta(milliseconds=1)
    event = client(settings, county, "forestry").prepare(load_draft(EXAMPLES / "work_update.json"))
    after = datetime.now(UTC)
    assert before <= event.header.published_at <= after
    assert event.header.occurred_at == event.header.published_at
    assert event.header.published_at.microsecond % 1000 == 0


# --- YAML --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".yaml", ".yml"])
@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.stem)
def test_yaml_draft_loads_like_json(tmp_path: Path, path: Path, suffix: str):
    """The same content written as YAML loads into an identical draft."""
    as_yaml = tmp_path / f"{path.stem}{suffix}"
    as_yaml.write_text(yaml.safe_dump(example(path.stem), allow_unicode=True), encoding="utf-8")
    assert load_draft(as_yaml) == load_draft(path)


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.stem)
def test_text_given_is_parsed_by_the_name(path: Path):
    """Given text (as from stdin), load_draft parses it as JSON or YAML by the name and never reads the path."""
    text = path.read_text(encoding="utf-8")
    assert load_draft("/nonexistent/stdin.json", text) == load_draft(path)
    assert load_draft("-", yaml.safe_dump(json.loads(text), allow_unicode=True)) == load_draft(path)


def test_handwritten_yaml_with_native_timestamps_loads_like_json(tmp_path: Path):
    """Unquoted YAML timestamps (parsed by YAML as datetimes) give the same draft as the JSON strings."""
    text = """
type: risk_warning
classification: public
audience: public
severity: severe
urgency: expected
townships: [manghe, dongye, xihe]
body:
  danger_level: 4
  signal: orange
  area: 县境南部蟒河、东冶、西河林区
  valid_from: 2026-03-12T00:00:00Z
  valid_to: 2026-03-15T08:00:00+08:00
  measures:
    - 严禁一切野外用火
    - 加强巡山护林和卡口检查
"""
    path = tmp_path / "warning.yaml"
    path.write_text(text, encoding="utf-8")
    assert load_draft(path) == load_draft(EXAMPLES / "risk_warning.json")


# --- bad drafts --------------------------------------------------------------------------------------------------


def test_every_bad_field_is_named_in_one_error():
    """Bad body enum, missing body field, bad nested value and bad/missing/extra header fields are reported together."""
    data = example("fire_report")
    data["severity"] = "catastrophic"
    data["audience"] = "everyone"
    del data["urgency"]
    data["bogus"] = 1
    data["body"]["status"] = "burning"
    del data["body"]["discovered_at"]
    data["body"]["place"]["lat"] = 123.0
    with pytest.raises(InvalidEventError) as caught:
        draft_from_mapping(data)
    fields = {problem.field for problem in caught.value.problems}
    expected = {
        "severity",
        "audience",
        "urgency",
        "bogus",
        "body.status",
        "body.discovered_at",
        "body.place.lat",
    }
    assert fields == expected
    message = str(caught.value)
    assert message.startswith("invalid fire_report draft: ")
    for field in expected:
        assert f"{field}: " in message


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"severity": "catastrophic"}, "severity"),
        ({"classification": "top-secret"}, "classification"),
        ({"kind": "retract"}, "kind"),
        ({"references": ["not-a-uuid"]}, "references.0"),
        ({"occurred_at": "yesterday"}, "occurred_at"),
        ({"occurred_at": "2026-03-12T05:00:00"}, "occurred_at"),
        ({"townships": "manghe"}, "townships"),
        ({"extra_field": True}, "extra_field"),
    ],
)
def test_bad_header_field_is_named(change: dict[str, Any], field: str):
    """A single bad header field of a draft is reported under its own name."""
    with pytest.raises(InvalidEventError) as caught:
        draft_from_mapping({**example("work_update"), **change})
    assert [problem.field for problem in caught.value.problems] == [field]


@pytest.mark.parametrize(
    ("event_type", "body_change", "field"),
    [
        ("work_update", {"category": "gossip"}, "body.category"),
        ("work_update", {"title": ""}, "body.title"),
        pytest.param("risk_warning", {"danger_level": 6}, "body.danger_level"),
        ("risk_warning", {"danger_level": 2**31}, "body.danger_level"),
        ("risk_warning", {"signal": "green"}, "body.signal"),
        ("traffic_control", {"measure": "detour"}, "body.measure"),
        ("case_update", {"suspects": [{"name": "王某", "age": 200}]}, "body.suspects.0.age"),
        pytest.param(
            "fire_report",
            {"forces": [{"unit": "x", "personnel": -1}]},
            "body.forces.0.personnel",
        ),
        pytest.param("fire_report", {"deaths": -1}, "body.deaths"),
        ("fire_report", {"place": {"township": "manghe", "lat": 91}}, "body.place.lat"),
        ("resource", {"capacity": -5}, "body.capacity"),
        ("directive", {"publishable": "maybe"}, "body.publishable"),
        ("consultation", {"nonsense": 1}, "body.nonsense"),
    ],
)
def test_bad_body_field_is_named_with_body_prefix(event_type: str, body_change: dict[str, Any], field: str):
    """A single bad body field is reported as body.<path>, with no spurious header problems."""
    data = example(event_type)
    data["body"] = {**data["body"], **body_change}
    with pytest.raises(InvalidEventError) as caught:
        draft_from_mapping(data)
    assert [problem.field for problem in caught.value.problems] == [field]


@pytest.mark.parametrize("body", [None, [], "text", 3])
def test_missing_or_non_object_body_is_reported(body: Any):
    """A draft whose body is missing or not an object names the body and nothing else."""
    data = example("consultation")
    data["body"] = body
    with pytest.raises(InvalidEventError) as caught:
        draft_from_mapping(data)
    assert [problem.field for problem in caught.value.problems] == ["body"]


def test_draft_without_body_key_is_reported():
    """A draft with no body key at all names the body."""
    data = example("consultation")
    del data["body"]
    with pytest.raises(InvalidEventError) as caught:
        draft_from_mapping(data)
    assert [problem.field for problem in caught.value.problems] == ["body"]


@pytest.mark.parametrize("raw_type", ["wildfire", "FIRE_REPORT", "", None, 3, ["fire_report"], {"a": 1}])
def test_unknown_type_lists_the_known_types(raw_type: Any):
    """An unknown, missing or non-string type is one problem on 'type' listing every known event type."""
    data = {**example("work_update"), "type": raw_type}
    if raw_type is None:
        del data["type"]
    with pytest.raises(InvalidEventError) as caught:
        draft_from_mapping(data)
    assert [problem.field for problem in caught.value.problems] == ["type"]
    for event_type in EventType:
        assert event_type.value in caught.value.problems[0].message


@pytest.mark.parametrize("data", [[], [{"type": "work_update"}], "work_update", 3, 1.5, None, True])
def test_non_object_draft_is_refused(data: Any):
    """A draft that is not a mapping is refused with a typed error saying an object was expected."""
    with pytest.raises(InvalidEventError, match="expected an object"):
        draft_from_mapping(data)


@pytest.mark.parametrize(
    ("name", "text"), [("x.json", "[1, 2]"), ("x.json", '"text"'), ("x.yaml", ""), ("x.yml", "- a")]
)
def test_non_object_file_is_refused(tmp_path: Path, name: str, text: str):
    """A JSON or YAML file holding something other than an object is refused with a typed error."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InvalidEventError, match="expected an object"):
        load_draft(path)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("draft.json", "{not json"),
        ("draft.json", '{"type": "work_update",}'),
        ("draft.json", ""),
        ("draft.yaml", "type: [unclosed\nbody: {"),
        ("draft.yaml", "a: b\n  c: d\n"),
        ("draft.yml", "key: 'unterminated\n\n\nmore"),
    ],
)
def test_unparseable_text_gives_a_one_line_reason(tmp_path: Path, name: str, text: str):
    """Invalid JSON/YAML text raises InvalidEventError with a single-line reason naming the file."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InvalidEventError) as caught:
        load_draft(path)
    message = str(caught.value)
    assert "\n" not in message
    assert f"{path} is not valid JSON/YAML: " in message
    assert len(message) > len(f"invalid draft: {path} is not valid JSON/YAML: ")


@given(st.text(max_size=60))
def test_arbitrary_text_never_escapes_untyped(text: str):
    """Whatever text a draft file holds, load_draft returns a draft or raises InvalidEventError."""
    for name in ("draft.json", "draft.yaml"):
        message = ""
        try:
            load_draft(name, text)
        except InvalidEventError as exc:
            message = str(exc)
        assert "\n" not in message


@pytest.mark.parametrize("kind", ["missing", "directory"])
def test_unreadable_path_is_reported(tmp_path: Path, kind: str):
    """A draft path that cannot be read raises InvalidEventError naming the path and the OS reason."""
    path = tmp_path / "nope.json" if kind == "missing" else tmp_path
    with pytest.raises(InvalidEventError) as caught:
        load_draft(path)
    message = str(caught.value)
    assert f"cannot read {path}" in message
    reason = {"missing": "No such file or directory", "directory": "Is a directory"}[kind]
    assert reason in message


def test_non_utf8_file_is_reported(tmp_path: Path):
    """A draft file that is not UTF-8 raises InvalidEventError rather than an untyped UnicodeDecodeError."""
    path = tmp_path / "latin1.json"
    path.write_bytes('{"type": "work_update", "body": {"title": "caf\u00e9"}}'.encode("latin-1"))
    with pytest.raises(InvalidEventError):
        load_draft(path)


# --- prepare -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.stem)
def test_prepare_fills_in_the_header(settings: Settings, county: County, codec: Codec, path: Path):
    """prepare fills id, times, trace id, schema version, publisher and copies the draft's header fields."""
    draft = load_draft(path)
    unit = county.unit(SAMPLE_UNITS[path.stem])
    header = client(settings, county, unit.id).prepare(draft, now=NOW).header
    assert isinstance(header.event_id, UUID)
    assert header.event_id.version == 4
    assert header.event_type is draft.event_type
    assert header.schema_version == codec.contracts.for_event_type(draft.event_type).version
    assert header.published_at == NOW
    assert header.occurred_at == (draft.occurred_at or NOW)
    assert re.fullmatch(r"[0-9a-f]{32}", header.trace_id)
    assert header.publisher.unit == unit.id
    assert header.publisher.person == (draft.person or unit.name)
    assert header.publisher.contact == draft.contact
    for name in ("kind", "references", "incident_id", "classification", "audience", "audience_townships"):
        assert getattr(header, name) == getattr(draft, name)
    for name in ("severity", "urgency", "townships"):
        assert getattr(header, name) == getattr(draft, name)


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.stem)
def test_prepare_signs_with_the_units_key(settings: Settings, county: County, codec: Codec, keys_dir: Path, path: Path):
    """The prepared event carries a 64-byte signature that check_signature accepts for its unit."""
    unit = SAMPLE_UNITS[path.stem]
    event = client(settings, county, unit).prepare(load_draft(path), now=NOW)
    assert len(event.header.signature) == SIGNATURE_LENGTH
    public_keys = registered_public_keys(county, keys_dir)
    assert check_signature(codec, codec.encode(event), public_keys) == unit


def test_prepare_gives_every_event_its_own_identity(settings: Settings, county: County):
    """Preparing the same draft twice gives different event ids, trace ids and signatures."""
    publisher = client(settings, county, "forestry")
    draft = load_draft(EXAMPLES / "work_update.json")
    first, second = publisher.prepare(draft, now=NOW), publisher.prepare(draft, now=NOW)
    assert first.header.event_id != second.header.event_id
    assert first.header.trace_id != second.header.trace_id
    assert first.header.signature != second.header.signature


@pytest.mark.parametrize(
    ("on_client", "on_draft", "expected"),
    [
        ((None, None), (None, None), ("县林业局", None)),
        (("张三", None), (None, None), ("张三", None)),
        (("张三", "0356-1"), (None, None), ("张三", "0356-1")),
        (("张三", "0356-1"), ("李四", None), ("李四", "0356-1")),
        (("张三", "0356-1"), ("李四", "0356-2"), ("李四", "0356-2")),
        ((None, None), ("李四", "0356-2"), ("李四", "0356-2")),
    ],
)
def test_publisher_person_and_contact(
    settings: Settings,
    county: County,
    on_client: tuple[str | None, str | None],
    on_draft: tuple[str | None, str | None],
    expected: tuple[str, str | None],
):
    """The draft's person/contact win over the client's, which win over the unit name (person) and none (contact)."""
    publisher = client(settings, county, "forestry", person=on_client[0], contact=on_client[1])
    draft = draft_from_mapping({**example("work_update"), "person": on_draft[0], "contact": on_draft[1]})
    header = publisher.prepare(draft, now=NOW).header
    assert (header.publisher.person, header.publisher.contact) == expected


def test_typed_draft_prepares_like_a_loaded_one(settings: Settings, county: County):
    """A Draft built from the imported body classes prepares into the same body and header fields as its JSON."""
    typed = Draft(
        body=WorkUpdate(
            category=WorkCategory.PUBLICITY,
            title="林业局开展清明防火宣传进村入户",
            text="县林业局组织宣传小分队深入 12 个重点村发放防火宣传单 3000 余份。",
        ),
        classification=Classification.PUBLIC,
        audience="public",
        severity="minor",
        urgency="past",
    )
    assert DraftModel is Draft
    assert typed == load_draft(EXAMPLES / "work_update.json")
    assert typed.kind is MessageKind.ALERT
    event = client(settings, county, "forestry").prepare(typed, now=NOW)
    assert event.body == typed.body


def test_prepare_rejects_a_naive_clock(settings: Settings, county: County):
    """A naive now is refused with InvalidEventError naming the timestamp, not an untyped TypeError."""
    with pytest.raises(InvalidEventError, match="time zone"):
        client(settings, county, "forestry").prepare(
            load_draft(EXAMPLES / "work_update.json"), now=datetime(2026, 3, 12)
        )


@pytest.mark.parametrize(
    ("unit", "change", "expected"),
    [
        ("police", {}, (DutyViolationError, "may not publish fire_report")),
        ("forestry", {"classification": "secret"}, (ClassifiedEventError, "phone or official letter")),
        ("twp_fengcheng", {}, (InvalidEventError, "publishes only about fengcheng, not manghe")),
        ("forestry", {"incident_id": None}, (InvalidEventError, "belongs to an incident")),
        ("forestry", {"kind": "update"}, (InvalidEventError, "must reference")),
    ],
)
def test_prepare_applies_the_governance_rules(
    settings: Settings, county: County, unit: str, change: dict[str, Any], expected: tuple[type[Exception], str]
):
    """prepare refuses a draft that breaks a governance rule with the rule's typed error."""
    error, fragment = expected
    draft = draft_from_mapping({**example("fire_report"), **change})
    with pytest.raises(error, match=fragment) as caught:
        client(settings, county, unit).prepare(draft, now=NOW)
    assert type(caught.value) is error


# --- text hygiene ------------------------------------------------------------------------------------------------


def test_prepare_puts_every_string_in_nfc(settings: Settings, county: County, codec: Codec, keys_dir: Path):
    """Decomposed text (e + combining acute, A + ring) is published composed, header and body alike, and signed so."""
    data = example("fire_report")
    data["person"] = "A\u030angstro\u0308m"
    data["body"]["place"]["description"] = "Cafe\u0301 东侧山坡"
    data["body"]["forces"][0]["equipment"] = ["风力灭火机", "e\u0301quipement"]
    event = client(settings, county, "forestry").prepare(draft_from_mapping(data), now=NOW)
    assert event.header.publisher.person == "Ångström"
    assert event.body.place.description == "Café 东侧山坡"
    assert event.body.forces[0].equipment == ["风力灭火机", "équipement"]
    assert check_signature(codec, codec.encode(event), registered_public_keys(county, keys_dir)) == "forestry"


def test_prepare_refuses_hostile_text_listing_every_field(settings: Settings, county: County):
    """Control and bidi characters, over-long text and an empty id are refused with one problem per field."""
    data = example("fire_report")
    data["incident_id"] = ""
    data["body"]["place"]["description"] = "东侧\x00山坡"
    data["body"]["suspected_cause"] = "\u202e纸烧坟上"
    data["body"]["forces"][0]["equipment"] = ["风力灭火机", "长" * 101]
    with pytest.raises(InvalidEventError) as caught:
        client(settings, county, "forestry").prepare(draft_from_mapping(data), now=NOW)
    assert [str(problem) for problem in caught.value.problems] == [
        "header.incident_id: 0 characters, fewer than the minimum of 1",
        "body.place.description: control character U+0000 at index 2",
        "body.forces[0].equipment[1]: 101 characters, more than the limit of 100",
        "body.suspected_cause: bidirectional control U+202E at index 0",
    ]
    assert "\n" not in str(caught.value)


def test_prepare_refuses_a_client_person_that_is_too_long(settings: Settings, county: County):
    """The client's own defaults are text of the event too."""
    publisher = client(settings, county, "forestry", person="名" * 101)
    with pytest.raises(InvalidEventError, match=r"header.publisher.person: 101 characters"):
        publisher.prepare(load_draft(EXAMPLES / "work_update.json"), now=NOW)


# --- keys and units ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("unit", "other"), [("forestry", "police"), ("police", "forestry"), ("hq_office", "twp_xihe")])
def test_another_units_key_is_refused(settings: Settings, county: County, keys_dir: Path, unit: str, other: str):
    """A client given another unit's private key raises SigningKeyError at construction."""
    with pytest.raises(SigningKeyError, match="not the unit's registered key"):
        client(settings, county, unit, signing_key=load_signing_key(keys_dir, other))


def test_key_without_a_registered_public_key_is_refused(county: County, keys_dir: Path, tmp_path: Path):
    """A client whose unit has no public key in the registry or keys directory raises SigningKeyError."""
    empty = Settings(keys_dir=tmp_path / "empty", home=tmp_path)
    with pytest.raises(SigningKeyError, match="no registered public key"):
        client(empty, county, "forestry", signing_key=load_signing_key(keys_dir, "forestry"))


def test_missing_private_key_file_is_refused(county: County, tmp_path: Path):
    """A client without a signing key argument or key file raises SigningKeyError telling how to generate one."""
    empty = Settings(keys_dir=tmp_path / "empty", home=tmp_path)
    with pytest.raises(SigningKeyError, match="firebus keys generate --unit forestry"):
        client(empty, county, "forestry")


def test_key_is_loaded_from_the_keys_directory(settings: Settings, county: County, codec: Codec, keys_dir: Path):
    """Without a signing_key argument the unit's key file is used and its signatures verify."""
    event = client(settings, county, "police").prepare(load_draft(EXAMPLES / "traffic_control.json"), now=NOW)
    assert check_signature(codec, codec.encode(event), registered_public_keys(county, keys_dir)) == "police"


@pytest.mark.parametrize("unit", ["nobody", "", "Police"])
def test_unknown_unit_is_refused(settings: Settings, county: County, unit: str):
    """A client for a unit missing from the registry raises UnknownUnitError naming it."""
    with pytest.raises(UnknownUnitError, match=re.escape(repr(unit))):
        client(settings, county, unit)
