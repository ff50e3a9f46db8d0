"""Refill topics from the archive files: every archived record re-published to its topic, byte for byte.

Each file's embedded writer schema is looked up by fingerprint among the released contracts, and each record is
single-object encoded with that very version — the bytes the processors once sent. Keys are derived as the
processors derive them: a release by its incident, resource or thread; an audit event by its event id, else its
own id. Re-publishing into a cluster that still has the records duplicates them on the topic; every sink applies
by id, so what they show does not change.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, KafkaError
from fastavro import reader
from fastavro.schema import to_parsing_canonical_form

from consumers.archive._files import archive_files, read_blocks
from firebus.codec import Codec
from firebus.contracts import Contract, fingerprint_of
from firebus.errors import BrokerError, ConfigurationError, DecodeError, InvalidEventError
from firebus.events import Event, EventType, Resource
from firebus.kafka import producer_options, unreachable
from firebus.records import AuditEvent, Release
from firebus.settings import Settings
from firebus.topics import AUDIT, TIERS, Topic, by_name

log = structlog.get_logger(__name__)

ARCHIVED_TOPICS: tuple[Topic, ...] = (*TIERS.values(), AUDIT)
IN_FLIGHT = 1_000
"""Sends awaited together: a failed one stops the replay with its error."""


@dataclass
class ReplayReport:
    """What a replay re-published, per topic, and the files it could read only in part."""

    published: dict[str, int] = field(default_factory=dict)
    damaged_files: list[Path] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.published.values())


def release_key(codec: Codec, release: Release) -> bytes:
    """The partition key the processors gave a release: incident id, else resource id, else thread id."""
    if release.incident_id:
        return release.incident_id.encode()
    if release.event_type is EventType.RESOURCE:
        try:
            event = codec.decode(release.event)
        except (DecodeError, InvalidEventError):
            event = None
        if isinstance(event, Event) and isinstance(event.body, Resource):
            return event.body.resource_id.encode()
    return str(release.thread_id).encode()


def audit_key(audit: AuditEvent) -> bytes:
    """The key of an audit record: the event it is about, else its own id."""
    return str(audit.event_id or audit.audit_id).encode()


def archived_records(codec: Codec, path: Path, report: ReplayReport) -> list[tuple[bytes, bytes]]:
    """``(key, value)`` of every record of one archive file, in file order, encoded as first published."""
    contract = _writer_contract(codec, path)
    records, sound = read_blocks(path)
    if not sound:
        report.damaged_files.append(path)
    found = []
    for data in records:
        record = codec.to_model(contract, data)
        if isinstance(record, Release):
            key = release_key(codec, record)
        elif isinstance(record, AuditEvent):
            key = audit_key(record)
        else:
            raise ConfigurationError(f"{path} holds a {contract.name}, not an archived record")
        found.append((key, codec.encode_data(contract, data)))
    return found


def _writer_contract(codec: Codec, path: Path) -> Contract:
    try:
        with path.open("rb") as handle:
            writer_schema = reader(handle).writer_schema
    except Exception as exc:  # an unreadable header: fastavro raises ValueError, EOFError …
        raise ConfigurationError(f"{path} is not an Avro object container file: {exc!r}") from exc
    contract = codec.contracts.by_fingerprint(fingerprint_of(to_parsing_canonical_form(writer_schema)))
    if contract is None:
        raise ConfigurationError(f"{path} was written with a schema that is not a released firebus contract")
    return contract


def replay_topics(names: Iterable[str]) -> list[Topic]:
    """The archived topics called ``names`` (all of them for none); a name that is not one is a config error."""
    chosen = []
    for name in names:
        topic = by_name(name)
        if topic is None or topic not in ARCHIVED_TOPICS:
            known = ", ".join(topic.name for topic in ARCHIVED_TOPICS)
            raise ConfigurationError(f"{name!r} is not an archived topic (one of {known})")
        chosen.append(topic)
    return chosen or list(ARCHIVED_TOPICS)


async def replay_files(
    settings: Settings,
    directory: Path,
    *,
    topics: Iterable[Topic] = ARCHIVED_TOPICS,
    codec: Codec | None = None,
    progress: Callable[[str, int], None] | None = None,
) -> ReplayReport:
    """Re-publish every record archived under ``directory`` (``<topic>/<day>[-NNN].avro``) to its topic."""
    codec = codec or Codec()
    if not await asyncio.to_thread(directory.is_dir):
        raise ConfigurationError(f"archive directory {directory} does not exist")
    report = ReplayReport()
    producer = AIOKafkaProducer(
        **producer_options(settings, client_id=f"{settings.client_id}-archive-replay", linger_ms=20)
    )
    try:
        await producer.start()
    except (KafkaConnectionError, OSError) as exc:
        await producer.stop()
        raise unreachable(settings, exc) from exc
    try:
        for topic in topics:
            count = 0
            sent: list[asyncio.Future[Any]] = []
            paths = [path for _day, _index, path in await asyncio.to_thread(archive_files, directory / topic.name)]
            for path in paths:
                for key, value in await asyncio.to_thread(archived_records, codec, path, report):
                    sent.append(await producer.send(topic.name, value, key=key))
                    count += 1
                    if len(sent) >= IN_FLIGHT:
                        await asyncio.gather(*sent)
                        sent.clear()
            await asyncio.gather(*sent)
            report.published[topic.name] = count
            log.info("archive_replayed", topic=topic.name, records=count)
            if progress is not None:
                progress(topic.name, count)
    except KafkaError as exc:
        raise BrokerError(f"replaying the archive failed: {exc!r}") from exc
    finally:
        await producer.stop()
    return report
