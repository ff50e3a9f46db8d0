"""A wiped or replaced broker: noticing it, and keeping the review items the worker still holds.

A partition's offsets only ever grow. The worker knows offsets the broker stored: those it acknowledged to the
worker's producer, and the review changelog records the worker read while restoring its table. A broker whose end
offset of such a partition is not past that offset, or that has no such topic, has lost records: it was wiped (the
embedded broker keeps nothing across a restart) or replaced. The worker checks at every table recovery (where faust
would raise its ConsistencyError with a RocksDB hint that does not apply) and every ``processors_broker_check_s``
(:class:`BrokerProbe`). An acknowledgement with an offset below an earlier one proves nothing on its own: the gate
and the review stage send concurrently, and their acknowledgements of one partition come back in any order.

What it does then: it saves the review items of the partitions it was active for to an Avro file under
``FIREBUS_HOME/processors/rescued/`` (:func:`save_rescued`), says so in one log line and one ``firebus: error:``
line, and exits at once, committing and flushing nothing. The next ``firebus processors`` (the supervisor of
``firebus up`` starts it again) writes the rescued items the broker does not have back to the review state before it
joins its group (:func:`restore_rescued`). Carrying on in the same process is not safe: faust's consumer positions,
acknowledged offsets and changelog offsets all describe the lost broker — it drops records below the positions it
holds, and would commit the old offsets to the new broker's group, where the next worker would skip the new records.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from fastavro import reader, writer

from firebus.codec import Codec
from firebus.errors import BrokerError, DecodeError, InvalidEventError
from firebus.kafka import client_options, fetched_end_offsets, producer_options, read_to_end
from firebus.records import ReviewItem, ReviewStatus
from firebus.settings import Settings
from firebus.topics import REVIEW_ITEMS
from processors._sender import BatchSender, partition_for
from processors.outgoing import Outgoing

log = structlog.get_logger(__name__)

RESCUED_SUFFIX = ".avro"
RESTORED_SUFFIX = ".restored"
SHOWN_TOPICS = 3
"""Topics a loss's description names (the review state's first); the rest are counted."""


def rescue_directory(settings: Settings) -> Path:
    """Where a worker saves the review items a lost broker no longer has, until the next start writes them back."""
    return settings.home_dir / "processors" / "rescued"


# --- noticing ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Behind:
    """A partition whose end offset is not past an offset the broker once stored."""

    tp: TopicPartition
    end: int
    known: int


@dataclass(frozen=True)
class BrokerLoss:
    """What the broker no longer has: partitions behind what it stored, and topics that are gone."""

    behind: tuple[Behind, ...] = ()
    missing: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.behind or self.missing)

    def __str__(self) -> str:
        """The review state's topic first, then the others: ``firebus.review.items partitions 0, 1, 2 end at
        offsets 0, 0, 0, before offsets 812, 799, 840 it had stored; firebus.audit …``."""
        by_topic: dict[str, list[Behind]] = {}
        for behind in sorted(self.behind, key=lambda b: (b.tp.topic != REVIEW_ITEMS.name, b.tp)):
            by_topic.setdefault(behind.tp.topic, []).append(behind)
        parts = [
            f"{name} is missing" for name in sorted(self.missing, key=lambda n: not n.startswith(REVIEW_ITEMS.name))
        ]
        for topic, behinds in by_topic.items():
            partitions = ", ".join(str(b.tp.partition) for b in behinds)
            ends = ", ".join(str(b.end) for b in behinds)
            known = ", ".join(str(b.known) for b in behinds)
            parts.append(f"{topic} partitions {partitions} end at offsets {ends}, before offsets {known} it had stored")
        shown = parts[:SHOWN_TOPICS]
        if len(parts) > SHOWN_TOPICS:
            shown.append(f"{len(parts) - SHOWN_TOPICS} more topics likewise")
        return "; ".join(shown)


class KnownOffsets:
    """Per partition, the highest offset the broker is known to have stored."""

    def __init__(self) -> None:
        self._known: dict[TopicPartition, int] = {}

    def note(self, tp: TopicPartition, offset: int) -> None:
        """Remember that the broker stored a record at ``offset`` of ``tp``."""
        if offset > self._known.get(tp, -1):
            self._known[tp] = offset

    def behind(self, ends: Mapping[TopicPartition, int]) -> list[Behind]:
        """The partitions of ``ends`` (end offsets: one past the last record) that stop at or before a known one."""
        return [Behind(tp, end, self._known[tp]) for tp, end in sorted(ends.items()) if end <= self._known.get(tp, -1)]

    def snapshot(self) -> dict[TopicPartition, int]:
        return dict(self._known)


class BrokerProbe:
    """Asks the broker for the end offsets of the partitions the worker knows offsets of.

    A loss counts once two probes in a row see it: a broker may list a topic late just after it started, and a new
    partition leader may report its end low for a moment. End offsets as listed can fall short of the real end on some
    brokers; a partition that looks behind is confirmed with a fetch (:func:`~firebus.kafka.fetched_end_offsets`).
    """

    def __init__(self, settings: Settings) -> None:
        self._options = client_options(settings, client_id=f"{settings.client_id}-broker-check")
        self._seen: BrokerLoss | None = None

    async def check(self, known: Mapping[TopicPartition, int]) -> BrokerLoss | None:
        """The loss two probes in a row agree on, else None (also when the broker does not answer)."""
        try:
            found = await self._probe(known)
        except (KafkaError, OSError, TimeoutError) as exc:  # an outage is not a loss: the next probe asks again
            log.debug("broker_check_unanswered", error=repr(exc))
            return None
        confirmed = found if found and found == self._seen else None
        self._seen = found or None
        return confirmed

    async def _probe(self, known: Mapping[TopicPartition, int]) -> BrokerLoss:
        if not known:
            return BrokerLoss()
        # A consumer of its own each time: nothing stays open between checks, or at the worker's end.
        consumer = AIOKafkaConsumer(**self._options, group_id=None, enable_auto_commit=False)
        try:
            await consumer.start()
            return await self._ask(consumer, known)
        finally:
            await consumer.stop()

    async def _ask(self, consumer: AIOKafkaConsumer, known: Mapping[TopicPartition, int]) -> BrokerLoss:
        topics = await consumer.topics()  # a fresh metadata request
        missing = sorted({tp.topic for tp in known} - set(topics))
        present = [
            tp
            for tp in known
            if tp.topic in topics and tp.partition in (consumer.partitions_for_topic(tp.topic) or set())
        ]
        missing += sorted(f"{tp.topic}/{tp.partition}" for tp in known if tp.topic in topics and tp not in present)
        listed: dict[TopicPartition, int] = await consumer.end_offsets(present) if present else {}
        suspects = [tp for tp in present if listed[tp] <= known[tp]]
        ends = await fetched_end_offsets(self._options, suspects) if suspects else {}
        behind = tuple(Behind(tp, ends[tp], known[tp]) for tp in sorted(suspects) if ends[tp] <= known[tp])
        return BrokerLoss(behind, tuple(missing))


# --- rescuing and restoring ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rescued:
    """The review items a worker saved when its broker was lost."""

    path: Path
    items: int
    pending: int
    still_on_broker: int


def save_rescued(directory: Path, codec: Codec, items: Sequence[ReviewItem], *, now: datetime) -> Path:
    """Write ``items`` to a new Avro object container file in ``directory`` (the review item schema embedded, so any
    Avro reader opens it) and fsync it; returns its path."""
    directory.mkdir(parents=True, exist_ok=True)
    contract = codec.contracts.current("review_item")
    records = [codec.decode_data(codec.encode(item))[1] for item in items]
    for record in records:  # a union's record branch named, as the single-object encoding does
        for name, branch in contract.record_branches.items():
            if isinstance(record.get(name), dict):
                record[name] = (branch, record[name])
    path = directory / f"review-items-{now.astimezone(UTC):%Y%m%dT%H%M%S%fZ}{RESCUED_SUFFIX}"
    with path.open("xb") as output:
        writer(output, contract.parsed, records, codec="deflate")
        output.flush()
        os.fsync(output.fileno())
    return path


def load_rescued(codec: Codec, path: Path) -> list[ReviewItem]:
    """The review items of one rescue file, read with the current review item schema."""
    contract = codec.contracts.current("review_item")
    with path.open("rb") as source:
        records: list[dict[str, Any]] = list(reader(source, reader_schema=contract.parsed))  # type: ignore[arg-type]
    items = []
    for record in records:
        item = codec.to_model(contract, record)
        if not isinstance(item, ReviewItem):
            raise TypeError(f"{path} holds a {type(item).__name__}, not review items")
        items.append(item)
    return items


@dataclass
class Restored:
    """What the start of a worker wrote back from rescue files."""

    files: list[Path] = field(default_factory=list)
    restored: int = 0
    already_there: int = 0


async def event_ids_on_broker(settings: Settings, codec: Codec) -> set[str]:
    """The event ids the broker's review state holds (keys of the review changelog)."""
    found = set()
    for key, value in await read_to_end(settings, REVIEW_ITEMS):
        if key is None or value is None:
            continue
        try:
            codec.decode(value)
        except (DecodeError, InvalidEventError):
            continue
        found.add(key.decode())
    return found


async def restore_rescued(settings: Settings, codec: Codec, *, partitions: int) -> Restored | None:
    """Write the review items of every rescue file the broker does not have back to the review state (its changelog,
    which the worker's table restores from); each file is then renamed ``*.restored``. None when there is none."""
    files = sorted(rescue_directory(settings).glob(f"*{RESCUED_SUFFIX}"))
    if not files:
        return None
    items: dict[str, ReviewItem] = {}
    for path in files:  # oldest first: a later rescue of the same item is the newer state
        items.update((str(item.event_id), item) for item in load_rescued(codec, path))
    on_broker = await event_ids_on_broker(settings, codec)
    missing = [item for event_id, item in items.items() if event_id not in on_broker]
    records = [
        Outgoing(
            REVIEW_ITEMS,
            str(item.event_id).encode(),
            codec.encode(item),
            partition_for(item.partition_key.encode(), partitions),
        )
        for item in missing
    ]
    producer = AIOKafkaProducer(**producer_options(settings, client_id=f"{settings.client_id}-restore"))
    try:
        await producer.start()
        await BatchSender(producer).send_all(records)
    except KafkaError as exc:
        raise BrokerError(f"writing the rescued review items back failed: {exc!r}") from exc
    finally:
        await producer.stop()
    for path in files:
        path.rename(path.with_name(path.name + RESTORED_SUFFIX))
    report = Restored(files=files, restored=len(missing), already_there=len(items) - len(missing))
    log.warning(
        "review_items_restored",
        restored=report.restored,
        pending=sum(1 for item in missing if item.status is ReviewStatus.PENDING),
        already_on_broker=report.already_there,
        files=[str(path) for path in files],
    )
    return report


async def still_on_broker(settings: Settings, codec: Codec, event_ids: Iterable[str], *, within_s: float) -> int:
    """How many of ``event_ids`` the broker's review state still holds; 0 when it cannot say within ``within_s``."""
    try:
        on_broker = await asyncio.wait_for(event_ids_on_broker(settings, codec), timeout=within_s)
    except (BrokerError, KafkaError, OSError, TimeoutError):
        return 0
    return sum(1 for event_id in event_ids if event_id in on_broker)
