"""``firebus tail``: read a topic and show each record decoded, with its signature checked.

Reads without a consumer group, so tailing never moves any live group's offsets.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from firebus.codec import Codec
from firebus.errors import DecodeError, InvalidEventError, SignatureError
from firebus.events import Event
from firebus.kafka import start_reader
from firebus.settings import Settings
from firebus.signing import check_signature
from firebus.topics import Topic


def describe_record(codec: Codec, public_keys: Mapping[str, Ed25519PublicKey], value: bytes | None) -> dict[str, Any]:
    """What one record value holds, as JSON-ready data; never raises for bad bytes."""
    if value is None:
        return {"error": "empty record (tombstone)"}
    try:
        record = codec.decode(value)
    except (DecodeError, InvalidEventError) as exc:
        return {"error": str(exc), "bytes": len(value)}
    described: dict[str, Any] = {"schema": codec.contract_of(record).name, "record": record.model_dump(mode="json")}
    if isinstance(record, Event):
        try:
            check_signature(codec, value, public_keys)
        except SignatureError as exc:
            described["signature"] = f"BAD: {exc}"
        else:
            described["signature"] = "verified"
    return described


async def tail(
    settings: Settings,
    topic: Topic,
    *,
    from_beginning: bool = False,
    limit: int | None = None,
    idle_timeout_s: float | None = None,
) -> AsyncIterator[tuple[int, int, bytes | None, bytes | None]]:
    """Yield ``(partition, offset, key, value)`` of every record on all partitions of ``topic``.

    Stops after ``limit`` records, or after ``idle_timeout_s`` seconds without one; otherwise runs until cancelled.
    """
    consumer, assigned = await start_reader(settings, [topic], purpose="tail")
    try:
        consumer.assign(assigned)
        if from_beginning:
            await consumer.seek_to_beginning(*assigned)
        else:
            await consumer.seek_to_end(*assigned)
        seen = 0
        while limit is None or seen < limit:
            batches = await consumer.getmany(timeout_ms=int((idle_timeout_s or 3600) * 1000))
            if not batches:
                if idle_timeout_s is not None:
                    return
                continue
            for messages in batches.values():
                for message in messages:
                    yield message.partition, message.offset, message.key, message.value
                    seen += 1
                    if limit is not None and seen >= limit:
                        return
    finally:
        await consumer.stop()
