"""The pydantic models and the ``.avsc`` contracts cannot drift.

``avro_of_model`` derives, from a model's fields and annotations alone, the Avro record schema the model implies;
``normalise`` strips the contract of what a model cannot express (docs, namespaces, ``firebus.*`` attributes,
enum-level defaults) and inlines named-type references; ``model_vs_contract`` compares the two field by field and
names the record and field of every difference.
"""

from __future__ import annotations

import copy
import json
import types
import typing
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from enum import Enum, StrEnum
from typing import Annotated, Any, get_args, get_origin
from uuid import UUID

import pytest
from annotated_types import Ge, Le
from pydantic import BaseModel, Field, create_model
from pydantic.fields import FieldInfo

from firebus.codec import MAGIC, Codec, event_model
from firebus.contracts import Contract, default_contracts
from firebus.events import (
    BODY_TYPES,
    Audience,
    Classification,
    Event,
    EventBody,
    EventType,
    FirePlace,
    FireReport,
    Header,
    MessageKind,
    Publisher,
    Record,
    Severity,
    Urgency,
    WorkCategory,
    WorkUpdate,
)
from firebus.records import AuditAction, AuditEvent, DeadLetter, Release, ReviewDecision, ReviewItem
from firebus.types import Int32, UtcDatetime

JsonSchema = Any

RECORD_MODELS: dict[str, type[BaseModel]] = {
    "firebus.ReviewDecision": ReviewDecision,
    "firebus.AuditEvent": AuditEvent,
    "firebus.DeadLetter": DeadLetter,
    "firebus.Release": Release,
    "firebus.ReviewItem": ReviewItem,
}
"""The governance contracts' models, by the contract's full name."""

CONTRACTS = list(default_contracts())

# --- deriving the Avro schema a model implies ------------------------------------------------------------------

INT_WIDTHS = {"int": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}
SCALARS: dict[object, JsonSchema] = {
    str: "string",
    float: "double",
    bool: "boolean",
    bytes: "bytes",
    UUID: {"type": "string", "logicalType": "uuid"},
}
TIMESTAMP_MILLIS = {"type": "long", "logicalType": "timestamp-millis"}
UTC_VALIDATORS = get_args(UtcDatetime)[1:]


class DerivationError(Exception):
    """A model annotation with no single Avro equivalent."""


def avro_of_model(model: type[BaseModel]) -> dict[str, JsonSchema]:
    """The Avro record schema ``model`` implies: its fields in order, their types and their defaults."""
    name = model.__name__
    return {
        "type": "record",
        "name": name,
        "fields": [_avro_field(field, info, f"{name}.{field}") for field, info in model.model_fields.items()],
    }


def _avro_field(name: str, info: FieldInfo, where: str) -> dict[str, JsonSchema]:
    if info.annotation is None:
        raise DerivationError(f"{where}: no annotation")
    avro: dict[str, JsonSchema] = {"name": name, "type": _avro_type(info.annotation, list(info.metadata), where)}
    if not info.is_required():
        default = info.default_factory() if info.default_factory is not None else info.default  # type: ignore[call-arg]
        avro["default"] = _json_default(default, where)
    return avro


def _unwrap(annotation: Any, metadata: list[Any]) -> tuple[Any, list[Any]]:
    """Strip ``Annotated`` layers, collecting their constraints (a nested ``FieldInfo`` gives its metadata)."""
    while get_origin(annotation) is Annotated:
        annotation, *extras = get_args(annotation)
        for extra in extras:
            metadata.extend(extra.metadata if isinstance(extra, FieldInfo) else [extra])
    return annotation, metadata


def _avro_type(annotation: Any, metadata: list[Any], where: str) -> JsonSchema:
    annotation, metadata = _unwrap(annotation, metadata)
    origin = get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return _avro_union(get_args(annotation), metadata, where)
    if origin is list:
        (item,) = get_args(annotation)
        return {"type": "array", "items": _avro_type(item, [], f"{where}[]")}
    if origin is dict:
        key, value = get_args(annotation)
        if key is not str:
            raise DerivationError(f"{where}: Avro map keys are strings, not {key!r}")
        return {"type": "map", "values": _avro_type(value, [], f"{where}{{}}")}
    if origin is not None or not isinstance(annotation, type):
        raise DerivationError(f"{where}: no Avro type for {annotation!r}")
    return _avro_class(annotation, metadata, where)


def _avro_union(branches: tuple[Any, ...], metadata: list[Any], where: str) -> JsonSchema:
    present = [branch for branch in branches if branch is not type(None)]
    if len(present) != 1 or len(branches) != 2:
        raise DerivationError(f"{where}: only `X | None` unions have an Avro equivalent, not {branches!r}")
    return ["null", _avro_type(present[0], metadata, where)]


def _avro_class(cls: type, metadata: list[Any], where: str) -> JsonSchema:
    if cls in SCALARS:
        return copy.deepcopy(SCALARS[cls])
    if issubclass(cls, StrEnum):
        return {"type": "enum", "name": cls.__name__, "symbols": [member.value for member in cls]}
    if issubclass(cls, BaseModel):
        return avro_of_model(cls)
    if cls is int:
        return _avro_int(metadata, where)
    if cls is datetime:
        if not all(validator in metadata for validator in UTC_VALIDATORS):
            raise DerivationError(f"{where}: a datetime must be UtcDatetime to be timestamp-millis")
        return dict(TIMESTAMP_MILLIS)
    raise DerivationError(f"{where}: no Avro type for {cls.__name__}")


def _avro_int(metadata: list[Any], where: str) -> str:
    lower = {item.ge for item in metadata if isinstance(item, Ge)}
    upper = {item.le for item in metadata if isinstance(item, Le)}
    widths = [width for width, (low, high) in INT_WIDTHS.items() if low in lower and high in upper]
    if len(widths) != 1:
        raise DerivationError(f"{where}: ambiguous width: annotate the int as Int32 or Int64")
    return widths[0]


def _json_default(value: Any, where: str) -> JsonSchema:
    """A Python default as an Avro JSON default."""
    if isinstance(value, Enum):
        return value.value
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, bytes):
        return value.decode("latin-1")  # Avro encodes bytes defaults as code points 0-255
    if isinstance(value, list):
        return [_json_default(item, where) for item in value]
    if isinstance(value, dict):
        return {key: _json_default(item, where) for key, item in value.items()}
    raise DerivationError(f"{where}: no Avro default for {value!r}")


# --- normalising a contract ------------------------------------------------------------------------------------

PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
NAMED = frozenset({"record", "enum", "fixed"})


def _kept(node: dict[str, JsonSchema]) -> dict[str, JsonSchema]:
    return {key: value for key, value in node.items() if key not in ("doc", "namespace") and "." not in key}


def normalise(schema: JsonSchema, namespace: str = "firebus") -> JsonSchema:
    """``schema`` without docs, namespaces, ``firebus.*`` attributes or enum defaults, every reference inlined."""
    defined: dict[str, JsonSchema] = {}

    def resolve(name: str, space: str) -> JsonSchema:
        if name in PRIMITIVES:
            return name
        full = name if "." in name else f"{space}.{name}"
        if full not in defined:
            raise DerivationError(f"reference to {name!r} before its definition")
        return copy.deepcopy(defined[full])

    def walk(node: JsonSchema, space: str) -> JsonSchema:
        if isinstance(node, str):
            return resolve(node, space)
        if isinstance(node, list):
            return [walk(branch, space) for branch in node]
        return walk_object(node, space)

    def walk_object(node: dict[str, JsonSchema], space: str) -> JsonSchema:
        kind = node["type"]
        if kind in NAMED:
            return named(node, space)
        if kind == "array":
            return {**_kept(node), "items": walk(node["items"], space)}
        if kind == "map":
            return {**_kept(node), "values": walk(node["values"], space)}
        rest = _kept(node)
        if rest == {"type": kind}:  # {"type": "string"} or {"type": "firebus.Audience"} or {"type": {...}}
            return walk(kind, space)
        return rest  # a primitive with a logical type

    def named(node: dict[str, JsonSchema], space: str) -> JsonSchema:
        name = node["name"]
        full = name if "." in name else f"{node.get('namespace', space)}.{name}"
        space, _, short = full.rpartition(".")
        result = {**_kept(node), "name": short}
        if node["type"] == "enum":
            result.pop("default", None)
        elif node["type"] == "record":
            result["fields"] = [{**_kept(fld), "type": walk(fld["type"], space)} for fld in node["fields"]]
        defined[full] = result
        return copy.deepcopy(result)

    return walk(schema, namespace)


# --- comparing -------------------------------------------------------------------------------------------------


def _show(schema: JsonSchema) -> str:
    return json.dumps(schema, ensure_ascii=False, sort_keys=True)


def _kind(schema: JsonSchema) -> str:
    if isinstance(schema, list):
        return "union"
    return schema if isinstance(schema, str) else str(schema.get("type"))


def compare(model: JsonSchema, schema: JsonSchema, path: str) -> list[str]:
    """Every difference between a derived and a normalised schema, each naming its record and field."""
    kind = _kind(model)
    if kind == _kind(schema) and kind in COMPARERS:
        return COMPARERS[kind](model, schema, path)
    if _show(model) != _show(schema):
        return [f"{path}: model says {_show(model)}, schema says {_show(schema)}"]
    return []


def _compare_union(model: JsonSchema, schema: JsonSchema, path: str) -> list[str]:
    if len(model) != len(schema):
        return [f"{path}: model says {_show(model)}, schema says {_show(schema)}"]
    return [problem for left, right in zip(model, schema, strict=True) for problem in compare(left, right, path)]


def _compare_array(model: JsonSchema, schema: JsonSchema, path: str) -> list[str]:
    return compare(model["items"], schema["items"], f"{path}[]") + _compare_parts(model, schema, path, ())


def _compare_map(model: JsonSchema, schema: JsonSchema, path: str) -> list[str]:
    return compare(model["values"], schema["values"], f"{path}{{}}") + _compare_parts(model, schema, path, ())


def _compare_enum(model: JsonSchema, schema: JsonSchema, path: str) -> list[str]:
    return _compare_parts(model, schema, path, ("name", "symbols"))


def _compare_parts(model: JsonSchema, schema: JsonSchema, path: str, parts: tuple[str, ...]) -> list[str]:
    """Compare ``parts`` one by one, then everything else about the node (except nested types) at once."""
    problems = [
        f"{path}: {part} model says {_show(model.get(part))}, schema says {_show(schema.get(part))}"
        for part in parts
        if model.get(part) != schema.get(part)
    ]
    nested = ("fields", "items", "values", *parts)
    rest_model = {key: value for key, value in model.items() if key not in nested}
    rest_schema = {key: value for key, value in schema.items() if key not in nested}
    if rest_model != rest_schema:
        problems.append(f"{path}: model says {_show(rest_model)}, schema says {_show(rest_schema)}")
    return problems


def _compare_record(model: JsonSchema, schema: JsonSchema, path: str, *, wrapper: bool = False) -> list[str]:
    """Names and order of fields, then each field's type, default and required-ness.

    A ``wrapper`` is an ``Event[Body]``: its name is the contract's, not the model's, and each field that is a record
    is reported under that record's name (``FireReport.place.lat``, ``Header.publisher.contact``).
    """
    problems = [] if wrapper else _compare_parts(model, schema, path, ("name",))
    model_names = [fld["name"] for fld in model["fields"]]
    schema_names = [fld["name"] for fld in schema["fields"]]
    if model_names != schema_names:
        problems.append(f"{path}: fields model says {model_names}, schema says {schema_names}")
    schema_fields = {fld["name"]: fld for fld in schema["fields"]}
    for model_field in model["fields"]:
        schema_field = schema_fields.get(model_field["name"])
        if schema_field is None:
            continue
        where = f"{path}.{model_field['name']}"
        type_path = where
        if wrapper and _kind(schema_field["type"]) == "record":
            type_path = schema_field["type"]["name"]
        problems += compare(model_field["type"], schema_field["type"], type_path)
        problems += _compare_default(model_field, schema_field, where)
        extra = sorted(set(schema_field) - {"name", "type", "default"})
        if extra:
            problems.append(f"{where}: schema has attributes no model can express: {extra}")
    return problems


def _describe_default(fld: dict[str, JsonSchema]) -> str:
    return f"default {_show(fld['default'])}" if "default" in fld else "required (no default)"


def _compare_default(model_field: dict[str, JsonSchema], schema_field: dict[str, JsonSchema], where: str) -> list[str]:
    same = ("default" in model_field) == ("default" in schema_field)
    if same and "default" in model_field:
        same = _show(model_field["default"]) == _show(schema_field["default"])
    if same:
        return []
    return [f"{where}: model says {_describe_default(model_field)}, schema says {_describe_default(schema_field)}"]


COMPARERS: dict[str, Callable[[JsonSchema, JsonSchema, str], list[str]]] = {
    "record": _compare_record,
    "enum": _compare_enum,
    "union": _compare_union,
    "array": _compare_array,
    "map": _compare_map,
}
"""How to compare two schemas of the same complex kind; anything else must be equal as JSON."""


def model_vs_contract(model: type[BaseModel], contract: Contract) -> list[str]:
    """Every difference between ``model`` and ``contract``; empty when they declare the same record."""
    short_name = contract.name.rpartition(".")[2]
    return _compare_record(
        avro_of_model(model), normalise(contract.schema), short_name, wrapper=contract.event_type is not None
    )


def model_of(contract: Contract) -> type[BaseModel]:
    if contract.event_type is not None:
        return event_model(contract.event_type)
    return RECORD_MODELS[contract.name]


def contract_named(stem: str) -> Contract:
    return default_contracts().current(stem)


# --- the models match the contracts ----------------------------------------------------------------------------


@pytest.mark.parametrize("contract", CONTRACTS, ids=lambda contract: contract.stem)
def test_model_matches_contract_field_by_field(contract: Contract) -> None:
    """The model of each contract declares the same fields, order, types, optionality, enums and defaults."""
    assert model_vs_contract(model_of(contract), contract) == []


def test_every_body_model_has_a_contract_and_every_contract_a_model() -> None:
    """Each body in BODY_TYPES has exactly one event contract whose body record bears its name, and vice versa."""
    event_contracts = {c.event_type: c for c in CONTRACTS if c.event_type is not None}
    assert set(event_contracts) == set(BODY_TYPES) == set(EventType)
    for event_type, body in BODY_TYPES.items():
        body_schema = normalise(event_contracts[event_type].schema)["fields"][1]
        assert body_schema["name"] == "body"
        assert body_schema["type"]["name"] == body.__name__
    assert {c.name for c in CONTRACTS if c.event_type is None} == set(RECORD_MODELS)
    assert len(CONTRACTS) == len(BODY_TYPES) + len(RECORD_MODELS)


# --- the comparison can fail ------------------------------------------------------------------------------------


def _variant(model: type[Record], *, drop: tuple[str, ...] = (), **changes: Any) -> type[Record]:
    """A same-named copy of ``model`` without the ``drop`` fields and with ``changes`` (name → (type, default))."""
    fields: dict[str, Any] = {name: (info.annotation, info) for name, info in model.model_fields.items()}
    for name in drop:
        del fields[name]
    fields.update(changes)
    return create_model(model.__name__, __base__=Record, **fields)


class WorkCategoryMissingExperience(StrEnum):
    GUIDANCE = "guidance"
    INSPECTION = "inspection"
    PUBLICITY = "publicity"
    KEY_AREA_PROTECTION = "key_area_protection"
    PENALTY = "penalty"
    FACILITY = "facility"
    MEETING = "meeting"


WorkCategoryMissingExperience.__name__ = "WorkCategory"


class Category(StrEnum):
    """WorkCategory's symbols under another enum name."""

    GUIDANCE = "guidance"
    INSPECTION = "inspection"
    PUBLICITY = "publicity"
    KEY_AREA_PROTECTION = "key_area_protection"
    PENALTY = "penalty"
    FACILITY = "facility"
    MEETING = "meeting"
    EXPERIENCE = "experience"


def _event_of(body: type[EventBody]) -> type[BaseModel]:
    return Event[body]  # type: ignore[valid-type]


def _drifted_work_update(**changes: Any) -> type[BaseModel]:
    return _event_of(create_model("WorkUpdate", __base__=WorkUpdate, **changes))


def _drifted_header(**changes: Any) -> type[BaseModel]:
    header = create_model("Header", __base__=Header, **changes)
    return create_model("Event[WorkUpdate]", __base__=Event[WorkUpdate], header=(header, ...))


DRIFTS: dict[str, tuple[str, type[BaseModel], str]] = {
    "extra field": (
        "work_update",
        _drifted_work_update(extra=(str, "")),
        "WorkUpdate: fields model says ['category', 'title', 'text', 'extra'], "
        "schema says ['category', 'title', 'text']",
    ),
    "missing field": (
        "audit_event",
        _variant(AuditEvent, drop=("trace_id",)),
        "AuditEvent: fields model says ['audit_id', 'action', 'event_id', 'event_type', 'actor', 'publisher_unit', "
        "'tier', 'reason', 'details', 'at'], schema says ['audit_id', 'action', 'event_id', 'event_type', 'actor', "
        "'publisher_unit', 'tier', 'reason', 'details', 'at', 'trace_id']",
    ),
    "reordered fields": (
        "dead_letter",
        _variant(DeadLetter, drop=("stage",), stage=(str, ...)),
        "DeadLetter: fields model says",
    ),
    "changed default": (
        "fire_report",
        _event_of(create_model("FireReport", __base__=FireReport, deaths=(Int32, Field(default=1, ge=0)))),
        "FireReport.deaths: model says default 1, schema says default 0",
    ),
    "changed enum default": (
        "audit_event",
        _variant(AuditEvent, action=(AuditAction, AuditAction.OTHER)),
        'AuditEvent.action: model says default "other", schema says required (no default)',
    ),
    "missing enum symbol": (
        "work_update",
        _drifted_work_update(category=(WorkCategoryMissingExperience, ...)),
        "WorkUpdate.category: symbols model says",
    ),
    "renamed enum": (
        "work_update",
        _drifted_work_update(category=(Category, ...)),
        'WorkUpdate.category: name model says "Category", schema says "WorkCategory"',
    ),
    "int where long": (
        "dead_letter",
        _variant(DeadLetter, source_offset=(Int32, ...)),
        'DeadLetter.source_offset: model says "int", schema says "long"',
    ),
    "float where int": (
        "fire_report",
        _event_of(create_model("FireReport", __base__=FireReport, injuries=(float, 0.0))),
        'FireReport.injuries: model says "double", schema says "int"',
    ),
    "optional in model, required in schema": (
        "work_update",
        _drifted_work_update(text=(str, "")),
        'WorkUpdate.text: model says default "", schema says required (no default)',
    ),
    "required in model, optional in schema": (
        "work_update",
        _drifted_header(signature=(bytes, ...)),
        'Header.signature: model says required (no default), schema says default ""',
    ),
    "not nullable in model": (
        "work_update",
        _drifted_header(incident_id=(str, "")),
        'Header.incident_id: model says "string", schema says ["null", "string"]',
    ),
    "nested record drift": (
        "fire_report",
        _event_of(
            create_model(
                "FireReport",
                __base__=FireReport,
                place=(create_model("FirePlace", __base__=FirePlace, lat=(float, 0.0)), ...),
            )
        ),
        'FireReport.place.lat: model says "double", schema says ["null", "double"]',
    ),
    "array item drift": (
        "review_decision",
        _variant(ReviewDecision, tiers=(list[str], Field(default_factory=list))),
        'ReviewDecision.tiers[]: model says "string", schema says {"name": "Audience"',
    ),
    "map to array": (
        "audit_event",
        _variant(AuditEvent, details=(list[str], Field(default_factory=list))),
        'AuditEvent.details: model says {"items": "string", "type": "array"}, '
        'schema says {"type": "map", "values": "string"}',
    ),
}


@pytest.mark.parametrize(("stem", "drifted", "expected"), DRIFTS.values(), ids=DRIFTS.keys())
def test_drifted_model_is_detected(stem: str, drifted: type[BaseModel], expected: str) -> None:
    """A deliberately drifted model fails the comparison with a message naming the record and field."""
    problems = model_vs_contract(drifted, contract_named(stem))
    assert any(problem.startswith(expected) for problem in problems), problems


def test_drifted_schema_is_detected() -> None:
    """A contract with an extra field, a different default or a missing enum symbol fails against the real model."""
    contract = contract_named("work_update")
    schema = copy.deepcopy(contract.schema)
    body = schema["fields"][1]["type"]
    body["fields"].append({"name": "author", "type": ["null", "string"], "default": None})
    body["fields"][0]["type"]["symbols"].remove("experience")
    body["fields"][0]["default"] = "guidance"
    problems = _compare_record(
        avro_of_model(event_model(EventType.WORK_UPDATE)), normalise(schema), "WorkUpdateEvent", wrapper=True
    )
    assert problems == [
        "WorkUpdate: fields model says ['category', 'title', 'text'], schema says ['category', 'title', 'text', "
        "'author']",
        'WorkUpdate.category: symbols model says ["guidance", "inspection", "publicity", "key_area_protection", '
        '"penalty", "facility", "meeting", "experience"], schema says ["guidance", "inspection", "publicity", '
        '"key_area_protection", "penalty", "facility", "meeting"]',
        'WorkUpdate.category: model says required (no default), schema says default "guidance"',
    ]


@pytest.mark.parametrize(
    ("annotation", "message"),
    [
        (int, "ambiguous width"),
        (Annotated[int, Field(ge=0)], "ambiguous width"),
        (datetime, "must be UtcDatetime"),
        (set[str], "no Avro type"),
        (int | str, "only `X | None` unions"),
        (dict[int, str], "map keys are strings"),
    ],
    ids=["plain int", "bounded int", "naive datetime", "set", "two-type union", "int keys"],
)
def test_underivable_annotation_is_an_error(annotation: Any, message: str) -> None:
    """An annotation with no single Avro equivalent (such as a plain int of unknown width) is refused."""
    model = create_model("Loose", __base__=Record, value=(annotation, ...))
    with pytest.raises(DerivationError, match=message):
        avro_of_model(model)


def test_normalise_inlines_references_and_drops_what_models_cannot_express() -> None:
    """Normalising drops docs, namespaces, firebus.* and enum defaults and inlines a later reference by full name."""
    schema = {
        "type": "record",
        "name": "Outer",
        "namespace": "firebus",
        "doc": "dropped",
        "firebus.version": 3,
        "fields": [
            {"name": "first", "type": {"type": "enum", "name": "Tier", "symbols": ["a", "b"], "default": "a"}},
            {"name": "second", "type": ["null", "firebus.Tier"], "default": None, "firebus.min_audience": "hq"},
            {"name": "third", "type": {"type": "array", "items": "Tier"}, "default": [], "doc": "dropped"},
            {"name": "fourth", "type": {"type": "string"}},
        ],
    }
    tier = {"type": "enum", "name": "Tier", "symbols": ["a", "b"]}
    assert normalise(schema) == {
        "type": "record",
        "name": "Outer",
        "fields": [
            {"name": "first", "type": tier},
            {"name": "second", "type": ["null", tier], "default": None},
            {"name": "third", "type": {"type": "array", "items": tier}, "default": []},
            {"name": "fourth", "type": "string"},
        ],
    }
    with pytest.raises(DerivationError, match="before its definition"):
        normalise({"type": "record", "name": "R", "fields": [{"name": "x", "type": "firebus.Missing"}]})


# --- audience-tagged fields can be redacted ---------------------------------------------------------------------


def _model_field(model: type[BaseModel], path: str) -> FieldInfo:
    """The field at a dotted contract path (``body.forces[].unit``) of ``model``."""
    *parents, last = path.split(".")
    for segment in parents:
        annotation, _ = _unwrap(model.model_fields[segment.rstrip("[]{}")].annotation, [])
        while get_origin(annotation) is not None:
            args = [arg for arg in get_args(annotation) if arg is not type(None)]
            annotation, _ = _unwrap(args[-1], [])
        model = annotation
    return model.model_fields[last.rstrip("[]{}")]


def _tagged_fields() -> Iterator[tuple[Contract, str]]:
    for contract in CONTRACTS:
        for path in contract.audience_tags:
            yield contract, path


TAGGED = list(_tagged_fields())


@pytest.mark.parametrize(("contract", "path"), TAGGED, ids=[f"{c.stem}:{path}" for c, path in TAGGED])
def test_audience_tagged_field_is_optional_in_model(contract: Contract, path: str) -> None:
    """A field tagged firebus.min_audience has a default in the model, so redacting it leaves a valid record."""
    assert not _model_field(model_of(contract), path).is_required()


def test_audience_tags_are_found() -> None:
    """The tagged-field test is not vacuous: the shipped contracts do tag fields."""
    assert {"body.place.lat", "body.reporter_phone", "header.publisher.contact"} <= set(
        contract_named("fire_report").audience_tags
    )
    assert "body.suspects" in contract_named("case_update").audience_tags


# --- pinned encodings -------------------------------------------------------------------------------------------

WORK_UPDATE_EVENT = Event[WorkUpdate](
    header=Header(
        event_id=UUID("6f1c2a9e-3b4d-4e5f-8a6b-7c8d9e0f1a2b"),
        event_type=EventType.WORK_UPDATE,
        schema_version=1,
        kind=MessageKind.UPDATE,
        references=[UUID("00000000-0000-4000-8000-000000000001")],
        incident_id=None,
        publisher=Publisher(unit="county-forestry", person="王伟", contact="0571-12345678"),
        classification=Classification.INTERNAL,
        audience=Audience.MEMBERS,
        audience_townships=["xianlin"],
        severity=Severity.MINOR,
        urgency=Urgency.PAST,
        occurred_at=datetime(2024, 3, 1, 8, 30, 15, 123000, tzinfo=UTC),
        published_at=datetime(2024, 3, 1, 9, 0, 0, 456000, tzinfo=UTC),
        townships=["xianlin", "yuhang"],
        trace_id="trace-0001",
        signature=b"\x00\x01\xfe\xff",
    ),
    body=WorkUpdate(category=WorkCategory.INSPECTION, title="清明节前巡查", text="Patrolled 12 km of forest road."),
)

WORK_UPDATE_HEX = (
    "c301b48311d912c560064836663163326139652d336234642d346535662d386136622d3763386439653066316132620c020202483030"
    "3030303030302d303030302d343030302d383030302d30303030303030303030303100001e636f756e74792d666f7265737472790ce7"
    "8e8be4bc9f021a303537312d31323334353637380202020e7869616e6c696e000606a6a99592bf6390a1ef93bf63040e7869616e6c69"
    "6e0c797568616e67001474726163652d30303031080001feff000224e6b885e6988ee88a82e5898de5b7a1e69fa53e506174726f6c6c"
    "6564203132206b6d206f6620666f7265737420726f61642e"
)

AUDIT_EVENT = AuditEvent(
    audit_id=UUID("0b0c0d0e-0f10-4112-8314-151617181920"),
    action=AuditAction.REDACTED,
    event_id=UUID("6f1c2a9e-3b4d-4e5f-8a6b-7c8d9e0f1a2b"),
    event_type=EventType.WORK_UPDATE,
    actor="policy:members-default",
    publisher_unit="county-forestry",
    tier=Audience.PUBLIC,
    reason=None,
    details={"fields": "header.publisher.contact", "rule": "r7"},
    at=datetime(2024, 3, 1, 9, 0, 1, 789000, tzinfo=UTC),
    trace_id="trace-0001",
)

AUDIT_EVENT_HEX = (
    "c30183ced6b2017e27ad4830623063306430652d306631302d343131322d383331342d31353136313731383139323008024836663163"
    "326139652d336234642d346535662d386136622d376338643965306631613262020c2c706f6c6963793a6d656d626572732d64656661"
    "756c74021e636f756e74792d666f726573747279020000040c6669656c6473306865616465722e7075626c69736865722e636f6e7461"
    "63740872756c6504723700fab5ef93bf63021474726163652d30303031"
)


@pytest.mark.parametrize(
    ("record", "stem", "expected_hex"),
    [(WORK_UPDATE_EVENT, "work_update", WORK_UPDATE_HEX), (AUDIT_EVENT, "audit_event", AUDIT_EVENT_HEX)],
    ids=["work_update", "audit_event"],
)
def test_encoding_is_pinned_to_exact_bytes(record: BaseModel, stem: str, expected_hex: str) -> None:
    """A fixed record encodes to exactly the pinned bytes (C3 01 + fingerprint + body) and decodes back equal."""
    fingerprint = contract_named(stem).fingerprint
    assert expected_hex.startswith("c301" + fingerprint.hex())
    encoded = Codec().encode(record)
    assert encoded[: len(MAGIC) + len(fingerprint)] == MAGIC + fingerprint
    assert encoded.hex() == expected_hex
    assert Codec().decode(encoded) == record
