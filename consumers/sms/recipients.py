"""The SMS recipients directory (configuration data) and who of it receives a released event.

A recipient receives a release when its type is one they take, it concerns one of their townships (or either side
is county-wide), its severity reaches their minimum, and its tier is theirs. Entries sharing a phone number are one
person and get one SMS per event.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from firebus.county import County
from firebus.errors import ConfigurationError
from firebus.events import Audience, EventType, Severity, Urgency
from firebus.settings import read_config_file

SEVERITY_RANK: dict[Severity, int] = {
    Severity.UNKNOWN: 0,
    Severity.MINOR: 1,
    Severity.MODERATE: 2,
    Severity.SEVERE: 3,
    Severity.EXTREME: 4,
}
"""``unknown`` ranks lowest: it reaches only recipients whose minimum is ``unknown``."""


class Recipient(BaseModel):
    """One entry of the directory."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str = Field(min_length=1)
    phone: str = Field(pattern=r"^\+?[0-9]{5,15}$")
    unit: str
    role: str = Field(min_length=1)
    townships: frozenset[str] = frozenset()
    event_types: frozenset[EventType]
    min_severity: Severity = Severity.MINOR
    tier: Audience

    @field_validator("tier")
    @classmethod
    def _not_public(cls, tier: Audience) -> Audience:
        if tier is Audience.PUBLIC:
            raise ValueError("the public tier goes to the portal, never by SMS: use members or hq")
        return tier


@dataclass(frozen=True)
class Addressed:
    """What matching needs to know of a release: its type, tier, townships and severity."""

    event_type: EventType
    tier: Audience
    townships: frozenset[str]
    severity: Severity


def is_urgent(severity: Severity, urgency: Urgency) -> bool:
    """Urgent events (urgency immediate, or severity extreme or severe) ignore quiet hours."""
    return urgency is Urgency.IMMEDIATE or severity in (Severity.EXTREME, Severity.SEVERE)


def receives(recipient: Recipient, addressed: Addressed) -> bool:
    """True when ``recipient`` is to receive an SMS for ``addressed``."""
    return (
        addressed.event_type in recipient.event_types
        and addressed.tier is recipient.tier
        and SEVERITY_RANK[addressed.severity] >= SEVERITY_RANK[recipient.min_severity]
        and (not recipient.townships or not addressed.townships or bool(recipient.townships & addressed.townships))
    )


class Directory(BaseModel):
    """The whole recipients directory, checked against the county registry."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    recipients: tuple[Recipient, ...] = ()

    @model_validator(mode="after")
    def _unique_ids(self) -> Directory:
        ids = [recipient.id for recipient in self.recipients]
        duplicated = sorted({recipient_id for recipient_id in ids if ids.count(recipient_id) > 1})
        if duplicated:
            raise ValueError(f"recipient ids must be unique: {', '.join(duplicated)} appear more than once")
        return self

    def check_against(self, county: County) -> None:
        """Every unit and township named must be in the county registry, else :class:`ConfigurationError`."""
        unit_ids = {unit.id for unit in county.units}
        township_ids = county.township_ids()
        for recipient in self.recipients:
            if recipient.unit not in unit_ids:
                raise ConfigurationError(f"recipient {recipient.id}: unknown unit {recipient.unit!r}")
            unknown = recipient.townships - township_ids
            if unknown:
                raise ConfigurationError(f"recipient {recipient.id}: unknown townships {sorted(unknown)}")

    def match(self, addressed: Addressed) -> list[Recipient]:
        """The recipients of ``addressed``, one per phone number, in directory order."""
        return _one_per_phone(recipient for recipient in self.recipients if receives(recipient, addressed))


def _one_per_phone(recipients: Iterable[Recipient]) -> list[Recipient]:
    seen: set[str] = set()
    chosen: list[Recipient] = []
    for recipient in recipients:
        if recipient.phone not in seen:
            seen.add(recipient.phone)
            chosen.append(recipient)
    return chosen


def load_directory(path: Path, county: County) -> Directory:
    """Read and check the recipients directory; errors name the file and the entry."""
    raw: dict[str, Any] = read_config_file(path)
    try:
        directory = Directory.model_validate({"recipients": raw.get("recipients", [])})
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ConfigurationError(f"recipients file {path}: {where}: {first['msg']}") from exc
    try:
        directory.check_against(county)
    except ConfigurationError as exc:
        raise ConfigurationError(f"recipients file {path}: {exc}") from exc
    return directory
