"""What the HTTP API keeps in PostgreSQL (``archive_dsn``): per-unit API credentials and idempotency keys.

    api_credentials   one row per credential: its unit, a label, the SHA-256 of its bearer token (never the token),
                      when it was made and revoked
    api_idempotency   one row per (unit, Idempotency-Key): the request's digest, the signed event it became and
                      where it landed once sent

A token is 256 random bits, so a plain SHA-256 is enough to make the stored digest useless to a reader of the
table (no password-style stretching needed). Idempotency keys belong to the unit, not the credential, so a retry
made after a credential was rotated still finds its first attempt.

The tables have their own migrations, recorded in ``api_schema_migrations`` (the archive's are in
``schema_migrations``), so the two evolve independently in one database.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import psycopg
import structlog

from consumers._migrations import Migration, apply_migrations
from firebus.errors import ConfigurationError, StoreUnavailableError

log = structlog.get_logger(__name__)

CONNECT_TIMEOUT_S = 5
TOKEN_PREFIX = "fbk_"  # noqa: S105  (the prefix that makes a leaked token recognisable, not a secret)
_LOCK_CLASS = 0x66627573  # "fbus": first half of the two-part advisory lock keys of idempotency keys in flight
_MIGRATION_LOCK_KEY = 0x617069  # "api": the HTTP API's own migration lock, apart from the archive's and the accounts'


API_MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "api credentials and idempotency keys",
        (
            """
            CREATE TABLE api_credentials (
                credential_id text        PRIMARY KEY,
                unit          text        NOT NULL,
                label         text        NOT NULL,
                token_sha256  bytea       NOT NULL UNIQUE,
                created_at    timestamptz NOT NULL DEFAULT now(),
                revoked_at    timestamptz
            )
            """,
            "CREATE INDEX api_credentials_unit ON api_credentials (unit)",
            """
            CREATE TABLE api_idempotency (
                unit            text        NOT NULL,
                idempotency_key text        NOT NULL,
                request_sha256  bytea       NOT NULL,
                credential_id   text        NOT NULL,
                event_id        uuid        NOT NULL,
                trace_id        text        NOT NULL,
                event           bytea       NOT NULL,
                topic           text,
                "partition"     integer,
                "offset"        bigint,
                created_at      timestamptz NOT NULL DEFAULT now(),
                sent_at         timestamptz,
                PRIMARY KEY (unit, idempotency_key)
            )
            """,
        ),
    ),
)
"""Every migration of the API's tables, in version order; never edited once released."""


@dataclass(frozen=True)
class Credential:
    """One API credential of a unit (the token itself is shown once, when made, and never stored)."""

    credential_id: str
    unit: str
    label: str
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class Attempt:
    """What an earlier request with the same idempotency key did: the event it became, and where it landed (None
    while it was never confirmed sent)."""

    request_sha256: bytes
    event_id: UUID
    trace_id: str
    event: bytes
    topic: str | None
    partition: int | None
    offset: int | None


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


class ApiStore:
    """The API's credentials and idempotency keys in PostgreSQL; every failure to reach it is
    :class:`StoreUnavailableError`."""

    def __init__(self, *, dsn: str) -> None:
        try:
            psycopg.conninfo.conninfo_to_dict(dsn)
        except psycopg.Error as exc:
            raise ConfigurationError("archive_dsn is not a libpq connection string (URI or key=value pairs)") from exc
        self._dsn = dsn
        self._migrated = False

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A connection to a migrated database (the first use migrates: a portal started while PostgreSQL was down
        serves the API once it is back)."""
        try:
            connection = await psycopg.AsyncConnection.connect(
                self._dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S
            )
        except psycopg.Error as exc:
            raise StoreUnavailableError(f"the API's PostgreSQL cannot be reached: {type(exc).__name__}") from exc
        try:
            async with connection:
                if not self._migrated:
                    await self._migrate(connection)
                    self._migrated = True
                yield connection
        except psycopg.Error as exc:
            raise StoreUnavailableError(f"the API's PostgreSQL failed: {type(exc).__name__}: {exc}") from exc

    async def migrate(self) -> None:
        """Bring the tables up to date now (else the first request does)."""
        async with self._connection():
            pass

    async def _migrate(self, connection: psycopg.AsyncConnection[Any]) -> list[int]:
        """Apply the migrations not yet recorded (one process at a time); returns the versions applied now."""
        applied = await apply_migrations(
            connection, API_MIGRATIONS, ledger="api_schema_migrations", lock_key=_MIGRATION_LOCK_KEY
        )
        if applied:
            log.info("api_store_migrated", versions=applied)
        return applied

    # --- credentials -----------------------------------------------------------------------------------------

    async def create(self, *, unit: str, label: str) -> tuple[Credential, str]:
        """A new credential for ``unit`` and its bearer token (the only time the token exists in the clear)."""
        credential_id = f"ak_{secrets.token_hex(6)}"
        token = f"{TOKEN_PREFIX}{secrets.token_urlsafe(32)}"
        async with self._connection() as connection:
            cursor = await connection.execute(
                "INSERT INTO api_credentials (credential_id, unit, label, token_sha256) VALUES (%s, %s, %s, %s) "
                "RETURNING created_at",
                (credential_id, unit, label, token_digest(token)),
            )
            row = await cursor.fetchone()
        created_at: datetime = row[0] if row is not None else datetime.now(UTC)
        log.info("api_credential_created", credential=credential_id, unit=unit)
        return Credential(credential_id, unit, label, created_at), token

    async def credentials(self, *, unit: str | None = None) -> list[Credential]:
        """Every credential (of ``unit``), oldest first, revoked ones included."""
        async with self._connection() as connection:
            cursor = await connection.execute(
                "SELECT credential_id, unit, label, created_at, revoked_at FROM api_credentials "
                "WHERE %(unit)s::text IS NULL OR unit = %(unit)s "
                "ORDER BY created_at, credential_id",
                {"unit": unit},
            )
            return [Credential(*row) for row in await cursor.fetchall()]

    async def revoke(self, credential_id: str) -> Credential | None:
        """Revoke a credential at once (the next request with its token is refused); None when there is none."""
        async with self._connection() as connection:
            cursor = await connection.execute(
                "UPDATE api_credentials SET revoked_at = coalesce(revoked_at, now()) WHERE credential_id = %s "
                "RETURNING credential_id, unit, label, created_at, revoked_at",
                (credential_id,),
            )
            row = await cursor.fetchone()
        if row is None:
            return None
        log.info("api_credential_revoked", credential=credential_id, unit=row[1])
        return Credential(*row)

    async def authenticate(self, token: str) -> Credential | None:
        """The active credential whose token this is, else None."""
        async with self._connection() as connection:
            cursor = await connection.execute(
                "SELECT credential_id, unit, label, created_at, revoked_at FROM api_credentials "
                "WHERE token_sha256 = %s AND revoked_at IS NULL",
                (token_digest(token),),
            )
            row = await cursor.fetchone()
        return Credential(*row) if row is not None else None

    # --- idempotency -----------------------------------------------------------------------------------------

    @asynccontextmanager
    async def claim(self, unit: str, key: str) -> AsyncIterator[Claim]:
        """Hold ``unit``'s idempotency key for the duration: a second request with the same key waits here until
        the first one has finished, then finds what it did. The lock is the connection's, so a portal that dies
        mid-request releases it."""
        async with self._connection() as connection:
            lock = (_LOCK_CLASS, f"{unit}\n{key}")
            await connection.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", lock)
            try:
                yield Claim(connection, unit, key)
            finally:
                await connection.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", lock)


class Claim:
    """One held idempotency key: what was done with it before, and recording what is done now."""

    def __init__(self, connection: psycopg.AsyncConnection[Any], unit: str, key: str) -> None:
        self._connection = connection
        self.unit = unit
        self.key = key

    async def earlier(self) -> Attempt | None:
        cursor = await self._connection.execute(
            'SELECT request_sha256, event_id, trace_id, event, topic, "partition", "offset" FROM api_idempotency '
            "WHERE unit = %s AND idempotency_key = %s",
            (self.unit, self.key),
        )
        row = await cursor.fetchone()
        return Attempt(*row) if row is not None else None

    async def remember(
        self, *, request_sha256: bytes, credential_id: str, event_id: UUID, trace_id: str, event: bytes
    ) -> None:
        """Record the signed event before it is sent: a retry after a lost send re-sends these very bytes."""
        await self._connection.execute(
            "INSERT INTO api_idempotency (unit, idempotency_key, request_sha256, credential_id, event_id, trace_id, "
            "event) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (self.unit, self.key, request_sha256, credential_id, event_id, trace_id, event),
        )

    async def sent(self, *, topic: str, partition: int, offset: int) -> None:
        await self._connection.execute(
            'UPDATE api_idempotency SET topic = %s, "partition" = %s, "offset" = %s, sent_at = now() '
            "WHERE unit = %s AND idempotency_key = %s",
            (topic, partition, offset, self.unit, self.key),
        )
