"""zh-CN words for events: titles, labelled facts and times in the county's time zone.

Pure functions over :class:`~firebus.events.Event`; the templates, the Atom feed and the CAP alerts all use them.
What differs by event type (headline, field labels, township fields) comes from :mod:`firebus.catalogue`.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from enum import StrEnum
from typing import Any

from pydantic import BaseModel

from firebus.catalogue import CountyWords, EventKind, area_text, kind_of
from firebus.events import Event, MessageKind, Severity, Urgency
from firebus.labels import zh

KIND_NAMES: dict[MessageKind, str] = {MessageKind.ALERT: "发布", MessageKind.UPDATE: "更新", MessageKind.CANCEL: "撤销"}

SEVERITY_NAMES: dict[Severity, str] = {
    Severity.EXTREME: "特别严重",
    Severity.SEVERE: "严重",
    Severity.MODERATE: "较重",
    Severity.MINOR: "一般",
    Severity.UNKNOWN: "未知",
}

URGENCY_NAMES: dict[Urgency, str] = {
    Urgency.IMMEDIATE: "立即",
    Urgency.EXPECTED: "预期",
    Urgency.FUTURE: "将来",
    Urgency.PAST: "已过去",
    Urgency.UNKNOWN: "未知",
}


def local(moment: datetime, zone: tzinfo) -> str:
    """``2026-03-12 13:42`` in ``zone`` (the county's)."""
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def value_name(value: Any, zone: tzinfo) -> str:
    """A display form of one field value."""
    if isinstance(value, StrEnum):
        return zh(value)
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, datetime):
        return local(value, zone)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def title(event: Event[Any], words: CountyWords) -> str:
    """A one-line zh-CN headline for an event."""
    return kind_of(event.event_type).title(event, words)


def expired(event: Event[Any], now: datetime) -> bool:
    """The event says until when it holds (a risk warning's ``valid_to``) and that time has passed."""
    ends = kind_of(event.event_type).cap_times(event.body).expires
    return ends is not None and ends <= now


def facts(event: Event[Any], words: CountyWords) -> list[tuple[str, str]]:
    """Labelled values of the body's filled-in fields, in schema order (redacted fields are empty, so absent)."""
    found: list[tuple[str, str]] = []
    _collect(event.body, "", found, kind_of(event.event_type), words)
    return found


def _collect(model: Any, prefix: str, found: list[tuple[str, str]], kind: EventKind[Any], words: CountyWords) -> None:
    for name in type(model).model_fields:
        value = getattr(model, name)
        path = f"{prefix}{name}"
        if value is None or value in ([], ""):
            continue
        if isinstance(value, BaseModel):
            _collect(value, f"{path}.", found, kind, words)
            continue
        label = kind.labels.get(path, name)
        if path in kind.township_fields:
            found.append((label, words.township(value)))
        elif path in kind.unit_fields:
            found.append((label, words.unit(value)))
        elif path in kind.area_fields:
            found.append((label, area_text(value, words)))
        elif path in kind.fact_formats:
            found.append((label, kind.fact_formats[path](value)))
        elif isinstance(value, list):
            found.append((label, "；".join(value_name(item, words.zone) for item in value)))
        else:
            found.append((label, value_name(value, words.zone)))
