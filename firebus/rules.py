"""Governance rules every event must meet before it may travel: checked by the client library before sending and
again by the intake processor, so a system that bypasses the library gains nothing.

Pure functions over an :class:`~firebus.events.Event` and the :class:`~firebus.county.County`: no Kafka here.
Each breach is a value with a :class:`Breach` kind; callers decide whether it is an exception, a dead letter or a
quarantine.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from firebus.catalogue import field_value, kind_of
from firebus.county import County
from firebus.errors import (
    ClassifiedEventError,
    DutyViolationError,
    InvalidEventError,
    Problem,
    UnknownUnitError,
)
from firebus.events import Audience, Classification, Event, MessageKind

MAX_CLOCK_SKEW = timedelta(minutes=5)
MAX_EVENT_AGE = timedelta(days=366)

CLASSIFIED_NOTICE = "classified (涉密) information may not be shared on the bus; use phone or official letter"

# The widest audience each classification may reach.
_WIDEST_AUDIENCE = {
    Classification.PUBLIC: Audience.PUBLIC,
    Classification.INTERNAL: Audience.MEMBERS,
    Classification.RESTRICTED: Audience.HQ,
}

_ARTICLE = {MessageKind.ALERT: "an", MessageKind.UPDATE: "an", MessageKind.CANCEL: "a"}


class Breach(StrEnum):
    CLASSIFIED = "classified"
    UNKNOWN_UNIT = "unknown_unit"
    OUTSIDE_DUTIES = "outside_duties"
    OUTSIDE_AREA = "outside_area"
    UNKNOWN_TOWNSHIP = "unknown_township"
    INCONSISTENT = "inconsistent"
    BAD_TIMESTAMP = "bad_timestamp"
    BAD_REFERENCE = "bad_reference"


@dataclass(frozen=True)
class Violation:
    breach: Breach
    problem: Problem


def governance_violations(event: Event[Any], county: County, *, now: datetime) -> list[Violation]:
    """Every rule ``event`` breaks; empty when it may travel."""
    found: list[Violation] = []
    found += _classification(event)
    found += _publisher(event, county)
    found += _townships(event, county)
    found += _lifecycle(event)
    found += _timestamps(event, now)
    return found


def raise_for(violations: Iterable[Violation]) -> None:
    """Raise the most specific :class:`InvalidEventError` for ``violations`` (listing all of them), if any."""
    listed = list(violations)
    if not listed:
        return
    problems = [violation.problem for violation in listed]
    breaches = {violation.breach for violation in listed}
    if Breach.CLASSIFIED in breaches:
        raise ClassifiedEventError(problems)
    if Breach.UNKNOWN_UNIT in breaches:
        raise UnknownUnitError(problems)
    if Breach.OUTSIDE_DUTIES in breaches:
        raise DutyViolationError(problems)
    raise InvalidEventError(problems)


def _violation(breach: Breach, field: str, message: str) -> Violation:
    return Violation(breach, Problem(field, message))


def _classification(event: Event[Any]) -> list[Violation]:
    header = event.header
    if header.classification is Classification.SECRET:
        return [_violation(Breach.CLASSIFIED, "header.classification", CLASSIFIED_NOTICE)]
    found = []
    widest = _WIDEST_AUDIENCE[header.classification]
    if header.audience.rank < widest.rank:
        found.append(
            _violation(
                Breach.INCONSISTENT,
                "header.audience",
                f"{header.classification.value} information may reach at most the {widest.value} tier, "
                f"not {header.audience.value}",
            )
        )
    stays_at_hq = kind_of(header.event_type).stays_at_hq(event.body)
    if stays_at_hq is not None and header.audience is not Audience.HQ:
        found.append(_violation(Breach.INCONSISTENT, "header.audience", stays_at_hq))
    return found


def _publisher(event: Event[Any], county: County) -> list[Violation]:
    unit_id = event.header.publisher.unit
    try:
        unit = county.unit(unit_id)
    except UnknownUnitError:
        return [
            _violation(Breach.UNKNOWN_UNIT, "header.publisher.unit", f"unit {unit_id!r} is not in the units registry")
        ]
    found = []
    if event.header.event_type not in unit.duties:
        duties = ", ".join(sorted(duty.value for duty in unit.duties))
        found.append(
            _violation(
                Breach.OUTSIDE_DUTIES,
                "header.event_type",
                f"{unit.name} ({unit.id}) may not publish {event.header.event_type.value}; its duties are {duties}",
            )
        )
    if unit.townships:
        outside = sorted(set(event.header.townships) - set(unit.townships))
        if outside or not event.header.townships:
            found.append(
                _violation(
                    Breach.OUTSIDE_AREA,
                    "header.townships",
                    f"{unit.id} publishes only about {', '.join(unit.townships)}"
                    + (f", not {', '.join(outside)}" if outside else "; name the townships concerned"),
                )
            )
    return found


def _body_townships(event: Event[Any]) -> list[tuple[str, str]]:
    """``(field, township id)`` of every township the body names."""
    return [(f"body.{path}", field_value(event.body, path)) for path in kind_of(event.event_type).township_fields]


def _townships(event: Event[Any], county: County) -> list[Violation]:
    known = county.township_ids()
    header = event.header
    named = [("header.townships", t) for t in header.townships]
    named += [("header.audience_townships", t) for t in header.audience_townships]
    named += _body_townships(event)
    found = [
        _violation(Breach.UNKNOWN_TOWNSHIP, field, f"unknown township {township!r}")
        for field, township in named
        if township not in known
    ]
    found += [
        _violation(Breach.INCONSISTENT, field, f"township {township!r} must also be listed in header.townships")
        for field, township in _body_townships(event)
        if township in known and township not in header.townships
    ]
    return found


def _lifecycle(event: Event[Any]) -> list[Violation]:
    header = event.header
    found = []
    if header.kind is MessageKind.ALERT and header.references:
        found.append(
            _violation(Breach.BAD_REFERENCE, "header.references", "an alert is new information and references nothing")
        )
    if header.kind is not MessageKind.ALERT and not header.references:
        found.append(
            _violation(
                Breach.BAD_REFERENCE,
                "header.references",
                f"{_ARTICLE[header.kind]} {header.kind.value} must reference the event it changes",
            )
        )
    if header.event_id in header.references:
        found.append(_violation(Breach.BAD_REFERENCE, "header.references", "an event cannot reference itself"))
    if kind_of(header.event_type).incident_bound and not header.incident_id:
        found.append(
            _violation(Breach.INCONSISTENT, "header.incident_id", f"a {header.event_type.value} belongs to an incident")
        )
    return found


def _timestamps(event: Event[Any], now: datetime) -> list[Violation]:
    header = event.header
    found = []

    def bad(field: str, message: str) -> None:
        found.append(_violation(Breach.BAD_TIMESTAMP, field, message))

    if header.published_at > now + MAX_CLOCK_SKEW:
        bad("header.published_at", f"{header.published_at.isoformat()} is in the future")
    if header.occurred_at > header.published_at + MAX_CLOCK_SKEW:
        bad("header.occurred_at", "an event cannot occur after it is published")
    if header.occurred_at < now - MAX_EVENT_AGE:
        bad("header.occurred_at", f"{header.occurred_at.isoformat()} is more than a year old")
    kind = kind_of(header.event_type)
    for observed in kind.observed:
        seen = field_value(event.body, observed.field)
        if seen is not None and seen > header.published_at + MAX_CLOCK_SKEW:
            bad(f"body.{observed.field}", observed.message)
    for window in kind.time_windows:
        end = field_value(event.body, window.end)
        if end is not None and end <= field_value(event.body, window.start):
            bad(f"body.{window.end}", f"must be after {window.start}")
    return found
