"""Where the facts come from: a replay of the cleared tier topics and the audit topic, the PostgreSQL archive, or
the archive's Avro files. Each returns the same :class:`Facts` for the same events.

A topic replay uses no consumer group (``group_id=None``) and commits nothing, so it never moves a live consumer's
offsets. With a window start it seeks each partition to ``offsets_for_times(start)``: a record's broker timestamp is
never earlier than its event time, so nothing in the window is skipped; the window itself is applied on event time.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import structlog
from tqdm import tqdm

from consumers.analytics._columns import Collector, release_records
from consumers.analytics._facts import AuditFact, Facts, ReleaseFact, audit_fact, release_fact, within
from consumers.archive import archive_files, read_blocks
from firebus.codec import Codec
from firebus.errors import ConfigurationError
from firebus.kafka import ScanStart, TopicScan
from firebus.settings import Settings
from firebus.topics import AUDIT, TIERS

log = structlog.get_logger(__name__)

PROGRESS_FROM = 20_000
"""Replays of at least this many records show a progress bar on stderr."""


async def from_topics(
    settings: Settings,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    progress: bool = True,
    codec: Codec | None = None,
) -> Facts:
    """Replay every partition of the tier topics and the audit topic up to their current end, without a group,
    decoding a batch at a time into fact columns (see :class:`~consumers.analytics._columns.Collector`)."""
    collector = Collector(codec or Codec())
    with gc_paused():
        await replay_topics(settings, collector.add, start=start, progress=progress)
        facts = collector.facts()
    if collector.skipped:
        log.info("stats_records_skipped", count=collector.skipped)
    return within(facts, start, end)


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause automatic cyclic garbage collection (process-wide) for the block, if it is on.

    A replay keeps each record's value until its batch is decoded; every few hundred allocations the collector
    runs, and its older generations are traversed again and again as a batch grows. Decoding makes no reference
    cycles; reference counting still frees everything as usual, and any cycle made meanwhile (by this or another
    task of the process) is collected once collection resumes, when the block ends."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


async def replay_topics(
    settings: Settings,
    handle: Callable[[bytes | None], None],
    *,
    start: datetime | None = None,
    progress: bool = True,
) -> int:
    """Call ``handle`` with each record value of the tier and audit topics (all partitions) up to their end now;
    returns how many there were. No consumer group, nothing committed."""
    seen = 0
    async with TopicScan(
        settings,
        [*TIERS.values(), AUDIT],
        purpose="stats",
        start=start if start is not None else ScanStart.BEGINNING,
        consumer_options=REPLAY_FETCH,
    ) as scan:
        with tqdm(
            total=scan.total,
            unit="rec",
            unit_scale=True,
            file=sys.stderr,
            disable=not progress or scan.total < PROGRESS_FROM,
        ) as bar:
            async for step in scan:
                for record in step.records:
                    handle(record.value)
                seen += len(step.records)
                bar.update(len(step.records) + sum(b.next_offset - b.first_offset for b in step.unreadable))
    return seen


REPLAY_FETCH = {"fetch_max_bytes": 64 * 1024 * 1024, "max_partition_fetch_bytes": 16 * 1024 * 1024}
"""Fetch sizes for replays: whole partitions stream in a few large fetches."""


_RELEASES_QUERY = """
    SELECT event_id::text, tier, event_type, incident_id, townships, occurred_at, published_at, reviewed_at,
           reviewer, reviewer_kind, released_at, event->'body'
    FROM releases
"""
_AUDITS_QUERY = "SELECT audit_id::text, action, event_id::text, event_type, tier, reason, details, at FROM audit_events"


async def from_archive(
    settings: Settings, *, dsn: str | None = None, start: datetime | None = None, end: datetime | None = None
) -> Facts:
    """The facts in the PostgreSQL archive (``archive_dsn``, or ``dsn``)."""
    conninfo = dsn if dsn is not None else settings.archive_dsn.get_secret_value()
    releases: list[ReleaseFact] = []
    audits: list[AuditFact] = []
    try:
        async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as connection:
            cursor = await connection.execute(_RELEASES_QUERY)
            for row in await cursor.fetchall():
                (event_id, tier, event_type, incident_id, townships, occurred, published, reviewed) = row[:8]
                reviewer, reviewer_kind, released_at, body = row[8:]
                release = {
                    "event_id": event_id,
                    "tier": tier,
                    "event_type": event_type,
                    "incident_id": incident_id,
                    "decision": {"decided_at": reviewed, "reviewer": reviewer, "reviewer_kind": reviewer_kind},
                    "released_at": released_at,
                }
                header = {"townships": townships, "occurred_at": occurred, "published_at": published}
                releases.append(release_fact(release, {"header": header, "body": _archived_body(body)}))
            cursor = await connection.execute(_AUDITS_QUERY)
            for audit_id, action, event_id, event_type, tier, reason, details, at in await cursor.fetchall():
                audit = {
                    "audit_id": audit_id,
                    "action": action,
                    "event_id": event_id,
                    "event_type": event_type,
                    "tier": tier,
                    "reason": reason,
                    "details": details,
                    "at": at,
                }
                audits.append(audit_fact(audit))
    except psycopg.Error as exc:
        raise ConfigurationError(f"cannot read the archive database (archive_dsn): {exc}") from exc
    return within(Facts.of(releases, audits), start, end)


def from_files(
    directory: Path, *, start: datetime | None = None, end: datetime | None = None, codec: Codec | None = None
) -> Facts:
    """The facts in the archive's Avro files under ``directory`` (one sub-directory per topic)."""
    collector = Collector(codec or Codec())
    tiers = {topic.name for topic in TIERS.values()}
    audits: list[AuditFact] = []
    for name in (*sorted(tiers), AUDIT.name):
        for _day, _index, path in archive_files(directory / name):
            records, _sound = read_blocks(path)
            if name == AUDIT.name:
                audits += [audit_fact(record) for record in records]
            else:
                collector.add_releases(release_records(records))
    facts = collector.facts()
    return within(Facts(releases=facts.releases, audits=Facts.of(audits=audits).audits), start, end)


def _archived_body(body: Mapping[str, Any] | None) -> dict[str, Any]:
    """An archived event's body (JSON: instants as ISO text) with the instants the facts read as datetimes."""
    body = dict(body or {})
    discovered = body.get("discovered_at")
    if isinstance(discovered, str):
        body["discovered_at"] = datetime.fromisoformat(discovered)
    return body
