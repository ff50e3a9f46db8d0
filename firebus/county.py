"""The county's registry, read from the config file: townships, units (duties, area, public key) and reviewers.

The duty matrix — which unit may publish which event type — is data here, never code; so is who may decide a
review (:func:`reviewer_may_decide`), which both the review desk and the review processor ask.
"""

from __future__ import annotations

import base64
import binascii
from enum import StrEnum
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from firebus.errors import ConfigurationError, Problem, UnknownUnitError
from firebus.events import EventType
from firebus.settings import read_config_file


class _Entry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class UnitKind(StrEnum):
    HQ_OFFICE = "hq_office"
    MEMBER = "member"
    TOWNSHIP = "township"
    UPSTREAM = "upstream"
    """The HQ office of the level above (city, province): what it releases to this county comes down as its intake."""


class Township(_Entry):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str


class Unit(_Entry):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str
    kind: UnitKind
    duties: frozenset[EventType]
    townships: tuple[str, ...] = ()
    public_key: str | None = Field(default=None, description="base64 of the raw 32-byte Ed25519 public key")

    def public_key_bytes(self) -> bytes | None:
        if self.public_key is None:
            return None
        try:
            raw = base64.b64decode(self.public_key, validate=True)
        except binascii.Error as exc:
            raise ConfigurationError(f"unit {self.id}: public_key is not base64") from exc
        if len(raw) != 32:
            raise ConfigurationError(f"unit {self.id}: public_key must be 32 bytes, got {len(raw)}")
        return raw


class Reviewer(_Entry):
    id: str
    name: str
    unit: str


class CountyInfo(_Entry):
    id: str
    name: str
    time_zone: ZoneInfo = Field(
        default=ZoneInfo("Asia/Shanghai"),
        description="IANA zone of the county's clock: every time shown, quiet hours, statistics days, bare times read.",
    )


class County(_Entry):
    """Everything the config file says about the county."""

    county: CountyInfo
    townships: tuple[Township, ...]
    units: tuple[Unit, ...]
    reviewers: tuple[Reviewer, ...] = ()

    @model_validator(mode="after")
    def _cross_references(self) -> County:
        township_ids = {t.id for t in self.townships}
        unit_ids = [u.id for u in self.units]
        duplicated = sorted({unit_id for unit_id in unit_ids if unit_ids.count(unit_id) > 1})
        if duplicated:
            raise ValueError(f"unit ids must be unique: {', '.join(duplicated)} appear more than once")
        for unit in self.units:
            unknown = set(unit.townships) - township_ids
            if unknown:
                raise ValueError(f"unit {unit.id} names unknown townships {sorted(unknown)}")
        for reviewer in self.reviewers:
            if reviewer.unit not in unit_ids:
                raise ValueError(f"reviewer {reviewer.id} belongs to unknown unit {reviewer.unit}")
        return self

    def unit(self, unit_id: str) -> Unit:
        """The registered unit, or :class:`UnknownUnitError`."""
        for unit in self.units:
            if unit.id == unit_id:
                return unit
        raise UnknownUnitError([Problem("publisher.unit", f"unit {unit_id!r} is not in the units registry")])

    @property
    def zone(self) -> ZoneInfo:
        """The county's time zone: the one clock every text, window and statistic of firebus uses."""
        return self.county.time_zone

    def township_ids(self) -> frozenset[str]:
        return frozenset(t.id for t in self.townships)

    def reviewer(self, reviewer_id: str) -> Reviewer | None:
        return next((r for r in self.reviewers if r.id == reviewer_id), None)


def load_county(path: Path) -> County:
    """Read and check the county data of a config file; errors name the file and the entry."""
    raw: dict[str, Any] = read_config_file(path)
    data = {key: raw.get(key) for key in ("county", "townships", "units", "reviewers") if key in raw}
    try:
        return County.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ConfigurationError(f"config file {path}: {f'{where}: ' if where else ''}{first['msg']}") from exc


def reviewer_may_decide(county: County, reviewer_id: str, publisher_person: str, publisher_unit: str) -> str | None:
    """None when the reviewer may decide on this publisher's event, else the reason they may not.

    A reviewer must be registered, belong to an ``hq_office`` unit, and not be the publisher: the publisher's
    person is compared with both the reviewer's id and name (a same-named person of another unit is refused too;
    another reviewer can decide, which is the safe side).
    """
    reviewer = county.reviewer(reviewer_id)
    if reviewer is None:
        return f"reviewer {reviewer_id!r} is not registered"
    unit = next((u for u in county.units if u.id == reviewer.unit), None)
    if unit is None or unit.kind is not UnitKind.HQ_OFFICE:
        return f"reviewer {reviewer_id!r} belongs to unit {reviewer.unit!r}, which is not the HQ office"
    person = publisher_person.strip()
    if person and person in (reviewer.id, reviewer.name):
        return (
            f"reviewer {reviewer_id!r} ({reviewer.name}) is the publisher of this event "
            f"({publisher_unit}/{publisher_person}) and may not review it"
        )
    return None
