"""Versioned PostgreSQL migrations, one runner for every set the consumers keep (the archive's, the portal's
accounts, the HTTP API's).

A migration is never edited once released: a change is a new, higher version. Each set records what it applied in a
ledger table of its own and migrates under an advisory lock of its own, so two processes starting together migrate
once and one set never waits for another. Each version commits together with its ledger row. Tables are created
unqualified, in the first schema of the connection's ``search_path``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, LiteralString, NamedTuple

from psycopg import AsyncConnection, sql


class Migration(NamedTuple):
    version: int
    name: str
    statements: tuple[LiteralString, ...]


async def apply_migrations(
    connection: AsyncConnection[Any], migrations: Sequence[Migration], *, ledger: str, lock_key: int
) -> list[int]:
    """Apply the ``migrations`` not yet recorded in ``ledger``; returns the versions applied now (none when up to
    date)."""
    table = sql.Identifier(ledger)
    applied: list[int] = []
    for migration in migrations:
        async with connection.transaction():
            await connection.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key,))
            await connection.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} (version integer PRIMARY KEY, name text NOT NULL,"
                    " applied_at timestamptz NOT NULL DEFAULT now())"
                ).format(table)
            )
            cursor = await connection.execute(
                sql.SQL("SELECT 1 FROM {} WHERE version = %s").format(table), (migration.version,)
            )
            if await cursor.fetchone() is not None:
                continue
            for statement in migration.statements:
                await connection.execute(statement)
            await connection.execute(
                sql.SQL("INSERT INTO {} (version, name) VALUES (%s, %s)").format(table),
                (migration.version, migration.name),
            )
        applied.append(migration.version)
    return applied
