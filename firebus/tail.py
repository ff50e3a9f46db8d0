"""``firebus tail``: read a topic and show each record decoded, with its signature checked.

Reads without a consumer group, so tailing never moves any live group's offsets.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from aiokafka import ConsumerRecord
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from firebus.codec import Codec
from firebus.errors import DecodeError, InvalidEventError, SignatureError
from firebus.events import Event
from firebus.kafka import ScanStart, TopicScan, UnreadableBatch
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
) -> AsyncIterator[ConsumerRecord[bytes, bytes] | UnreadableBatch]:
    """Yield every record on all partitions of ``topic``, and every batch that cannot be read (stepped over).

    Stops after ``limit`` records, or after ``idle_timeout_s`` seconds without one; otherwise runs until cancelled.
    """
    start = ScanStart.BEGINNING if from_beginning else ScanStart.END
    idle_ms = int((idle_timeout_s if idle_timeout_s is not None else 1.0) * 1000)
    seen = 0
    async with TopicScan(settings, [topic], purpose="tail", start=start, follow=True, idle_ms=idle_ms) as scan:
        async for step in scan:
            items: list[ConsumerRecord[bytes, bytes] | UnreadableBatch] = [*step.unreadable, *step.records]
            for item in items:
                yield item
                if isinstance(item, ConsumerRecord):
                    seen += 1
                    if limit is not None and seen >= limit:
                        return
            if not items and idle_timeout_s is not None:
                return
