"""Drafts: what a department system decides about an event; the client library fills in the rest of the header."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from uuid import UUID

import yaml
from pydantic import Field, SerializeAsAny, ValidationError

from firebus.codec import problems_from
from firebus.errors import InvalidEventError, Problem
from firebus.events import (
    BODY_TYPES,
    Audience,
    Classification,
    EventBody,
    EventType,
    MessageKind,
    Record,
    Severity,
    Urgency,
)
from firebus.types import UtcDatetime


class Draft(Record):
    """One event before the library stamps it: the body plus the header fields the publisher decides."""

    body: SerializeAsAny[EventBody]
    classification: Classification
    audience: Audience
    severity: Severity
    urgency: Urgency
    kind: MessageKind = MessageKind.ALERT
    references: list[UUID] = Field(default_factory=list)
    incident_id: str | None = None
    audience_townships: list[str] = Field(default_factory=list)
    townships: list[str] = Field(default_factory=list)
    occurred_at: UtcDatetime | None = Field(default=None, description="Defaults to the time of publishing.")
    person: str | None = Field(default=None, description="Responsible person; defaults to the client's.")
    contact: str | None = None

    @property
    def event_type(self) -> EventType:
        return self.body.event_type


def draft_from_mapping(data: Any) -> Draft:
    """A :class:`Draft` from parsed JSON/YAML ``{"type": "fire_report", ..., "body": {...}}``; lists every bad field."""
    if not isinstance(data, dict):
        raise InvalidEventError([Problem("", "expected an object with 'type' and 'body'")], subject="draft")
    fields = dict(data)
    raw_type = fields.pop("type", None)
    try:
        body_type = BODY_TYPES[EventType(raw_type)]
    except ValueError:
        known = ", ".join(t.value for t in EventType)
        raise InvalidEventError(
            [Problem("type", f"{raw_type!r} is not an event type ({known})")], subject="draft"
        ) from None
    problems: list[Problem] = []
    body: EventBody | None = None
    try:
        body = body_type.model_validate(fields.pop("body", None))
    except ValidationError as exc:
        problems += [Problem(f"body.{p.field}" if p.field else "body", p.message) for p in problems_from(exc)]
    try:
        draft = Draft.model_validate({**fields, "body": body if body is not None else _placeholder(body_type)})
    except ValidationError as exc:
        problems += [p for p in problems_from(exc) if not p.field.startswith("body")]
    if problems:
        raise InvalidEventError(problems, subject=f"{raw_type} draft")
    return draft


def _placeholder(body_type: type[EventBody]) -> EventBody:
    # Lets the header fields be validated (and reported) even when the body is wrong.
    return body_type.model_construct()


def load_draft(path: str | Path, text: str | None = None) -> Draft:
    """Read a draft from a JSON or YAML file (``text`` given: already read, e.g. from stdin)."""
    name = str(path)
    try:
        content = text if text is not None else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidEventError([Problem("", f"cannot read {name}: {exc.strerror}")], subject="draft") from exc
    except UnicodeDecodeError as exc:
        problem = Problem("", f"cannot read {name}: not UTF-8 text ({exc.reason})")
        raise InvalidEventError([problem], subject="draft") from exc
    try:
        data = json.loads(content) if name.endswith(".json") else yaml.safe_load(content)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        reason = str(exc).splitlines()[0]
        raise InvalidEventError([Problem("", f"{name} is not valid JSON/YAML: {reason}")], subject="draft") from exc
    return draft_from_mapping(data)
