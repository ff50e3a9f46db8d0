"""Versioned migrations of the archive's PostgreSQL schema, recorded in ``schema_migrations`` (the one runner:
:mod:`consumers._migrations`)."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

from consumers._migrations import Migration
from consumers._migrations import apply_migrations as apply_set

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "releases and audit events",
        (
            """
            CREATE TABLE releases (
                event_id         uuid        NOT NULL,
                tier             text        NOT NULL,
                release_id       uuid        NOT NULL,
                event_type       text        NOT NULL,
                kind             text        NOT NULL,
                thread_id        uuid        NOT NULL,
                incident_id      text,
                townships        text[]      NOT NULL,
                publisher_unit   text        NOT NULL,
                publisher_person text        NOT NULL,
                severity         text        NOT NULL,
                occurred_at      timestamptz NOT NULL,
                published_at     timestamptz NOT NULL,
                reviewed_at      timestamptz NOT NULL,
                reviewer         text        NOT NULL,
                reviewer_kind    text        NOT NULL,
                released_at      timestamptz NOT NULL,
                event            jsonb       NOT NULL,
                release          jsonb       NOT NULL,
                archived_at      timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (event_id, tier)
            )
            """,
            "CREATE INDEX releases_type_occurred ON releases (event_type, occurred_at)",
            "CREATE INDEX releases_occurred ON releases (occurred_at)",
            "CREATE INDEX releases_incident ON releases (incident_id) WHERE incident_id IS NOT NULL",
            "CREATE INDEX releases_townships ON releases USING gin (townships)",
            """
            CREATE TABLE audit_events (
                audit_id       uuid        PRIMARY KEY,
                action         text        NOT NULL,
                event_id       uuid,
                event_type     text,
                actor          text        NOT NULL,
                publisher_unit text,
                tier           text,
                reason         text,
                at             timestamptz NOT NULL,
                trace_id       text,
                details        jsonb       NOT NULL,
                archived_at    timestamptz NOT NULL DEFAULT now()
            )
            """,
            "CREATE INDEX audit_events_event ON audit_events (event_id) WHERE event_id IS NOT NULL",
            "CREATE INDEX audit_events_action_at ON audit_events (action, at)",
            "CREATE INDEX audit_events_at ON audit_events (at)",
        ),
    ),
)
"""Every migration, in version order."""

_LOCK_KEY = 0x66697265627573  # "firebus": one advisory lock for archive migrations, whatever the database


async def apply_migrations(connection: AsyncConnection[Any]) -> list[int]:
    """Apply the archive's migrations not yet recorded; returns the versions applied now (none when up to date)."""
    return await apply_set(connection, MIGRATIONS, ledger="schema_migrations", lock_key=_LOCK_KEY)
