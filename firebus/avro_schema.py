"""Avro schema JSON as typed nodes: the one place firebus reads the structure of an ``.avsc`` schema.

Parsing settles once what the JSON leaves implicit: full names (a name without a dot lives in the enclosing
namespace), logical types (``{"type": "long", "logicalType": …}`` is a :class:`Primitive` that remembers it),
``{"type": <schema>}`` wrappers (the schema inside) and named types used again by name (a :class:`Reference`,
followed by :meth:`SchemaTree.resolve`). Whatever needs a schema's structure walks these nodes:

* :mod:`firebus.contracts` — every field at every path (:meth:`SchemaTree.fields`), its decoded default
  (:meth:`SchemaTree.decoded_default`), the shared named types inlined where first used (:meth:`SchemaTree.inlined`);
* :mod:`firebus.compatibility` — the Avro resolution rules between two versions;
* :mod:`firebus.text` — the text rules for every string a record carries.

Each node keeps the JSON it was parsed from (``source``), so what a schema says beyond its structure (docs,
``firebus.*`` attributes, defaults) is still at hand, and :meth:`SchemaTree.inlined` writes the schema back.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar
from uuid import UUID

from firebus.errors import ContractError

JsonSchema = Any
"""An Avro schema as parsed JSON: a type name, a list (union) or an object."""

PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
_RECORD_KINDS = ("record", "error")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def full_name(name: str, namespace: str | None) -> str:
    """A full name: a dotted name is already one; otherwise it lives in the enclosing namespace."""
    return name if "." in name or not namespace else f"{namespace}.{name}"


def join_path(path: str, name: str) -> str:
    """The path of field ``name`` inside ``path`` (dotted names, ``[]`` array items, ``{}`` map values)."""
    return f"{path}.{name}" if path else name


def read_schema_file(path: Path, *, where: str | None = None) -> JsonSchema:
    """An ``.avsc`` file as JSON; :class:`ContractError` (naming ``where``, else the file) when it cannot be read."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ContractError(f"{where or path.name}: {exc}") from exc


# --- nodes -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Primitive:
    name: str
    logical: str | None = None
    source: JsonSchema = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Reference:
    """A named type used by name after its definition: ``name`` in full, ``written`` as the JSON spells it."""

    name: str
    written: str = field(default="", compare=False)


@dataclass(frozen=True)
class Array:
    items: Node
    source: JsonSchema = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Map:
    values: Node
    source: JsonSchema = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Union:
    branches: tuple[Node, ...]


@dataclass(frozen=True)
class Field:
    name: str
    aliases: tuple[str, ...]
    schema: Node
    source: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    """The field's JSON: its attributes (``doc``, ``firebus.*``) and its ``default``."""

    @property
    def has_default(self) -> bool:
        return "default" in self.source

    @property
    def default(self) -> Any:
        """The default as JSON (:meth:`SchemaTree.decoded_default` gives the decoded value)."""
        return self.source["default"]


@dataclass(frozen=True)
class Record:
    kind: ClassVar[str] = "record"
    name: str
    aliases: tuple[str, ...]
    fields: tuple[Field, ...]
    source: JsonSchema = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Enum:
    kind: ClassVar[str] = "enum"
    name: str
    aliases: tuple[str, ...]
    symbols: tuple[str, ...]
    default: str | None
    source: JsonSchema = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Fixed:
    kind: ClassVar[str] = "fixed"
    name: str
    aliases: tuple[str, ...]
    size: int
    source: JsonSchema = field(default=None, compare=False, repr=False)


Named = Record | Enum | Fixed
Resolved = Primitive | Array | Map | Union | Named
Node = Resolved | Reference


def logical_type(node: Node) -> str | None:
    """The ``logicalType`` a primitive or fixed node declares."""
    source = getattr(node, "source", None)
    return source.get("logicalType") if isinstance(source, dict) else None


# --- the tree --------------------------------------------------------------------------------------------------


class SchemaTree:
    """One schema as typed nodes, with every named type it defines by full name (in document order)."""

    def __init__(self, schema: JsonSchema, *, namespace: str = "") -> None:
        self.named: dict[str, Named] = {}
        self.root = self._parse(schema, namespace)

    def resolve(self, node: Node) -> Resolved:
        """The definition behind a by-name reference; any other node as it is."""
        if not isinstance(node, Reference):
            return node
        found = self.named.get(node.name) or self.named.get(node.written)
        if found is None:
            raise ContractError(f"unknown named type {node.name!r}")
        return found

    def fields(self) -> Iterator[tuple[str, Field]]:
        """Every field at every path it is reached by, a field before the fields within it.

        Every use of a named record is followed, so a field of a record reused by name appears at each of its
        paths; a record is not followed inside itself (a recursive record would have endless paths).
        """
        yield from self._fields(self.root, "", frozenset())

    def _fields(self, node: Node, path: str, inside: frozenset[str]) -> Iterator[tuple[str, Field]]:
        node = self.resolve(node)
        if isinstance(node, Union):
            for branch in node.branches:
                yield from self._fields(branch, path, inside)
        elif isinstance(node, Record) and node.name not in inside:
            for fld in node.fields:
                field_path = join_path(path, fld.name)
                yield field_path, fld
                yield from self._fields(fld.schema, field_path, inside | {node.name})
        elif isinstance(node, Array):
            yield from self._fields(node.items, f"{path}[]", inside)
        elif isinstance(node, Map):
            yield from self._fields(node.values, f"{path}{{}}", inside)

    def decoded_default(self, node: Node, default: Any) -> Any:
        """A JSON default as the Python value fastavro decodes for ``node`` (a union's default is its first branch)."""
        node = self.resolve(node)
        if isinstance(node, Union):
            return self.decoded_default(node.branches[0], default)
        if isinstance(node, Fixed) or (isinstance(node, Primitive) and node.name == "bytes"):
            return default.encode("latin-1")
        if isinstance(node, Primitive):
            if node.name in ("float", "double"):
                return float(default)
            if node.logical == "uuid":
                return UUID(default)
            if node.logical == "timestamp-millis":
                return _EPOCH + timedelta(milliseconds=default)
            return default
        if isinstance(node, Array):
            return [self.decoded_default(node.items, item) for item in default]
        if isinstance(node, Map):
            return {key: self.decoded_default(node.values, item) for key, item in default.items()}
        if isinstance(node, Record):
            return {
                fld.name: self.decoded_default(fld.schema, default.get(fld.name, fld.source.get("default")))
                for fld in node.fields
            }
        return default

    def inlined(self, shared: Mapping[str, Named]) -> JsonSchema:
        """This schema as JSON with the first use of each ``shared`` named type replaced by its definition, so it
        stands alone; later uses stay references."""
        defined: set[str] = set()

        def emit(node: Node) -> JsonSchema:
            if isinstance(node, Reference):
                target = shared.get(node.name)
                if target is not None and target.name not in defined:
                    return emit(target)
                return node.written
            if isinstance(node, Union):
                return [emit(branch) for branch in node.branches]
            if isinstance(node, Record):
                defined.add(node.name)
                return {**node.source, "fields": [{**fld.source, "type": emit(fld.schema)} for fld in node.fields]}
            if isinstance(node, Enum | Fixed):
                defined.add(node.name)
            elif isinstance(node, Array):
                return {**node.source, "items": emit(node.items)}
            elif isinstance(node, Map):
                return {**node.source, "values": emit(node.values)}
            return copy.deepcopy(node.source)

        return emit(self.root)

    # --- parsing -----------------------------------------------------------------------------------------------

    def _parse(self, schema: JsonSchema, namespace: str) -> Node:
        if isinstance(schema, str):
            if schema in PRIMITIVES:
                return Primitive(schema, source=schema)
            return Reference(full_name(schema, namespace), schema)
        if isinstance(schema, list):
            return Union(tuple(self._parse(branch, namespace) for branch in schema))
        if not isinstance(schema, dict) or "type" not in schema:
            raise ContractError(f"not an Avro schema: {schema!r}")
        kind = schema["type"]
        if kind in (*_RECORD_KINDS, "enum", "fixed"):
            return self._parse_named(schema, namespace)
        if kind == "array":
            return Array(self._parse(schema["items"], namespace), schema)
        if kind == "map":
            return Map(self._parse(schema["values"], namespace), schema)
        if isinstance(kind, str) and kind in PRIMITIVES:
            return Primitive(kind, schema.get("logicalType"), schema)
        # {"type": <name or schema>} is that schema.
        return self._parse(kind, namespace)

    def _parse_named(self, schema: dict[str, JsonSchema], namespace: str) -> Named:
        name = full_name(schema["name"], schema.get("namespace", namespace) or "")
        own_namespace = name.rpartition(".")[0]
        aliases = tuple(full_name(alias, own_namespace) for alias in schema.get("aliases", []))
        node: Named
        if schema["type"] == "enum":
            node = Enum(name, aliases, tuple(schema["symbols"]), schema.get("default"), schema)
        elif schema["type"] == "fixed":
            node = Fixed(name, aliases, int(schema["size"]), schema)
        else:
            fields = tuple(self._parse_field(fld, own_namespace) for fld in schema["fields"])
            node = Record(name, aliases, fields, schema)
        self.named.setdefault(name, node)
        return node

    def _parse_field(self, fld: dict[str, JsonSchema], namespace: str) -> Field:
        return Field(fld["name"], tuple(fld.get("aliases", [])), self._parse(fld["type"], namespace), fld)
