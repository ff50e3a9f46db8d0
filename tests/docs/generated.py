"""What the contract documents contain that the code decides: rendered here, compared by the tests, rewritten by
``python -m tests.docs.generated`` after a schema, topic or signing change.

* ``docs/asyncapi.yaml`` — :func:`firebus.asyncapi.asyncapi_yaml`;
* ``docs/openapi.json`` — the HTTP API's document, as ``firebus openapi`` prints it;
* ``docs/schemas/<stem>.avsc`` — every current schema, standalone (the shared named types inlined);
* the blocks of ``docs/wire-format.md`` between ``<!-- BEGIN GENERATED name -->`` and ``<!-- END GENERATED name -->``:
  the fingerprint table, the topic table, the value ranges, the release tiers and the signed test vector.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from io import BytesIO
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastavro import parse_schema, schemaless_writer
from pydantic import BaseModel

from cli.api_keys import api_document
from firebus.asyncapi import asyncapi_yaml
from firebus.codec import MAGIC
from firebus.contracts import Contract, ContractSet, default_contracts
from firebus.events import BODY_TYPES, Audience, EventType, Header
from firebus.topics import ALL_TOPICS
from processors.review import allowed_tiers
from tests.docs.avro_layout import Layout, Segment

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
WIRE_FORMAT = DOCS / "wire-format.md"
ASYNCAPI = DOCS / "asyncapi.yaml"
OPENAPI = DOCS / "openapi.json"
SCHEMAS = DOCS / "schemas"
REGENERATE = "python -m tests.docs.generated"

BLOCK = re.compile(
    r"<!-- BEGIN GENERATED (?P<name>[a-z-]+) -->\n(?P<body>.*?)<!-- END GENERATED (?P=name) -->", re.DOTALL
)

# --- the test vector ----------------------------------------------------------------------------------------

VECTOR_SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
"""The secret key of RFC 8032 section 7.1, TEST 1, so an Ed25519 library can be checked against the RFC too."""

VECTOR_UNIT = "forestry"
VECTOR_TYPE = EventType.FIRE_REPORT


def vector_event() -> dict[str, Any]:
    """The vector's event as Avro values: UUIDs as strings, timestamps as milliseconds, nulls for empty unions."""
    return {
        "header": {
            "event_id": "3f1c2a9e-7b4d-4e8a-9c51-6d2e8f0a1b3c",
            "event_type": VECTOR_TYPE.value,
            "schema_version": default_contracts().for_event_type(VECTOR_TYPE).version,
            "kind": "alert",
            "references": [],
            "incident_id": "YC-2026-0312-01",
            "publisher": {"unit": VECTOR_UNIT, "person": "张伟", "contact": "0356-4220119"},
            "classification": "internal",
            "audience": "members",
            "audience_townships": [],
            "severity": "moderate",
            "urgency": "immediate",
            "occurred_at": 1773297300000,
            "published_at": 1773297667250,
            "townships": ["manghe"],
            "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
            "signature": b"",
            "origin": None,
        },
        "body": {
            "place": {
                "township": "manghe",
                "village": "桑林村",
                "description": "东山坡，距瞭望台约1公里",
                "lat": 35.2583,
                "lon": 112.3671,
            },
            "discovered_at": 1773297480000,
            "status": "reported",
            "burned_area_ha": 0.5,
            "forces": [{"unit": "蟒河镇扑火队", "personnel": 12, "vehicles": 2, "equipment": ["风力灭火机"]}],
            "deaths": 0,
            "injuries": 0,
            "suspected_cause": None,
            "reporter_name": None,
            "reporter_phone": None,
            "serious_injuries": 0,
            "threatens": [],
            "satellite_pixels": None,
            "needs_support": False,
            "in_news": False,
            "extinguished_at": None,
        },
    }


@dataclass(frozen=True)
class Vector:
    contract: Contract
    event: dict[str, Any]
    unsigned: bytes
    signature: bytes
    record: bytes


def with_signature(event: Mapping[str, Any], signature: bytes) -> dict[str, Any]:
    signed = copy.deepcopy(dict(event))
    signed["header"]["signature"] = signature
    return signed


def single_object(contract: Contract, record: Mapping[str, Any]) -> bytes:
    """``C3 01``, the fingerprint, the Avro binary body — written by fastavro from the standalone schema alone."""
    buffer = BytesIO(MAGIC + contract.fingerprint)
    buffer.seek(0, 2)
    schemaless_writer(buffer, parse_schema(contract.schema, named_schemas={}), dict(record))
    return buffer.getvalue()


def vector_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(VECTOR_SEED)


@cache
def vector() -> Vector:
    contract = default_contracts().for_event_type(VECTOR_TYPE)
    event = vector_event()
    unsigned = single_object(contract, event)
    signature = vector_key().sign(unsigned)
    return Vector(contract, event, unsigned, signature, single_object(contract, with_signature(event, signature)))


def hex_dump(data: bytes) -> str:
    """16 bytes a line, the line's offset (hex) first, as ``xxd`` prints it without the text column."""
    lines = []
    for offset in range(0, len(data), 16):
        chunk = data[offset : offset + 16]
        lines.append(f"{offset:04x}: {chunk[:8].hex(' ')}  {chunk[8:].hex(' ')}".rstrip())
    return "\n".join(lines)


def parse_hex_dump(text: str) -> bytes:
    """The bytes of :func:`hex_dump` output (or of plain hex)."""
    return bytes.fromhex("".join(line.partition(": ")[2] if ": " in line else line for line in text.splitlines()))


def _fenced(info: str, body: str) -> str:
    return f"```{info}\n{body}\n```\n"


def _public_key_text() -> str:
    raw = vector_key().public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def _private_key_pem() -> str:
    return (
        vector_key()
        .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        .decode("ascii")
        .strip()
    )


def _schema_title(contract: Contract) -> str:
    return f"{contract.name} v{contract.version}"


def layout(found: Vector) -> list[tuple[int, Segment]]:
    """Each field's segment of the unsigned record with the offset it starts at."""
    placed = []
    offset = len(MAGIC) + 8
    for segment in Layout().record(found.contract.schema, found.event):
        placed.append((offset, segment))
        offset += len(segment.data)
    return placed


def signature_offset(found: Vector) -> int:
    return next(offset for offset, segment in layout(found) if segment.path == "header.signature")


def _layout_table(found: Vector) -> str:
    rows = [
        "| offset | length | field | encoded as |",
        "|---:|---:|---|---|",
        f"| 0 | 2 | marker | `{MAGIC.hex(' ')}` |",
        f"| 2 | 8 | fingerprint | `{found.contract.fingerprint.hex(' ')}`: {_schema_title(found.contract)} |",
    ]
    for offset, segment in layout(found):
        note = segment.note.replace("|", "\\|")
        if segment.path == "header.signature":
            note = "bytes, empty: length `00` (signed record: length `80 01` = 64, then the 64 signature bytes)"
        rows.append(f"| {offset} | {len(segment.data)} | `{segment.path}` | {note} |")
    return "\n".join(rows) + "\n"


def _vector_blocks() -> dict[str, str]:
    found = vector()
    shown = json.dumps(with_signature(found.event, b""), indent=2, ensure_ascii=False, default=lambda _: "")
    signature_at = signature_offset(found)
    return {
        "vector-key": (
            "Private key seed (32 bytes, hex):\n\n"
            + _fenced("text", VECTOR_SEED.hex())
            + "\nPublic key (32 bytes, hex):\n\n"
            + _fenced("text", vector_key().public_key().public_bytes_raw().hex())
            + f"\n`<keys_dir>/{VECTOR_UNIT}.pub` (and the registry's `public_key` value):\n\n"
            + _fenced("text", _public_key_text())
            + f"\n`<keys_dir>/{VECTOR_UNIT}.key` (PKCS#8 PEM, unencrypted):\n\n"
            + _fenced("text", _private_key_pem())
        ),
        "vector-event": _fenced("json", shown),
        "vector-unsigned": (
            f"{len(found.unsigned)} bytes; `header.signature` (one byte `00`) is at offset {signature_at}:\n\n"
            + _fenced("text", hex_dump(found.unsigned))
        ),
        "vector-signature": _fenced("text", found.signature.hex()),
        "vector-record": (
            f"{len(found.record)} bytes: at offset {signature_at} the `00` became `80 01` and the 64 signature bytes:"
            "\n\n" + _fenced("text", hex_dump(found.record))
        ),
        "vector-layout": _layout_table(found),
    }


# --- tables ---------------------------------------------------------------------------------------------------


def _fingerprint_table(contracts: ContractSet) -> str:
    current = {contract.fingerprint for contract in contracts}
    rows = [
        "| schema | record | version | fingerprint (64-bit, hex) | bytes 2–9 of a record | status |",
        "|---|---|---:|---|---|---|",
    ]
    for contract in sorted(contracts.released(), key=lambda c: (c.stem, c.version)):
        number = int.from_bytes(contract.fingerprint, "little")
        rows.append(
            f"| `{contract.stem}` | `{contract.name}` | {contract.version} | `{number:016x}` "
            f"| `{contract.fingerprint.hex(' ')}` | {'current' if contract.fingerprint in current else 'history'} |"
        )
    return "\n".join(rows) + "\n"


def _topic_table() -> str:
    rows = ["| topic | values (schema) | written by | read by |", "|---|---|---|---|"]
    for topic in ALL_TOPICS:
        schemas = ", ".join(f"`{stem}`" for stem in topic.value_schemas)
        writers = ", ".join(actor.value for actor in topic.writers)
        readers = ", ".join(actor.value for actor in topic.readers)
        rows.append(f"| `{topic.name}` | {schemas} | {writers} | {readers} |")
    return "\n".join(rows) + "\n"


_AVRO_INTEGER_BOUNDS = frozenset({-(2**31), 2**31 - 1, -(2**63), 2**63 - 1})
"""Bounds every Avro ``int`` / ``long`` has by its type: not a rule of its own."""


def _numeric_bounds(model: type[BaseModel], prefix: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(dotted path, {"ge": .., "le": ..})`` for every number field of ``model`` (nested records and arrays of
    records included) that the model bounds, in field order."""
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        found: dict[str, Any] = {}
        pending: list[Any] = [info.annotation]
        metadata = list(info.metadata)
        nested: list[tuple[type[BaseModel], str]] = []
        while pending:
            annotation = pending.pop()
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                nested.append((annotation, f"{path}[]." if typing.get_origin(info.annotation) is list else f"{path}."))
                continue
            arguments = typing.get_args(annotation)
            if typing.get_origin(annotation) is typing.Annotated:
                metadata += [getattr(extra, "metadata", [extra]) for extra in arguments[1:]]
                arguments = arguments[:1]
            pending += arguments
        for entry in _flat(metadata):
            for bound in ("ge", "gt", "le", "lt"):
                value = getattr(entry, bound, None)
                if value is not None and value not in _AVRO_INTEGER_BOUNDS:
                    found[bound] = value
        if found:
            yield path, found
        for inner, inner_prefix in nested:
            yield from _numeric_bounds(inner, inner_prefix)


def _flat(entries: list[Any]) -> Iterator[Any]:
    for entry in entries:
        if isinstance(entry, list):
            yield from _flat(entry)
        else:
            yield entry


def _bounds_text(bounds: Mapping[str, Any]) -> str:
    words = {"ge": "at least", "gt": "more than", "le": "at most", "lt": "less than"}
    return " and ".join(f"{words[bound]} {bounds[bound]}" for bound in ("ge", "gt", "le", "lt") if bound in bounds)


def _value_range_table() -> str:
    rows = ["| schema | field | value (when set) |", "|---|---|---|"]
    for event_type, body in BODY_TYPES.items():
        bounded = [*_numeric_bounds(Header, "header."), *_numeric_bounds(body, "body.")]
        rows += [f"| `{event_type.value}` | `{path}` | {_bounds_text(bounds)} |" for path, bounds in bounded]
    return "\n".join(rows) + "\n"


def _tier_table() -> str:
    rows = ["| `header.audience` | released to the tiers |", "|---|---|"]
    for audience in Audience:
        rows.append(f"| `{audience.value}` | {', '.join(f'`{tier.value}`' for tier in allowed_tiers(audience))} |")
    return "\n".join(rows) + "\n"


# --- the files ------------------------------------------------------------------------------------------------


def wire_format_blocks() -> dict[str, str]:
    """Every generated block of docs/wire-format.md by name, as it must read now."""
    contracts = default_contracts()
    return {
        "fingerprints": _fingerprint_table(contracts),
        "topics": _topic_table(),
        "value-ranges": _value_range_table(),
        "tiers": _tier_table(),
        **_vector_blocks(),
    }


def blocks_in(text: str) -> dict[str, str]:
    return {match["name"]: match["body"] for match in BLOCK.finditer(text)}


def with_blocks(text: str, blocks: Mapping[str, str]) -> str:
    return BLOCK.sub(lambda match: _block(match["name"], blocks[match["name"]]), text)


def _block(name: str, body: str) -> str:
    return f"<!-- BEGIN GENERATED {name} -->\n{body}<!-- END GENERATED {name} -->"


def standalone_schemas() -> dict[str, str]:
    """``docs/schemas/``: file name → text of every current schema, standalone, as the codec writes with it."""
    return {
        f"{contract.stem}.avsc": json.dumps(contract.schema, indent=2, ensure_ascii=False) + "\n"
        for contract in default_contracts()
    }


def openapi_text() -> str:
    """``docs/openapi.json``: the document the portal serves at /api/v1/openapi.json."""
    return json.dumps(api_document(), indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    ASYNCAPI.write_text(asyncapi_yaml(), encoding="utf-8")
    OPENAPI.write_text(openapi_text(), encoding="utf-8")
    SCHEMAS.mkdir(exist_ok=True)
    wanted = standalone_schemas()
    for stale in SCHEMAS.glob("*.avsc"):
        if stale.name not in wanted:
            stale.unlink()
    for name, text in wanted.items():
        (SCHEMAS / name).write_text(text, encoding="utf-8")
    WIRE_FORMAT.write_text(with_blocks(WIRE_FORMAT.read_text(encoding="utf-8"), wire_format_blocks()), encoding="utf-8")
    print(
        f"wrote {ASYNCAPI.relative_to(ROOT)}, {OPENAPI.relative_to(ROOT)},"
        f" {len(wanted)} schemas in {SCHEMAS.relative_to(ROOT)}/ and the blocks of "
        f"{WIRE_FORMAT.relative_to(ROOT)}"
    )


if __name__ == "__main__":
    main()
