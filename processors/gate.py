"""The intake gate: what each record read from the intake and decision topics becomes. Pure: records in, records out.

Department systems publish with any Kafka client — any partitioner, with or without a key, any codec — so the
partition an intake record arrives on says nothing. The gate checks each record (:class:`IntakeValidator`) and
forwards what it accepts, bytes unchanged, to the review inbox on the default partition of the event's own
partition key, where the review stage keeps that event's state: an event, every decision about it and its review
state always meet in one partition, whoever wrote them (Kafka Streams' repartition topic). Decisions come from the
review desk keyed by that same partition key and go the same way.

A new fire-related alert goes to HQ live from here, the moment it is valid: an alert references nothing, so nothing
the review stage knows can still refuse it. An update or a cancel goes to HQ live from the review stage, once its
references are checked. Whatever fails becomes a dead letter with the reason and the source position; a classified
event is quarantined; a batch no client can read, or a record the gate cannot handle, is a dead letter too — never
a reason to stop.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from firebus.codec import Codec
from firebus.deadletters import SourceRecord, dead_letter
from firebus.errors import DecodeError, InvalidEventError
from firebus.events import MessageKind
from firebus.kafka import UnreadableBatch
from firebus.records import DeadLetterReason, ReviewDecision
from firebus.text import text_problems
from firebus.topics import REVIEW_DECISIONS, REVIEW_INBOX
from processors.intake import Accepted, IntakeValidator, Quarantined
from processors.outgoing import Outgoing, audit_records, rejection_records
from processors.review import report_live

STAGE = "processors.gate"

SOURCE_HEADER = "firebus-source"
"""Inbox record header: where the record was published, ``topic/partition/offset`` (ASCII)."""


def source_header(source: SourceRecord) -> tuple[tuple[str, bytes], ...]:
    return ((SOURCE_HEADER, source.position.encode("ascii")),)


def source_from_header(value: bytes, headers: Sequence[tuple[str, bytes]], *, key: bytes | None) -> SourceRecord | None:
    """The published record an inbox record stands for, from its :data:`SOURCE_HEADER`; None without a sound one."""
    for name, raw in headers:
        if name == SOURCE_HEADER:
            topic, _, rest = raw.decode("ascii", "replace").partition("/")
            partition, _, offset = rest.partition("/")
            try:
                return SourceRecord(topic, int(partition), int(offset), key, value)
            except ValueError:
                return None
    return None


class IntakeGate:
    """Routes consumed intake and decision records; one per worker."""

    def __init__(self, *, validator: IntakeValidator, codec: Codec) -> None:
        self.validator = validator
        self.codec = codec

    def route(self, sources: Sequence[SourceRecord], *, now: datetime) -> list[Outgoing]:
        """Everything ``sources`` become. Accepted events of one batch reach the inbox in the order they were
        published: a producer that spreads one incident over several partitions loses Kafka's order, and an update
        read before its original would be refused as referring to an unknown event."""
        admitted: list[tuple[datetime, Outgoing]] = []
        outgoing: list[Outgoing] = []
        for source in sources:
            try:
                if source.topic == REVIEW_DECISIONS.name:
                    outgoing += self._decision(source, now)
                    continue
                verdict = self.validator.check(source, now=now)
                if isinstance(verdict, Accepted):
                    event = verdict.event
                    key = event.partition_key().encode()
                    forwarded = Outgoing(REVIEW_INBOX, key, verdict.raw, headers=source_header(source))
                    admitted.append((event.header.published_at, forwarded))
                    outgoing += audit_records(self.codec, verdict.audit)
                    if event.header.kind is MessageKind.ALERT:
                        outgoing += report_live(event, verdict.raw)
                elif isinstance(verdict, Quarantined):
                    outgoing += audit_records(self.codec, verdict.audit, notify_office=True)
                else:
                    outgoing += rejection_records(self.codec, verdict)
            except Exception as exc:  # a record this code cannot handle must not stop the gate, nor come back
                reason = f"the intake gate could not handle this record: {type(exc).__name__}: {exc}"
                outgoing += rejection_records(
                    self.codec, dead_letter(source, DeadLetterReason.POISON, reason, now=now, stage=STAGE)
                )
        admitted.sort(key=lambda entry: entry[0])
        return [record for _, record in admitted] + outgoing

    def _decision(self, source: SourceRecord, now: datetime) -> list[Outgoing]:
        try:
            contract, record = self.codec.decode_data(source.value or b"")
            decision = self.codec.to_model(contract, record)
            if not isinstance(decision, ReviewDecision):
                raise InvalidEventError([], subject=f"{type(decision).__name__} on {source.topic}")
            problems = text_problems(contract, record)
            if problems:
                raise InvalidEventError(problems, subject="decision")
        except (DecodeError, InvalidEventError) as exc:
            code = DeadLetterReason.SCHEMA_INVALID if isinstance(exc, InvalidEventError) else DeadLetterReason.CORRUPT
            return rejection_records(self.codec, dead_letter(source, code, str(exc), now=now, stage=STAGE))
        if not source.key:
            reason = (
                f"decision {decision.decision_id} has no record key; key it by the partition key of the event it "
                "decides (its review item's partition_key)"
            )
            rejected = dead_letter(
                source, DeadLetterReason.SCHEMA_INVALID, reason, now=now, stage=STAGE, event_id=str(decision.event_id)
            )
            return rejection_records(self.codec, rejected)
        return [Outgoing(REVIEW_INBOX, source.key, source.value or b"", headers=source_header(source))]

    def unreadable(self, batch: UnreadableBatch, *, now: datetime) -> list[Outgoing]:
        """A batch no client can read: one dead letter naming its offsets, with the stored bytes."""
        source = SourceRecord(batch.topic, batch.partition, batch.first_offset, None, batch.data)
        reason = f"offsets {batch.first_offset}..{batch.next_offset - 1}: {batch.reason}"
        return rejection_records(
            self.codec, dead_letter(source, DeadLetterReason.CORRUPT, reason, now=now, stage=STAGE)
        )
