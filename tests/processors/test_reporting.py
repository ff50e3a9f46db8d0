"""Upward reporting as pure logic: the policy's conditions and deadlines, the report and its origin, the city's
intake check of both signatures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from firebus.codec import Codec
from firebus.county import load_county
from firebus.deadletters import Rejected, SourceRecord
from firebus.errors import ConfigurationError, SignatureError
from firebus.events import Event, EventType, FireReport, FireStatus, FireThreat, Urgency
from firebus.records import DeadLetterReason
from firebus.settings import SAMPLE_CONFIG, SAMPLE_REPORTING_POLICY
from firebus.signing import check_origin, sign_event
from firebus.topics import INTAKE
from processors.intake import Accepted, IntakeValidator
from processors.reporting import (
    Obligation,
    ObligationBook,
    Released,
    UpwardIdentity,
    load_reporting_policy,
    obligation_of,
    upward_event_id,
    upward_report,
)
from tests.samples import sample_event

ROOT = Path(__file__).resolve().parents[2]
COUNTY = load_county(SAMPLE_CONFIG)
CITY = load_county(ROOT / "examples" / "city" / "city.toml")
POLICY = load_reporting_policy(SAMPLE_REPORTING_POLICY)
NOW = datetime(2026, 3, 12, 6, 0, tzinfo=UTC)
IDENTITY = UpwardIdentity(level="yangcheng", unit="yangcheng_hq", person="县森防办值班室", area="yangcheng")
CODEC = Codec()
TOWNSHIP_KEY = Ed25519PrivateKey.generate()
OFFICE_KEY = Ed25519PrivateKey.generate()


def fire(**body: Any) -> Event[Any]:
    event = sample_event(EventType.FIRE_REPORT, now=NOW)
    return event.model_copy(update={"body": event.body.model_copy(update=body)})


def report(found: Any = None, **body: Any) -> FireReport:
    result = fire(**body).body
    assert isinstance(result, FireReport)
    return result


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({}, []),
        ({"burned_area_ha": 100.0}, ["burned_area_ha"]),
        ({"burned_area_ha": 99.9}, []),
        ({"deaths": 3}, ["deaths"]),
        ({"serious_injuries": 10, "injuries": 12}, ["serious_injuries"]),
        ({"threatens": [FireThreat.RESIDENTIAL, FireThreat.BORDER]}, ["threatens:residential", "threatens:border"]),
        ({"satellite_pixels": 3}, ["satellite_pixels"]),
        ({"satellite_pixels": 2}, []),
        ({"needs_support": True, "in_news": True}, ["needs_support", "in_news"]),
        ({"discovered_at": NOW - timedelta(hours=24)}, ["open_flame_hours"]),
        ({"discovered_at": NOW - timedelta(hours=24), "status": FireStatus.EXTINGUISHED}, []),
        ({"discovered_at": datetime(2026, 10, 2, 2, tzinfo=UTC)}, ["sensitive_period:国庆节"]),
    ],
)
def test_immediate_conditions_are_the_policys(body: dict[str, Any], expected: list[str]) -> None:
    """Each immediate-report condition of the policy file is met at its threshold and not below it."""
    now = max(NOW, body.get("discovered_at", NOW))
    assert POLICY.immediate_reasons(report(**body), now=now, county=COUNTY) == expected


def test_deadlines_run_from_found_and_from_extinction() -> None:
    """First report 30 minutes after the fire was found; full account 1 hour after the open flame was out."""
    found = NOW - timedelta(hours=3)
    out = NOW - timedelta(hours=1)
    body = report(discovered_at=found, status=FireStatus.EXTINGUISHED, extinguished_at=out)
    assert POLICY.due_at(Obligation.FIRST_REPORT, body, at=NOW) == found + timedelta(minutes=30)
    assert POLICY.due_at(Obligation.FINAL_ACCOUNT, body, at=NOW) == out + timedelta(minutes=60)
    assert POLICY.due_at(Obligation.FOLLOW_UP, body, at=NOW) is None
    assert obligation_of(body, first_sent=False) is Obligation.FINAL_ACCOUNT
    assert obligation_of(report(), first_sent=False) is Obligation.FIRST_REPORT
    assert obligation_of(report(), first_sent=True) is Obligation.FOLLOW_UP


def test_an_obligation_about_to_be_missed_is_listed_once_until_met() -> None:
    """Within the warning time of its deadline an unmet obligation is listed; escalated or met, it no longer is."""
    book = ObligationBook(POLICY)
    event = fire(discovered_at=NOW - timedelta(minutes=19))
    book.learn(event, received_at=NOW)
    assert book.about_to_be_missed(NOW) == []  # 11 minutes left, the warning starts at 10
    (due,) = book.about_to_be_missed(NOW + timedelta(minutes=1))
    assert due.obligation is Obligation.FIRST_REPORT
    book.escalated(due.thread, due.obligation)
    assert book.about_to_be_missed(NOW + timedelta(minutes=5)) == []
    other = fire(discovered_at=NOW - timedelta(minutes=25))
    book.learn(other, received_at=NOW)
    book.met(other.header.event_id, Obligation.FOLLOW_UP, at=NOW)
    assert book.about_to_be_missed(NOW) == []


def test_a_policy_that_sends_other_types_up_is_refused_in_one_line(tmp_path: Path) -> None:
    """Only fire reports go up in this version; the error names the file and the entry."""
    path = tmp_path / "policy.toml"
    text = SAMPLE_REPORTING_POLICY.read_text(encoding="utf-8").replace(
        'types = ["fire_report"]', 'types = ["fire_report", "directive"]'
    )
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigurationError, match=r"policy.toml: upward: .*directive"):
        load_reporting_policy(path)


def signed_original(**body: Any) -> tuple[Event[Any], bytes]:
    event = sign_event(CODEC, fire(**body), TOWNSHIP_KEY)
    return event, CODEC.encode(event)


def upward(original: Event[Any], raw: bytes, *, now: datetime = NOW) -> Event[Any]:
    released = Released(
        event=original,
        raw=raw,
        public_key=TOWNSHIP_KEY.public_key().public_bytes_raw(),
        reviewer="hq-wang",
        released_at=now,
    )
    made = upward_report(
        released, identity=IDENTITY, policy=POLICY, county=COUNTY, obligation=Obligation.FIRST_REPORT, now=now
    )
    return sign_event(CODEC, made, OFFICE_KEY)


def test_the_upward_report_is_the_office_s_with_the_original_as_origin() -> None:
    """Published by the county office about the county's area, same body, origin naming the original exactly."""
    original, raw = signed_original(threatens=[FireThreat.FACILITY])
    late = NOW + timedelta(hours=2)
    made = upward(original, raw, now=late)
    header, origin = made.header, made.header.origin
    assert origin is not None
    assert header.event_id == upward_event_id(original.header.event_id, "yangcheng")
    assert (header.publisher.unit, header.townships, made.body.place.township) == (
        "yangcheng_hq",
        ["yangcheng"],
        "yangcheng",
    )
    assert made.body.place.description.startswith("蟒河镇")
    assert (origin.event_id, origin.unit, origin.event) == (
        original.header.event_id,
        original.header.publisher.unit,
        raw,
    )
    assert origin.immediate == ["threatens:facility"]
    assert header.urgency is Urgency.IMMEDIATE
    assert origin.late_seconds == int((late - (original.body.discovered_at + timedelta(minutes=30))).total_seconds())
    check_origin(CODEC, origin)


def tampered(made: Event[Any], **origin: Any) -> Event[Any]:
    assert made.header.origin is not None
    changed = made.header.origin.model_copy(update=origin)
    return sign_event(
        CODEC, made.model_copy(update={"header": made.header.model_copy(update={"origin": changed})}), OFFICE_KEY
    )


@pytest.mark.parametrize("change", ["person", "event", "public_key", "signature"])
def test_the_city_intake_refuses_a_report_whose_origin_does_not_verify(change: str) -> None:
    """Signed by the registered county office, but the origin lies (another person, other bytes, another key, another
    signature): the city's intake gate dead-letters it as a bad signature. The honest report is accepted."""
    original, raw = signed_original()
    made = upward(original, raw)
    validator = IntakeValidator(codec=CODEC, county=CITY, public_keys={"yangcheng_hq": OFFICE_KEY.public_key()})

    def check(event: Event[Any]) -> Any:
        source = SourceRecord(INTAKE[EventType.FIRE_REPORT].name, 0, 0, None, CODEC.encode(event))
        return validator.check(source, now=NOW + timedelta(minutes=1))

    assert isinstance(check(made), Accepted)
    other, other_raw = signed_original(burned_area_ha=500.0)
    changes: dict[str, dict[str, Any]] = {
        "person": {"person": "王五"},
        "event": {"event": other_raw},
        "public_key": {"public_key": OFFICE_KEY.public_key().public_bytes_raw()},
        "signature": {"signature": other.header.signature},
    }
    verdict = check(tampered(made, **changes[change]))
    assert isinstance(verdict, Rejected)
    assert verdict.dead_letter.reason_code is DeadLetterReason.BAD_SIGNATURE
    assert "origin" in verdict.dead_letter.reason
    with pytest.raises(SignatureError):
        check_origin(CODEC, tampered(made, **changes[change]).header.origin)  # type: ignore[arg-type]
