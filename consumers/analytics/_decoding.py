"""Lean decoding for the statistics: read only what the facts need, as cheaply as the Avro encoding allows.

A full decode (:meth:`Codec.decode_data`) builds every value of a record: a ``UUID`` per id, a ``datetime`` per
timestamp, a ``str`` per string, and resolves the data to the current schema version. The statistics read a dozen
of those values. For data written with the *current* version of its schema, :class:`LeanDecoder` reads the bytes
with an encoding-equivalent copy of the writer schema (found by fingerprint, as always) in which every value the
statistics do not use has its cheapest type of the same binary encoding:

* a string (``uuid`` or plain) → ``bytes`` (the same length-prefixed bytes, not decoded as UTF-8 nor parsed);
* a ``timestamp-millis`` / ``timestamp-micros`` (or any other logical type) → its underlying ``long`` / ``int``
  / ``bytes`` / ``fixed``.

The values the statistics use (:data:`NEEDED`) keep their exact type, so they decode to what a full decode gives.
No schema resolution is involved (resolution costs more than the fields it skips). Data written with any other
(older) version is decoded in full and resolved to the current version by the codec, as before, so schema
evolution keeps working. The one difference from a full decode: the values the statistics do not use are not
checked to be valid UTF-8 or well-formed UUIDs (firebus writes none that are not).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from contextlib import suppress
from io import BytesIO
from itertools import count
from typing import Any
from uuid import UUID

from fastavro import parse_schema, schemaless_reader

from firebus.codec import PREFIX_LENGTH, Codec
from firebus.contracts import Contract, JsonSchema
from firebus.errors import CorruptRecordError

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


def needed_fields(codec: Codec) -> dict[str, frozenset[str]]:
    """Schema stem → the field paths the statistics read (a path a schema lacks is simply not there)."""
    needed = {"release": RELEASE_FIELDS, "audit_event": AUDIT_FIELDS}
    needed.update({contract.stem: EVENT_FIELDS for contract in codec.contracts if contract.event_type is not None})
    return needed


_NAMED = ("record", "enum", "fixed")
_CHEAPEST = {"string": "bytes"}
"""Primitive types with a cheaper type of the same binary encoding."""


class RecursiveSchemaError(ValueError):
    """A named type refers to itself: the lean copy (every named type inlined at each use) would be endless."""


def lean_schema(schema: JsonSchema, needed: frozenset[str]) -> tuple[JsonSchema, list[str]]:
    """An encoding-equivalent copy of the writer ``schema``, and the top-level fields it reads UUIDs of as text.

    Fields at a ``needed`` path (and everything inside them) keep their type, except a top-level needed UUID,
    read as its text (the caller canonicalises it: :func:`canonical_uuid`); every other value gets its cheapest
    type of the same binary encoding (an enum: its position as an int). Every named type is inlined at each use
    under a fresh name (a named type may be needed at one use and not at another). Field defaults are dropped:
    they only matter when resolving against a reader schema, which a lean schema is never used with."""
    defined: dict[str, JsonSchema] = {}
    text_uuids: list[str] = []
    fresh = count()

    def full_name(name: str, namespace: str) -> str:
        return name if "." in name or not namespace else f"{namespace}.{name}"

    def walk(node: JsonSchema, path: str, keep: bool, namespace: str, inside: frozenset[str]) -> JsonSchema:
        if isinstance(node, list):
            return [walk(branch, path, keep, namespace, inside) for branch in node]
        if isinstance(node, str):
            name = full_name(node, namespace)
            name = name if name in defined else node
            if name not in defined:
                return node if keep else _CHEAPEST.get(node, node)
            if name in inside:
                raise RecursiveSchemaError(name)
            return walk(defined[name], path, keep, name.rpartition(".")[0], inside)
        kind = node["type"]
        if kind in _NAMED:
            name = full_name(node["name"], node.get("namespace", namespace))
            defined.setdefault(name, node)
            if name in inside:
                raise RecursiveSchemaError(name)
            return named(node, path, keep, name, inside | {name})
        if kind == "array":
            return {"type": "array", "items": walk(node["items"], f"{path}[]", keep, namespace, inside)}
        if kind == "map":
            return {"type": "map", "values": walk(node["values"], f"{path}{{}}", keep, namespace, inside)}
        if keep and node.get("logicalType") == "uuid" and path.isidentifier():  # a top-level field's own value
            text_uuids.append(path)
            return kind
        if keep:
            return {**node, "type": walk(kind, path, keep, namespace, inside)}
        return walk(kind, path, keep, namespace, inside)  # a logical type (or a wrapped type) by its underlying type

    def named(node: JsonSchema, path: str, keep: bool, name: str, inside: frozenset[str]) -> JsonSchema:
        kind = node["type"]
        if kind == "enum" and not keep:
            return "int"  # an enum is encoded as the int of its symbol's position
        renamed = {"type": kind, "name": f"lean{next(fresh)}", "namespace": ""}
        if kind == "enum":
            return {**renamed, "symbols": node["symbols"]}
        if kind == "fixed":  # a needed one keeps its logical type (and its attributes), e.g. a decimal
            return {**node, **renamed} if keep else {**renamed, "size": node["size"]}
        fields = []
        namespace = name.rpartition(".")[0]
        for fld in node["fields"]:
            field_path = f"{path}.{fld['name']}" if path else fld["name"]
            keep_field = keep or field_path in needed
            fields.append({"name": fld["name"], "type": walk(fld["type"], field_path, keep_field, namespace, inside)})
        return {**renamed, "fields": fields}

    return walk(schema, "", False, "", frozenset()), text_uuids


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


class LeanDecoder:
    """Decodes single-object encoded records like :meth:`Codec.decode_data`, reading only the ``needed`` field
    paths of each schema stem in full (see the module docs). Stems not in ``needed`` are decoded in full."""

    def __init__(self, codec: Codec, needed: Mapping[str, frozenset[str]] | None = None) -> None:
        self.codec = codec
        self.needed = dict(needed) if needed is not None else needed_fields(codec)
        self._lean: dict[bytes, tuple[Contract, Any, list[str]]] = {}

    def lean_of(self, writer: Contract) -> tuple[Contract, Any, list[str]]:
        """The current contract of ``writer``'s stem, the parsed lean schema (None: decode in full) and the
        top-level fields it reads UUIDs of as text."""
        found = self._lean.get(writer.fingerprint)
        if found is None:
            current = self.codec.contracts.current(writer.stem)
            needed = self.needed.get(writer.stem)
            found = (current, None, [])
            if needed is not None and writer.fingerprint == current.fingerprint:
                with suppress(RecursiveSchemaError):
                    lean, text_uuids = lean_schema(writer.schema, needed)
                    found = (current, parse_schema(lean, named_schemas={}), text_uuids)
            self._lean[writer.fingerprint] = found
        return found

    def decode_data(self, data: bytes) -> tuple[Contract, dict[str, Any]]:
        """The record's current contract and the record (its unneeded values as raw bytes / numbers)."""
        writer = self.codec.writer_of(data)
        current, lean, text_uuids = self.lean_of(writer)
        if lean is None:
            return self.codec.decode_data(data)
        stream = BytesIO(data)
        stream.seek(PREFIX_LENGTH)
        try:
            record = schemaless_reader(stream, lean, None)
        except Exception as exc:  # fastavro raises EOFError, ValueError, IndexError, UnicodeDecodeError ...
            raise CorruptRecordError(f"{writer.name} v{writer.version} body is corrupt: {exc!r}") from exc
        if stream.tell() != len(data):
            raise CorruptRecordError(f"{len(data) - stream.tell()} unexpected bytes after the {writer.name} record")
        if not isinstance(record, dict):
            raise CorruptRecordError(f"{writer.name} body did not decode to a record")
        for name in text_uuids:
            text = record[name]
            if text is not None:
                record[name] = canonical_uuid(text)
        return current, record
