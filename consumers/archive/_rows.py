"""Rows of the archive tables, built from firebus records: pure functions, no database.

Everything that can make a record unstorable is found here, before any SQL runs, and raised as
:class:`~firebus.errors.PoisonRecordError`: a release whose inner event does not decode or does not match it, and text
PostgreSQL cannot hold (NUL characters; NaN in JSON).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID

from firebus.codec import Codec
from firebus.errors import DecodeError, InvalidEventError, PoisonRecordError
from firebus.events import Event
from firebus.records import AuditEvent, Release


class ReleaseRow(NamedTuple):
    """One row of ``releases``: typed columns for statistics, then the event and the release as JSON."""

    event_id: UUID
    tier: str
    release_id: UUID
    event_type: str
    kind: str
    thread_id: UUID
    incident_id: str | None
    townships: list[str]
    publisher_unit: str
    publisher_person: str
    severity: str
    occurred_at: datetime
    published_at: datetime
    reviewed_at: datetime
    reviewer: str
    reviewer_kind: str
    released_at: datetime
    event: str
    release: str


class AuditRow(NamedTuple):
    """One row of ``audit_events``."""

    audit_id: UUID
    action: str
    event_id: UUID | None
    event_type: str | None
    actor: str
    publisher_unit: str | None
    tier: str | None
    reason: str | None
    at: datetime
    trace_id: str | None
    details: str


def release_row(codec: Codec, release: Release) -> ReleaseRow:
    """The ``releases`` row of one release; :class:`PoisonRecordError` when it can never be stored."""
    try:
        event = codec.decode(release.event)
    except (DecodeError, InvalidEventError) as exc:
        raise PoisonRecordError(f"release {release.release_id}: its event does not decode: {exc}") from exc
    if not isinstance(event, Event):
        raise PoisonRecordError(f"release {release.release_id} carries a {type(event).__name__}, not an event")
    header = event.header
    if header.event_id != release.event_id:
        raise PoisonRecordError(
            f"release {release.release_id} is for event {release.event_id} but carries event {header.event_id}"
        )
    return ReleaseRow(
        event_id=release.event_id,
        tier=release.tier.value,
        release_id=release.release_id,
        event_type=release.event_type.value,
        kind=release.kind.value,
        thread_id=release.thread_id,
        incident_id=release.incident_id,
        townships=list(header.townships),
        publisher_unit=release.publisher_unit,
        publisher_person=header.publisher.person,
        severity=header.severity.value,
        occurred_at=header.occurred_at,
        published_at=header.published_at,
        reviewed_at=release.decision.decided_at,
        reviewer=release.decision.reviewer,
        reviewer_kind=release.decision.reviewer_kind.value,
        released_at=release.released_at,
        event=storable_json(event.model_dump(mode="json"), what=f"event {release.event_id}"),
        release=storable_json(release.model_dump(mode="json", exclude={"event"}), what=f"release {release.release_id}"),
    )


def audit_row(audit: AuditEvent) -> AuditRow:
    """The ``audit_events`` row of one audit event; :class:`PoisonRecordError` when it can never be stored."""
    storable_json(audit.model_dump(mode="json"), what=f"audit event {audit.audit_id}")
    return AuditRow(
        audit_id=audit.audit_id,
        action=audit.action.value,
        event_id=audit.event_id,
        event_type=audit.event_type.value if audit.event_type is not None else None,
        actor=audit.actor,
        publisher_unit=audit.publisher_unit,
        tier=audit.tier.value if audit.tier is not None else None,
        reason=audit.reason,
        at=audit.at,
        trace_id=audit.trace_id,
        details=storable_json(audit.details, what=f"audit event {audit.audit_id} details"),
    )


def storable_json(value: Mapping[str, Any], *, what: str) -> str:
    """``value`` as JSON text PostgreSQL ``jsonb`` accepts, or :class:`PoisonRecordError` saying why not."""
    if _has_nul(value):
        raise PoisonRecordError(f"{what} contains a NUL character, which PostgreSQL text cannot hold")
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False)
    except ValueError as exc:
        raise PoisonRecordError(f"{what} cannot be stored as JSON: {exc}") from exc


def _has_nul(value: object) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, Mapping):
        return any(_has_nul(key) or _has_nul(item) for key, item in value.items())
    if isinstance(value, list | tuple):
        return any(_has_nul(item) for item in value)
    return False
