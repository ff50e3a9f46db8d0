"""Projected decoding for the statistics: read the dozen values the facts need, skip the rest of the bytes.

A full decode (:meth:`Codec.decode_data`) builds every value of a record — a ``UUID`` per id, a ``datetime`` per
timestamp, a ``str`` per string, a ``dict`` per nested record — and resolves the data to the current schema
version; for a release that is done twice (the release, then the event it carries). The statistics read a dozen of
those values (:data:`RELEASE_FIELDS`, :data:`EVENT_FIELDS`, :data:`AUDIT_FIELDS`).

For data written with the *current* version of its schema (the writer schema is found by fingerprint, as always),
:class:`ProjectedDecoder` uses a reader compiled from that writer schema (:func:`compile_reader`): straight-line
Python that steps over every value the statistics do not use (a string is a length and a jump; a nested record,
array or map of unused values is never built) and reads the others into a record of just those fields. Each needed
value is what a full decode gives (logical types through fastavro's own readers), except that a top-level UUID is
its canonical text (what ``str()`` of the ``UUID`` gives) rather than a ``UUID``. Data written with any other
(older) version is decoded in full and resolved by the codec, as before, so schema evolution keeps working.

fastavro needs a reader schema to skip values, and resolving against one costs more per field than it saves
(measured); without one it builds every value. Hence the small reader of our own, checked against fastavro in
``tests/consumers/test_analytics_decoding.py``. What it does not check, unlike a full decode: that the values the
statistics do not use are valid UTF-8, well-formed UUIDs or in-range enum positions (firebus writes none that are
not). A record that is cut short, overlong or has an impossible length or union branch is corrupt, as before.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Mapping
from contextlib import suppress
from itertools import count
from typing import Any
from uuid import UUID

from fastavro.read import LOGICAL_READERS

from firebus.avro_schema import (
    Array,
    Enum,
    Fixed,
    JsonSchema,
    Map,
    Node,
    Primitive,
    Record,
    SchemaTree,
    Union,
    join_path,
    logical_type,
)
from firebus.codec import PREFIX_LENGTH, Codec
from firebus.contracts import Contract
from firebus.errors import CorruptRecordError, RecursiveSchemaError

RELEASE_FIELDS = frozenset(
    {
        "tier",
        "event_id",
        "event_type",
        "incident_id",
        "decision.decided_at",
        "decision.reviewer",
        "decision.reviewer_kind",
        "released_at",
        "event",
    }
)
"""What :func:`~consumers.analytics.release_fact` reads of a release."""

EVENT_FIELDS = frozenset({"header.occurred_at", "header.published_at", "header.townships", "body.status"})
"""What :func:`~consumers.analytics.release_fact` reads of the event a release carries (``body.status``: where
the event type has one)."""

AUDIT_FIELDS = frozenset({"audit_id", "action", "event_id", "event_type", "tier", "reason", "details", "at"})
"""What :func:`~consumers.analytics.audit_fact` reads of an audit record."""

Reader = Callable[[bytes], tuple[dict[str, Any], int]]
"""A compiled reader: the projected record of a single-object encoded value, and the position after its body."""


def needed_fields(codec: Codec) -> dict[str, frozenset[str]]:
    """Schema stem → the field paths the statistics read (a path a schema lacks is simply not there)."""
    needed = {"release": RELEASE_FIELDS, "audit_event": AUDIT_FIELDS}
    needed.update({contract.stem: EVENT_FIELDS for contract in codec.contracts if contract.event_type is not None})
    return needed


_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")


def canonical_uuid(text: str) -> str:
    """``str(UUID(text))`` — what a full decode and ``str()`` give — without building a UUID when ``text`` is
    already canonical (as firebus writes every UUID)."""
    if _CANONICAL_UUID.match(text):
        return text
    try:
        return str(UUID(text))
    except ValueError as exc:
        raise CorruptRecordError(f"{text!r} is not a UUID") from exc


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    """The Avro int or long (zig-zag varint) at ``pos``, and the position after it."""
    byte = data[pos]
    pos += 1
    value = byte & 0x7F
    shift = 7
    while byte & 0x80:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
    return (value >> 1) ^ -(value & 1), pos


_FIXED_SIZES = {"null": 0, "boolean": 1, "float": 4, "double": 8}
_STRUCTS = {"float": struct.Struct("<f"), "double": struct.Struct("<d")}


class _ReaderSource:
    """Writes the source of one reader: a value at a needed path is read whole, a record or collection with needed
    paths below it is read in part, anything else is stepped over."""

    def __init__(self, tree: SchemaTree, needed: frozenset[str]) -> None:
        self.tree = tree
        self.needed = needed
        self.lines: list[str] = []
        self.constants: dict[str, Any] = {
            "_varint": _varint,
            "_canonical_uuid": canonical_uuid,
            "_Corrupt": CorruptRecordError,
        }
        self.names = count()

    def fresh(self, prefix: str) -> str:
        return f"{prefix}{next(self.names)}"

    def constant(self, value: Any) -> str:
        name = self.fresh("_c")
        self.constants[name] = value
        return name

    def emit(self, depth: int, line: str) -> None:
        self.lines.append("    " * depth + line)

    def below(self, path: str) -> bool:
        """Whether a needed path lies inside ``path`` (``path.x``, ``path[]…``, ``path{}…``)."""
        return any(_inside(n, path) for n in self.needed)

    def within(self, path: str) -> bool:
        """Whether ``path`` is needed, or lies inside a needed path."""
        return any(path == n or _inside(path, n) for n in self.needed)

    def varint(self, depth: int, target: str) -> None:
        """A one-byte varint inline, a longer one through :func:`_varint`."""
        self.emit(depth, "b = data[pos]")
        self.emit(depth, "if b < 128:")
        self.emit(depth + 1, "pos += 1")
        self.emit(depth + 1, f"{target} = (b >> 1) ^ -(b & 1)")
        self.emit(depth, "else:")
        self.emit(depth + 1, f"{target}, pos = _varint(data, pos)")

    def length(self, depth: int, target: str) -> None:
        self.varint(depth, target)
        self.emit(depth, f"if {target} < 0:")
        self.emit(depth + 1, "raise _Corrupt('negative length')")

    def value(self, node: Node, depth: int, inside: frozenset[str], target: str | None, path: str) -> None:
        """Code that reads one value of ``node`` at ``path`` into ``target`` (None: steps over it); a named type
        may not contain itself (``inside``: the named types on the way here)."""
        node = self.tree.resolve(node)
        if isinstance(node, Record | Enum | Fixed):
            if node.name in inside:
                raise RecursiveSchemaError(node.name)
            inside = inside | {node.name}
        if isinstance(node, Union):
            self.union(node, depth, inside, target, path)
            return
        if isinstance(node, Record):
            self.record(node, depth, inside, target, path)
        elif isinstance(node, Array | Map):
            self.collection(node, depth, inside, target, path)
        else:
            self.scalar(node, depth, target)
        logical = logical_type(node)
        if target is not None and logical is not None:
            kind = node.name if isinstance(node, Primitive) else "fixed"
            if logical == "uuid" and path.isidentifier():  # a top-level field's own value: its canonical text
                self.emit(depth, f"{target} = _canonical_uuid({target})")
            elif (reader := LOGICAL_READERS.get(f"{kind}-{logical}")) is not None:
                self.emit(depth, f"{target} = {self.constant(reader)}({target}, {self.constant(node.source)}, None)")

    def scalar(self, node: Node, depth: int, target: str | None) -> None:
        """A primitive, enum or fixed value."""
        kind = node.name if isinstance(node, Primitive) else getattr(node, "kind", None)
        if kind in _FIXED_SIZES:
            if target is not None:
                if kind in _STRUCTS:
                    self.emit(depth, f"{target} = {self.constant(_STRUCTS[kind].unpack_from)}(data, pos)[0]")
                else:
                    self.emit(depth, f"{target} = None" if kind == "null" else f"{target} = data[pos] == 1")
            if _FIXED_SIZES[kind]:
                self.emit(depth, f"pos += {_FIXED_SIZES[kind]}")
        elif kind in ("int", "long", "enum"):
            if target is None:
                self.emit(depth, "while data[pos] > 127:")
                self.emit(depth + 1, "pos += 1")
                self.emit(depth, "pos += 1")
                return
            self.varint(depth, target)
            if isinstance(node, Enum):
                symbols = self.constant(node.symbols)
                self.emit(depth, f"{target} = {symbols}[{target}] if {target} >= 0 else {symbols}[len({symbols})]")
        elif kind in ("string", "bytes", "fixed"):
            size = str(node.size) if isinstance(node, Fixed) else self.fresh("n")
            if kind != "fixed":
                self.length(depth, size)
            if target is not None:
                self.emit(depth, f"{target} = data[pos:pos + {size}]" + (".decode()" if kind == "string" else ""))
            self.emit(depth, f"pos += {size}")
        else:
            raise ValueError(f"not an Avro type: {kind!r}")

    def union(self, node: Union, depth: int, inside: frozenset[str], target: str | None, path: str) -> None:
        index = self.fresh("u")
        self.varint(depth, index)
        for number, branch in enumerate(node.branches):
            self.emit(depth, f"{'if' if number == 0 else 'elif'} {index} == {number}:")
            self.emit(depth + 1, "pass")
            self.value(branch, depth + 1, inside, target, path)
        self.emit(depth, "else:")
        self.emit(depth + 1, "raise _Corrupt('no such union branch')")

    def record(self, node: Record, depth: int, inside: frozenset[str], target: str | None, path: str) -> None:
        if target is not None:
            self.emit(depth, f"{target} = {{}}")
        for fld in node.fields:
            field_path = join_path(path, fld.name)
            if target is None or not (self.within(field_path) or self.below(field_path)):
                self.value(fld.schema, depth, inside, None, field_path)
            else:
                item = self.fresh("v")
                self.value(fld.schema, depth, inside, item, field_path)
                self.emit(depth, f"{target}[{fld.name!r}] = {item}")

    def collection(self, node: Array | Map, depth: int, inside: frozenset[str], target: str | None, path: str) -> None:
        """An array or map: blocks of items until a block of none; a negative count gives the block's byte size."""
        array = isinstance(node, Array)
        block, size, item, key = self.fresh("k"), self.fresh("n"), self.fresh("v"), self.fresh("s")
        inner = f"{path}[]" if array else f"{path}{{}}"
        if target is not None:
            self.emit(depth, f"{target} = []" if array else f"{target} = {{}}")
        self.emit(depth, "while True:")
        self.varint(depth + 1, block)
        self.emit(depth + 1, f"if {block} == 0:")
        self.emit(depth + 2, "break")
        self.emit(depth + 1, f"if {block} < 0:")
        self.length(depth + 2, size)
        if target is None:  # a block of known size is stepped over at once
            self.emit(depth + 2, f"pos += {size}")
            self.emit(depth + 2, "continue")
        else:
            self.emit(depth + 2, f"{block} = -{block}")
        self.emit(depth + 1, f"for _ in range({block}):")
        if not array:
            self.value(_MAP_KEY, depth + 2, inside, None if target is None else key, inner)
        items = node.items if isinstance(node, Array) else node.values
        self.value(items, depth + 2, inside, None if target is None else item, inner)
        if target is not None:
            self.emit(depth + 2, f"{target}.append({item})" if array else f"{target}[{key}] = {item}")


_MAP_KEY = Primitive("string")


def _inside(path: str, outer: str) -> bool:
    """Whether ``path`` lies inside ``outer``: ``outer.x``, ``outer[]…``, ``outer{}…``."""
    return len(path) > len(outer) and path.startswith(outer) and path[len(outer)] in ".[{"


def compile_reader(schema: JsonSchema, needed: frozenset[str]) -> tuple[Reader, str]:
    """A reader of single-object encoded values written with ``schema`` that returns the record of the ``needed``
    field paths (and the records on the way to them) and the position after the body; and its source."""
    tree = SchemaTree(schema)
    source = _ReaderSource(tree, needed)
    source.emit(0, "def read(data):")
    source.emit(1, f"pos = {PREFIX_LENGTH}")
    source.value(tree.root, 1, frozenset(), "record", "")
    source.emit(1, "return record, pos")
    text = "\n".join(source.lines)
    scope = dict(source.constants)
    exec(compile(text, f"<projected reader of {schema.get('name')}>", "exec"), scope)  # noqa: S102  (our own code)
    reader: Reader = scope["read"]
    return reader, text


class ProjectedDecoder:
    """Decodes single-object encoded records like :meth:`Codec.decode_data`, but into a record of only the
    ``needed`` field paths of each schema stem (see the module docs). Other stems are decoded in full."""

    def __init__(self, codec: Codec, needed: Mapping[str, frozenset[str]] | None = None) -> None:
        self.codec = codec
        self.needed = dict(needed) if needed is not None else needed_fields(codec)
        self._readers: dict[bytes, tuple[Contract, Contract, Reader | None]] = {}
        """Single-object prefix (marker and fingerprint) → writer, current contract and compiled reader."""

    def reader_of(self, writer: Contract) -> tuple[Contract, Reader | None]:
        """The current contract of ``writer``'s stem and the compiled reader of ``writer`` (None: decode in full)."""
        current = self.codec.contracts.current(writer.stem)
        needed = self.needed.get(writer.stem)
        if needed is not None and writer.fingerprint == current.fingerprint:
            with suppress(RecursiveSchemaError):
                return current, compile_reader(writer.schema, needed)[0]
        return current, None

    def decode_data(self, data: bytes) -> tuple[Contract, dict[str, Any]]:
        """The record's current contract and the record of its needed fields."""
        found = self._readers.get(data[:PREFIX_LENGTH])
        if found is None:
            writer = self.codec.writer_of(data)  # checks the marker and the fingerprint
            found = self._readers[data[:PREFIX_LENGTH]] = (writer, *self.reader_of(writer))
        writer, current, reader = found
        if reader is None:
            return self.codec.decode_data(data)
        try:
            record, end = reader(data)
        except CorruptRecordError:
            raise
        except Exception as exc:  # IndexError (cut short), UnicodeDecodeError, ValueError, OverflowError ...
            raise CorruptRecordError(f"{writer.name} v{writer.version} body is corrupt: {exc!r}") from exc
        if end != len(data):
            raise CorruptRecordError(f"the {writer.name} record is {len(data) - end:+} bytes off its encoding")
        return current, record
