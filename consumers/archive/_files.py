"""Cold storage: every cleared release and audit event, once, in Avro object container files.

Layout: ``ARCHIVE_DIR/<topic>/<YYYY-MM-DD>.avro``, then ``<YYYY-MM-DD>-001.avro``, ``-002`` … once a file has
reached ``archive_file_max_bytes``. The day is the UTC date of the record's own time (``released_at`` of a
release, ``at`` of an audit event), so a late record lands in its own day's file. Every file embeds the full
writer schema — the Release or AuditEvent contract — with deflate-compressed blocks: any Avro reader opens it.

Exactly once by id (``release_id``, ``audit_id``), across restarts; the files themselves are the truth. The first
time a (topic, day) is touched, the ids in that day's files are read, and a re-delivered record whose id is there
is skipped. ``flush`` fsyncs every file it wrote (and the directory when a file is new) before it returns, so the
runner commits offsets only over records on disk.

A file with a damaged tail (a crash mid-write — never acknowledged, since that flush had not returned) is left
untouched and never appended to: its whole blocks still count, the next record of that day opens the next file.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import re
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, TextIO

import structlog
from fastavro import block_reader, parse_schema
from fastavro.write import Writer

from consumers._runner import Delivery
from firebus.codec import Codec
from firebus.errors import ConfigurationError, PoisonRecordError, SinkUnavailableError
from firebus.records import AuditEvent, Release
from firebus.settings import Settings
from firebus.topics import AUDIT, TIERS, Topic

log = structlog.get_logger(__name__)

FILE_CODEC = "deflate"
LOCK_FILE = ".lock"
DAYS_REMEMBERED = 32
"""(topic, day) id sets kept in memory; an older day is read again from its files if a record for it comes."""

_FILE_NAME = re.compile(r"^(?P<day>\d{4}-\d{2}-\d{2})(?:-(?P<index>\d{3,}))?\.avro$")


def archived_id_field(topic: str) -> str:
    """The id field that makes a record unique in the archive files of ``topic``."""
    return "audit_id" if topic == AUDIT.name else "release_id"


def file_name(day: date, index: int) -> str:
    """``2025-04-03.avro`` for the first file of a day, ``2025-04-03-001.avro`` … for the next ones."""
    return f"{day.isoformat()}.avro" if index == 0 else f"{day.isoformat()}-{index:03d}.avro"


def archive_files(directory: Path) -> list[tuple[date, int, Path]]:
    """The archive files in one topic directory, oldest day and lowest index first."""
    found = []
    for path in directory.glob("*.avro") if directory.is_dir() else ():
        match = _FILE_NAME.match(path.name)
        if match is not None:
            found.append((date.fromisoformat(match["day"]), int(match["index"] or 0), path))
    return sorted(found)


def read_blocks(path: Path) -> tuple[list[dict[str, Any]], bool]:
    """Every record of every whole block of ``path``, and whether the file was sound to its end."""
    records: list[dict[str, Any]] = []
    try:
        with path.open("rb") as handle:
            for block in block_reader(handle):
                records += [record for record in block if isinstance(record, dict)]  # whole blocks or nothing
    except Exception as exc:  # fastavro raises ValueError, EOFError, zlib.error … on a torn tail
        log.warning("archive_file_damaged", path=str(path), records_readable=len(records), error=repr(exc))
        return records, False
    return records, True


@dataclass
class _Day:
    """What is on disk for one (topic, day)."""

    ids: set[str] = field(default_factory=set)
    append_to: Path | None = None
    next_index: int = 0


class AvroArchive:
    """Sink ``archive-files``: the three tier topics and the audit topic into Avro files (``archive_dir``)."""

    name = "archive-files"
    topics: Sequence[Topic] = (*TIERS.values(), AUDIT)

    def __init__(
        self,
        *,
        settings: Settings,
        directory: Path | None = None,
        max_file_bytes: int | None = None,
        codec: Codec | None = None,
    ) -> None:
        self.directory = directory if directory is not None else settings.archive_directory
        self.max_file_bytes = max_file_bytes if max_file_bytes is not None else settings.archive_file_max_bytes
        self.codec = codec or Codec()
        self._schemas = {
            stem: parse_schema(self.codec.contracts.current(stem).schema) for stem in ("release", "audit_event")
        }
        self._days: OrderedDict[tuple[str, date], _Day] = OrderedDict()
        self._pending: dict[tuple[str, date], dict[str, dict[str, Any]]] = {}
        self._lock: TextIO | None = None

    async def start(self) -> None:
        """Take the directory's lock: two writers appending to one day's file would interleave blocks."""
        # A restart after a crash starts clean: what was pending is delivered again, the files are read again.
        self._pending.clear()
        self._days.clear()
        self.directory.mkdir(parents=True, exist_ok=True)
        lock = (self.directory / LOCK_FILE).open("a")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise ConfigurationError(
                f"another archive-files sink is writing to {self.directory}; run one per archive directory"
            ) from None
        self._lock = lock

    async def deliver(self, delivery: Delivery) -> None:
        record = delivery.record
        if isinstance(record, Release) and delivery.topic == TIERS[record.tier].name:
            record_id, moment = str(record.release_id), record.released_at
        elif isinstance(record, AuditEvent) and delivery.topic == AUDIT.name:
            record_id, moment = str(record.audit_id), record.at
        else:
            raise PoisonRecordError(f"a {type(record).__name__} does not belong on {delivery.topic}")
        where = (delivery.topic, _utc_day(moment))
        day = await self._day(where)
        pending = self._pending.setdefault(where, {})
        if record_id not in day.ids and record_id not in pending:
            pending[record_id] = record.model_dump()

    async def flush(self) -> None:
        """Append what was delivered to its day's file and fsync; durable on disk when this returns."""
        for where in list(self._pending):
            day = await self._day(where)
            records = [record for key, record in self._pending[where].items() if key not in day.ids]
            if records:
                try:
                    await asyncio.to_thread(self._write, where, day, records)
                except OSError as exc:
                    self._days.pop(where, None)  # read the files again on the retry: they are the truth
                    raise SinkUnavailableError(f"archive files under {self.directory}: {exc}") from exc
            del self._pending[where]

    async def close(self) -> None:
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.close()  # releases the flock

    # --- files ---------------------------------------------------------------------------------------------------

    async def _day(self, where: tuple[str, date]) -> _Day:
        day = self._days.get(where)
        if day is None:
            day = await asyncio.to_thread(self._load_day, *where)
            self._days[where] = day
            while len(self._days) > DAYS_REMEMBERED:
                self._days.popitem(last=False)
        else:
            self._days.move_to_end(where)
        return day

    def _load_day(self, topic: str, when: date) -> _Day:
        id_field = archived_id_field(topic)
        day = _Day()
        for found, index, path in archive_files(self.directory / topic):
            if found != when:
                continue
            records, sound = read_blocks(path)
            day.ids.update(str(record[id_field]) for record in records)
            day.next_index = index + 1
            day.append_to = path if sound and path.stat().st_size < self.max_file_bytes else None
        return day

    def _write(self, where: tuple[str, date], day: _Day, records: list[dict[str, Any]]) -> None:
        topic, when = where
        id_field = archived_id_field(topic)
        schema = self._schemas["audit_event" if topic == AUDIT.name else "release"]
        directory = self.directory / topic
        directory.mkdir(parents=True, exist_ok=True)
        remaining = records
        while remaining:
            path, new = day.append_to, day.append_to is None
            if path is None:
                path = directory / file_name(when, day.next_index)
                day.next_index += 1
            with path.open("a+b") as handle:
                writer = Writer(handle, schema, codec=FILE_CODEC)
                written = 0
                for record in remaining:
                    writer.write(record)
                    written += 1
                    if handle.tell() >= self.max_file_bytes:
                        break  # blocks reach the file every ~16 kB: a file overshoots the cap by a block at most
                writer.flush()
                handle.flush()
                os.fsync(handle.fileno())
                full = handle.tell() >= self.max_file_bytes
            if new:
                _fsync_directory(directory)
            day.ids.update(str(record[id_field]) for record in remaining[:written])
            day.append_to = None if full else path
            log.debug("archive_file_written", path=str(path), records=written)
            remaining = remaining[written:]


def _utc_day(moment: datetime) -> date:
    return moment.date()  # UtcDatetime: already normalised to UTC


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
