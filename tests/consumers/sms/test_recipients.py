"""Who receives an SMS: type, townships, severity and tier against the recipients directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from consumers.sms.recipients import Addressed, Directory, Recipient, is_urgent, load_directory, receives
from firebus.county import County
from firebus.errors import ConfigurationError
from firebus.events import Audience, EventType, Severity, Urgency
from firebus.settings import SAMPLE_SMS_RECIPIENTS


def official(**changes: object) -> Recipient:
    fields: dict[str, object] = {
        "id": "manghe_duty",
        "name": "蟒河镇带班领导",
        "phone": "13800000302",
        "unit": "twp_manghe",
        "role": "township_official",
        "townships": ["manghe"],
        "event_types": ["fire_report"],
        "min_severity": "moderate",
        "tier": "members",
    }
    return Recipient.model_validate({**fields, **changes})


def addressed(**changes: object) -> Addressed:
    fields: dict[str, object] = {
        "event_type": EventType.FIRE_REPORT,
        "tier": Audience.MEMBERS,
        "townships": frozenset({"manghe"}),
        "severity": Severity.SEVERE,
    }
    return Addressed(**{**fields, **changes})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, True),
        ({"event_type": EventType.WORK_UPDATE}, False),
        ({"tier": Audience.HQ}, False),
        ({"townships": frozenset({"fengcheng"})}, False),
        ({"townships": frozenset({"fengcheng", "manghe"})}, True),
        ({"townships": frozenset()}, True),
        ({"severity": Severity.MODERATE}, True),
        ({"severity": Severity.MINOR}, False),
        ({"severity": Severity.UNKNOWN}, False),
        ({"severity": Severity.EXTREME}, True),
    ],
    ids=[
        "match",
        "other-type",
        "other-tier",
        "other-township",
        "one-shared-township",
        "county-wide-event",
        "at-minimum",
        "below-minimum",
        "unknown-severity",
        "extreme",
    ],
)
def test_receives(changes: dict[str, object], expected: bool) -> None:
    """A recipient receives an event of their type, tier and area at or above their minimum severity."""
    assert receives(official(), addressed(**changes)) is expected


def test_a_county_wide_recipient_receives_every_township() -> None:
    """A recipient with no townships covers the whole county."""
    assert receives(official(townships=[]), addressed(townships=frozenset({"xihe"})))


def test_one_sms_per_phone_even_when_listed_twice() -> None:
    """Two entries with the same phone number are one person: matched once."""
    directory = Directory(recipients=(official(), official(id="manghe_duty_2", role="deputy")))
    assert [recipient.id for recipient in directory.match(addressed())] == ["manghe_duty"]


def test_the_public_tier_is_refused() -> None:
    """A recipient cannot take the public tier: the public is served by the portal."""
    with pytest.raises(ValueError, match="public tier"):
        official(tier="public")


@pytest.mark.parametrize(
    ("severity", "urgency", "urgent"),
    [
        (Severity.MINOR, Urgency.IMMEDIATE, True),
        (Severity.SEVERE, Urgency.EXPECTED, True),
        (Severity.EXTREME, Urgency.FUTURE, True),
        (Severity.MODERATE, Urgency.EXPECTED, False),
        (Severity.UNKNOWN, Urgency.UNKNOWN, False),
    ],
)
def test_urgency(severity: Severity, urgency: Urgency, urgent: bool) -> None:
    """Urgent means urgency immediate or severity extreme or severe."""
    assert is_urgent(severity, urgency) is urgent


def test_the_shipped_directory_loads_and_matches_the_county(county: County) -> None:
    """The sample directory is valid against the sample county, and a severe 蟒河镇 report reaches its officials."""
    directory = load_directory(SAMPLE_SMS_RECIPIENTS, county)
    ids = {recipient.id for recipient in directory.match(addressed())}
    assert {"manghe_duty", "manghe_ranger_chief", "forestry_duty"} <= ids
    assert "fengcheng_duty" not in ids
    assert not any(recipient.tier is Audience.HQ for recipient in directory.match(addressed()))


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ('unit = "nobody"\ntownships = ["manghe"]', "unknown unit"),
        ('unit = "twp_manghe"\ntownships = ["atlantis"]', "unknown townships"),
    ],
)
def test_a_directory_naming_unknown_units_or_townships_is_refused(
    county: County, tmp_path: Path, entry: str, message: str
) -> None:
    """A recipient whose unit or township is not in the county registry stops the sink with the file named."""
    path = tmp_path / "recipients.toml"
    path.write_text(
        f'[[recipients]]\nid = "x"\nname = "某"\nphone = "13800000999"\n{entry}\nrole = "r"\n'
        'event_types = ["fire_report"]\ntier = "members"\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigurationError, match=message):
        load_directory(path, county)
