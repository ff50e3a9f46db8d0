"""Native decoding for the statistics: single-object encoded records into columns, by polars-avro (Rust).

Records that share a writer fingerprint are laid, without their 10-byte single-object prefix, into one in-memory
Avro object container — a header naming the writer schema, then one block of the bodies back to back — which is
exactly what a container file of those records holds. polars-avro decodes it into Arrow columns, projected to the
top-level fields the statistics read; no Python object is made per record. Each writer version (current, or older in
``schemas/avro/history``) gets its own container, and its columns are resolved to the current version's fields
the way Avro resolves a record: a field the writer lacks takes the current version's default
(:func:`resolved_column`). A release carries its event single-object encoded; the events are decoded the same way,
grouped by their own fingerprints, and joined back to their releases by row.

A record that cannot be decoded (cut short, an impossible length or union branch) makes polars-avro fail the whole
container; that group is then decoded again one record per container, so only the broken records are left out (and
counted), as they were before.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from contextlib import suppress
from io import BytesIO
from typing import Any

import numpy as np
import polars as pl
import polars_avro

from firebus.avro_schema import JsonSchema
from firebus.codec import PREFIX_LENGTH
from firebus.contracts import Contract

RELEASE_PATHS = (
    "tier",
    "event_id",
    "event_type",
    "incident_id",
    "decision.decided_at",
    "decision.reviewer",
    "decision.reviewer_kind",
    "released_at",
    "event",
)
"""What the statistics read of a release (a dotted path: a field of a nested record)."""

EVENT_PATHS = (
    "header.occurred_at",
    "header.published_at",
    "header.townships",
    "body.status",
    "body.discovered_at",
    "body.burned_area_ha",
    "body.suspected_cause",
    "body.forces",
)
"""What the statistics read of the event a release carries (the ``body`` fields: where the event type has them —
a fire report's status, discovery, area, cause and forces)."""

AUDIT_PATHS = ("audit_id", "action", "event_id", "event_type", "tier", "reason", "details", "at")
"""What the statistics read of an audit record."""

_SYNC = b"firebus-replay:1"
"""The containers' sync marker (any 16 bytes: a container made here is read once, here)."""


def _long(value: int) -> bytes:
    """An Avro long: zig-zag, then a little-endian base-128 varint."""
    value = (value << 1) ^ (value >> 63)
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _bytes(value: bytes) -> bytes:
    return _long(len(value)) + value


def _header(writer: Contract) -> bytes:
    """The header of a container of ``writer``'s single-object encoded values: magic, the metadata map (the
    schema of :func:`framed`, no compression) and the sync marker."""
    header = _HEADERS.get(writer.fingerprint)
    if header is None:
        schema = json.dumps(framed(writer.schema)).encode()
        metadata = _long(2) + _bytes(b"avro.schema") + _bytes(schema) + _bytes(b"avro.codec") + _bytes(b"null")
        header = _HEADERS[writer.fingerprint] = b"Obj\x01" + metadata + _long(0) + _SYNC
    return header


_HEADERS: dict[bytes, bytes] = {}


def framed(schema: JsonSchema) -> JsonSchema:
    """``schema`` (a record) with its single-object prefix as a first field: a fixed of 10 bytes. A single-object
    encoded value (prefix, then the record's fields in order) is exactly one record of this schema, so the values
    go into a container as they are, not cut and copied; the record's own fields keep their names (projection)."""
    prefix = {"name": PREFIX_FIELD, "type": {"type": "fixed", "name": "SingleObjectPrefix", "size": PREFIX_LENGTH}}
    return {**schema, "fields": [prefix, *schema["fields"]]}


PREFIX_FIELD = "__single_object_prefix"


def container(writer: Contract, values: Sequence[bytes | memoryview], count: int | None = None) -> bytes:
    """An Avro object container of single-object encoded ``values`` written with ``writer``: one block (of
    ``count`` records, when ``values`` are not one each)."""
    size = sum(map(len, values))
    count = len(values) if count is None else count
    return b"".join([_header(writer), _long(count), _long(size), *values, _SYNC])


def top_level(paths: Iterable[str]) -> list[str]:
    """The top-level fields of ``paths``, in order, once each."""
    return list(dict.fromkeys(path.split(".")[0] for path in paths))


def decode(
    writer: Contract, values: Sequence[bytes | memoryview], columns: Sequence[str], count: int | None = None
) -> pl.DataFrame:
    """Single-object encoded ``values`` of ``writer`` (``count`` records, when not one each) decoded into the
    ``columns`` the writer has; raises one of :data:`DECODE_ERRORS` when a value is not what ``writer`` wrote."""
    count = len(values) if count is None else count
    present = [name for name in columns if name in writer.fields]
    frame = polars_avro.read_avro(BytesIO(container(writer, values, count)), columns=present, batch_size=count or 1)
    if frame.height != count:
        raise polars_avro.AvroError(f"{frame.height} records decoded of {count}")
    return frame


DECODE_ERRORS = (polars_avro.AvroError, pl.exceptions.PolarsError, ValueError, OverflowError)
"""What a body that is not what its writer wrote makes the native reader raise."""


def decode_values(writer: Contract, values: Sequence[bytes], columns: Sequence[str]) -> tuple[pl.DataFrame, list[int]]:
    """Single-object encoded ``values`` of one ``writer``, decoded into ``columns``; and the positions of the
    values that could not be decoded (left out of the frame)."""
    try:
        return decode(writer, values, columns), []
    except DECODE_ERRORS:
        pass
    frames, broken = [], []
    for position, value in enumerate(values):  # only after a failure: one container each, to find the broken ones
        try:
            frames.append(decode(writer, [value], columns))
        except DECODE_ERRORS:
            broken.append(position)
    return (pl.concat(frames) if frames else decode(writer, [], columns)), broken


def decode_column(writer: Contract, values: pl.Series, columns: Sequence[str]) -> tuple[pl.DataFrame, list[int]]:
    """:func:`decode_values` of a binary column (the events of a group of releases), without a Python object per
    value while every value is sound: the values are taken from the column's Arrow buffer at once."""
    array = values.to_arrow(compat_level=pl.CompatLevel.oldest())
    _validity, offsets, data = array.buffers()
    if array.null_count == 0 and offsets is not None and data is not None:
        bounds = np.frombuffer(offsets, dtype=np.int64)  # large_binary: 64-bit offsets
        first, last = int(bounds[array.offset]), int(bounds[array.offset + len(array)])
        with suppress(*DECODE_ERRORS):
            return decode(writer, [memoryview(data)[first:last]], columns, len(values)), []
    return decode_values(writer, values.to_list(), columns)


def resolved_column(frame: pl.DataFrame, writer: Contract, reader: Contract, path: str) -> pl.Expr:
    """The value at ``path`` of records ``writer`` wrote, resolved to ``reader`` (the current version): the
    writer's own value where it has the field, else the reader's default (Avro's rule for an added field)."""
    if path in writer.fields:
        first, *rest = path.split(".")
        expression = pl.col(first)
        for name in rest:
            expression = expression.struct.field(name)
        return expression
    info = reader.fields.get(path)
    if info is None or not info.has_default:
        raise KeyError(f"{reader.name} v{reader.version} has no field {path!r} with a default")
    return _literal(info.default)


def _literal(value: Any) -> pl.Expr:
    if isinstance(value, list | tuple):
        return pl.lit(list(value), dtype=pl.List(pl.String))
    if isinstance(value, dict):
        return pl.lit(None, dtype=pl.String)
    return pl.lit(value)
