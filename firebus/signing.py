"""Ed25519 signatures: whoever publishes is responsible (谁发布、谁负责).

The signature covers the event's single-object encoding with ``header.signature`` empty, made with the schema the
publisher wrote — so a verifier re-encodes the record *as written* and checks those exact bytes, whatever schema
version it reads with. Private keys live in ``<keys_dir>/<unit>.key`` (PKCS#8 PEM, mode 0600); public keys in the
units registry or ``<keys_dir>/<unit>.pub`` (base64 of the raw 32 bytes).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import nacl.bindings
import nacl.exceptions
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from firebus.codec import Codec
from firebus.contracts import Contract
from firebus.county import County
from firebus.errors import ConfigurationError, FirebusError, SignatureError, SigningKeyError
from firebus.events import Event, Origin

SIGNATURE_LENGTH = 64


def private_key_path(keys_dir: Path, unit_id: str) -> Path:
    return keys_dir / f"{unit_id}.key"


def public_key_path(keys_dir: Path, unit_id: str) -> Path:
    return keys_dir / f"{unit_id}.pub"


def public_key_text(key: Ed25519PublicKey) -> str:
    """base64 of the raw 32-byte key, as written in the units registry."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def generate_unit_key(keys_dir: Path, unit_id: str, *, overwrite: bool = False) -> Ed25519PublicKey:
    """Create a unit's key pair on disk; refuses to replace an existing private key unless told to."""
    private_path = private_key_path(keys_dir, unit_id)
    if private_path.exists() and not overwrite:
        raise SigningKeyError(f"{private_path} already exists; pass --force to replace it")
    keys_dir.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    descriptor = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)
    public_key_path(keys_dir, unit_id).write_text(public_key_text(key.public_key()) + "\n", encoding="ascii")
    return key.public_key()


def load_signing_key(keys_dir: Path, unit_id: str) -> Ed25519PrivateKey:
    path = private_key_path(keys_dir, unit_id)
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError:
        raise SigningKeyError(
            f"no signing key for unit {unit_id} at {path}; run `firebus keys generate --unit {unit_id}`"
        ) from None
    except (OSError, ValueError, TypeError) as exc:
        raise SigningKeyError(f"{path} is not a readable Ed25519 private key: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"{path} holds a {type(key).__name__}, not an Ed25519 key")
    return key


def registered_public_keys(county: County, keys_dir: Path) -> dict[str, Ed25519PublicKey]:
    """Every unit's public key: from the registry, else from ``<keys_dir>/<unit>.pub``. Units without one are absent."""
    keys = {}
    for unit in county.units:
        raw = unit.public_key_bytes()
        if raw is None:
            path = public_key_path(keys_dir, unit.id)
            if not path.exists():
                continue
            try:
                raw = base64.b64decode(path.read_text(encoding="ascii").strip(), validate=True)
            except (OSError, ValueError) as exc:
                raise ConfigurationError(f"{path} is not a base64 Ed25519 public key: {exc}") from exc
        try:
            keys[unit.id] = Ed25519PublicKey.from_public_bytes(raw)
        except ValueError as exc:
            raise ConfigurationError(f"unit {unit.id}: bad public key: {exc}") from exc
    return keys


def _without_signature(record: Mapping[str, Any]) -> dict[str, Any]:
    return {**record, "header": {**record["header"], "signature": b""}}


def sign_event(codec: Codec, event: Event[Any], key: Ed25519PrivateKey) -> Event[Any]:
    """The event with ``header.signature`` set by ``key`` over its current-schema encoding."""
    unsigned = event.model_copy(update={"header": event.header.model_copy(update={"signature": b""})})
    signature = key.sign(codec.encode(unsigned))
    return event.model_copy(update={"header": event.header.model_copy(update={"signature": signature})})


def check_signature(
    codec: Codec,
    data: bytes,
    public_keys: Mapping[str, Ed25519PublicKey],
    *,
    as_written: tuple[Contract, Mapping[str, Any]] | None = None,
) -> str:
    """Verify the signature of an encoded event against its publisher's key; returns the publisher unit id.

    ``as_written``: the record already decoded with its writer schema, to save decoding it again.
    """
    writer, record = as_written if as_written is not None else codec.decode_data(data, as_written=True)
    if writer.event_type is None:
        raise SignatureError(f"{writer.name} is not a signed event")
    header = record["header"]
    unit_id = header["publisher"]["unit"]
    signature = header["signature"]
    if len(signature) != SIGNATURE_LENGTH:
        raise SignatureError(
            f"event {header['event_id']} from {unit_id} has no valid signature ({len(signature)} bytes)"
        )
    key = public_keys.get(unit_id)
    if key is None:
        raise SignatureError(f"no public key registered for unit {unit_id}")
    raw_key = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    try:
        # libsodium verifies about twice as fast as OpenSSL here, and verifying is most of the intake's cost.
        nacl.bindings.crypto_sign_open(signature + codec.encode_data(writer, _without_signature(record)), raw_key)
    except nacl.exceptions.BadSignatureError:
        raise SignatureError(
            f"signature of event {header['event_id']} does not verify against unit {unit_id}'s key"
        ) from None
    return str(unit_id)


def check_origin(codec: Codec, origin: Origin) -> None:
    """Verify a reported-up event's origin: the original bytes verify against the original unit's key, and the
    origin's unit, person, event id and signature are the original's own.

    The key comes with the origin; the reporting HQ office's signature over the whole event, origin included, is
    what vouches for it — the level above registers that office, not every unit below it.
    """
    try:
        key = Ed25519PublicKey.from_public_bytes(origin.public_key)
    except ValueError as exc:
        raise SignatureError(f"origin of {origin.level}/{origin.event_id}: bad public key: {exc}") from exc
    try:
        writer, record = codec.decode_data(origin.event, as_written=True)
    except FirebusError as exc:
        raise SignatureError(
            f"origin of {origin.level}/{origin.event_id}: the original does not decode: {exc}"
        ) from exc
    try:
        check_signature(codec, origin.event, {origin.unit: key}, as_written=(writer, record))
    except SignatureError as exc:
        raise SignatureError(f"origin of {origin.level}/{origin.event_id}: {exc}") from exc
    header = record["header"]
    claimed = {
        "event_id": str(origin.event_id),
        "publisher.unit": origin.unit,
        "publisher.person": origin.person,
        "signature": origin.signature,
    }
    actual = {
        "event_id": str(header["event_id"]),
        "publisher.unit": header["publisher"]["unit"],
        "publisher.person": header["publisher"]["person"],
        "signature": header["signature"],
    }
    differ = [name for name in claimed if claimed[name] != actual[name]]
    if differ:
        raise SignatureError(
            f"origin of {origin.level}/{origin.event_id} does not match the original it carries: {', '.join(differ)}"
        )
