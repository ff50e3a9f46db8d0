"""The HQ office's versioned review policy: which rule pre-authorises which event, and escalation deadlines.

Every publication is reviewed (每发必审): by a human reviewer of the HQ office who is not the publisher, or — for
release to the member tier only — by a named rule of the office's policy file (``firebus/data/review_policy.toml``
is the sample). A rule never matches an event addressed to the public: public release always needs a human.
The policy also sets, per event type, how long an item may wait before it escalates.

Everything here is pure: no Kafka, no clock; callers pass ``now``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationError

from firebus.county import County
from firebus.errors import ConfigurationError
from firebus.events import Audience, Event, EventType, Severity
from firebus.settings import read_config_file

RULE_AUDIENCES = frozenset({Audience.MEMBERS, Audience.HQ})
"""Audiences a rule may release to; ``public`` always needs a human reviewer."""

_TOP_KEYS = frozenset({"version", "deadlines", "rules"})
_RULE_KEYS = frozenset({"id", "description", "units", "types", "severities"})

_Fail = Callable[[str], ConfigurationError]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PolicyRule(_Frozen):
    """A pre-authorised member-tier release: events of these units, types and severities need no human."""

    id: str = Field(min_length=1, description="The reviewer of record of every decision the rule makes.")
    description: str = ""
    units: frozenset[str] = Field(min_length=1)
    types: frozenset[EventType] = Field(min_length=1)
    severities: frozenset[Severity] = Field(min_length=1)

    def matches(self, event: Event[Any]) -> bool:
        """True when the rule covers the event: unit, type and severity listed, and not addressed to the public."""
        header = event.header
        return (
            header.audience in RULE_AUDIENCES
            and header.publisher.unit in self.units
            and header.event_type in self.types
            and header.severity in self.severities
        )


class ReviewPolicy(_Frozen):
    """One version of the office's review policy: escalation deadlines and the pre-authorising rules."""

    version: str = Field(min_length=1)
    deadlines: Mapping[EventType, PositiveInt] = Field(description="Minutes until an undecided item escalates.")
    rules: tuple[PolicyRule, ...] = ()

    def matching_rule(self, event: Event[Any]) -> PolicyRule | None:
        """The first rule (in file order) that pre-authorises the event, or None when a human must decide."""
        return next((rule for rule in self.rules if rule.matches(event)), None)

    def deadline_for(self, event_type: EventType) -> timedelta:
        """How long an item of this type may wait for a decision before it escalates."""
        return timedelta(minutes=self.deadlines[event_type])


def load_policy(path: Path, county: County) -> ReviewPolicy:
    """Read and check a policy file against the county registry; errors are one line naming the file."""
    raw = read_config_file(path)
    where = f"review policy {path}"

    def fail(problem: str) -> ConfigurationError:
        return ConfigurationError(f"{where}: {problem}")

    unknown_keys = sorted(set(raw) - _TOP_KEYS)
    if unknown_keys:
        raise fail(f"unknown top-level key(s) {', '.join(unknown_keys)} (expected version, deadlines, rules)")

    if "version" not in raw:
        raise fail('version is missing; set a non-empty string such as version = "2026.03-1"')
    version = raw["version"]
    if not isinstance(version, str) or not version.strip():
        raise fail(f'version must be a non-empty string such as "2026.03-1", got {version!r}')

    deadlines = _check_deadlines(raw.get("deadlines"), fail)

    rules_raw = raw.get("rules", [])
    if not isinstance(rules_raw, list) or not all(isinstance(entry, dict) for entry in rules_raw):
        raise fail("rules must be an array of tables ([[rules]])")
    rules: list[dict[str, Any]] = []
    seen: set[str] = set()
    for number, entry in enumerate(rules_raw, start=1):
        rule = _check_rule(entry, number, county, fail)
        if rule["id"] in seen:
            raise fail(f"duplicate rule id {rule['id']!r}; every rule needs its own id (it is the reviewer of record)")
        seen.add(rule["id"])
        rules.append(rule)

    try:
        return ReviewPolicy.model_validate({"version": version.strip(), "deadlines": deadlines, "rules": rules})
    except ValidationError as exc:  # backstop: the checks above should leave nothing for pydantic to refuse
        first = exc.errors(include_url=False)[0]
        loc = ".".join(str(part) for part in first["loc"])
        raise fail(f"{f'{loc}: ' if loc else ''}{first['msg']}") from exc


def _check_deadlines(value: object, fail: _Fail) -> dict[EventType, int]:
    if not isinstance(value, dict):
        raise fail("[deadlines] table is missing; give minutes until escalation for every event type")
    known = {t.value: t for t in EventType}
    deadlines: dict[EventType, int] = {}
    for name, minutes in value.items():
        if name not in known:
            raise fail(f"deadlines names unknown event type {name!r} (known: {', '.join(known)})")
        if isinstance(minutes, bool) or not isinstance(minutes, int) or minutes <= 0:
            raise fail(f"deadlines.{name} must be a positive whole number of minutes, got {minutes!r}")
        deadlines[known[name]] = minutes
    missing = [t.value for t in EventType if t not in deadlines]
    if missing:
        raise fail(f"deadlines has no entry for {', '.join(missing)}; every event type needs a deadline")
    return deadlines


def _check_rule(entry: dict[str, Any], number: int, county: County, fail: _Fail) -> dict[str, Any]:
    rule_id = entry.get("id")
    if not isinstance(rule_id, str) or not rule_id.strip():
        raise fail(f"rule #{number} has no id; set a non-empty id (it is the reviewer of record)")
    rule_id = rule_id.strip()
    label = f"rule {rule_id!r}"
    unknown_keys = sorted(set(entry) - _RULE_KEYS)
    if unknown_keys:
        raise fail(f"{label} has unknown key(s) {', '.join(unknown_keys)} (expected {', '.join(sorted(_RULE_KEYS))})")
    if county.reviewer(rule_id) is not None:
        raise fail(f"{label} has the id of a human reviewer; the reviewer of record would be ambiguous")
    description = entry.get("description", "")
    if not isinstance(description, str):
        raise fail(f"{label}: description must be a string")

    lists: dict[str, list[str]] = {}
    for key in ("units", "types", "severities"):
        items = entry.get(key)
        if not isinstance(items, list) or not items or not all(isinstance(item, str) for item in items):
            raise fail(f"{label}: {key} must be a non-empty list of strings")
        lists[key] = items

    unit_ids = {unit.id for unit in county.units}
    checks: tuple[tuple[str, str, set[str]], ...] = (
        ("units", "unit", unit_ids),
        ("types", "event type", {t.value for t in EventType}),
        ("severities", "severity", {s.value for s in Severity}),
    )
    for key, noun, known in checks:
        for item in lists[key]:
            if item not in known:
                raise fail(f"{label} names unknown {noun} {item!r} (known: {', '.join(sorted(known))})")
    return {"id": rule_id, "description": description, **lists}


def overdue(deadline: datetime, now: datetime, escalated: bool) -> bool:
    """True when an undecided item's deadline has come (``now >= deadline``) and it has not been escalated yet."""
    return not escalated and now >= deadline
