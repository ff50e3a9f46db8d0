"""The single-object codec and signatures: exact round trips, typed errors for every kind of bad bytes (never an
untyped exception), model rules applied on the way out, an independently checked CRC-64-AVRO, and signatures that
catch tampering, impersonation, missing signatures and records that are not events.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import fastavro
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from firebus.codec import MAGIC, PREFIX_LENGTH, Codec
from firebus.contracts import default_contracts, fingerprint_of, load_history
from firebus.county import County
from firebus.errors import (
    CorruptRecordError,
    DecodeError,
    InvalidEventError,
    SignatureError,
    UnknownSchemaError,
)
from firebus.events import Audience, Event, EventType
from firebus.records import (
    AuditAction,
    AuditEvent,
    DeadLetter,
    DeadLetterReason,
    ReviewDecision,
    ReviewerKind,
    ReviewStatus,
    Verdict,
)
from firebus.settings import Settings
from firebus.signing import (
    SIGNATURE_LENGTH,
    check_signature,
    load_signing_key,
    registered_public_keys,
    sign_event,
)
from producers import FirebusClient, load_draft
from schemas import AVRO_DIR
from tests.samples import EXAMPLES, SAMPLE_PUBLISHER, review_item

NOW = datetime(2026, 3, 12, 8, 0, tzinfo=UTC)
SAMPLE_UNITS = SAMPLE_PUBLISHER
TYPES = list(SAMPLE_UNITS)

TYPED = (DecodeError, InvalidEventError)
"""What decoding may raise: every other exception is a bug."""


@pytest.fixture(scope="module")
def codec() -> Codec:
    return Codec()


@pytest.fixture(scope="module")
def samples(keys_dir: Path, county: County, tmp_path_factory: pytest.TempPathFactory) -> dict[EventType, Event[Any]]:
    """Every sample draft prepared (validated and signed) by its unit at ``NOW``."""
    configured = Settings(keys_dir=keys_dir, home=tmp_path_factory.mktemp("home"))
    return {
        event_type: FirebusClient(settings=configured, unit=unit, county=county).prepare(
            load_draft(EXAMPLES / f"{event_type.value}.json"), now=NOW
        )
        for event_type, unit in SAMPLE_UNITS.items()
    }


@pytest.fixture(scope="module")
def encoded(samples: dict[EventType, Event[Any]], codec: Codec) -> dict[EventType, bytes]:
    return {event_type: codec.encode(event) for event_type, event in samples.items()}


@pytest.fixture(scope="module")
def public_keys(county: County, keys_dir: Path) -> dict[str, Ed25519PublicKey]:
    return registered_public_keys(county, keys_dir)


def governance_records() -> list[BaseModel]:
    return [
        ReviewDecision(
            decision_id=uuid4(),
            event_id=uuid4(),
            event_type=EventType.FIRE_REPORT,
            verdict=Verdict.APPROVE,
            reviewer="hq-wang",
            reviewer_kind=ReviewerKind.HUMAN,
            tiers=[Audience.MEMBERS, Audience.PUBLIC],
            redactions=["body.reporter_phone"],
            reason="核实无误",
            decided_at=NOW,
            trace_id=uuid4().hex,
        ),
        AuditEvent(
            audit_id=uuid4(),
            action=AuditAction.QUARANTINED,
            event_id=uuid4(),
            event_type=EventType.CASE_UPDATE,
            actor="intake",
            publisher_unit="police",
            tier=Audience.HQ,
            reason="classified",
            details={"topic": "firebus.intake", "offset": "12"},
            at=NOW,
        ),
        DeadLetter(
            dead_letter_id=uuid4(),
            reason_code=DeadLetterReason.CORRUPT,
            reason="truncated",
            stage="intake",
            source_topic="firebus.intake.fire_report",
            source_partition=3,
            source_offset=2**40,
            key=b"YC-1",
            value=b"\xc3\x01\x00\xff",
            at=NOW,
        ),
    ]


# --- round trips -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("event_type", TYPES)
def test_sample_event_round_trips(samples: dict[EventType, Event[Any]], codec: Codec, event_type: EventType):
    """prepare → encode → decode gives back an equal event, encoded with its type's current contract."""
    event = samples[event_type]
    data = codec.encode(event)
    contract = codec.contracts.for_event_type(event_type)
    assert data[:2] == MAGIC
    assert data[2:PREFIX_LENGTH] == contract.fingerprint
    assert codec.decode(data) == event
    assert codec.encode(codec.decode(data)) == data


@pytest.mark.parametrize("record", governance_records(), ids=lambda r: type(r).__name__)
def test_governance_record_round_trips(codec: Codec, record: BaseModel):
    """Review decisions, audit events and dead letters round trip through the codec unchanged."""
    assert codec.decode(codec.encode(record)) == record


# --- bad bytes ---------------------------------------------------------------------------------------------------


BAD_BYTES = [
    pytest.param(lambda d: b"", (CorruptRecordError, "record is 0 bytes, shorter than the 10-byte prefix"), id="empty"),
    pytest.param(lambda d: d[:1], (CorruptRecordError, "record is 1 bytes"), id="one-byte"),
    pytest.param(lambda d: d[:9], (CorruptRecordError, "record is 9 bytes"), id="short-of-prefix"),
    pytest.param(lambda d: b"\x00\x01" + d[2:], (CorruptRecordError, "C3 01 (got 0001)"), id="wrong-magic"),
    pytest.param(lambda d: b"\xc3\x00" + d[2:], (CorruptRecordError, "(got c300)"), id="wrong-magic-version"),
    pytest.param(lambda d: b"Obj\x01" + d[4:], (CorruptRecordError, "(got 4f62)"), id="container-file"),
    pytest.param(lambda d: b'{"header": {}}', (CorruptRecordError, "(got 7b22)"), id="json-text"),
    pytest.param(
        lambda d: MAGIC + bytes(8) + d[PREFIX_LENGTH:],
        (UnknownSchemaError, "unknown writer schema fingerprint 0000000000000000"),
        id="zero-fingerprint",
    ),
    pytest.param(lambda d: d[:PREFIX_LENGTH], (CorruptRecordError, "body is corrupt"), id="prefix-only"),
    pytest.param(lambda d: d[:-1], (CorruptRecordError, "body is corrupt"), id="one-byte-short"),
    pytest.param(lambda d: d + b"\x00", (CorruptRecordError, "1 unexpected bytes after"), id="trailing-zero"),
    pytest.param(lambda d: d + b"garbage", (CorruptRecordError, "7 unexpected bytes after"), id="trailing-garbage"),
    pytest.param(lambda d: d + d, (CorruptRecordError, "unexpected bytes after"), id="doubled"),
]


@pytest.mark.parametrize(("make", "expected"), BAD_BYTES)
@pytest.mark.parametrize("event_type", [EventType.FIRE_REPORT, EventType.WORK_UPDATE])
def test_bad_bytes_raise_typed_errors(
    encoded: dict[EventType, bytes],
    codec: Codec,
    event_type: EventType,
    make: Callable[[bytes], bytes],
    expected: tuple[type[DecodeError], str],
):
    """Each kind of malformed record raises its specific DecodeError with a message naming the problem."""
    error, fragment = expected
    with pytest.raises(error) as caught:
        codec.decode(make(encoded[event_type]))
    assert type(caught.value) is error
    assert fragment in str(caught.value)


@pytest.mark.parametrize("index", range(2, PREFIX_LENGTH))
def test_any_changed_fingerprint_byte_is_an_unknown_schema(encoded: dict[EventType, bytes], codec: Codec, index: int):
    """Changing any byte of the fingerprint gives UnknownSchemaError carrying exactly the 8 fingerprint bytes."""
    data = bytearray(encoded[EventType.RESOURCE])
    data[index] ^= 0x5A
    with pytest.raises(UnknownSchemaError) as caught:
        codec.decode(bytes(data))
    assert caught.value.fingerprint == bytes(data[2:PREFIX_LENGTH])
    assert caught.value.fingerprint.hex() in str(caught.value)


@pytest.mark.parametrize("event_type", TYPES)
def test_every_truncation_is_refused(
    samples: dict[EventType, Event[Any]], encoded: dict[EventType, bytes], codec: Codec, event_type: EventType
):
    """Every proper prefix of a valid record raises a typed error, or decodes to something re-encoding differently."""
    data = encoded[event_type]
    for length in range(len(data)):
        decoded: BaseModel | None = None
        error: Exception | None = None
        try:
            decoded = codec.decode(data[:length])
        except TYPED as exc:
            error = exc
        if error is None:
            assert decoded is not None
            assert decoded != samples[event_type]
            assert codec.encode(decoded) != data
        else:
            assert str(error)
            assert length > PREFIX_LENGTH or isinstance(error, CorruptRecordError)


@st.composite
def mutations(draw: st.DrawFn) -> tuple[EventType, list[tuple[int, int]], int | None]:
    """A sample type, byte flips (position, xor mask) and an optional cut length."""
    event_type = draw(st.sampled_from(TYPES))
    flips = draw(st.lists(st.tuples(st.integers(min_value=0, max_value=511), st.integers(1, 255)), max_size=4))
    cut = draw(st.none() | st.integers(min_value=0, max_value=511))
    return event_type, flips, cut


def mutate(data: bytes, flips: list[tuple[int, int]], cut: int | None) -> bytes:
    mutated = bytearray(data)
    for position, mask in flips:
        mutated[position % len(mutated)] ^= mask
    return bytes(mutated if cut is None else mutated[: cut % (len(mutated) + 1)])


@settings(max_examples=400, deadline=None)
@given(mutation=mutations())
def test_mutated_records_never_escape_untyped(
    samples: dict[EventType, Event[Any]],
    encoded: dict[EventType, bytes],
    codec: Codec,
    public_keys: dict[str, Ed25519PublicKey],
    mutation: tuple[EventType, list[tuple[int, int]], int | None],
):
    """Cut or flipped records raise only firebus errors, and pass the signature check only if unchanged in meaning."""
    event_type, flips, cut = mutation
    data = mutate(encoded[event_type], flips, cut)
    decoded: BaseModel | None = None
    try:
        decoded = codec.decode(data)
    except TYPED:
        decoded = None
    signed_by: str | None = None
    try:
        signed_by = check_signature(codec, data, public_keys)
    except (*TYPED, SignatureError):
        signed_by = None
    if signed_by is not None:
        assert signed_by == SAMPLE_UNITS[event_type]
        assert decoded == samples[event_type]


@pytest.mark.parametrize("event_type", TYPES)
def test_every_single_byte_flip_is_refused_or_changes_the_record(
    samples: dict[EventType, Event[Any]], encoded: dict[EventType, bytes], codec: Codec, event_type: EventType
):
    """Flipping every bit of each byte in turn either raises a firebus error saying what is wrong (never an untyped
    exception) or decodes to a different record, or to the same one only from another spelling of its values."""
    data = encoded[event_type]
    refused = 0
    for position in range(len(data)):
        flipped = bytearray(data)
        flipped[position] ^= 0xFF
        decoded: BaseModel | None = None
        error: Exception | None = None
        try:
            decoded = codec.decode(bytes(flipped))
        except TYPED as exc:
            error = exc
        if error is None:
            assert decoded is not None
            # The same record only from another spelling of the same values (fastavro reads any non-zero boolean
            # byte as true), which encodes back to the original bytes.
            assert decoded != samples[event_type] or codec.encode(decoded) == data, position
        else:
            assert str(error), position
            refused += 1
    assert refused >= PREFIX_LENGTH  # a flip in the marker or the fingerprint is always refused


# --- model rules on the way out ----------------------------------------------------------------------------------


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def apply(raw: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = raw
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        node[last] = value

    return apply


@pytest.mark.parametrize(
    ("event_type", "change", "field"),
    [
        pytest.param(EventType.RISK_WARNING, _set("body.danger_level", 9), "body.danger_level"),
        pytest.param(EventType.RISK_WARNING, _set("body.danger_level", 0), "body.danger_level"),
        pytest.param(
            EventType.FIRE_REPORT,
            _set("body.forces.0.personnel", -3),
            "body.forces.0.personnel",
        ),
        pytest.param(EventType.FIRE_REPORT, _set("body.injuries", -1), "body.injuries"),
        (EventType.FIRE_REPORT, _set("body.place.lat", 95.0), "body.place.lat"),
        (EventType.FIRE_REPORT, _set("body.burned_area_ha", -0.5), "body.burned_area_ha"),
        (EventType.FIRE_REPORT, _set("body.burned_area_ha", float("inf")), "body.burned_area_ha"),
        (EventType.FIRE_REPORT, _set("body.place.lat", float("nan")), "body.place.lat"),
        (EventType.RESOURCE, _set("body.capacity", float("inf")), "body.capacity"),
        (EventType.CASE_UPDATE, _set("body.suspects.0.age", 151), "body.suspects.0.age"),
        (EventType.CASE_UPDATE, _set("body.case_number", ""), "body.case_number"),
        (EventType.TRAFFIC_CONTROL, _set("body.road", ""), "body.road"),
        (EventType.RESOURCE, _set("body.lon", -181.0), "body.lon"),
        (EventType.WORK_UPDATE, _set("body.title", ""), "body.title"),
        (EventType.WORK_UPDATE, _set("header.event_type", "fire_report"), ""),
    ],
)
def test_valid_avro_breaking_a_model_rule_is_invalid(
    samples: dict[EventType, Event[Any]], codec: Codec, event_type: EventType, change: Any, field: str
):
    """A record that is valid Avro but breaks a model constraint decodes to InvalidEventError naming the field."""
    contract = codec.contracts.for_event_type(event_type)
    raw = samples[event_type].model_dump()
    change(raw)
    data = Codec.encode_data(contract, raw)
    with pytest.raises(InvalidEventError) as caught:
        codec.decode(data)
    assert type(caught.value) is InvalidEventError
    assert [problem.field for problem in caught.value.problems] == [field]
    assert str(caught.value).startswith(f"invalid {contract.name}: ")


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda raw: raw["body"].pop("status"), id="missing-field"),
        pytest.param(_set("body.status", "burning"), id="bad-enum-symbol"),
        pytest.param(_set("body.deaths", "three"), id="wrong-type"),
    ],
)
def test_data_that_does_not_fit_the_schema_is_refused_on_encode(
    samples: dict[EventType, Event[Any]], codec: Codec, change: Callable[[dict[str, Any]], Any]
):
    """encode_data refuses a raw record that does not fit its Avro schema with InvalidEventError."""
    raw = samples[EventType.FIRE_REPORT].model_dump()
    change(raw)
    with pytest.raises(InvalidEventError, match="does not fit firebus"):
        Codec.encode_data(codec.contracts.for_event_type(EventType.FIRE_REPORT), raw)


@pytest.mark.parametrize(
    ("change", "error"),
    [
        pytest.param(_set("body.deaths", 2**40), InvalidEventError, id="int32-overflow"),
        pytest.param(_set("header.schema_version", -(2**33)), InvalidEventError, id="int32-underflow"),
        pytest.param(_set("header.event_id", "not-a-uuid"), DecodeError, id="bad-uuid"),
    ],
)
def test_values_avro_writes_unchecked_are_refused_on_read(
    samples: dict[EventType, Event[Any]], codec: Codec, change: Callable[[dict[str, Any]], Any], error: type[Exception]
):
    """Values fastavro writes without range/format checks (int32 overflow, bad uuid) fail typed on decode."""
    raw = samples[EventType.FIRE_REPORT].model_dump()
    change(raw)
    data = Codec.encode_data(codec.contracts.for_event_type(EventType.FIRE_REPORT), raw)
    with pytest.raises(error):
        codec.decode(data)


# --- CRC-64-AVRO -------------------------------------------------------------------------------------------------

EMPTY = 0xC15D213AA4D7A795
"""The Avro specification's seed (and fingerprint of the empty input)."""


def rabin_bitwise(data: bytes) -> int:
    """The spec's 64-bit Rabin fingerprint, one bit at a time (no table), written independently of firebus."""
    fingerprint = EMPTY
    for byte in data:
        fingerprint ^= byte
        for _ in range(8):
            fingerprint = (fingerprint >> 1) ^ (EMPTY if fingerprint & 1 else 0)
    return fingerprint


@pytest.mark.parametrize("text", ["", "\x00", "\xff", '"int"', '"null"', "阳城县", "".join(map(chr, range(256)))])
def test_fingerprint_of_matches_the_bitwise_definition(text: str):
    """fingerprint_of is the little-endian bitwise Rabin fingerprint of the UTF-8 text, seed included."""
    assert fingerprint_of(text) == rabin_bitwise(text.encode("utf-8")).to_bytes(8, "little")


def test_fingerprint_of_empty_input_is_the_seed():
    """The fingerprint of nothing is the spec's EMPTY constant."""
    assert fingerprint_of("") == EMPTY.to_bytes(8, "little")


@given(st.text(max_size=300))
def test_fingerprint_of_matches_the_bitwise_definition_on_any_text(text: str):
    """fingerprint_of agrees with the bitwise spec implementation on arbitrary text."""
    assert fingerprint_of(text) == rabin_bitwise(text.encode("utf-8", "surrogatepass")).to_bytes(8, "little")


def test_fingerprint_of_int_is_the_specifications_example():
    """The Avro specification gives 0x7275d51a3f395c8f as the CRC-64-AVRO of "int"; on the wire it is little-endian."""
    assert fingerprint_of('"int"') == bytes.fromhex("8f5c393f1ad57572")


FROZEN_FINGERPRINTS = {
    "fire_report.v1": "b9d983180b92fe0f",
    "review_decision.v1": "16ebf22bf52ca188",
    "audit_event.v1": "83ced6b2017e27ad",
    "work_update.v1": "ce39aac9de42e459",
}
"""Fingerprints of frozen schema versions (never edited): a change of fingerprinting cannot pass unseen."""


@pytest.mark.parametrize(("version", "expected"), FROZEN_FINGERPRINTS.items())
def test_frozen_fingerprints_are_pinned(version: str, expected: str):
    """Released versions keep the fingerprint producers already write into every record."""
    frozen = {f"{c.stem}.v{c.version}": c for c in load_history(AVRO_DIR).values()}
    assert frozen[version].fingerprint.hex() == expected


@pytest.mark.parametrize("contract", list(default_contracts().released()), ids=lambda c: f"{c.stem}.v{c.version}")
def test_every_contract_fingerprint_is_the_bitwise_fingerprint_of_its_canonical_form(contract: Any):
    """Each released contract's fingerprint is the CRC-64-AVRO of its canonical form."""
    assert contract.fingerprint == rabin_bitwise(contract.canonical.encode("utf-8")).to_bytes(8, "little")


# --- signatures --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("event_type", TYPES)
def test_untouched_event_verifies(
    encoded: dict[EventType, bytes], codec: Codec, public_keys: dict[str, Ed25519PublicKey], event_type: EventType
):
    """A prepared event's encoding verifies against its publisher's registered key."""
    assert check_signature(codec, encoded[event_type], public_keys) == SAMPLE_UNITS[event_type]


def _last_body_text(event: Event[Any]) -> str:
    """The last plain string value of the body (not an enum), to tamper with."""
    texts = [v for v in event.body.model_dump().values() if type(v) is str and v]
    return texts[-1]


@pytest.mark.parametrize("event_type", TYPES)
def test_tampered_body_byte_is_caught(
    samples: dict[EventType, Event[Any]],
    encoded: dict[EventType, bytes],
    codec: Codec,
    public_keys: dict[str, Ed25519PublicKey],
    event_type: EventType,
):
    """One changed byte in a body text still decodes, but its signature no longer verifies."""
    data = bytearray(encoded[event_type])
    text = _last_body_text(samples[event_type]).encode("utf-8")
    position = bytes(data).rfind(text) + len(text) - 1
    assert position >= PREFIX_LENGTH + len(text) - 1
    data[position] ^= 0x01  # stays valid UTF-8: ASCII stays ASCII, a continuation byte stays one
    tampered = codec.decode(bytes(data))
    assert tampered != samples[event_type]
    with pytest.raises(SignatureError, match="does not verify"):
        check_signature(codec, bytes(data), public_keys)


@pytest.mark.parametrize(
    "case", [(EventType.FIRE_REPORT, "police"), (EventType.DIRECTIVE, "emergency"), (EventType.WORK_UPDATE, "twp_xihe")]
)
def test_signature_by_another_units_key_is_refused(
    samples: dict[EventType, Event[Any]],
    codec: Codec,
    keys_dir: Path,
    public_keys: dict[str, Ed25519PublicKey],
    case: tuple[EventType, str],
):
    """An event signed with another unit's key does not verify against its publisher's key."""
    event_type, signer = case
    forged = sign_event(codec, samples[event_type], load_signing_key(keys_dir, signer))
    with pytest.raises(SignatureError, match=f"against unit {SAMPLE_UNITS[event_type]}'s key"):
        check_signature(codec, codec.encode(forged), public_keys)


def test_changed_publisher_is_refused(
    samples: dict[EventType, Event[Any]], codec: Codec, public_keys: dict[str, Ed25519PublicKey]
):
    """Claiming another publisher for a signed event fails: the signature is checked against the claimed unit."""
    raw = samples[EventType.FIRE_REPORT].model_dump()
    raw["header"]["publisher"]["unit"] = "emergency"
    data = Codec.encode_data(codec.contracts.for_event_type(EventType.FIRE_REPORT), raw)
    with pytest.raises(SignatureError, match="unit emergency's key"):
        check_signature(codec, data, public_keys)


@pytest.mark.parametrize("length", [0, 1, SIGNATURE_LENGTH - 1, SIGNATURE_LENGTH + 1, 128])
def test_missing_or_wrong_length_signature_is_refused(
    samples: dict[EventType, Event[Any]], codec: Codec, public_keys: dict[str, Ed25519PublicKey], length: int
):
    """An empty or wrong-length signature is a SignatureError stating its length."""
    event = samples[EventType.WORK_UPDATE]
    unsigned = event.model_copy(update={"header": event.header.model_copy(update={"signature": b"\x01" * length})})
    with pytest.raises(SignatureError, match=rf"has no valid signature \({length} bytes\)"):
        check_signature(codec, codec.encode(unsigned), public_keys)


def test_zeroed_signature_is_refused(
    samples: dict[EventType, Event[Any]], codec: Codec, public_keys: dict[str, Ed25519PublicKey]
):
    """A 64-byte signature of zeros does not verify."""
    event = samples[EventType.WORK_UPDATE]
    zeroed = event.model_copy(update={"header": event.header.model_copy(update={"signature": bytes(64)})})
    with pytest.raises(SignatureError, match="does not verify"):
        check_signature(codec, codec.encode(zeroed), public_keys)


def test_unit_without_registered_key_is_refused(
    encoded: dict[EventType, bytes], codec: Codec, public_keys: dict[str, Ed25519PublicKey]
):
    """An event from a unit with no registered public key is a SignatureError naming the unit."""
    without_police = {unit: key for unit, key in public_keys.items() if unit != "police"}
    with pytest.raises(SignatureError, match="no public key registered for unit police"):
        check_signature(codec, encoded[EventType.TRAFFIC_CONTROL], without_police)


@pytest.mark.parametrize("record", governance_records(), ids=lambda r: type(r).__name__)
def test_governance_record_is_not_a_signed_event(
    codec: Codec, public_keys: dict[str, Ed25519PublicKey], record: BaseModel
):
    """A decision, audit or dead-letter record passed to check_signature is a SignatureError, not a crash."""
    with pytest.raises(SignatureError, match="is not a signed event"):
        check_signature(codec, codec.encode(record), public_keys)


@pytest.mark.parametrize("data", [b"", b"\xc3\x01" + bytes(8), b"not avro at all"])
def test_signature_check_of_garbage_is_a_decode_error(
    codec: Codec, public_keys: dict[str, Ed25519PublicKey], data: bytes
):
    """check_signature of bytes that are not a record raises the codec's DecodeError."""
    with pytest.raises(DecodeError):
        check_signature(codec, data, public_keys)


def test_a_named_union_branch_writes_the_bytes_fastavro_finds_by_itself(codec: Codec) -> None:
    """The codec names a field's record branch for fastavro (it would otherwise validate the nested record against
    every branch first): the bytes are exactly what fastavro writes when it finds the branch itself, and read back."""
    contract = codec.contracts.current("review_item")
    assert dict(contract.record_branches) == {"decision": "firebus.ReviewDecision"}
    now = datetime(2026, 3, 12, 6, 0, tzinfo=UTC)
    event_id = uuid4()
    decision = ReviewDecision(
        decision_id=uuid4(),
        event_id=event_id,
        event_type=EventType.FIRE_REPORT,
        verdict=Verdict.APPROVE,
        reviewer="hq-li",
        reviewer_kind=ReviewerKind.HUMAN,
        decided_at=now,
        trace_id="t",
    )
    for chosen in (decision, None):
        status = ReviewStatus.RELEASING if chosen else ReviewStatus.PENDING
        item = review_item(status, event_id=event_id, decision=chosen, event=b"\x00")
        buffer = io.BytesIO()
        fastavro.schemaless_writer(buffer, contract.parsed, item.model_dump())
        written = codec.encode(item)
        assert written == MAGIC + contract.fingerprint + buffer.getvalue()
        assert codec.decode(written) == item
