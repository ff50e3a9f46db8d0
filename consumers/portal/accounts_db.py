"""The account directory in PostgreSQL (the archive's database, ``FIREBUS_ARCHIVE_DSN``): person accounts,
server-side sessions and the portal's security log.

The portal's tables have their own migration set, recorded in ``portal_schema_migrations`` under their own advisory
lock: the portal and the archive sink start in any order and each migrates only its own tables (the archive's
``schema_migrations`` versions stay the archive's). A migration is never edited once released.

Why a security log table, not the audit topic: the audit trail is the record of what happened to events on the bus
(reviewed, released, escalated), signed by the processors and archived with them; logins, sessions and account
changes are about people at the portal, carry client addresses, and must be queryable by the portal itself for
throttling on every login attempt — a table beside the accounts serves that, the topic would not.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any, LiteralString

import psycopg
import structlog
from psycopg import AsyncConnection
from psycopg.rows import dict_row

from consumers._migrations import Migration
from consumers._migrations import apply_migrations as apply_set
from consumers.portal.accounts import (
    FAILURE_WINDOW,
    SESSION_LIFETIME,
    Account,
    Failures,
    Role,
    Security,
    SecurityEvent,
    SessionInfo,
    refuse,
    token_digest,
)
from firebus.errors import ConfigurationError

log = structlog.get_logger(__name__)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "portal accounts, sessions and security log",
        (
            """
            CREATE TABLE portal_accounts (
                id            text        PRIMARY KEY,
                name          text        NOT NULL,
                unit          text        NOT NULL,
                role          text        NOT NULL
                    CHECK (role IN ('reporter', 'unit_admin', 'hq_reviewer', 'hq_admin')),
                password_hash text        NOT NULL,
                disabled      boolean     NOT NULL DEFAULT false,
                demo          boolean     NOT NULL DEFAULT false,
                created_at    timestamptz NOT NULL DEFAULT now(),
                updated_at    timestamptz NOT NULL DEFAULT now()
            )
            """,
            "CREATE INDEX portal_accounts_unit ON portal_accounts (unit)",
            """
            CREATE TABLE portal_sessions (
                token_sha256 text        PRIMARY KEY,
                account_id   text        NOT NULL REFERENCES portal_accounts (id),
                client       text        NOT NULL,
                created_at   timestamptz NOT NULL,
                expires_at   timestamptz NOT NULL,
                ended_at     timestamptz
            )
            """,
            "CREATE INDEX portal_sessions_account ON portal_sessions (account_id) WHERE ended_at IS NULL",
            """
            CREATE TABLE portal_security_log (
                id         bigserial   PRIMARY KEY,
                at         timestamptz NOT NULL,
                kind       text        NOT NULL,
                account_id text        NOT NULL,
                client     text        NOT NULL,
                actor      text        NOT NULL,
                unit       text        NOT NULL,
                detail     text        NOT NULL
            )
            """,
            "CREATE INDEX portal_security_log_account ON portal_security_log (account_id, kind, at)",
            "CREATE INDEX portal_security_log_client ON portal_security_log (client, kind, at)",
            "CREATE INDEX portal_security_log_at ON portal_security_log (at)",
        ),
    ),
)

_LOCK_KEY = 0x706F7274616C  # "portal": the portal's own migration lock, apart from the archive's


async def apply_migrations(connection: AsyncConnection[Any]) -> list[int]:
    """Apply the portal migrations not yet recorded; the versions applied now."""
    return await apply_set(connection, MIGRATIONS, ledger="portal_schema_migrations", lock_key=_LOCK_KEY)


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())


def _account(row: dict[str, Any]) -> Account:
    return Account(**{**row, "role": Role(row["role"])})


class PostgresDirectory:
    """Accounts, sessions and the security log in PostgreSQL, over one connection the portal shares (requests are
    short; a lock keeps them one at a time on it). A lost connection is reopened on the next request."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._connection: AsyncConnection[dict[str, Any]] | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        async with self._lock:
            connection = await self._connect()
            await apply_migrations(connection)

    async def close(self) -> None:
        async with self._lock:
            if self._connection is not None:
                await self._connection.close()
                self._connection = None

    async def _connect(self) -> AsyncConnection[dict[str, Any]]:
        if self._connection is None or self._connection.closed:
            try:
                self._connection = await psycopg.AsyncConnection.connect(
                    self._dsn, autocommit=True, row_factory=dict_row, connect_timeout=10
                )
            except psycopg.Error as exc:
                raise ConfigurationError(
                    f"cannot reach the accounts database (FIREBUS_ARCHIVE_DSN): {_one_line(exc)}"
                ) from exc
        return self._connection

    async def _rows(self, query: LiteralString, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        async with self._lock:
            for attempt in (1, 2):
                connection = await self._connect()
                try:
                    cursor = await connection.execute(query, params)
                    return await cursor.fetchall() if cursor.description else []
                except psycopg.OperationalError as exc:
                    log.warning("portal_accounts_db_reconnect", error=str(exc), attempt=attempt)
                    await connection.close()
                    if attempt == 2:
                        raise ConfigurationError(f"the accounts database failed: {_one_line(exc)}") from exc
            return []

    async def account(self, account_id: str) -> Account | None:
        rows = await self._rows(
            "SELECT id, name, unit, role, password_hash, disabled, demo FROM portal_accounts WHERE id = %s",
            (account_id,),
        )
        return _account(rows[0]) if rows else None

    async def accounts(self, *, unit: str | None = None) -> list[Account]:
        rows = await self._rows(
            "SELECT id, name, unit, role, password_hash, disabled, demo FROM portal_accounts "
            "WHERE %s::text IS NULL OR unit = %s ORDER BY unit, id",
            (unit, unit),
        )
        return [_account(row) for row in rows]

    async def add(self, account: Account) -> None:
        rows = await self._rows(
            """
            INSERT INTO portal_accounts (id, name, unit, role, password_hash, disabled, demo)
            VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING RETURNING id
            """,
            (
                account.id,
                account.name,
                account.unit,
                account.role.value,
                account.password_hash,
                account.disabled,
                account.demo,
            ),
        )
        if not rows:
            raise refuse("account_exists", account.id)

    async def update(self, account_id: str, *, disabled: bool | None = None, password_hash: str | None = None) -> None:
        rows = await self._rows(
            """
            UPDATE portal_accounts SET disabled = coalesce(%s, disabled), password_hash = coalesce(%s, password_hash),
                updated_at = now()
            WHERE id = %s RETURNING id
            """,
            (disabled, password_hash, account_id),
        )
        if not rows:
            raise refuse("unknown_account", account_id)

    async def open_session(self, token: str, account_id: str, *, client: str, now: datetime) -> None:
        await self._rows(
            "INSERT INTO portal_sessions (token_sha256, account_id, client, created_at, expires_at) "
            "VALUES (%s, %s, %s, %s, %s)",
            (token_digest(token), account_id, client, now, now + SESSION_LIFETIME),
        )

    async def session_account(self, token: str, *, now: datetime) -> Account | None:
        rows = await self._rows(
            """
            SELECT a.id, a.name, a.unit, a.role, a.password_hash, a.disabled, a.demo
            FROM portal_sessions s JOIN portal_accounts a ON a.id = s.account_id
            WHERE s.token_sha256 = %s AND s.ended_at IS NULL AND s.expires_at > %s AND NOT a.disabled
            """,
            (token_digest(token), now),
        )
        return _account(rows[0]) if rows else None

    async def end_session(self, token: str, *, now: datetime) -> None:
        await self._rows(
            "UPDATE portal_sessions SET ended_at = %s WHERE token_sha256 = %s AND ended_at IS NULL",
            (now, token_digest(token)),
        )

    async def end_sessions(self, account_id: str, *, now: datetime) -> int:
        rows = await self._rows(
            "UPDATE portal_sessions SET ended_at = %s WHERE account_id = %s AND ended_at IS NULL AND expires_at > %s "
            "RETURNING 1",
            (now, account_id, now),
        )
        return len(rows)

    async def live_sessions(self, *, now: datetime) -> list[SessionInfo]:
        rows = await self._rows(
            "SELECT account_id, client, created_at, expires_at FROM portal_sessions "
            "WHERE ended_at IS NULL AND expires_at > %s ORDER BY created_at",
            (now,),
        )
        return [SessionInfo(**row) for row in rows]

    async def record(self, event: SecurityEvent) -> None:
        await self._rows(
            "INSERT INTO portal_security_log (at, kind, account_id, client, actor, unit, detail) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (
                event.at,
                event.kind.value,
                event.account_id,
                event.client,
                event.actor,
                event.unit,
                event.detail,
            ),
        )

    async def failures(self, *, account_id: str | None = None, client: str | None = None, now: datetime) -> Failures:
        rows = await self._rows(
            """
            SELECT count(*) AS count, max(at) AS last_at FROM portal_security_log f
            WHERE f.kind = 'login_failed' AND f.at > %s
              AND (%s::text IS NULL OR f.account_id = %s) AND (%s::text IS NULL OR f.client = %s)
              AND (%s::text IS NULL OR f.at > coalesce((
                  SELECT max(ok.at) FROM portal_security_log ok WHERE ok.kind = 'login_ok' AND ok.account_id = %s
              ), '-infinity'))
            """,
            (now - FAILURE_WINDOW, account_id, account_id, client, client, account_id, account_id),
        )
        return Failures(int(rows[0]["count"]), rows[0]["last_at"])

    async def security_log(self, *, unit: str | None = None, limit: int = 200) -> list[SecurityEvent]:
        rows = await self._rows(
            "SELECT at, kind, account_id, client, actor, unit, detail FROM portal_security_log "
            "WHERE %s::text IS NULL OR unit = %s ORDER BY at DESC, id DESC LIMIT %s",
            (unit, unit, limit),
        )
        return [SecurityEvent(**{**row, "kind": Security(row["kind"])}) for row in rows]
