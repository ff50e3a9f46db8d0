"""Load the ``.avsc`` contracts once: expanded, parsed, fingerprinted, with every field and its audience tag.

Layout of ``schemas/avro/``:

* ``header.avsc`` — the shared :class:`~firebus.events.Header` and its enums; other files refer to its named types
  by full name (``firebus.Header``, ``firebus.Audience`` …), and to each other's in the same way.
* one ``<stem>.avsc`` per top-level record (the eight event types and the governance records), each with a
  ``firebus.version`` attribute; event schemas also carry ``firebus.event_type``.
* ``history/<stem>.v<N>.avsc`` — every released version, fully expanded. The codec accepts data written with any of
  them and resolves it to the current version; ``firebus schemas check`` proves it can.

A field may carry ``"firebus.min_audience": "members" | "hq"``: the narrowest tier allowed to see it. Such a field
must declare a default, which is what wider tiers see after redaction.

Field paths (:attr:`Contract.fields`) are dotted field names, ``[]`` for each array item and ``{}`` for each map
value (``body.nearby_resources[].lat``). Every use of a named type is followed, so a field of a record reused by
name is addressable — and tagged — at every path it is reached by.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import cache, cached_property
from pathlib import Path
from typing import Any
from uuid import UUID

from fastavro import parse_schema
from fastavro.schema import SchemaParseException, UnknownType, to_parsing_canonical_form

from firebus.errors import ContractError
from firebus.events import Audience, EventType
from schemas import AVRO_DIR

HEADER_FILE = "header.avsc"
HISTORY_DIR = "history"
VERSION_ATTR = "firebus.version"
EVENT_TYPE_ATTR = "firebus.event_type"
MIN_AUDIENCE_ATTR = "firebus.min_audience"
NAMESPACE = "firebus"

JsonSchema = Any
"""An Avro schema as parsed JSON: a type name, a list (union) or an object."""

_NO_DEFAULT: Any = object()
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class FieldInfo:
    """One addressable field: its path, its minimum audience (``None``: untagged) and its decoded default."""

    path: str
    min_audience: Audience | None
    default: Any = _NO_DEFAULT
    """The field's Avro default as the Python value fastavro decodes; absent when the field declares none."""

    @property
    def has_default(self) -> bool:
        return self.default is not _NO_DEFAULT

    def hidden_from(self, tier: Audience) -> bool:
        return self.min_audience is not None and self.min_audience.rank > tier.rank


@dataclass(frozen=True)
class Contract:
    """One version of one top-level record schema."""

    stem: str
    name: str
    version: int
    schema: JsonSchema = field(repr=False)
    parsed: Any = field(repr=False)
    canonical: str = field(repr=False)
    fingerprint: bytes
    event_type: EventType | None
    fields: Mapping[str, FieldInfo] = field(repr=False)
    """Every addressable field by path, in document order (a field before the fields within it)."""
    audience_tags: Mapping[str, Audience] = field(repr=False)
    """The tagged paths of :attr:`fields` and their minimum audience."""

    @property
    def field_paths(self) -> frozenset[str]:
        """Every addressable field path, e.g. to validate a reviewer's redactions."""
        return frozenset(self.fields)

    @cached_property
    def record_branches(self) -> Mapping[str, str]:
        """Top-level fields that are a union with exactly one record branch, and that record's full name.

        The codec names the branch when it writes such a field (fastavro's tuple notation); left to itself, fastavro
        finds it by validating the whole nested record against every branch before writing it.
        """
        branches = {}
        for avro_field in self.parsed["fields"]:
            kind = avro_field["type"]
            if isinstance(kind, list):
                records = [branch["name"] for branch in kind if isinstance(branch, dict) and branch["type"] == "record"]
                if len(records) == 1:
                    branches[avro_field["name"]] = records[0]
        return branches

    @property
    def redactable_paths(self) -> frozenset[str]:
        """Paths a reviewer may empty below HQ: body fields with a default (what the lower tiers then see) and the
        header's tagged ones; the rest of the header routes and threads the event, so it stays."""
        return frozenset(
            path
            for path, info in self.fields.items()
            if info.has_default and (path.startswith("body.") or info.min_audience is not None)
        )


def crc64_avro(data: bytes) -> int:
    """The Avro specification's 64-bit Rabin fingerprint (CRC-64-AVRO)."""
    fingerprint = _EMPTY_FINGERPRINT
    for byte in data:
        fingerprint = (fingerprint >> 8) ^ _RABIN_TABLE[(byte ^ fingerprint) & 0xFF]
    return fingerprint


_EMPTY_FINGERPRINT = 0xC15D213AA4D7A795


def _rabin_table() -> tuple[int, ...]:
    table = []
    for index in range(256):
        value = index
        for _ in range(8):
            value = (value >> 1) ^ (_EMPTY_FINGERPRINT & -(value & 1))
        table.append(value)
    return tuple(table)


_RABIN_TABLE = _rabin_table()


def fingerprint_of(canonical_form: str) -> bytes:
    """The 8 bytes that follow ``C3 01`` in single-object encoding (little-endian CRC-64-AVRO)."""
    return crc64_avro(canonical_form.encode("utf-8")).to_bytes(8, "little")


class ContractSet:
    """Every contract: the current version of each stem, and every released version by fingerprint."""

    def __init__(self, current: Mapping[str, Contract], released: Mapping[bytes, Contract]) -> None:
        self._current = dict(current)
        self._by_fingerprint = dict(released)
        for contract in self._current.values():
            self._by_fingerprint.setdefault(contract.fingerprint, contract)
        self._by_event_type = {c.event_type: c for c in self._current.values() if c.event_type is not None}

    def current(self, stem: str) -> Contract:
        try:
            return self._current[stem]
        except KeyError:
            raise ContractError(f"no schema named {stem!r}") from None

    def for_event_type(self, event_type: EventType) -> Contract:
        return self._by_event_type[event_type]

    def by_fingerprint(self, fingerprint: bytes) -> Contract | None:
        return self._by_fingerprint.get(fingerprint)

    def __iter__(self) -> Iterator[Contract]:
        return iter(self._current.values())

    def released(self) -> Iterator[Contract]:
        """Every version the codec can read: history and current."""
        return iter(self._by_fingerprint.values())


def _named_definitions(schema: JsonSchema, namespace: str, found: dict[str, JsonSchema]) -> None:
    """Collect every named type (record, enum, fixed) defined anywhere in ``schema`` by full name."""
    if isinstance(schema, list):
        for branch in schema:
            _named_definitions(branch, namespace, found)
    elif isinstance(schema, dict):
        kind = schema.get("type")
        if kind in ("record", "enum", "fixed"):
            full = _full_name(schema["name"], schema.get("namespace", namespace))
            found[full] = schema
            namespace = full.rpartition(".")[0]
        if kind == "record":
            for fld in schema["fields"]:
                _named_definitions(fld["type"], namespace, found)
        elif kind == "array":
            _named_definitions(schema["items"], namespace, found)
        elif kind == "map":
            _named_definitions(schema["values"], namespace, found)
        elif isinstance(kind, dict | list):
            _named_definitions(kind, namespace, found)


def _full_name(name: str, namespace: str) -> str:
    return name if "." in name or not namespace else f"{namespace}.{name}"


def expand(schema: JsonSchema, shared: Mapping[str, JsonSchema]) -> JsonSchema:
    """Inline the first reference to each shared named type, so the schema stands alone."""
    defined: set[str] = set()

    def walk(node: JsonSchema) -> JsonSchema:
        if isinstance(node, str):
            if node in shared and node not in defined:
                return walk(copy.deepcopy(shared[node]))
            return node
        if isinstance(node, list):
            return [walk(branch) for branch in node]
        node = dict(node)
        kind = node.get("type")
        if kind in ("record", "enum", "fixed"):
            defined.add(_full_name(node["name"], node.get("namespace", NAMESPACE)))
        if kind == "record":
            node["fields"] = [{**fld, "type": walk(fld["type"])} for fld in node["fields"]]
        elif kind == "array":
            node["items"] = walk(node["items"])
        elif kind == "map":
            node["values"] = walk(node["values"])
        elif isinstance(kind, dict | list):
            node["type"] = walk(kind)
        return node

    return walk(schema)


def _walk_fields(schema: JsonSchema, *, where: str) -> dict[str, FieldInfo]:
    """Every field of ``schema`` by path in document order, named types resolved at every use.

    A path reached more than once (a union of records sharing a field name) keeps the stricter tag.
    """
    named: dict[str, JsonSchema] = {}
    found: dict[str, FieldInfo] = {}

    def walk(node: JsonSchema, path: str, namespace: str, inside: frozenset[str]) -> None:
        node = _resolve(node, named, namespace)
        if isinstance(node, list):
            for branch in node:
                walk(branch, path, namespace, inside)
            return
        if not isinstance(node, dict):
            return
        kind = node["type"]
        if kind in ("record", "enum", "fixed"):
            full = _full_name(node["name"], node.get("namespace", namespace))
            named[full] = node
            if kind == "record" and full not in inside:  # a recursive record would have endless paths
                for fld in node["fields"]:
                    walk_field(fld, path, full, inside | {full})
        elif kind == "array":
            walk(node["items"], f"{path}[]", namespace, inside)
        elif kind == "map":
            walk(node["values"], f"{path}{{}}", namespace, inside)

    def walk_field(fld: Mapping[str, Any], path: str, record: str, inside: frozenset[str]) -> None:
        namespace = record.rpartition(".")[0]
        field_path = f"{path}.{fld['name']}" if path else fld["name"]
        tag = fld.get(MIN_AUDIENCE_ATTR)
        audience = _checked_tag(tag, fld, f"{where}: {field_path}") if tag is not None else None
        found.setdefault(field_path, FieldInfo(field_path, None))  # its place in document order: before its fields
        walk(fld["type"], field_path, namespace, inside)  # first: it may define named types the default uses
        default = _NO_DEFAULT
        if "default" in fld:
            try:
                default = _decoded(fld["type"], fld["default"], named, namespace)
            except (ValueError, TypeError, AttributeError, KeyError) as exc:
                raise ContractError(f"{where}: {field_path}: default {fld['default']!r} does not fit: {exc}") from exc
        info = FieldInfo(field_path, audience, default)
        earlier = found[field_path].min_audience
        if earlier is not None and (audience is None or earlier.rank > audience.rank):
            info = replace(info, min_audience=earlier)
        found[field_path] = info

    walk(schema, "", "", frozenset())
    return found


def _resolve(node: JsonSchema, named: Mapping[str, JsonSchema], namespace: str) -> JsonSchema:
    """A named-type reference (or a ``{"type": <schema>}`` wrapper) replaced by the schema it stands for."""
    if isinstance(node, str):
        return named.get(_full_name(node, namespace), named.get(node, node))
    if isinstance(node, dict):
        inner = node["type"]
        if not isinstance(inner, str) or _full_name(inner, namespace) in named or inner in named:
            return _resolve(inner, named, namespace)
    return node


def _decoded(schema: JsonSchema, default: Any, named: Mapping[str, JsonSchema], namespace: str) -> Any:
    """A JSON default as the Python value fastavro decodes for ``schema`` (a union's default is its first branch)."""
    schema = _resolve(schema, named, namespace)
    if isinstance(schema, list):
        return _decoded(schema[0], default, named, namespace)
    kind = schema["type"] if isinstance(schema, dict) else schema
    logical = schema.get("logicalType") if isinstance(schema, dict) else None
    value = default
    if kind in ("bytes", "fixed"):
        value = default.encode("latin-1")
    elif kind in ("float", "double"):
        value = float(default)
    elif logical == "uuid":
        value = UUID(default)
    elif logical == "timestamp-millis":
        value = _EPOCH + timedelta(milliseconds=default)
    elif kind == "array":
        value = [_decoded(schema["items"], item, named, namespace) for item in default]
    elif kind == "map":
        value = {key: _decoded(schema["values"], item, named, namespace) for key, item in default.items()}
    elif kind == "record":
        value = {
            fld["name"]: _decoded(fld["type"], default.get(fld["name"], fld.get("default")), named, namespace)
            for fld in schema["fields"]
        }
    return value


def _checked_tag(tag: object, fld: Mapping[str, Any], where: str) -> Audience:
    try:
        audience = Audience(str(tag))
    except ValueError:
        raise ContractError(f"{where}: {MIN_AUDIENCE_ATTR} must be members or hq, not {tag!r}") from None
    if audience is Audience.PUBLIC:
        raise ContractError(f"{where}: {MIN_AUDIENCE_ATTR} public restricts nothing; remove it")
    if "default" not in fld:
        raise ContractError(
            f"{where}: a field with {MIN_AUDIENCE_ATTR} needs a default for the tiers it is hidden from"
        )
    return audience


def _read_json(path: Path) -> JsonSchema:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ContractError(f"{path.name}: {exc}") from exc


def build_contract(stem: str, schema: JsonSchema, *, where: str) -> Contract:
    """Parse one fully expanded top-level schema into a :class:`Contract`."""
    if not isinstance(schema, dict) or schema.get("type") != "record":
        raise ContractError(f"{where}: a top-level schema must be a record")
    version = schema.get(VERSION_ATTR)
    if not isinstance(version, int) or version < 1:
        raise ContractError(f"{where}: {VERSION_ATTR} must be a positive integer")
    raw_type = schema.get(EVENT_TYPE_ATTR)
    try:
        event_type = EventType(raw_type) if raw_type is not None else None
        parsed = parse_schema(schema, named_schemas={})
        canonical = to_parsing_canonical_form(schema)
    except (ValueError, SchemaParseException, UnknownType) as exc:
        raise ContractError(f"{where}: {exc}") from exc
    fields = _walk_fields(schema, where=where)
    return Contract(
        stem=stem,
        name=_full_name(schema["name"], schema.get("namespace", NAMESPACE)),
        version=version,
        schema=schema,
        parsed=parsed,
        canonical=canonical,
        fingerprint=fingerprint_of(canonical),
        event_type=event_type,
        fields=fields,
        audience_tags={path: info.min_audience for path, info in fields.items() if info.min_audience is not None},
    )


def load_current(directory: Path) -> dict[str, Contract]:
    """Every top-level schema in ``directory``, each expanded to stand alone.

    A file may refer by full name to any named type another file defines (``firebus.Header``,
    ``firebus.ReviewDecision``, ``firebus.ResourceKind`` …); the definition is inlined at its first use.
    """
    raw = {path: _read_json(path) for path in sorted(directory.glob("*.avsc"))}
    shared: dict[str, JsonSchema] = {}
    for schema in raw.values():
        _named_definitions(schema, NAMESPACE, shared)
    return {
        path.stem: build_contract(path.stem, expand(schema, shared), where=path.name)
        for path, schema in raw.items()
        if path.name != HEADER_FILE
    }


def load_history(directory: Path) -> dict[bytes, Contract]:
    """Every frozen version in ``directory/history``, by fingerprint."""
    released = {}
    for path in sorted((directory / HISTORY_DIR).glob("*.v*.avsc")):
        stem = path.name.split(".v")[0]
        contract = build_contract(stem, _read_json(path), where=f"{HISTORY_DIR}/{path.name}")
        released[contract.fingerprint] = contract
    return released


def history_path(directory: Path, contract: Contract) -> Path:
    return directory / HISTORY_DIR / f"{contract.stem}.v{contract.version}.avsc"


def load_contracts(directory: Path = AVRO_DIR) -> ContractSet:
    return ContractSet(load_current(directory), load_history(directory))


@cache
def default_contracts() -> ContractSet:
    """The shipped contracts, parsed once per process."""
    return load_contracts(AVRO_DIR)
