"""Static Avro schema resolution: can the current schema read everything written with an earlier version?

Records stay on firebus topics for weeks, producers upgrade on their own schedule, and the codec resolves every
record to the current version of its schema when it decodes it. fastavro applies the resolution rules only then, to
live data, on the consumer: a removed enum symbol or a new field without a default surfaces as a decode failure in
production. This module applies the same rules, from the "Schema Resolution" section of the Avro 1.11
specification, to the schemas themselves, so that ``firebus schemas check`` fails in CI and ``firebus schemas
freeze`` refuses to release a version that cannot read its predecessors' data.

Every released version lives, fully expanded, in ``schemas/avro/history/<stem>.v<N>.avsc`` and is never edited:

* a change to a schema needs a ``firebus.version`` bump and a new frozen file;
* versions only go up;
* the current version must read data written with every earlier one.

The checker is stricter than fastavro in one place on purpose: a writer union is reported branch by branch, even if
the branch that cannot be read is one no producer happens to write today.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from firebus.contracts import (
    HISTORY_DIR,
    VERSION_ATTR,
    Contract,
    JsonSchema,
    build_contract,
    history_path,
    load_current,
    load_history,
)
from firebus.errors import ContractError, IncompatibleSchemaError

__all__ = ["check_directory", "freeze", "incompatibilities"]

PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})

PROMOTIONS: dict[str, frozenset[str]] = {
    "int": frozenset({"long", "float", "double"}),
    "long": frozenset({"float", "double"}),
    "float": frozenset({"double"}),
    "string": frozenset({"bytes"}),
    "bytes": frozenset({"string"}),
}
"""Writer primitive -> the other primitives a reader may read it as (the spec's promotions)."""

FREEZE_HINT = "run `firebus schemas freeze`"


# --- the checker's own view of a schema ------------------------------------------------------------------------
# Parsing into small typed nodes first settles namespaces, logical types and named references once, so the
# resolution rules below compare like with like.


@dataclass(frozen=True)
class _Primitive:
    name: str


@dataclass(frozen=True)
class _Reference:
    """A named type used again by full name after its definition."""

    name: str


@dataclass(frozen=True)
class _Array:
    items: _Type


@dataclass(frozen=True)
class _Map:
    values: _Type


@dataclass(frozen=True)
class _Union:
    branches: tuple[_Type, ...]


@dataclass(frozen=True)
class _Field:
    name: str
    aliases: tuple[str, ...]
    has_default: bool
    schema: _Type


@dataclass(frozen=True)
class _Record:
    kind: ClassVar[str] = "record"
    name: str
    aliases: tuple[str, ...]
    fields: tuple[_Field, ...]


@dataclass(frozen=True)
class _Enum:
    kind: ClassVar[str] = "enum"
    name: str
    aliases: tuple[str, ...]
    symbols: tuple[str, ...]
    default: str | None


@dataclass(frozen=True)
class _Fixed:
    kind: ClassVar[str] = "fixed"
    name: str
    aliases: tuple[str, ...]
    size: int


_Named = _Record | _Enum | _Fixed
_Type = _Primitive | _Reference | _Array | _Map | _Union | _Named


def _qualify(name: str, namespace: str) -> str:
    """A full name: a dotted name is already one; otherwise it lives in the enclosing namespace."""
    return name if "." in name or not namespace else f"{namespace}.{name}"


def _unqualified(name: str) -> str:
    return name.rpartition(".")[2]


class _ParsedSchema:
    """One schema as typed nodes, with every named type it defines by full name."""

    def __init__(self, schema: JsonSchema) -> None:
        self._named: dict[str, _Named] = {}
        self.root = self._parse(schema, "")

    def resolve(self, node: _Type) -> _Type:
        """The definition behind a by-name reference; any other node as it is."""
        if not isinstance(node, _Reference):
            return node
        try:
            return self._named[node.name]
        except KeyError:
            raise ContractError(f"unknown named type {node.name!r}") from None

    def _parse(self, schema: JsonSchema, namespace: str) -> _Type:
        if isinstance(schema, str):
            return _Primitive(schema) if schema in PRIMITIVES else _Reference(_qualify(schema, namespace))
        if isinstance(schema, list):
            return _Union(tuple(self._parse(branch, namespace) for branch in schema))
        if not isinstance(schema, dict) or "type" not in schema:
            raise ContractError(f"not an Avro schema: {schema!r}")
        kind = schema["type"]
        if kind in ("record", "error", "enum", "fixed"):
            return self._parse_named(schema, namespace)
        if kind == "array":
            return _Array(self._parse(schema["items"], namespace))
        if kind == "map":
            return _Map(self._parse(schema["values"], namespace))
        # A primitive with a logical type resolves as its underlying type; {"type": <schema>} is that schema.
        return self._parse(kind, namespace)

    def _parse_named(self, schema: dict[str, JsonSchema], namespace: str) -> _Named:
        name = _qualify(schema["name"], schema.get("namespace", namespace) or "")
        own_namespace = name.rpartition(".")[0]
        aliases = tuple(_qualify(alias, own_namespace) for alias in schema.get("aliases", []))
        node: _Named
        if schema["type"] == "enum":
            node = _Enum(name, aliases, tuple(schema["symbols"]), schema.get("default"))
        elif schema["type"] == "fixed":
            node = _Fixed(name, aliases, int(schema["size"]))
        else:
            fields = tuple(self._parse_field(fld, own_namespace) for fld in schema["fields"])
            node = _Record(name, aliases, fields)
        self._named[name] = node
        return node

    def _parse_field(self, fld: dict[str, JsonSchema], namespace: str) -> _Field:
        schema = self._parse(fld["type"], namespace)
        return _Field(fld["name"], tuple(fld.get("aliases", [])), "default" in fld, schema)


# --- the resolution rules --------------------------------------------------------------------------------------


def incompatibilities(writer: JsonSchema, reader: JsonSchema) -> list[str]:
    """Every reason ``reader`` cannot read data written with ``writer``; empty when it always can.

    Both are fully expanded Avro schemas as parsed JSON. Each reason starts with the dotted path of the reader
    field concerned (``[]`` marks array items, ``{}`` map values).
    """
    writer_schema, reader_schema = _ParsedSchema(writer), _ParsedSchema(reader)
    return _Resolution(writer_schema, reader_schema).check(writer_schema.root, reader_schema.root, "")


class _Resolution:
    """One writer schema checked against one reader schema."""

    def __init__(self, writer: _ParsedSchema, reader: _ParsedSchema) -> None:
        self._writer = writer
        self._reader = reader
        self._records_in_progress: set[tuple[str, str]] = set()

    def check(self, writer: _Type, reader: _Type, path: str) -> list[str]:
        writer, reader = self._writer.resolve(writer), self._reader.resolve(reader)
        if isinstance(writer, _Union):
            # Any branch may have been written, so every one must be readable.
            return [reason for branch in writer.branches for reason in self.check(branch, reader, path)]
        if isinstance(reader, _Union):
            return self._check_against_union(writer, reader, path)
        return self._check_pair(writer, reader, path)

    def _check_against_union(self, writer: _Type, reader: _Union, path: str) -> list[str]:
        # The spec resolves against the FIRST reader branch that matches, even if a later one would read more.
        chosen = next((branch for branch in reader.branches if self._selects(writer, branch)), None)
        if chosen is None:
            return [_at(path, f"writer {_describe(writer)} matches no branch of reader union {_describe(reader)}")]
        return self.check(writer, chosen, path)

    def _selects(self, writer: _Type, reader: _Type) -> bool:
        """Whether a reader union branch is the one the spec picks for ``writer``: same kind and name, no deeper."""
        writer, reader = self._writer.resolve(writer), self._reader.resolve(reader)
        match writer, reader:
            case (_Primitive() as written, _Primitive() as read):
                return _promotable(written.name, read.name)
            case (_Array() as written, _Array() as read):
                return self._selects(written.items, read.items)
            case (_Map() as written, _Map() as read):
                return self._selects(written.values, read.values)
            case (_Record() | _Enum() | _Fixed() as written, _Record() | _Enum() | _Fixed() as read):
                return _names_match(written, read)
            case (_Union(), _) | (_, _Union()):
                # Only reachable inside array items or map values; the full check compares the unions.
                return True
            case _:
                return False

    def _check_pair(self, writer: _Type, reader: _Type, path: str) -> list[str]:
        match writer, reader:
            case (_Primitive() as written, _Primitive() as read) if _promotable(written.name, read.name):
                reasons = []
            case (_Array() as written, _Array() as read):
                reasons = self.check(written.items, read.items, f"{path}[]")
            case (_Map() as written, _Map() as read):
                reasons = self.check(written.values, read.values, f"{path}{{}}")
            case (_Record() as written, _Record() as read) if _names_match(written, read):
                reasons = self._check_records(written, read, path)
            case (_Enum() as written, _Enum() as read) if _names_match(written, read):
                reasons = _enum_reasons(written, read, path)
            case (_Fixed() as written, _Fixed() as read) if _names_match(written, read):
                reasons = _fixed_reasons(written, read, path)
            case _:
                reasons = [_at(path, f"writer {_describe(writer)} cannot be read as {_describe(reader)}")]
        return reasons

    def _check_records(self, writer: _Record, reader: _Record, path: str) -> list[str]:
        pair = (writer.name, reader.name)
        if pair in self._records_in_progress:
            # A recursive record: this very pair is being checked further up, which reports its fields once.
            return []
        self._records_in_progress.add(pair)
        try:
            return [reason for fld in reader.fields for reason in self._check_field(writer, fld, path)]
        finally:
            self._records_in_progress.discard(pair)

    def _check_field(self, writer: _Record, reader_field: _Field, path: str) -> list[str]:
        field_path = _join(path, reader_field.name)
        written = _written_field(writer, reader_field)
        if written is not None:
            return self.check(written.schema, reader_field.schema, field_path)
        if reader_field.has_default:
            return []
        return [_at(field_path, f"writer {writer.name} has no such field and the reader field has no default")]


def _promotable(writer: str, reader: str) -> bool:
    return writer == reader or reader in PROMOTIONS.get(writer, frozenset())


def _names_match(writer: _Named, reader: _Named) -> bool:
    """Same kind and same unqualified name, or the reader lists the writer's name among its aliases."""
    accepted = {_unqualified(name) for name in (reader.name, *reader.aliases)}
    return writer.kind == reader.kind and _unqualified(writer.name) in accepted


def _written_field(writer: _Record, reader_field: _Field) -> _Field | None:
    """The writer field a reader field takes its value from: the same name first, then the reader's aliases."""
    by_name = {fld.name: fld for fld in writer.fields}
    for name in (reader_field.name, *reader_field.aliases):
        if name in by_name:
            return by_name[name]
    return None


def _enum_reasons(writer: _Enum, reader: _Enum, path: str) -> list[str]:
    missing = [symbol for symbol in writer.symbols if symbol not in reader.symbols]
    if not missing or reader.default is not None:
        # With a default, unknown symbols read as it; that is exactly what an enum default is for.
        return []
    listing = ", ".join(missing)
    return [
        _at(
            path,
            f"writer enum {writer.name} symbols {listing} are not in reader enum {reader.name}, which has no default",
        )
    ]


def _fixed_reasons(writer: _Fixed, reader: _Fixed, path: str) -> list[str]:
    if writer.size == reader.size:
        return []
    return [
        _at(path, f"writer fixed {writer.name} has size {writer.size}, reader {reader.name} has size {reader.size}")
    ]


def _describe(node: _Type) -> str:
    match node:
        case _Primitive(name) | _Reference(name):
            return name
        case _Array(items):
            return f"array<{_describe(items)}>"
        case _Map(values):
            return f"map<{_describe(values)}>"
        case _Union(branches):
            return "[" + ", ".join(_describe(branch) for branch in branches) + "]"
        case _Record() | _Enum() | _Fixed():
            return f"{node.kind} {node.name}"


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _at(path: str, message: str) -> str:
    return f"{path}: {message}" if path else message


# --- the schemas directory -------------------------------------------------------------------------------------


def check_directory(directory: Path) -> list[str]:
    """Every problem ``firebus schemas check`` reports for ``directory``; empty when all is well.

    A current schema must be frozen, must not differ from its frozen copy, must not go below a frozen version and
    must read data written with every earlier version. Malformed schemas raise :class:`ContractError`.
    """
    current = load_current(directory)
    released = _released_by_stem(load_history(directory))
    problems: list[str] = []
    for contract in current.values():
        frozen = released.get(contract.stem, [])
        problems += _unfrozen(directory, contract, frozen)
        problems += _release_problems(directory, contract, frozen)
    return problems


def freeze(directory: Path) -> list[Path]:
    """Write the history file of every current version not frozen yet; the paths written.

    Refuses with :class:`IncompatibleSchemaError`, writing nothing, when any current schema differs from its
    frozen copy, goes below a frozen version or cannot read an earlier version's data.
    """
    current = load_current(directory)
    released = _released_by_stem(load_history(directory))
    problems = [
        problem
        for contract in current.values()
        for problem in _release_problems(directory, contract, released.get(contract.stem, []))
    ]
    if problems:
        raise IncompatibleSchemaError("refusing to freeze:\n" + "\n".join(f"  - {problem}" for problem in problems))
    written = []
    for contract in current.values():
        path = history_path(directory, contract)
        if not path.exists():
            _write_frozen(path, contract)
            written.append(path)
    return written


def _released_by_stem(history: dict[bytes, Contract]) -> dict[str, list[Contract]]:
    by_stem: defaultdict[str, list[Contract]] = defaultdict(list)
    for contract in history.values():
        by_stem[contract.stem].append(contract)
    return {stem: sorted(contracts, key=lambda c: c.version) for stem, contracts in by_stem.items()}


def _release_problems(directory: Path, contract: Contract, frozen: list[Contract]) -> list[str]:
    """What stops ``contract`` from being released next to ``frozen``, its stem's earlier versions."""
    return [
        *_changed_without_bump(directory, contract),
        *_version_went_down(contract, frozen),
        *_unreadable_history(contract, frozen),
    ]


def _unfrozen(directory: Path, contract: Contract, frozen: list[Contract]) -> list[str]:
    if history_path(directory, contract).exists() or _version_went_down(contract, frozen):
        # Freezing a version lower than a released one is the wrong fix; that problem is reported instead.
        return []
    return [f"{_source(contract)}: {VERSION_ATTR} {contract.version} is not frozen in {HISTORY_DIR}/; {FREEZE_HINT}"]


def _changed_without_bump(directory: Path, contract: Contract) -> list[str]:
    # The file is read directly rather than looked up among load_history's contracts: those are keyed by
    # fingerprint, which ignores firebus.version, so two versions with equal canonical forms share one entry.
    path = history_path(directory, contract)
    if not path.exists() or _read_frozen(path, contract.stem).canonical == contract.canonical:
        return []
    return [
        f"{_source(contract)}: changed since {HISTORY_DIR}/{path.name} was frozen, without a version bump; "
        f"bump {VERSION_ATTR} and {FREEZE_HINT}"
    ]


def _version_went_down(contract: Contract, frozen: list[Contract]) -> list[str]:
    highest = max((released.version for released in frozen), default=0)
    if contract.version >= highest:
        return []
    return [f"{_source(contract)}: {VERSION_ATTR} {contract.version} is lower than frozen version {highest}"]


def _unreadable_history(contract: Contract, frozen: list[Contract]) -> list[str]:
    return [
        f"{_source(contract)} v{contract.version} cannot read v{earlier.version} data: {reason}"
        for earlier in frozen
        if earlier.version < contract.version
        for reason in incompatibilities(earlier.schema, contract.schema)
    ]


def _read_frozen(path: Path, stem: str) -> Contract:
    where = f"{HISTORY_DIR}/{path.name}"
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ContractError(f"{where}: {exc}") from exc
    return build_contract(stem, schema, where=where)


def _write_frozen(path: Path, contract: Contract) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(contract.schema, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _source(contract: Contract) -> str:
    return f"{contract.stem}.avsc"
