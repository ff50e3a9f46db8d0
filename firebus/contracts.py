"""Load the ``.avsc`` contracts once: expanded, parsed, fingerprinted, with every field, its tag and its limits.

Layout of ``schemas/avro/``:

* ``header.avsc`` — the shared :class:`~firebus.events.Header` and its enums; other files refer to its named types
  by full name (``firebus.Header``, ``firebus.Audience`` …), and to each other's in the same way.
* one ``<stem>.avsc`` per top-level record (the eight event types and the governance records), each with a
  ``firebus.version`` attribute; event schemas also carry ``firebus.event_type``.
* ``history/<stem>.v<N>.avsc`` — every released version, fully expanded. The codec accepts data written with any of
  them and resolves it to the current version; ``firebus schemas check`` proves it can.

A field may carry ``"firebus.min_audience": "members" | "hq"``: the narrowest tier allowed to see it. Such a field
must declare a default, which is what wider tiers see after redaction.

A field that holds text (a string, an array of strings, a map) may carry ``"firebus.max_length"`` and
``"firebus.min_length"`` (code points of each string there: each item of an array, each key and value of a map) and
``"firebus.pattern"`` (a regular expression each string must match in full); :mod:`firebus.text` enforces them with
the rest of the text rules. In the current event schemas and :data:`TEXT_LIMITED_STEMS` every text field must declare
a maximum length. Attributes are not part of the Parsing Canonical Form, so adding or changing one leaves the
fingerprint — and the frozen history — as it is.

Field paths (:attr:`Contract.fields`) are dotted field names, ``[]`` for each array item and ``{}`` for each map
value (``body.nearby_resources[].lat``). Every use of a named type is followed, so a field of a record reused by
name is addressable — and tagged — at every path it is reached by.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import cache, cached_property
from pathlib import Path
from typing import Any

from fastavro import parse_schema
from fastavro.schema import SchemaParseException, UnknownType, fingerprint, to_parsing_canonical_form

from firebus import avro_schema as avro
from firebus.avro_schema import JsonSchema, SchemaTree, full_name, read_schema_file
from firebus.errors import ContractError, Problem
from firebus.events import Audience, EventType
from schemas import AVRO_DIR

HEADER_FILE = "header.avsc"
HISTORY_DIR = "history"
VERSION_ATTR = "firebus.version"
EVENT_TYPE_ATTR = "firebus.event_type"
MIN_AUDIENCE_ATTR = "firebus.min_audience"
MAX_LENGTH_ATTR = "firebus.max_length"
MIN_LENGTH_ATTR = "firebus.min_length"
PATTERN_ATTR = "firebus.pattern"
NAMESPACE = "firebus"

TEXT_LIMITED_STEMS = frozenset({"review_decision"})
"""Besides the event schemas, the current schemas whose every text field must declare a maximum length: records
whose text comes from people (a reviewer's reason), like an event's."""

_NO_DEFAULT: Any = object()


@dataclass(frozen=True)
class FieldInfo:
    """One addressable field: its path, its minimum audience (``None``: untagged), its decoded default and, for a
    field that holds text, the limits its schema declares."""

    path: str
    min_audience: Audience | None
    default: Any = _NO_DEFAULT
    """The field's Avro default as the Python value fastavro decodes; absent when the field declares none."""
    text: bool = False
    """Whether the field holds text itself: a string (UUIDs aside), an array of them, or a map (keys are text)."""
    max_length: int | None = None
    """Most code points of each string at this path (each item of an array, each key and string value of a map)."""
    min_length: int = 0
    pattern: re.Pattern[str] | None = None
    """What each string at this path must match in full."""

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
    tree: SchemaTree = field(repr=False, compare=False)
    """:attr:`schema` as typed nodes."""

    @property
    def requires_text_limits(self) -> bool:
        """Whether every text field must declare ``firebus.max_length`` (events and :data:`TEXT_LIMITED_STEMS`)."""
        return self.event_type is not None or self.stem in TEXT_LIMITED_STEMS

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
        root = self.tree.resolve(self.tree.root)
        for fld in root.fields if isinstance(root, avro.Record) else ():
            if isinstance(fld.schema, avro.Union):
                resolved = [self.tree.resolve(branch) for branch in fld.schema.branches]
                records = [branch.name for branch in resolved if isinstance(branch, avro.Record)]
                if len(records) == 1:
                    branches[fld.name] = records[0]
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


def fingerprint_of(canonical_form: str) -> bytes:
    """The 8 bytes that follow ``C3 01`` in single-object encoding (little-endian CRC-64-AVRO)."""
    return bytes.fromhex(fingerprint(canonical_form, "CRC-64-AVRO"))


class ContractSet:
    """Every contract: the current version of each stem, and every released version by fingerprint."""

    def __init__(self, current: Mapping[str, Contract], released: Mapping[bytes, Contract]) -> None:
        self._current = dict(current)
        self._by_fingerprint = dict(released)
        for contract in self._current.values():
            self._by_fingerprint.setdefault(contract.fingerprint, contract)
        self._by_event_type = {c.event_type: c for c in self._current.values() if c.event_type is not None}
        self._versions: dict[bytes, set[int]] = {}
        for contract in [*released.values(), *self._current.values()]:
            self._versions.setdefault(contract.fingerprint, set()).add(contract.version)

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

    def schema_version_problems(self, writer: Contract, record: Mapping[str, Any]) -> list[Problem]:
        """What is wrong with an event's ``header.schema_version``: it must be the ``firebus.version`` of the schema
        ``writer`` it was written with (found by fingerprint; versions that differ only in attributes share one)."""
        header = record.get("header")
        if writer.event_type is None or not isinstance(header, Mapping):
            return []
        claimed = header.get("schema_version")
        versions = self._versions.get(writer.fingerprint, {writer.version})
        if claimed in versions:
            return []
        written = " or ".join(str(version) for version in sorted(versions))
        return [Problem("header.schema_version", f"{claimed!r}, but the event was written with version {written}")]


def _walk_fields(tree: SchemaTree, *, where: str) -> dict[str, FieldInfo]:
    """Every field of ``tree`` by path in document order, with its tags, text limits and decoded default.

    A path reached more than once (a union of records sharing a field name) keeps the stricter tag and limits.
    """
    found: dict[str, FieldInfo] = {}
    for path, fld in tree.fields():
        at = f"{where}: {path}"
        tag = fld.source.get(MIN_AUDIENCE_ATTR)
        audience = _checked_tag(tag, fld, at) if tag is not None else None
        default = _NO_DEFAULT
        if fld.has_default:
            try:
                default = tree.decoded_default(fld.schema, fld.default)
            except (ValueError, TypeError, AttributeError, KeyError) as exc:
                raise ContractError(f"{at}: default {fld.default!r} does not fit: {exc}") from exc
        info = FieldInfo(path, audience, default, text=_carries_text(tree, fld.schema), **_text_limits(fld, at))
        if not info.text and (info.max_length is not None or info.min_length or info.pattern is not None):
            raise ContractError(f"{at}: {MAX_LENGTH_ATTR}, {MIN_LENGTH_ATTR} and {PATTERN_ATTR} are for text fields")
        earlier = found.get(path)
        found[path] = info if earlier is None else _stricter(earlier, info, at)
    return found


def _carries_text(tree: SchemaTree, node: avro.Node) -> bool:
    """Whether a field of this type holds text itself: a string, an array of them or a map (its keys are text).

    A UUID is a string on the wire, but decodes to a :class:`~uuid.UUID`: its format is its own check.
    """
    node = tree.resolve(node)
    if isinstance(node, avro.Primitive):
        return node.name == "string" and node.logical != "uuid"
    if isinstance(node, avro.Union):
        return any(_carries_text(tree, branch) for branch in node.branches)
    if isinstance(node, avro.Array):
        return _carries_text(tree, node.items)
    return isinstance(node, avro.Map)


def _text_limits(fld: avro.Field, at: str) -> dict[str, Any]:
    maximum, minimum, pattern = (fld.source.get(attr) for attr in (MAX_LENGTH_ATTR, MIN_LENGTH_ATTR, PATTERN_ATTR))
    if maximum is not None and not _count(maximum, least=1):
        raise ContractError(f"{at}: {MAX_LENGTH_ATTR} must be a positive integer, not {maximum!r}")
    if minimum is not None and not _count(minimum, least=0):
        raise ContractError(f"{at}: {MIN_LENGTH_ATTR} must be a non-negative integer, not {minimum!r}")
    if minimum is not None and maximum is not None and minimum > maximum:
        raise ContractError(f"{at}: {MIN_LENGTH_ATTR} {minimum} is more than {MAX_LENGTH_ATTR} {maximum}")
    compiled = None
    if pattern is not None:
        try:
            compiled = re.compile(pattern)
        except (re.error, TypeError) as exc:
            raise ContractError(f"{at}: {PATTERN_ATTR} {pattern!r} is not a regular expression: {exc}") from exc
    return {"max_length": maximum, "min_length": minimum or 0, "pattern": compiled}


def _count(value: object, *, least: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def _stricter(earlier: FieldInfo, later: FieldInfo, at: str) -> FieldInfo:
    """One path reached twice: the narrower audience and the tighter limits of the two."""
    audience = earlier.min_audience
    if audience is None or (later.min_audience is not None and later.min_audience.rank > audience.rank):
        audience = later.min_audience
    if earlier.pattern is not None and later.pattern is not None and earlier.pattern != later.pattern:
        raise ContractError(f"{at}: two different {PATTERN_ATTR} at one path")
    maxima = [limit for limit in (earlier.max_length, later.max_length) if limit is not None]
    return replace(
        later,
        min_audience=audience,
        text=earlier.text or later.text,
        max_length=min(maxima, default=None),
        min_length=max(earlier.min_length, later.min_length),
        pattern=later.pattern or earlier.pattern,
    )


def _checked_tag(tag: object, fld: avro.Field, where: str) -> Audience:
    try:
        audience = Audience(str(tag))
    except ValueError:
        raise ContractError(f"{where}: {MIN_AUDIENCE_ATTR} must be members or hq, not {tag!r}") from None
    if audience is Audience.PUBLIC:
        raise ContractError(f"{where}: {MIN_AUDIENCE_ATTR} public restricts nothing; remove it")
    if not fld.has_default:
        raise ContractError(
            f"{where}: a field with {MIN_AUDIENCE_ATTR} needs a default for the tiers it is hidden from"
        )
    return audience


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
    tree = SchemaTree(schema)
    fields = _walk_fields(tree, where=where)
    return Contract(
        stem=stem,
        name=full_name(schema["name"], schema.get("namespace", NAMESPACE)),
        version=version,
        schema=schema,
        parsed=parsed,
        canonical=canonical,
        fingerprint=fingerprint_of(canonical),
        event_type=event_type,
        fields=fields,
        audience_tags={path: info.min_audience for path, info in fields.items() if info.min_audience is not None},
        tree=tree,
    )


def load_current(directory: Path) -> dict[str, Contract]:
    """Every top-level schema in ``directory``, each expanded to stand alone.

    A file may refer by full name to any named type another file defines (``firebus.Header``,
    ``firebus.ReviewDecision``, ``firebus.ResourceKind`` …); the definition is inlined at its first use. Every
    text field of an event schema or of :data:`TEXT_LIMITED_STEMS` must declare ``firebus.max_length``.
    """
    trees = {path: SchemaTree(read_schema_file(path), namespace=NAMESPACE) for path in sorted(directory.glob("*.avsc"))}
    shared = {name: node for tree in trees.values() for name, node in tree.named.items()}
    current = {}
    for path, tree in trees.items():
        if path.name != HEADER_FILE:
            contract = current[path.stem] = build_contract(path.stem, tree.inlined(shared), where=path.name)
            _require_text_limits(contract, where=path.name)
    return current


def _require_text_limits(contract: Contract, *, where: str) -> None:
    if not contract.requires_text_limits:
        return
    unlimited = [info.path for info in contract.fields.values() if info.text and info.max_length is None]
    if unlimited:
        listing = ", ".join(unlimited)
        raise ContractError(f"{where}: every text field needs {MAX_LENGTH_ATTR}; missing at {listing}")


def load_history(directory: Path) -> dict[bytes, Contract]:
    """Every frozen version in ``directory/history``, by fingerprint."""
    released = {}
    for path in sorted((directory / HISTORY_DIR).glob("*.v*.avsc")):
        stem = path.name.split(".v")[0]
        where = f"{HISTORY_DIR}/{path.name}"
        contract = build_contract(stem, read_schema_file(path, where=where), where=where)
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
