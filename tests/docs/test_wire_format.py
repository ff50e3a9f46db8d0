"""docs/wire-format.md against the code: its generated blocks are what the code makes now, and what it states — the
fingerprints, which bytes are signed, the key files, the layout of the test vector, the limits and the reason codes
— holds when checked with other means than the ones that rendered it (fastavro alone, the RFC's key, a second
encoder, the intake gate)."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from fastavro import parse_schema, schemaless_reader
from fastavro.schema import fingerprint, to_parsing_canonical_form

from firebus.codec import Codec
from firebus.contracts import default_contracts
from firebus.county import County
from firebus.deadletters import SourceRecord
from firebus.errors import SignatureError
from firebus.events import Event
from firebus.records import DeadLetterReason
from firebus.rules import MAX_CLOCK_SKEW, MAX_EVENT_AGE
from firebus.settings import Settings
from firebus.signing import check_signature, load_signing_key, registered_public_keys, sign_event
from firebus.text import FORBIDDEN_CHARACTERS
from processors.intake import Accepted, IntakeValidator
from producers import FirebusClient, load_draft
from schemas import AVRO_DIR
from tests.docs.avro_layout import Layout
from tests.docs.generated import (
    REGENERATE,
    SCHEMAS,
    VECTOR_UNIT,
    WIRE_FORMAT,
    blocks_in,
    parse_hex_dump,
    standalone_schemas,
    vector_event,
    wire_format_blocks,
    with_signature,
)
from tests.samples import EXAMPLES, SAMPLE_PUBLISHER

FENCED = re.compile(r"```[a-z]*\n(.*?)\n```", re.DOTALL)
STALE = f"docs are stale: run `{REGENERATE}`"


@pytest.fixture(scope="module")
def document() -> str:
    return WIRE_FORMAT.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def blocks(document: str) -> dict[str, str]:
    return blocks_in(document)


def fenced(block: str) -> list[str]:
    return FENCED.findall(block)


def table_rows(block: str) -> list[list[str]]:
    """The cells of a markdown table's body rows, without the header and separator."""
    lines = [line for line in block.splitlines() if line.startswith("|")][2:]
    return [[cell.strip().strip("`") for cell in line.strip("|").split("|")] for line in lines]


@pytest.fixture(scope="module")
def vector(blocks: dict[str, str]) -> dict[str, Any]:
    """The test vector as the document shows it, parsed back from its hex and JSON blocks."""
    seed, public, pub_file, pem = fenced(blocks["vector-key"])
    offset = re.search(r"is at offset (\d+)", blocks["vector-unsigned"])
    assert offset is not None
    return {
        "seed": bytes.fromhex(seed),
        "public": bytes.fromhex(public),
        "pub_file": pub_file,
        "pem": pem,
        "event": json.loads(fenced(blocks["vector-event"])[0]),
        "unsigned": parse_hex_dump(fenced(blocks["vector-unsigned"])[0]),
        "signature_offset": int(offset[1]),
        "signature": bytes.fromhex(fenced(blocks["vector-signature"])[0]),
        "record": parse_hex_dump(fenced(blocks["vector-record"])[0]),
    }


# --- the document is what the code makes ---------------------------------------------------------------------


def test_every_generated_block_is_what_the_code_makes_now(blocks: dict[str, str]) -> None:
    """Each block between GENERATED markers equals its rendering from the code (schemas, topics, signing)."""
    expected = wire_format_blocks()
    assert sorted(blocks) == sorted(expected), STALE
    for name, body in expected.items():
        assert blocks[name] == body, f"block {name}: {STALE}"


def test_the_standalone_schema_files_are_the_current_writer_schemas() -> None:
    """docs/schemas holds exactly one file per current schema, the standalone schema the codec writes with."""
    expected = standalone_schemas()
    found = {path.name: path.read_text(encoding="utf-8") for path in SCHEMAS.glob("*.avsc")}
    assert sorted(found) == sorted(expected), STALE
    for name, text in expected.items():
        assert found[name] == text, f"{name}: {STALE}"


# --- what the document states is true ------------------------------------------------------------------------


def test_the_fingerprint_table_holds_for_the_shipped_schema_files(blocks: dict[str, str]) -> None:
    """Every row's 64-bit value is its wire bytes read little-endian, and equals fastavro's CRC-64-AVRO of the
    Parsing Canonical Form of the standalone file: docs/schemas for current versions, schemas/avro/history else."""
    rows = table_rows(blocks["fingerprints"])
    assert rows
    current = set()
    for stem, _name, version, number, wire, status in rows:
        wire_bytes = bytes.fromhex(wire.replace(" ", ""))
        assert int.from_bytes(wire_bytes, "little") == int(number, 16)
        path = SCHEMAS / f"{stem}.avsc" if status == "current" else AVRO_DIR / "history" / f"{stem}.v{version}.avsc"
        schema = json.loads(path.read_text(encoding="utf-8"))
        assert fingerprint(to_parsing_canonical_form(schema), "CRC-64-AVRO") == wire_bytes.hex()
        assert schema["firebus.version"] == int(version)
        if status == "current":
            current.add(stem)
    assert current == {contract.stem for contract in default_contracts()}
    assert len(rows) == len(list(default_contracts().released()))


def test_the_vector_key_files_are_the_rfc_8032_key_in_the_documented_formats(vector: dict[str, Any]) -> None:
    """The seed's public key is RFC 8032 TEST 1's; the .pub line is its base64 and the PEM loads as that key."""
    key = Ed25519PrivateKey.from_private_bytes(vector["seed"])
    raw_public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert raw_public == vector["public"]
    assert vector["public"].hex() == "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    assert base64.b64decode(vector["pub_file"], validate=True) == vector["public"]
    loaded = serialization.load_pem_private_key(vector["pem"].encode("ascii"), password=None)
    assert isinstance(loaded, Ed25519PrivateKey)
    assert loaded.private_bytes_raw() == vector["seed"]


def test_firebus_reads_the_documented_key_files(vector: dict[str, Any], tmp_path: Path) -> None:
    """The library loads the PEM as `<keys_dir>/<unit>.key`: the formats stated are the ones firebus reads."""
    (tmp_path / f"{VECTOR_UNIT}.key").write_text(vector["pem"] + "\n", encoding="ascii")
    assert load_signing_key(tmp_path, VECTOR_UNIT).private_bytes_raw() == vector["seed"]


def test_the_signature_covers_exactly_the_unsigned_bytes(vector: dict[str, Any]) -> None:
    """Ed25519 of the unsigned record gives the signature shown; the record sent is the unsigned one with the
    signature's `00` replaced by `80 01` and the 64 bytes, nothing else changed."""
    key = Ed25519PrivateKey.from_private_bytes(vector["seed"])
    assert key.sign(vector["unsigned"]) == vector["signature"]
    Ed25519PublicKey.from_public_bytes(vector["public"]).verify(vector["signature"], vector["unsigned"])
    at = vector["signature_offset"]
    assert vector["unsigned"][at] == 0
    spliced = vector["unsigned"][:at] + b"\x80\x01" + vector["signature"] + vector["unsigned"][at + 1 :]
    assert spliced == vector["record"]
    with pytest.raises(InvalidSignature):
        Ed25519PublicKey.from_public_bytes(vector["public"]).verify(vector["signature"], vector["record"])


def test_the_vector_decodes_with_the_standalone_schema_alone(vector: dict[str, Any]) -> None:
    """fastavro with nothing but docs/schemas/fire_report.avsc reads the record back into the event shown."""
    schema = json.loads((SCHEMAS / "fire_report.avsc").read_text(encoding="utf-8"))
    record = vector["record"]
    assert record[:2] == b"\xc3\x01"
    assert record[2:10].hex() == fingerprint(to_parsing_canonical_form(schema), "CRC-64-AVRO")
    stream = BytesIO(record[10:])
    decoded = schemaless_reader(stream, parse_schema(schema), None)
    assert stream.tell() == len(record) - 10
    assert as_avro_values(decoded) == with_signature(vector["event"], vector["signature"])


def as_avro_values(value: Any) -> Any:
    """fastavro's decoded values as the document writes them: UUIDs as text, timestamps as milliseconds."""
    if isinstance(value, dict):
        return {key: as_avro_values(item) for key, item in value.items()}
    if isinstance(value, list):
        return [as_avro_values(item) for item in value]
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return (value - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
    return value


def test_the_library_signs_and_encodes_the_vector_to_the_same_bytes(vector: dict[str, Any]) -> None:
    """firebus's own codec and signer, given the event shown, produce the record shown byte for byte."""
    codec = Codec()
    contract = default_contracts().for_event_type(vector_event()["header"]["event_type"])
    unsigned = codec.decode(vector["unsigned"])
    assert isinstance(unsigned, Event)
    assert codec.encode(unsigned) == vector["unsigned"]
    signed = sign_event(codec, unsigned, Ed25519PrivateKey.from_private_bytes(vector["seed"]))
    assert signed.header.signature == vector["signature"]
    assert codec.encode(signed) == vector["record"]
    assert codec.encode_data(contract, with_signature(vector["event"], b"")) == vector["unsigned"]


def test_firebus_verifies_the_vector_and_refuses_it_altered(vector: dict[str, Any]) -> None:
    """The intake's signature check accepts the record sent and refuses it with any body byte changed."""
    codec = Codec()
    keys = {VECTOR_UNIT: Ed25519PublicKey.from_public_bytes(vector["public"])}
    assert check_signature(codec, vector["record"], keys) == VECTOR_UNIT
    altered = bytearray(vector["record"])
    altered[-10] ^= 0x01  # inside body.forces[0].equipment's text
    with pytest.raises(SignatureError):
        check_signature(codec, bytes(altered), keys)


def test_the_intake_gate_accepts_the_vector_when_it_is_fresh(
    county: County, vector: dict[str, Any], tmp_path: Path
) -> None:
    """With the vector's public key in the registry (`public_key`, as documented), intake accepts the record at its
    publication time: the vector meets every intake rule, not only the byte format. Its partition key is its
    incident id."""
    units = tuple(
        unit.model_copy(update={"public_key": vector["pub_file"]}) if unit.id == VECTOR_UNIT else unit
        for unit in county.units
    )
    keys = registered_public_keys(county.model_copy(update={"units": units}), tmp_path)
    validator = IntakeValidator(codec=Codec(), county=county, public_keys=keys)
    published = datetime.fromtimestamp(vector["event"]["header"]["published_at"] / 1000, UTC)
    source = SourceRecord("firebus.intake.fire_report", 0, 0, None, vector["record"])
    verdict = validator.check(source, now=published)
    assert isinstance(verdict, Accepted), verdict
    assert verdict.event.partition_key() == vector["event"]["header"]["incident_id"]


def test_an_uppercase_uuid_breaks_the_signature_as_documented(vector: dict[str, Any]) -> None:
    """The header table's warning holds: an event id written in uppercase decodes, but the re-encoding the
    verifier signs over is lowercase, so a signature over the uppercase bytes does not verify."""
    codec = Codec()
    contract = default_contracts().for_event_type(vector_event()["header"]["event_type"])
    event = with_signature(vector["event"], b"")
    event["header"]["event_id"] = event["header"]["event_id"].upper()
    key = Ed25519PrivateKey.from_private_bytes(vector["seed"])
    signed = with_signature(event, key.sign(codec.encode_data(contract, event)))
    keys = {VECTOR_UNIT: key.public_key()}
    with pytest.raises(SignatureError):
        check_signature(codec, codec.encode_data(contract, signed), keys)


def test_the_layout_table_adds_up_to_the_unsigned_record(blocks: dict[str, str], vector: dict[str, Any]) -> None:
    """The layout rows are contiguous, cover the unsigned record exactly, and put the signature where stated."""
    rows = table_rows(blocks["vector-layout"])
    position = 0
    for offset, length, field, _encoding in rows:
        assert int(offset) == position
        position += int(length)
        if field == "header.signature":
            assert int(offset) == vector["signature_offset"]
    assert position == len(vector["unsigned"])


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.json")), ids=lambda path: path.stem)
def test_the_encoding_rules_stated_are_enough_to_encode_every_event_type(
    path: Path, county: County, keys_dir: Path
) -> None:
    """A second encoder that follows only the rules the document states (tests/docs/avro_layout.py) writes every
    sample event, signed, to the same bytes as the codec."""
    codec = Codec()
    draft = load_draft(path)
    client = FirebusClient(settings=Settings(keys_dir=keys_dir), unit=SAMPLE_PUBLISHER[draft.event_type], county=county)
    written = codec.encode(client.prepare(draft, now=datetime(2026, 3, 12, 8, 0, tzinfo=UTC)))
    contract, record = codec.decode_data(written, as_written=True)
    body = b"".join(segment.data for segment in Layout().record(contract.schema, record))
    assert b"\xc3\x01" + contract.fingerprint + body == written


def test_the_stated_limits_are_the_code_s(document: str) -> None:
    """The timestamp allowances the document names are the rules' constants."""
    assert f"{MAX_CLOCK_SKEW // timedelta(minutes=1)} minutes" in document
    assert f"{MAX_EVENT_AGE.days} days" in document


def test_the_header_table_lists_every_header_field_in_wire_order(document: str) -> None:
    """One row per field of firebus.Header (publisher's fields dotted), in the order they are encoded."""
    section = document.split("## Header fields", 1)[1].split("###", 1)[0]
    listed = [row[0] for row in table_rows(section)]
    header = next(f for f in default_contracts().current("fire_report").schema["fields"] if f["name"] == "header")
    expected = []
    for field in header["type"]["fields"]:
        if isinstance(field["type"], dict) and field["type"].get("type") == "record":
            expected += [f"{field['name']}.{inner['name']}" for inner in field["type"]["fields"]]
        else:
            expected.append(field["name"])
    assert listed == expected


def test_the_reason_table_lists_every_dead_letter_reason(document: str) -> None:
    """The reason codes explained are exactly the dead_letter schema's symbols."""
    section = document.split("The reason codes", 1)[1].split("\n\n", 2)[1]
    assert [row[0] for row in table_rows(section)] == [reason.value for reason in DeadLetterReason]


def test_the_text_rules_list_every_code_point_firebus_refuses(document: str) -> None:
    """The characters the Text rules section forbids, range by range as it names them, are exactly those the text
    check refuses."""
    section = " ".join(document.split("### Text rules", 1)[1].split("###", 1)[0].split())
    named = [
        "U+0000–U+001F",
        "U+0009",
        "U+000A",
        "U+007F",
        "U+0080–U+009F",
        "U+FDD0–U+FDEF",
        "U+FFFE, U+FFFF, U+1FFFE, U+1FFFF … U+10FFFE, U+10FFFF",
        "U+D800–U+DFFF",
        "U+202A–U+202E, U+2066–U+2069",
    ]
    assert [text for text in named if text not in section] == []
    documented = (
        (set(range(0x00, 0x20)) - {0x09, 0x0A})
        | {0x7F}
        | set(range(0x80, 0xA0))
        | set(range(0xFDD0, 0xFDF0))
        | {plane << 16 | low for plane in range(17) for low in (0xFFFE, 0xFFFF)}
        | set(range(0xD800, 0xE000))
        | set(range(0x202A, 0x202F))
        | set(range(0x2066, 0x206A))
    )
    refused = {code for code in range(0x110000) if FORBIDDEN_CHARACTERS.fullmatch(chr(code))}
    assert refused == documented
