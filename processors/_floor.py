"""The benchmark's same-work floor: what the review contract costs per released event with no framework and no review
logic, as a raw aiokafka consume → work → produce pipeline.

For each event it does what no implementation of the contract can skip: decode it, validate it into its model,
verify its Ed25519 signature, and encode and send the same records the processors write for an event the policy
releases to the member and HQ tiers — the inbox copy (bytes unchanged), the `accepted` audit, the review item twice
(`releasing`, then `released`), the `decided` audit, two tier releases (the member tier's with a re-encoded, redacted
copy of the event), their two `released` audits and the `redacted` one: ten records. Each batch is sent and
acknowledged before the next is read, as the workers commit only what the broker stored. There is no policy, no
review table, no lookup: the records are filled from the decoded event, so this is a floor, not an alternative.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid5

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from firebus.codec import Codec
from firebus.deadletters import audit_id
from firebus.kafka import client_options, producer_options
from firebus.settings import Settings
from firebus.signing import check_signature
from firebus.topics import BENCH_RELAY, Topic

RECORDS_PER_EVENT = 10
AUX_KEY = b"floor"
"""The key of every floor record but the member-tier release, which the benchmark counts (as it counts the
processors' member-tier releases)."""
COUNTED_PREFIX = b"floor:"
"""The member-tier release's key: the event's key, told apart from the relay's copies on the same topic."""


class SameWork:
    """The per-event work of the floor: records in, encoded records out."""

    def __init__(self, codec: Codec, public_keys: Mapping[str, Ed25519PublicKey]) -> None:
        self.codec = codec
        self.public_keys = public_keys
        contracts = codec.contracts
        self._audit = contracts.current("audit_event")
        self._item = contracts.current("review_item")
        self._release = contracts.current("release")

    def records(self, raw: bytes, now: datetime) -> list[tuple[bytes, bytes]]:
        """``(key, value)`` of the ten records one released event costs; the member-tier release comes last."""
        codec = self.codec
        contract, record = codec.decode_data(raw)
        codec.to_model(contract, record)  # the intake validates every event into its model
        check_signature(codec, raw, self.public_keys, as_written=(contract, record))
        header = record["header"]
        event_id, unit = header["event_id"], header["publisher"]["unit"]
        key = str(header["incident_id"] or event_id).encode()
        counted = COUNTED_PREFIX + key
        decision = {
            "decision_id": uuid5(event_id, "floor"),
            "event_id": event_id,
            "event_type": header["event_type"],
            "verdict": "approve",
            "reviewer": "floor",
            "reviewer_kind": "policy_rule",
            "policy_version": "floor",
            "tiers": ["members", "hq"],
            "redactions": [],
            "reason": None,
            "decided_at": now,
            "trace_id": header["trace_id"],
        }
        release_ids = [uuid5(event_id, "members"), uuid5(event_id, "hq")]
        item = {
            "event_id": event_id,
            "event_type": header["event_type"],
            "kind": header["kind"],
            "thread_id": event_id,
            "partition_key": key.decode(),
            "status": "releasing",
            "publisher_unit": unit,
            "publisher_person": header["publisher"]["person"],
            "audience": header["audience"],
            "severity": header["severity"],
            "townships": header["townships"],
            "received_at": now,
            "deadline": now + timedelta(hours=1),
            "escalated": False,
            "decision": decision,
            "release_ids": release_ids,
            "releasing_since": now,
            "note": None,
            "event": raw,
        }

        def audit(action: str, discriminator: Any = "", **fields: Any) -> bytes:
            return codec.encode_data(
                self._audit,
                {
                    "audit_id": audit_id(action, event_id, discriminator),
                    "action": action,
                    "event_id": event_id,
                    "event_type": header["event_type"],
                    "actor": "floor",
                    "publisher_unit": unit,
                    "tier": None,
                    "reason": None,
                    "details": {},
                    "at": now,
                    "trace_id": header["trace_id"],
                    **fields,
                },
            )

        def release(tier: str, release_id: Any, event: bytes, redacted: list[str]) -> bytes:
            return codec.encode_data(
                self._release,
                {
                    "release_id": release_id,
                    "tier": tier,
                    "event_id": event_id,
                    "event_type": header["event_type"],
                    "kind": header["kind"],
                    "thread_id": event_id,
                    "incident_id": header["incident_id"],
                    "publisher_unit": unit,
                    "decision": decision,
                    "redacted_fields": redacted,
                    "nearby_resources": [],
                    "released_at": now,
                    "event": event,
                },
            )

        redacted_copy = codec.encode_data(contract, {**record, "header": {**header, "signature": b""}})
        details = {"release_id": str(release_ids[0]), "reviewer": "floor"}
        aux = [
            raw,  # the inbox copy
            audit("accepted", details={"source": "floor", "person": header["publisher"]["person"]}),
            codec.encode_data(self._item, item),
            audit("decided", decision["decision_id"], actor="floor"),
            release("hq", release_ids[1], raw, []),
            audit("released", release_ids[1], tier="hq", details=details),
            audit("released", release_ids[0], tier="members", details=details),
            audit("redacted", release_ids[0], tier="members", reason="header.signature", details=details),
            codec.encode_data(self._item, {**item, "status": "released"}),
        ]
        return [*((AUX_KEY, value) for value in aux), (counted, release("members", release_ids[0], redacted_copy, []))]


async def floor_pipeline(
    settings: Settings, work: SameWork, source: Topic, *, stop: asyncio.Event, batch_size: int
) -> int:
    """Consume ``source`` from the beginning, do :class:`SameWork` per event, send its records to the relay topic
    (acknowledged per batch) until ``stop``; the number of events handled."""
    consumer = AIOKafkaConsumer(
        **client_options(settings, client_id="firebus-bench-floor"),
        group_id=None,
        enable_auto_commit=False,
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    producer = AIOKafkaProducer(
        **producer_options(settings, client_id="firebus-bench-floor", linger_ms=settings.processors_linger_ms)
    )
    await consumer.start()
    await producer.start()
    handled = 0
    try:
        await consumer.topics()
        partitions = [TopicPartition(source.name, p) for p in sorted(consumer.partitions_for_topic(source.name) or ())]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        spread = len(partitions) or 1
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=200, max_records=batch_size)
            now = datetime.now(UTC)
            sent = []
            for messages in batches.values():
                for message in messages:
                    for index, (key, value) in enumerate(work.records(message.value, now)):
                        # The auxiliary records share a key: spread them over the partitions as the real keys would.
                        partition = (handled + index) % spread if key == AUX_KEY else None
                        sent.append(await producer.send(BENCH_RELAY.name, value, key=key, partition=partition))
                    handled += 1
            if sent:
                await asyncio.gather(*sent)
        return handled
    finally:
        await consumer.stop()
        await producer.stop()
