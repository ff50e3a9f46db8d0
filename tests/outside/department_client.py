"""A department system's firebus publisher, as an outside team writes it from ``docs/wire-format.md`` and the
standalone writer schemas in ``docs/schemas/`` alone: confluent-kafka (librdkafka, its default partitioner) and
fastavro, no firebus code.

It must not import anything of firebus (``firebus``, ``producers``, ``processors``, ``consumers``, ``cli``) or of the
test suite: tests/outside/test_department_client.py reads its imports. Each step cites the section of the document
it follows, so a finding in the document can be traced to the line that needed it.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaError, Message, Producer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastavro import parse_schema, schemaless_writer
from fastavro.schema import fingerprint, to_parsing_canonical_form

SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "schemas"

MARKER = b"\xc3\x01"
"""Record bytes: bytes 0–1."""

CODECS = ("none", "gzip", "snappy", "lz4", "zstd")
"""Kafka records, compression: every codec firebus reads."""


class PublishError(Exception):
    """The broker did not take a record."""


@dataclass(frozen=True)
class WriterSchema:
    """One standalone writer schema (Writer schemas): parsed for fastavro, with its ten-byte single-object prefix."""

    name: str
    version: int
    raw: dict[str, Any]
    """The schema as written, with the ``firebus.*`` limits next to each field (Text rules)."""
    parsed: Any
    prefix: bytes

    @classmethod
    def load(cls, path: Path) -> WriterSchema:
        raw = json.loads(path.read_text(encoding="utf-8"))
        # Record bytes: CRC-64-AVRO of the Parsing Canonical Form. fastavro's fingerprint is the hex of the eight
        # bytes as they appear in a record (already little-endian), not the 64-bit number of the table.
        fingerprint_bytes = bytes.fromhex(fingerprint(to_parsing_canonical_form(raw), "CRC-64-AVRO"))
        return cls(
            name=path.stem,
            version=int(raw["firebus.version"]),
            raw=raw,
            parsed=parse_schema(raw),
            prefix=MARKER + fingerprint_bytes,
        )

    def encode(self, record: Mapping[str, Any]) -> bytes:
        """Single-object encoding: marker, fingerprint, the Avro binary body."""
        body = BytesIO()
        schemaless_writer(body, self.parsed, dict(record))
        return self.prefix + body.getvalue()


def load_schemas(directory: Path = SCHEMAS) -> dict[str, WriterSchema]:
    return {path.stem: WriterSchema.load(path) for path in sorted(directory.glob("*.avsc"))}


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """Key files: ``<keys_dir>/<unit>.key``, PKCS#8 PEM, unencrypted."""
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise TypeError(f"{path} is not an Ed25519 private key")
    return key


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def partition_key(record: Mapping[str, Any]) -> str:
    """Partitioning and order: incident id when set, else a resource's id, else the first reference, else the
    event's own id."""
    header = record["header"]
    if header.get("incident_id"):
        return str(header["incident_id"])
    resource_id = record["body"].get("resource_id")
    if header["event_type"] == "resource" and resource_id:
        return str(resource_id)
    if header["references"]:
        return str(header["references"][0])
    return str(header["event_id"])


def intake_topic(event_type: str) -> str:
    """Topics: a department writes to ``firebus.intake.<type>``."""
    return f"firebus.intake.{event_type}"


@dataclass(frozen=True)
class Sent:
    """One record handed to the producer."""

    event_id: str | None
    topic: str
    key: bytes | None
    value: bytes


class EventWriter:
    """Builds a unit's events and signs them (Header fields, Record bytes, Signature)."""

    def __init__(self, *, unit: str, signing_key: Path, schemas: Mapping[str, WriterSchema] | None = None) -> None:
        self.unit = unit
        self.schemas = dict(schemas) if schemas is not None else load_schemas()
        self._key = load_private_key(signing_key)

    def event(
        self,
        event_type: str,
        body: Mapping[str, Any],
        *,
        person: str,
        kind: str = "alert",
        references: Sequence[str] = (),
        incident_id: str | None = None,
        contact: str | None = None,
        classification: str = "internal",
        audience: str = "members",
        audience_townships: Sequence[str] = (),
        severity: str = "moderate",
        urgency: str = "immediate",
        occurred_at: int | None = None,
        townships: Sequence[str] = (),
    ) -> dict[str, Any]:
        """An unsigned event as Avro values, for the current schema of its type."""
        published_at = now_ms()
        return {
            "header": {
                "event_id": str(uuid.uuid4()),  # lowercase, 8-4-4-4-12
                "event_type": event_type,
                "schema_version": self.schemas[event_type].version,
                "kind": kind,
                "references": list(references),
                "incident_id": incident_id,
                "publisher": {"unit": self.unit, "person": person, "contact": contact},
                "classification": classification,
                "audience": audience,
                "audience_townships": list(audience_townships),
                "severity": severity,
                "urgency": urgency,
                "occurred_at": published_at - 60_000 if occurred_at is None else occurred_at,
                "published_at": published_at,
                "townships": list(townships),
                "trace_id": uuid.uuid4().hex,
                "signature": b"",
            },
            "body": dict(body),
        }

    def sign(self, record: Mapping[str, Any]) -> bytes:
        """The record as sent: sign its single-object bytes with ``header.signature`` empty, then encode it again
        with the signature."""
        schema = self.schemas[record["header"]["event_type"]]
        unsigned = {**record, "header": {**record["header"], "signature": b""}}
        signature = self._key.sign(schema.encode(unsigned))
        return schema.encode({**record, "header": {**record["header"], "signature": signature}})


class DepartmentClient:
    """A unit's publisher: an :class:`EventWriter` and a librdkafka producer. ``compression`` is librdkafka's
    ``compression.type``; nothing else of the producer is configured beyond what the document asks of a publisher
    (Kafka records)."""

    def __init__(self, writer: EventWriter, *, bootstrap_servers: str, compression: str = "none") -> None:
        self.writer = writer
        self.partitions: dict[bytes, int] = {}
        """Delivery reports: the partition librdkafka's partitioner chose for each record value sent."""
        self._failures: list[str] = []
        self._producer = Producer(
            {
                "bootstrap.servers": bootstrap_servers,
                "acks": "all",
                # The development broker has no idempotent producer; the document says to turn it off there.
                "enable.idempotence": False,
                "compression.type": compression,
            }
        )

    def publish(self, record: Mapping[str, Any], *, keyed: bool = True) -> Sent:
        """Sign and send ``record`` to its intake topic, keyed by its partition key (or without a key)."""
        key = partition_key(record).encode("utf-8") if keyed else None
        header = record["header"]
        return self.send(
            intake_topic(header["event_type"]), self.writer.sign(record), key=key, event_id=header["event_id"]
        )

    def send(self, topic: str, value: bytes, *, key: bytes | None = None, event_id: str | None = None) -> Sent:
        """Send bytes as they are: librdkafka's partitioner picks the partition."""
        self._producer.produce(topic, value=value, key=key, on_delivery=self._delivered)
        self._producer.poll(0)
        return Sent(event_id, topic, key, value)

    def flush(self, timeout_s: float = 30.0) -> None:
        """Wait until the broker has every record sent; raise if it refused any."""
        left = self._producer.flush(timeout_s)
        if left:
            raise PublishError(f"{left} record(s) not delivered within {timeout_s}s")
        if self._failures:
            failures, self._failures = self._failures, []
            raise PublishError("; ".join(failures))

    def close(self) -> None:
        """Deliver what is left and release the producer."""
        self._producer.flush(10)
        self._producer.close()

    def _delivered(self, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            self._failures.append(f"{message.topic()}: {error}")
        else:
            self.partitions[message.value() or b""] = message.partition() or 0
