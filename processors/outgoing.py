"""What a processors stage sends: records to topics, built by the pure stages and sent by the faust/aiokafka shell."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from firebus import metrics
from firebus.codec import Codec
from firebus.deadletters import Rejected
from firebus.records import AuditEvent
from firebus.topics import AUDIT, DEAD_LETTER, HQ_NOTICES, Topic


@dataclass(frozen=True)
class Outgoing:
    """One record to send; ``partition`` when it must not follow the key's default partition."""

    topic: Topic
    key: bytes
    value: bytes
    partition: int | None = None
    headers: tuple[tuple[str, bytes], ...] = ()


def audit_records(codec: Codec, audit: AuditEvent | dict[str, Any], *, notify_office: bool = False) -> list[Outgoing]:
    """An audit record (keyed by its event, else its own id), and the same on the office's notices if it must act."""
    record = audit.model_dump() if isinstance(audit, AuditEvent) else audit
    key = str(record["event_id"] or record["audit_id"]).encode()
    value = codec.encode_data(codec.contracts.current("audit_event"), record)
    records = [Outgoing(AUDIT, key, value)]
    if notify_office:
        records.append(Outgoing(HQ_NOTICES, key, value))
    return records


def rejection_records(codec: Codec, rejected: Rejected) -> list[Outgoing]:
    """A rejection as sent: the dead letter, keyed like its source record, and its audit record."""
    letter = rejected.dead_letter
    metrics.DEAD_LETTERS.labels(stage=letter.stage, reason=letter.reason_code.value).inc()
    return [Outgoing(DEAD_LETTER, letter.key or b"", codec.encode(letter)), *audit_records(codec, rejected.audit)]
