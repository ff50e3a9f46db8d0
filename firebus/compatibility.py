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
from pathlib import Path

from firebus.avro_schema import (
    Array,
    Enum,
    Fixed,
    JsonSchema,
    Map,
    Named,
    Node,
    Primitive,
    Record,
    Reference,
    SchemaTree,
    read_schema_file,
)
from firebus.avro_schema import Field as SchemaField
from firebus.avro_schema import Union as SchemaUnion
from firebus.contracts import (
    HISTORY_DIR,
    VERSION_ATTR,
    Contract,
    build_contract,
    history_path,
    load_current,
    load_history,
)
from firebus.errors import IncompatibleSchemaError

__all__ = ["check_directory", "freeze", "incompatibilities"]

PROMOTIONS: dict[str, frozenset[str]] = {
    "int": frozenset({"long", "float", "double"}),
    "long": frozenset({"float", "double"}),
    "float": frozenset({"double"}),
    "string": frozenset({"bytes"}),
    "bytes": frozenset({"string"}),
}
"""Writer primitive -> the other primitives a reader may read it as (the spec's promotions)."""

FREEZE_HINT = "run `firebus schemas freeze`"


def _unqualified(name: str) -> str:
    return name.rpartition(".")[2]


# --- the resolution rules --------------------------------------------------------------------------------------


def incompatibilities(writer: JsonSchema, reader: JsonSchema) -> list[str]:
    """Every reason ``reader`` cannot read data written with ``writer``; empty when it always can.

    Both are fully expanded Avro schemas as parsed JSON. Each reason starts with the dotted path of the reader
    field concerned (``[]`` marks array items, ``{}`` map values).
    """
    writer_schema, reader_schema = SchemaTree(writer), SchemaTree(reader)
    return _Resolution(writer_schema, reader_schema).check(writer_schema.root, reader_schema.root, "")


class _Resolution:
    """One writer schema checked against one reader schema."""

    def __init__(self, writer: SchemaTree, reader: SchemaTree) -> None:
        self._writer = writer
        self._reader = reader
        self._records_in_progress: set[tuple[str, str]] = set()

    def check(self, writer: Node, reader: Node, path: str) -> list[str]:
        writer, reader = self._writer.resolve(writer), self._reader.resolve(reader)
        if isinstance(writer, SchemaUnion):
            # Any branch may have been written, so every one must be readable.
            return [reason for branch in writer.branches for reason in self.check(branch, reader, path)]
        if isinstance(reader, SchemaUnion):
            return self._check_against_union(writer, reader, path)
        return self._check_pair(writer, reader, path)

    def _check_against_union(self, writer: Node, reader: SchemaUnion, path: str) -> list[str]:
        # The spec resolves against the FIRST reader branch that matches, even if a later one would read more.
        chosen = next((branch for branch in reader.branches if self._selects(writer, branch)), None)
        if chosen is None:
            return [_at(path, f"writer {_describe(writer)} matches no branch of reader union {_describe(reader)}")]
        return self.check(writer, chosen, path)

    def _selects(self, writer: Node, reader: Node) -> bool:
        """Whether a reader union branch is the one the spec picks for ``writer``: same kind and name, no deeper."""
        writer, reader = self._writer.resolve(writer), self._reader.resolve(reader)
        match writer, reader:
            case (Primitive() as written, Primitive() as read):
                return _promotable(written.name, read.name)
            case (Array() as written, Array() as read):
                return self._selects(written.items, read.items)
            case (Map() as written, Map() as read):
                return self._selects(written.values, read.values)
            case (Record() | Enum() | Fixed() as written, Record() | Enum() | Fixed() as read):
                return _names_match(written, read)
            case (SchemaUnion(), _) | (_, SchemaUnion()):
                # Only reachable inside array items or map values; the full check compares the unions.
                return True
            case _:
                return False

    def _check_pair(self, writer: Node, reader: Node, path: str) -> list[str]:
        match writer, reader:
            case (Primitive() as written, Primitive() as read) if _promotable(written.name, read.name):
                reasons = []
            case (Array() as written, Array() as read):
                reasons = self.check(written.items, read.items, f"{path}[]")
            case (Map() as written, Map() as read):
                reasons = self.check(written.values, read.values, f"{path}{{}}")
            case (Record() as written, Record() as read) if _names_match(written, read):
                reasons = self._check_records(written, read, path)
            case (Enum() as written, Enum() as read) if _names_match(written, read):
                reasons = _enum_reasons(written, read, path)
            case (Fixed() as written, Fixed() as read) if _names_match(written, read):
                reasons = _fixed_reasons(written, read, path)
            case _:
                reasons = [_at(path, f"writer {_describe(writer)} cannot be read as {_describe(reader)}")]
        return reasons

    def _check_records(self, writer: Record, reader: Record, path: str) -> list[str]:
        pair = (writer.name, reader.name)
        if pair in self._records_in_progress:
            # A recursive record: this very pair is being checked further up, which reports its fields once.
            return []
        self._records_in_progress.add(pair)
        try:
            return [reason for fld in reader.fields for reason in self._check_field(writer, fld, path)]
        finally:
            self._records_in_progress.discard(pair)

    def _check_field(self, writer: Record, reader_field: SchemaField, path: str) -> list[str]:
        field_path = _join(path, reader_field.name)
        written = _written_field(writer, reader_field)
        if written is not None:
            return self.check(written.schema, reader_field.schema, field_path)
        if reader_field.has_default:
            return []
        return [_at(field_path, f"writer {writer.name} has no such field and the reader field has no default")]


def _promotable(writer: str, reader: str) -> bool:
    return writer == reader or reader in PROMOTIONS.get(writer, frozenset())


def _names_match(writer: Named, reader: Named) -> bool:
    """Same kind and same unqualified name, or the reader lists the writer's name among its aliases."""
    accepted = {_unqualified(name) for name in (reader.name, *reader.aliases)}
    return writer.kind == reader.kind and _unqualified(writer.name) in accepted


def _written_field(writer: Record, reader_field: SchemaField) -> SchemaField | None:
    """The writer field a reader field takes its value from: the same name first, then the reader's aliases."""
    by_name = {fld.name: fld for fld in writer.fields}
    for name in (reader_field.name, *reader_field.aliases):
        if name in by_name:
            return by_name[name]
    return None


def _enum_reasons(writer: Enum, reader: Enum, path: str) -> list[str]:
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


def _fixed_reasons(writer: Fixed, reader: Fixed, path: str) -> list[str]:
    if writer.size == reader.size:
        return []
    return [
        _at(path, f"writer fixed {writer.name} has size {writer.size}, reader {reader.name} has size {reader.size}")
    ]


def _describe(node: Node) -> str:
    match node:
        case Primitive(name) | Reference(name):
            return name
        case Array(items):
            return f"array<{_describe(items)}>"
        case Map(values):
            return f"map<{_describe(values)}>"
        case SchemaUnion(branches):
            return "[" + ", ".join(_describe(branch) for branch in branches) + "]"
        case Record() | Enum() | Fixed():
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
    return build_contract(stem, read_schema_file(path, where=where), where=where)


def _write_frozen(path: Path, contract: Contract) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(contract.schema, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _source(contract: Contract) -> str:
    return f"{contract.stem}.avsc"
