"""Drafts: what a department system decides about an event; the client library fills in the rest of the header."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import yaml
from pydantic import Field, SerializeAsAny, ValidationError

from firebus.codec import Codec, event_model, problems_from
from firebus.errors import InvalidEventError, Problem
from firebus.events import (
    BODY_TYPES,
    Audience,
    Classification,
    Event,
    EventBody,
    EventType,
    Header,
    MessageKind,
    Publisher,
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

    def to_event(
        self, *, codec: Codec, unit: str, person: str, contact: str | None = None, published_at: datetime
    ) -> Event[Any]:
        """The unsigned event this draft becomes for ``unit``, with fresh ids (the draft's own person and contact
        win); :class:`InvalidEventError` lists every problem."""
        event_type = self.event_type
        try:
            header = Header(
                event_id=uuid4(),
                event_type=event_type,
                schema_version=codec.contracts.for_event_type(event_type).version,
                kind=self.kind,
                references=self.references,
                incident_id=self.incident_id,
                publisher=Publisher(unit=unit, person=self.person or person, contact=self.contact or contact),
                classification=self.classification,
                audience=self.audience,
                audience_townships=self.audience_townships,
                severity=self.severity,
                urgency=self.urgency,
                occurred_at=self.occurred_at or published_at,
                published_at=published_at,
                townships=self.townships,
                trace_id=uuid4().hex,
            )
            return event_model(event_type)(header=header, body=self.body)
        except ValidationError as exc:
            raise InvalidEventError(problems_from(exc), subject=f"{event_type.value} event") from exc


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
