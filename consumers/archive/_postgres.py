"""The archive sink: every cleared release and every audit event, once, in PostgreSQL, for querying.

Driver: psycopg 3, async. Chosen over asyncpg because it ships its own type hints (mypy strict with no stubs
package), takes any libpq connection string — URI or ``key=value``, ``sslmode``, ``options=-csearch_path=...``,
service files — exactly as ``psql`` does, adapts ``uuid``, ``timestamptz`` and ``text[]`` natively, and pipelines
``executemany`` so a batch costs one round trip.

``deliver`` turns each record into a row (:mod:`._rows`; a record that can never be stored is poison right there)
and buffers it; ``flush`` writes the buffer in one transaction and returns only once it is committed, so the
runner's offset commit always follows durable rows. A connection failure is :class:`SinkUnavailableError`: the
buffer is kept and written again on the retry, which the upserts make harmless.

    releases      key (event_id, tier): a re-delivered release changes nothing; a later release of the same
                  event to the same tier (a new decision) replaces the earlier row
    audit_events  key audit_id: first write wins, re-deliveries change nothing
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, LiteralString
from uuid import UUID

import psycopg
import structlog
from psycopg.conninfo import conninfo_to_dict

from consumers._runner import Delivery
from consumers.archive._migrations import apply_migrations
from consumers.archive._rows import AuditRow, ReleaseRow, audit_row, release_row
from firebus.codec import Codec
from firebus.errors import ConfigurationError, PoisonRecordError, SinkUnavailableError
from firebus.records import AuditEvent, Release
from firebus.settings import Settings
from firebus.topics import AUDIT, TIERS, Topic

log = structlog.get_logger(__name__)

CONNECT_TIMEOUT_S = 5

_INSERT_RELEASE: LiteralString = """
    INSERT INTO releases (
        event_id, tier, release_id, event_type, kind, thread_id, incident_id, townships, publisher_unit,
        publisher_person, severity, occurred_at, published_at, reviewed_at, reviewer, reviewer_kind, released_at,
        event, release
    ) VALUES (
        %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s::jsonb
    )
    ON CONFLICT (event_id, tier) DO UPDATE SET
        release_id = EXCLUDED.release_id, event_type = EXCLUDED.event_type, kind = EXCLUDED.kind,
        thread_id = EXCLUDED.thread_id, incident_id = EXCLUDED.incident_id, townships = EXCLUDED.townships,
        publisher_unit = EXCLUDED.publisher_unit, publisher_person = EXCLUDED.publisher_person,
        severity = EXCLUDED.severity, occurred_at = EXCLUDED.occurred_at, published_at = EXCLUDED.published_at,
        reviewed_at = EXCLUDED.reviewed_at, reviewer = EXCLUDED.reviewer, reviewer_kind = EXCLUDED.reviewer_kind,
        released_at = EXCLUDED.released_at, event = EXCLUDED.event, release = EXCLUDED.release,
        archived_at = now()
    WHERE releases.released_at < EXCLUDED.released_at
"""

_INSERT_AUDIT: LiteralString = """
    INSERT INTO audit_events (
        audit_id, action, event_id, event_type, actor, publisher_unit, tier, reason, at, trace_id, details
    ) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb)
    ON CONFLICT (audit_id) DO NOTHING
"""


class ArchiveSink:
    """Sink ``archive``: the three tier topics and the audit topic into PostgreSQL (``settings.archive_dsn``)."""

    name = "archive"
    topics: Sequence[Topic] = (*TIERS.values(), AUDIT)

    def __init__(self, *, settings: Settings, dsn: str | None = None, codec: Codec | None = None) -> None:
        self._dsn = dsn if dsn is not None else settings.archive_dsn.get_secret_value()
        try:
            conninfo_to_dict(self._dsn)
        except psycopg.Error as exc:
            raise ConfigurationError("archive_dsn is not a libpq connection string (URI or key=value pairs)") from exc
        self.codec = codec or Codec()
        self._connection: psycopg.AsyncConnection[Any] | None = None
        self._releases: dict[tuple[UUID, str], ReleaseRow] = {}
        self._audits: dict[UUID, AuditRow] = {}

    async def start(self) -> None:
        """Connect and migrate now if the database is there; if not, the first flush retries until it is."""
        # A restart after a crash starts clean: what was buffered and not flushed is delivered again.
        self._releases.clear()
        self._audits.clear()
        try:
            await self._connect()
        except SinkUnavailableError as exc:
            log.warning("archive_database_unavailable", sink=self.name, error=str(exc))

    async def deliver(self, delivery: Delivery) -> None:
        record = delivery.record
        if isinstance(record, Release) and delivery.topic == TIERS[record.tier].name:
            row = release_row(self.codec, record)
            key = (row.event_id, row.tier)
            earlier = self._releases.get(key)
            if earlier is None or earlier.released_at < row.released_at:
                self._releases[key] = row
        elif isinstance(record, AuditEvent) and delivery.topic == AUDIT.name:
            self._audits.setdefault(record.audit_id, audit_row(record))
        else:
            raise PoisonRecordError(f"a {type(record).__name__} does not belong on {delivery.topic}")

    async def flush(self) -> None:
        """Write the buffered rows in one transaction; they are committed when this returns."""
        if not self._releases and not self._audits:
            return
        connection = await self._connect()
        try:
            async with connection.transaction(), connection.cursor() as cursor:
                if self._releases:
                    await cursor.executemany(_INSERT_RELEASE, list(self._releases.values()))
                if self._audits:
                    await cursor.executemany(_INSERT_AUDIT, list(self._audits.values()))
        except psycopg.Error as exc:
            # Connection loss, and also what only an operator can fix (permissions, a dropped table): retried
            # with backoff until it works, never skipped, so nothing is lost.
            await self._disconnect()
            raise SinkUnavailableError(f"archive database write failed: {exc}") from exc
        log.debug("archive_written", sink=self.name, releases=len(self._releases), audit_events=len(self._audits))
        self._releases.clear()
        self._audits.clear()

    async def close(self) -> None:
        await self._disconnect()

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        if self._connection is not None and not self._connection.closed:
            return self._connection
        try:
            connection = await psycopg.AsyncConnection.connect(
                self._dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S, application_name="firebus-archive"
            )
        except psycopg.Error as exc:
            raise SinkUnavailableError(f"archive database unreachable: {exc}") from exc
        try:
            applied = await apply_migrations(connection)
        except psycopg.Error as exc:
            await connection.close()
            raise SinkUnavailableError(f"archive database migration failed: {exc}") from exc
        if applied:
            log.info("archive_migrated", sink=self.name, versions=applied)
        self._connection = connection
        return connection

    async def _disconnect(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.close()


async def migrate_archive(settings: Settings) -> list[int]:
    """Apply the archive database's pending migrations now (``firebus archive migrate``); the versions applied."""
    try:
        connection = await psycopg.AsyncConnection.connect(
            settings.archive_dsn.get_secret_value(), autocommit=True, connect_timeout=CONNECT_TIMEOUT_S
        )
    except psycopg.Error as exc:
        raise SinkUnavailableError(f"archive database unreachable: {exc}") from exc
    try:
        return await apply_migrations(connection)
    except psycopg.Error as exc:
        raise SinkUnavailableError(f"archive database migration failed: {exc}") from exc
    finally:
        await connection.close()
