"""Avro schema resolution rules of :mod:`firebus.compatibility`, and ``schemas check`` / ``freeze`` on a copy."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest

from firebus.codec import Codec
from firebus.compatibility import check_directory, freeze, incompatibilities
from firebus.contracts import load_contracts, load_history
from firebus.errors import IncompatibleSchemaError
from schemas import AVRO_DIR


def record(*fields: dict[str, Any], name: str = "R", **attributes: Any) -> dict[str, Any]:
    return {"type": "record", "name": name, "fields": list(fields), **attributes}


def field(name: str, schema: Any, **attributes: Any) -> dict[str, Any]:
    return {"name": name, "type": schema, **attributes}


def enum(*symbols: str, name: str = "E", **attributes: Any) -> dict[str, Any]:
    return {"type": "enum", "name": name, "symbols": list(symbols), **attributes}


def fixed(size: int, name: str = "F", **attributes: Any) -> dict[str, Any]:
    return {"type": "fixed", "name": name, "size": size, **attributes}


def array(items: Any) -> dict[str, Any]:
    return {"type": "array", "items": items}


def avro_map(values: Any) -> dict[str, Any]:
    return {"type": "map", "values": values}


def linked_list(value_type: str) -> dict[str, Any]:
    return record(field("value", value_type), field("next", ["null", "Node"], default=None), name="Node")


COMPATIBLE = [
    pytest.param("int", "int", id="same-primitive"),
    pytest.param("int", "long", id="int-to-long"),
    pytest.param("int", "float", id="int-to-float"),
    pytest.param("int", "double", id="int-to-double"),
    pytest.param("long", "float", id="long-to-float"),
    pytest.param("long", "double", id="long-to-double"),
    pytest.param("float", "double", id="float-to-double"),
    pytest.param("string", "bytes", id="string-to-bytes"),
    pytest.param("bytes", "string", id="bytes-to-string"),
    pytest.param({"type": "long", "logicalType": "timestamp-millis"}, "long", id="logical-type-as-underlying"),
    pytest.param(
        {"type": "int", "logicalType": "date"}, {"type": "long", "logicalType": "time-micros"}, id="logical-promoted"
    ),
    pytest.param(
        record(field("a", "int")),
        record(field("a", "int"), field("b", "string", default="")),
        id="added-field-with-default",
    ),
    pytest.param(record(field("a", "int"), field("b", "string")), record(field("a", "int")), id="removed-field"),
    pytest.param(
        record(field("old", "int")), record(field("new", "int", aliases=["old"])), id="renamed-field-with-alias"
    ),
    pytest.param(
        record(field("a", "int"), name="Old"),
        record(field("a", "int"), name="New", aliases=["Old"]),
        id="renamed-record-with-alias",
    ),
    pytest.param(
        record(field("a", "int"), namespace="x"),
        record(field("a", "int"), namespace="y"),
        id="record-namespace-ignored",
    ),
    pytest.param(enum("A", "B"), enum("A", "B", "C"), id="enum-symbol-added"),
    pytest.param(enum("A", "B", "C"), enum("A", "B", default="A"), id="enum-symbol-removed-reader-default"),
    pytest.param(array("int"), array("long"), id="array-items-promoted"),
    pytest.param(avro_map("float"), avro_map("double"), id="map-values-promoted"),
    pytest.param(fixed(16), fixed(16), id="fixed-same"),
    pytest.param(["null", "string"], ["null", "string", "int"], id="union-widened"),
    pytest.param(["null", "string"], ["string", "null"], id="union-reordered"),
    pytest.param("string", ["null", "string"], id="plain-into-union"),
    pytest.param("int", ["null", "long"], id="plain-promoted-into-union"),
    pytest.param(["int", "long"], "long", id="union-into-plain-every-branch-reads"),
    pytest.param(linked_list("int"), linked_list("long"), id="recursive-record"),
    pytest.param(["null", array(["null", "int"])], ["null", array(["null", "long"])], id="union-of-arrays-of-unions"),
    pytest.param(
        record(field("a", enum("X", "Y")), field("b", "E")),
        record(field("a", enum("X", "Y", "Z")), field("b", "E")),
        id="named-type-used-again-by-name",
    ),
]


@pytest.mark.parametrize(("writer", "reader"), COMPATIBLE)
def test_compatible_schemas_have_no_incompatibilities(writer: Any, reader: Any) -> None:
    """A reader that can read everything the writer writes gets an empty list."""
    assert incompatibilities(writer, reader) == []


INCOMPATIBLE = [
    pytest.param("long", "int", "writer long cannot be read as int", id="long-to-int"),
    pytest.param("double", "float", "writer double cannot be read as float", id="double-to-float"),
    pytest.param("string", "int", "writer string cannot be read as int", id="string-to-int"),
    pytest.param(
        {"type": "long", "logicalType": "timestamp-millis"},
        {"type": "int", "logicalType": "date"},
        "writer long cannot be read as int",
        id="logical-type-narrowed",
    ),
    pytest.param(
        record(field("a", "int")),
        record(field("a", "int"), field("b", "string")),
        "b: writer R has no such field and the reader field has no default",
        id="added-field-without-default",
    ),
    pytest.param(
        record(field("old", "int")),
        record(field("new", "int")),
        "new: writer R has no such field and the reader field has no default",
        id="renamed-field-without-alias",
    ),
    pytest.param(
        record(field("a", "int"), name="Old"),
        record(field("a", "int"), name="New"),
        "writer record Old cannot be read as record New",
        id="renamed-record-without-alias",
    ),
    pytest.param(
        enum("A", "B", "C"),
        enum("A", "B"),
        "writer enum E symbols C are not in reader enum E, which has no default",
        id="enum-symbol-removed",
    ),
    pytest.param(
        enum("A", name="E1"), enum("A", name="E2"), "writer enum E1 cannot be read as enum E2", id="enum-renamed"
    ),
    pytest.param(array("long"), array("int"), "[]: writer long cannot be read as int", id="array-items-narrowed"),
    pytest.param(
        avro_map("string"), avro_map("int"), "{}: writer string cannot be read as int", id="map-values-changed"
    ),
    pytest.param(array("int"), avro_map("int"), "writer array<int> cannot be read as map<int>", id="array-to-map"),
    pytest.param(fixed(16), fixed(8), "writer fixed F has size 16, reader F has size 8", id="fixed-resized"),
    pytest.param(
        fixed(16, name="A"), fixed(16, name="B"), "writer fixed A cannot be read as fixed B", id="fixed-renamed"
    ),
    pytest.param(
        ["null", "string", "int"],
        ["null", "string"],
        "writer int matches no branch of reader union [null, string]",
        id="union-narrowed",
    ),
    pytest.param(
        "int", ["null", "string"], "writer int matches no branch of reader union [null, string]", id="plain-into-union"
    ),
    pytest.param(["null", "string"], "string", "writer null cannot be read as string", id="union-into-plain"),
    pytest.param(
        record(field("body", record(field("place", record(field("lat", "double"), name="Place")), name="Body"))),
        record(field("body", record(field("place", record(field("lat", "int"), name="Place")), name="Body"))),
        "body.place.lat: writer double cannot be read as int",
        id="nested-record-path",
    ),
    pytest.param(
        record(field("places", array(record(field("lat", "double"), name="Place")))),
        record(field("places", array(record(field("lat", "float"), name="Place")))),
        "places[].lat: writer double cannot be read as float",
        id="record-in-array-path",
    ),
    pytest.param(
        linked_list("long"), linked_list("int"), "value: writer long cannot be read as int", id="recursive-record"
    ),
    pytest.param(
        ["null", array(["null", "long"])],
        ["null", array(["null", "int"])],
        "[]: writer long matches no branch of reader union [null, int]",
        id="union-of-arrays-of-unions",
    ),
]


@pytest.mark.parametrize(("writer", "reader", "reason"), INCOMPATIBLE)
def test_incompatible_schemas_are_reported_with_their_path(writer: Any, reader: Any, reason: str) -> None:
    """A reader that cannot read the writer's data gets exactly one reason, naming the path and the rule broken."""
    assert incompatibilities(writer, reader) == [reason]


def test_every_incompatible_field_is_reported() -> None:
    """Reasons are collected across fields rather than stopping at the first."""
    writer = record(field("a", "long"), field("b", enum("X", "Y")))
    reader = record(field("a", "int"), field("b", enum("X")), field("c", "string"))

    reasons = incompatibilities(writer, reader)

    assert [reason.split(":")[0] for reason in reasons] == ["a", "b", "c"]


def test_named_type_reference_is_checked_at_every_use() -> None:
    """A named type referenced by (relative or full) name after its definition is checked wherever it is used."""
    writer = record(field("a", enum("X", "Y")), field("b", "E"), field("c", "ns.E"), namespace="ns")
    reader = record(field("a", enum("X")), field("b", "E"), field("c", "ns.E"), namespace="ns")

    reasons = incompatibilities(writer, reader)

    assert [reason.split(":")[0] for reason in reasons] == ["a", "b", "c"]


# --- schemas check and freeze on a copy of the shipped schemas -------------------------------------------------


@pytest.fixture
def avro_dir(tmp_path: Path) -> Path:
    return Path(shutil.copytree(AVRO_DIR, tmp_path / "avro"))


def edit_schema(
    directory: Path, stem: str, *, version: int | None = None, add_field: dict[str, Any] | None = None
) -> None:
    path = directory / f"{stem}.avsc"
    schema = json.loads(path.read_text(encoding="utf-8"))
    if version is not None:
        schema["firebus.version"] = version
    if add_field is not None:
        schema["fields"].append(add_field)
    path.write_text(json.dumps(schema, ensure_ascii=False), encoding="utf-8")


def audit_record() -> dict[str, Any]:
    return {
        "audit_id": str(uuid.uuid4()),
        "action": "accepted",
        "event_id": None,
        "event_type": None,
        "actor": "validator",
        "publisher_unit": "county-police",
        "tier": None,
        "reason": None,
        "details": {},
        "at": 1_700_000_000_000,
        "trace_id": None,
    }


def test_shipped_schemas_check_clean(avro_dir: Path) -> None:
    """The shipped schemas and their frozen history pass ``schemas check``."""
    assert check_directory(avro_dir) == []


def test_shipped_schemas_have_nothing_left_to_freeze(avro_dir: Path) -> None:
    """Every shipped schema version is already frozen, so freezing writes nothing."""
    assert freeze(avro_dir) == []


def test_missing_frozen_file_asks_for_freeze(avro_dir: Path) -> None:
    """A current version without a history file is reported with the command that fixes it."""
    (avro_dir / "history" / "directive.v2.avsc").unlink()

    assert check_directory(avro_dir) == [
        "directive.avsc: firebus.version 2 is not frozen in history/; run `firebus schemas freeze`"
    ]
    assert freeze(avro_dir) == [avro_dir / "history" / "directive.v2.avsc"]
    assert check_directory(avro_dir) == []


def test_edit_without_version_bump_is_reported(avro_dir: Path) -> None:
    """Changing a released schema while keeping its version is reported, and freeze refuses it."""
    edit_schema(avro_dir, "audit_event", add_field={"name": "attempt", "type": "int", "default": 1})

    problems = check_directory(avro_dir)

    assert len(problems) == 1
    assert (
        "audit_event.avsc: changed since history/audit_event.v1.avsc was frozen, without a version bump" in problems[0]
    )
    assert "bump firebus.version" in problems[0]
    with pytest.raises(IncompatibleSchemaError, match="without a version bump"):
        freeze(avro_dir)


def test_compatible_new_version_freezes_and_reads_old_data(avro_dir: Path) -> None:
    """A bumped version with a defaulted new field freezes, checks clean and decodes v1 data with the default."""
    edit_schema(avro_dir, "audit_event", version=2, add_field={"name": "attempt", "type": "int", "default": 1})
    v1 = next(c for c in load_history(avro_dir).values() if c.stem == "audit_event")
    assert check_directory(avro_dir) == [
        "audit_event.avsc: firebus.version 2 is not frozen in history/; run `firebus schemas freeze`"
    ]

    assert freeze(avro_dir) == [avro_dir / "history" / "audit_event.v2.avsc"]
    assert check_directory(avro_dir) == []

    data = audit_record()
    reader, decoded = Codec(load_contracts(avro_dir)).decode_data(Codec.encode_data(v1, data))
    assert (reader.stem, reader.version) == ("audit_event", 2)
    assert decoded["attempt"] == 1
    assert set(decoded) == {*data, "attempt"}
    assert decoded["actor"] == data["actor"]


def test_incompatible_new_version_is_reported_and_not_frozen(avro_dir: Path) -> None:
    """A bumped version adding a field without default cannot read v1 data: check reports it, freeze refuses."""
    edit_schema(avro_dir, "audit_event", version=2, add_field={"name": "attempt", "type": "int"})

    assert check_directory(avro_dir) == [
        "audit_event.avsc: firebus.version 2 is not frozen in history/; run `firebus schemas freeze`",
        "audit_event.avsc v2 cannot read v1 data: attempt: writer firebus.AuditEvent has no such field "
        "and the reader field has no default",
    ]
    with pytest.raises(IncompatibleSchemaError, match="cannot read v1 data"):
        freeze(avro_dir)
    assert not (avro_dir / "history" / "audit_event.v2.avsc").exists()


def test_version_below_a_frozen_one_is_reported(avro_dir: Path) -> None:
    """Going back to a version lower than a frozen one is reported, and freeze refuses it."""
    original = (avro_dir / "audit_event.avsc").read_text(encoding="utf-8")
    edit_schema(avro_dir, "audit_event", version=2, add_field={"name": "attempt", "type": "int", "default": 1})
    freeze(avro_dir)
    (avro_dir / "audit_event.avsc").write_text(original, encoding="utf-8")

    assert check_directory(avro_dir) == ["audit_event.avsc: firebus.version 1 is lower than frozen version 2"]
    with pytest.raises(IncompatibleSchemaError, match="lower than frozen version 2"):
        freeze(avro_dir)
