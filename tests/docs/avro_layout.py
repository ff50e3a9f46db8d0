"""A second Avro binary encoder, written from the specification and docs/wire-format.md rather than with fastavro.

It encodes a record field by field and says where each field's bytes are, which is the layout table of the
document's test vector; the tests prove its bytes equal the codec's, so the rules the document states are enough to
build an encoder (and the table cannot drift from the bytes).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Segment:
    """The bytes of one field (or of an array's framing) and how they encode its value."""

    path: str
    data: bytes
    note: str


def zigzag_varint(value: int) -> bytes:
    """Avro int/long: zigzag, then 7 bits a byte, low bits first, high bit set on every byte but the last."""
    number = (value << 1) ^ (value >> 63)
    out = bytearray()
    while number >= 0x80:
        out.append((number & 0x7F) | 0x80)
        number >>= 7
    out.append(number)
    return bytes(out)


def _hex(data: bytes) -> str:
    return f"`{data.hex(' ')}`"


class Layout:
    """Encodes values of a standalone schema, naming the named types as it meets their definitions."""

    def __init__(self) -> None:
        self.named: dict[str, Any] = {}

    def record(self, schema: Mapping[str, Any], value: Mapping[str, Any], path: str = "") -> Iterator[Segment]:
        self._define(schema, "")
        yield from self._record_fields(schema, value, path, _namespace(schema, ""))

    # --- one value -------------------------------------------------------------------------------------------

    def _define(self, schema: Mapping[str, Any], namespace: str) -> None:
        self.named[_full_name(schema["name"], schema.get("namespace", namespace))] = schema

    def _resolve(self, schema: Any, namespace: str) -> Any:
        if isinstance(schema, str) and schema not in _PRIMITIVES:
            return self.named[schema if "." in schema else f"{namespace}.{schema}"]
        if isinstance(schema, dict) and schema.get("type") in ("record", "enum", "fixed"):
            self._define(schema, namespace)
        return schema

    def _record_fields(
        self, schema: Mapping[str, Any], value: Mapping[str, Any], path: str, namespace: str
    ) -> Iterator[Segment]:
        for field in schema["fields"]:
            field_path = f"{path}.{field['name']}" if path else field["name"]
            yield from self._value(field["type"], value[field["name"]], field_path, namespace)

    def _value(self, schema: Any, value: Any, path: str, namespace: str) -> Iterator[Segment]:
        schema = self._resolve(schema, namespace)
        if isinstance(schema, list):
            yield from self._union(schema, value, path, namespace)
            return
        kind = schema if isinstance(schema, str) else schema["type"]
        if kind == "record":
            yield from self._record_fields(schema, value, path, _namespace(schema, namespace))
        elif kind == "array":
            yield from self._array(schema["items"], value, path, namespace)
        elif kind == "map":
            raise NotImplementedError("no firebus event has a map")
        else:
            data, note = self._primitive(schema, value, namespace)
            yield Segment(path, data, note)

    def _union(self, branches: list[Any], value: Any, path: str, namespace: str) -> Iterator[Segment]:
        index = next(i for i, branch in enumerate(branches) if _fits(self._resolve(branch, namespace), value))
        marker = zigzag_varint(index)
        branch = self._resolve(branches[index], namespace)
        name = branch if isinstance(branch, str) else branch["type"]
        if value is None:
            yield Segment(path, marker, f"union branch {index} (null): {_hex(marker)}")
            return
        inner = list(self._value(branch, value, path, namespace))
        if len(inner) != 1:
            raise NotImplementedError("a union of records is not laid out field by field here")
        yield Segment(
            path, marker + inner[0].data, f"union branch {index} ({name}) {_hex(marker)}, then {inner[0].note}"
        )

    def _array(self, items: Any, value: list[Any], path: str, namespace: str) -> Iterator[Segment]:
        if not value:
            yield Segment(path, b"\x00", "array, empty: count 0 `00`")
            return
        count = zigzag_varint(len(value))
        item_segments = [list(self._value(items, item, f"{path}[{i}]", namespace)) for i, item in enumerate(value)]
        if all(len(segments) == 1 for segments in item_segments):
            notes = "; ".join(segments[0].note for segments in item_segments)
            data = count + b"".join(segments[0].data for segments in item_segments) + b"\x00"
            yield Segment(path, data, f"array: one block, count {len(value)} {_hex(count)}; {notes}; end: count 0 `00`")
            return
        yield Segment(path, count, f"array: one block, count {len(value)} {_hex(count)}; the items follow")
        for segments in item_segments:
            yield from segments
        yield Segment(path, b"\x00", "array: end, count 0 `00`")

    def _primitive(self, schema: Any, value: Any, namespace: str) -> tuple[bytes, str]:
        kind = schema if isinstance(schema, str) else schema["type"]
        logical = schema.get("logicalType") if isinstance(schema, dict) else None
        if kind == "enum":
            index = schema["symbols"].index(value)
            data = zigzag_varint(index)
            return data, f'enum symbol "{value}" = index {index}: {_hex(data)}'
        if isinstance(value, datetime):  # as fastavro decodes a timestamp-millis
            value = (value - _EPOCH) // timedelta(milliseconds=1)
        if isinstance(value, UUID):  # as fastavro decodes a uuid
            value = str(value)
        if kind in ("int", "long"):
            data = zigzag_varint(value)
            if logical == "timestamp-millis":
                moment = (_EPOCH + timedelta(milliseconds=value)).isoformat(timespec="milliseconds")
                return data, f"timestamp-millis {value} ({moment.replace('+00:00', 'Z')}): zigzag varint {_hex(data)}"
            return data, f"{kind} {value}: zigzag varint {_hex(data)}"
        if kind == "double":
            data = struct.pack("<d", value)
            return data, f"double {value}: IEEE 754, little-endian {_hex(data)}"
        if kind == "boolean":
            return (b"\x01" if value else b"\x00"), f"boolean {str(value).lower()}"
        if kind == "string":
            text = value.encode("utf-8")
            length = zigzag_varint(len(text))
            shown = f"{logical} " if logical else ""
            return length + text, f'{shown}string, {len(text)} UTF-8 bytes (length {_hex(length)}): "{value}"'
        if kind == "bytes":
            length = zigzag_varint(len(value))
            return length + value, f"bytes, {len(value)} (length {_hex(length)})"
        raise NotImplementedError(f"no layout for {kind}")


_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})


def _fits(schema: Any, value: Any) -> bool:
    kind = schema if isinstance(schema, str) else schema["type"]
    return {
        "null": value is None,
        "string": isinstance(value, str | UUID),
        "double": isinstance(value, float),
        "long": isinstance(value, int | datetime),
        "int": isinstance(value, int),
        "boolean": isinstance(value, bool),
        "bytes": isinstance(value, bytes),
    }.get(kind, isinstance(value, dict | list))


def _full_name(name: str, namespace: str) -> str:
    return name if "." in name or not namespace else f"{namespace}.{name}"


def _namespace(schema: Mapping[str, Any], enclosing: str) -> str:
    return _full_name(schema["name"], schema.get("namespace", enclosing)).rpartition(".")[0]
