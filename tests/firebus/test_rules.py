"""Governance rules: every :class:`~firebus.rules.Breach` kind is triggered by a minimal change to a valid event and
is never triggered by the sample drafts; :func:`~firebus.rules.raise_for` picks the most specific error and lists
every problem.

Events are built with :meth:`FirebusClient.prepare` from ``examples/events/*.json`` at a fixed ``NOW`` (no broker),
then changed one field at a time through the models, so every event under test is a valid model instance.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firebus.codec import event_model
from firebus.county import County, load_county
from firebus.errors import (
    ClassifiedEventError,
    DutyViolationError,
    InvalidEventError,
    Problem,
    UnknownUnitError,
)
from firebus.events import Audience, Classification, Event, EventType, Header, MessageKind
from firebus.rules import (
    CLASSIFIED_NOTICE,
    MAX_CLOCK_SKEW,
    MAX_EVENT_AGE,
    Breach,
    Violation,
    governance_violations,
    raise_for,
)
from firebus.settings import SAMPLE_CONFIG, Settings
from producers import FirebusClient, load_draft
from tests.samples import EXAMPLES, SAMPLE_PUBLISHER

NOW = datetime(2026, 3, 12, 8, 0, tzinfo=UTC)
"""Fixed clock: after every sample's own timestamps (discovered_at, starts_at, valid_from)."""

SAMPLE_UNITS = SAMPLE_PUBLISHER
"""The unit that publishes each sample draft; its duties include the type."""

COUNTY = load_county(SAMPLE_CONFIG)
OUTSIDE_DUTY_PAIRS = [(unit.id, t) for unit in COUNTY.units for t in EventType if t not in unit.duties]
WITHIN_DUTY_PAIRS = [(unit.id, t) for unit in COUNTY.units for t in EventType if t in unit.duties]
MS = timedelta(milliseconds=1)


# --- building events -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def samples(keys_dir: Path, county: County, tmp_path_factory: pytest.TempPathFactory) -> dict[EventType, Event[Any]]:
    """Every sample draft prepared (validated and signed) by its unit at ``NOW``."""
    settings = Settings(keys_dir=keys_dir, home=tmp_path_factory.mktemp("home"))
    prepared = {}
    for event_type, unit in SAMPLE_UNITS.items():
        client = FirebusClient(settings=settings, unit=unit, county=county)
        prepared[event_type] = client.prepare(load_draft(EXAMPLES / f"{event_type.value}.json"), now=NOW)
    return prepared


def changed(event: Event[Any], *, body: dict[str, Any] | None = None, **header: Any) -> Event[Any]:
    """``event`` with some header and body fields replaced, re-validated through the models."""
    new_header = Header.model_validate({**event.header.model_dump(), **header})
    new_body = type(event.body).model_validate({**event.body.model_dump(), **(body or {})})
    return event_model(new_header.event_type)(header=new_header, body=new_body)


def published_by(event: Event[Any], unit: str) -> Event[Any]:
    """``event`` as if ``unit`` had published it."""
    return changed(event, publisher={**event.header.publisher.model_dump(), "unit": unit})


def violations(event: Event[Any], county: County) -> list[Violation]:
    return governance_violations(event, county, now=NOW)


def of_kind(found: list[Violation], breach: Breach) -> list[Violation]:
    return [violation for violation in found if violation.breach is breach]


# --- the samples are clean ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("event_type", list(SAMPLE_UNITS))
def test_sample_events_break_no_rule(samples: dict[EventType, Event[Any]], county: County, event_type: EventType):
    """Each sample draft, published by its unit, breaks no governance rule at all."""
    assert violations(samples[event_type], county) == []


def test_raise_for_nothing_is_silent():
    """raise_for of no violations returns without raising, also when they come as a generator (truthy while empty)."""
    raise_for([])
    raise_for(iter([]))  # would raise if raise_for took an empty generator's truth value for "some violations"


# --- classified --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("event_type", list(SAMPLE_UNITS))
def test_secret_classification_is_a_classified_breach(
    samples: dict[EventType, Event[Any]], county: County, event_type: EventType
):
    """Any event classified secret is a CLASSIFIED breach pointing at header.classification with the notice."""
    found = violations(changed(samples[event_type], classification=Classification.SECRET), county)
    classified = of_kind(found, Breach.CLASSIFIED)
    assert len(classified) == 1
    assert classified[0].problem == Problem("header.classification", CLASSIFIED_NOTICE)
    with pytest.raises(ClassifiedEventError, match="phone or official letter"):
        raise_for(found)


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param({"publisher": {"unit": "nobody", "person": "x"}}, id="unknown-unit"),
        pytest.param({"publisher": {"unit": "police", "person": "x"}}, id="outside-duties"),
        pytest.param({"incident_id": None, "published_at": NOW + timedelta(hours=1)}, id="incident-and-future"),
        pytest.param({"townships": ["atlantis"], "kind": MessageKind.UPDATE}, id="township-and-reference"),
    ],
)
def test_secret_wins_over_every_other_breach(
    samples: dict[EventType, Event[Any]], county: County, extra: dict[str, Any]
):
    """raise_for raises ClassifiedEventError when secret co-occurs with other breaches, and still lists them all."""
    event = changed(samples[EventType.FIRE_REPORT], classification=Classification.SECRET, **extra)
    found = violations(event, county)
    assert len({v.breach for v in found}) >= 2
    with pytest.raises(ClassifiedEventError) as caught:
        raise_for(found)
    assert caught.value.problems == tuple(v.problem for v in found)
    for violation in found:
        assert str(violation.problem) in str(caught.value)


# --- publisher ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("unit", ["nobody", "", "Forestry", "forestry "])
def test_unknown_unit_is_reported(samples: dict[EventType, Event[Any]], county: County, unit: str):
    """A publisher unit missing from the registry is one UNKNOWN_UNIT breach on header.publisher.unit."""
    found = violations(published_by(samples[EventType.WORK_UPDATE], unit), county)
    assert [v.breach for v in found] == [Breach.UNKNOWN_UNIT]
    assert found[0].problem.field == "header.publisher.unit"
    assert repr(unit) in found[0].problem.message
    with pytest.raises(UnknownUnitError):
        raise_for(found)


@pytest.mark.parametrize(("unit", "event_type"), OUTSIDE_DUTY_PAIRS)
def test_type_outside_duties_is_reported(
    samples: dict[EventType, Event[Any]], county: County, unit: str, event_type: EventType
):
    """Every (unit, type) pair the duty matrix excludes is an OUTSIDE_DUTIES breach naming the unit's duties."""
    found = violations(published_by(samples[event_type], unit), county)
    duty = of_kind(found, Breach.OUTSIDE_DUTIES)
    assert len(duty) == 1
    assert duty[0].problem.field == "header.event_type"
    registered = county.unit(unit)
    assert f"({unit}) may not publish {event_type.value}" in duty[0].problem.message
    assert ", ".join(sorted(d.value for d in registered.duties)) in duty[0].problem.message
    with pytest.raises(DutyViolationError):
        raise_for(found)


@pytest.mark.parametrize(("unit", "event_type"), WITHIN_DUTY_PAIRS)
def test_type_within_duties_is_not_a_duty_breach(
    samples: dict[EventType, Event[Any]], county: County, unit: str, event_type: EventType
):
    """Every (unit, type) pair the duty matrix allows raises no OUTSIDE_DUTIES breach."""
    assert of_kind(violations(published_by(samples[event_type], unit), county), Breach.OUTSIDE_DUTIES) == []


def test_police_publishing_fire_report_names_its_duties(samples: dict[EventType, Event[Any]], county: County):
    """Police publishing a fire_report is refused with a message listing the police's duties."""
    found = violations(published_by(samples[EventType.FIRE_REPORT], "police"), county)
    assert [v.problem for v in found] == [
        Problem(
            "header.event_type",
            "县公安局 (police) may not publish fire_report; its duties are "
            "case_update, consultation, traffic_control, work_update",
        )
    ]
    with pytest.raises(DutyViolationError, match="its duties are case_update"):
        raise_for(found)


# --- area --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("unit", "townships", "expected"),
    [
        ("twp_fengcheng", ["manghe"], "twp_fengcheng publishes only about fengcheng, not manghe"),
        ("twp_manghe", ["manghe", "dongye"], "twp_manghe publishes only about manghe, not dongye"),
        ("twp_manghe", ["xihe", "dongye"], "twp_manghe publishes only about manghe, not dongye, xihe"),
        ("devzone_committee", ["fengcheng"], "devzone_committee publishes only about devzone, not fengcheng"),
        ("twp_manghe", [], "twp_manghe publishes only about manghe; name the townships concerned"),
        ("twp_dongfeng", [], "twp_dongfeng publishes only about dongfeng; name the townships concerned"),
    ],
)
def test_township_unit_outside_its_area_is_reported(
    samples: dict[EventType, Event[Any]], county: County, unit: str, townships: list[str], expected: str
):
    """A township unit naming another township, or no township, is one OUTSIDE_AREA breach on header.townships."""
    event = changed(published_by(samples[EventType.WORK_UPDATE], unit), townships=townships)
    found = violations(event, county)
    assert found == [Violation(Breach.OUTSIDE_AREA, Problem("header.townships", expected))]
    with pytest.raises(InvalidEventError) as caught:
        raise_for(found)
    assert type(caught.value) is InvalidEventError


@pytest.mark.parametrize(
    ("unit", "event_type", "township"),
    [
        ("twp_manghe", EventType.WORK_UPDATE, "manghe"),
        ("twp_manghe", EventType.FIRE_REPORT, "manghe"),
        ("twp_dongye", EventType.FIRE_REPORT, "dongye"),
        ("devzone_committee", EventType.FIRE_REPORT, "devzone"),
    ],
)
def test_township_unit_inside_its_area_is_clean(
    samples: dict[EventType, Event[Any]], county: County, unit: str, event_type: EventType, township: str
):
    """A township unit publishing about its own township breaks no rule."""
    event = published_by(samples[event_type], unit)
    body = {"place": {**event.body.place.model_dump(), "township": township}} if hasattr(event.body, "place") else {}
    assert violations(changed(event, townships=[township], body=body), county) == []


@pytest.mark.parametrize("townships", [[], ["manghe"], ["fengcheng", "devzone", "xihe"]])
def test_countywide_unit_may_name_any_townships(
    samples: dict[EventType, Event[Any]], county: County, townships: list[str]
):
    """A unit without an area (forestry) may publish about any or no township."""
    assert violations(changed(samples[EventType.WORK_UPDATE], townships=townships), county) == []


# --- townships ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event_type", "changes", "field"),
    [
        (EventType.WORK_UPDATE, {"townships": ["atlantis"]}, "header.townships"),
        (EventType.WORK_UPDATE, {"audience_townships": ["atlantis"]}, "header.audience_townships"),
        (EventType.FIRE_REPORT, {"body": {"place": {"township": "atlantis"}}}, "body.place.township"),
        (EventType.RESOURCE, {"body": {"township": "atlantis"}}, "body.township"),
    ],
)
def test_unknown_township_is_reported(
    samples: dict[EventType, Event[Any]], county: County, event_type: EventType, changes: dict[str, Any], field: str
):
    """An unknown township in the header lists or the body is exactly one UNKNOWN_TOWNSHIP breach on that field."""
    found = violations(changed(samples[event_type], **changes), county)
    assert found == [Violation(Breach.UNKNOWN_TOWNSHIP, Problem(field, "unknown township 'atlantis'"))]
    with pytest.raises(InvalidEventError, match="atlantis"):
        raise_for(found)


def test_every_unknown_township_is_reported(samples: dict[EventType, Event[Any]], county: County):
    """Several unknown townships in one event give one UNKNOWN_TOWNSHIP breach each."""
    event = changed(
        samples[EventType.FIRE_REPORT],
        townships=["manghe", "atlantis", "lemuria"],
        audience_townships=["mu"],
        body={"place": {"township": "manghe"}},
    )
    found = violations(event, county)
    assert [v.breach for v in found] == [Breach.UNKNOWN_TOWNSHIP] * 3
    assert [v.problem.field for v in found] == ["header.townships", "header.townships", "header.audience_townships"]


@pytest.mark.parametrize(
    ("event_type", "body", "field"),
    [
        (EventType.FIRE_REPORT, {"place": {"township": "dongye"}}, "body.place.township"),
        (EventType.RESOURCE, {"township": "dongye"}, "body.township"),
    ],
)
def test_body_township_missing_from_header_is_inconsistent(
    samples: dict[EventType, Event[Any]], county: County, event_type: EventType, body: dict[str, Any], field: str
):
    """A known body township not listed in header.townships is an INCONSISTENT breach on the body field."""
    found = violations(changed(samples[event_type], body=body), county)
    assert found == [
        Violation(Breach.INCONSISTENT, Problem(field, "township 'dongye' must also be listed in header.townships"))
    ]


# --- classification and audience ---------------------------------------------------------------------------------

AUDIENCE_MATRIX = [
    (Classification.PUBLIC, Audience.PUBLIC, True),
    (Classification.PUBLIC, Audience.MEMBERS, True),
    (Classification.PUBLIC, Audience.HQ, True),
    (Classification.INTERNAL, Audience.PUBLIC, False),
    (Classification.INTERNAL, Audience.MEMBERS, True),
    (Classification.INTERNAL, Audience.HQ, True),
    (Classification.RESTRICTED, Audience.PUBLIC, False),
    (Classification.RESTRICTED, Audience.MEMBERS, False),
    (Classification.RESTRICTED, Audience.HQ, True),
]


@pytest.mark.parametrize(("classification", "audience", "allowed"), AUDIENCE_MATRIX)
def test_audience_may_not_be_wider_than_classification(
    samples: dict[EventType, Event[Any]],
    county: County,
    classification: Classification,
    audience: Audience,
    allowed: bool,
):
    """An audience wider than the classification allows is one INCONSISTENT breach on header.audience."""
    found = violations(
        changed(samples[EventType.WORK_UPDATE], classification=classification, audience=audience), county
    )
    if allowed:
        assert found == []
    else:
        assert [v.breach for v in found] == [Breach.INCONSISTENT]
        assert found[0].problem.field == "header.audience"
        assert f"{classification.value} information may reach at most" in found[0].problem.message
        assert f"not {audience.value}" in found[0].problem.message


def test_internal_to_public_message(samples: dict[EventType, Event[Any]], county: County):
    """Internal information sent to the public tier is refused with the widest allowed tier named."""
    event = changed(samples[EventType.CONSULTATION], audience=Audience.PUBLIC)
    assert event.header.classification is Classification.INTERNAL
    assert [v.problem for v in violations(event, county)] == [
        Problem("header.audience", "internal information may reach at most the members tier, not public")
    ]


@pytest.mark.parametrize(
    ("audience", "breaks"), [(Audience.PUBLIC, True), (Audience.MEMBERS, True), (Audience.HQ, False)]
)
def test_unpublishable_directive_stays_at_hq(
    samples: dict[EventType, Event[Any]], county: County, audience: Audience, breaks: bool
):
    """A directive marked not publishable is INCONSISTENT at any tier but hq."""
    event = changed(samples[EventType.DIRECTIVE], audience=audience, body={"publishable": False})
    found = violations(event, county)
    expected = Violation(
        Breach.INCONSISTENT, Problem("header.audience", "a directive that is not publishable stays at the hq tier")
    )
    assert found == ([expected] if breaks else [])


@pytest.mark.parametrize("audience", list(Audience))
def test_publishable_directive_may_go_anywhere_its_classification_allows(
    samples: dict[EventType, Event[Any]], county: County, audience: Audience
):
    """A publishable public directive may reach every tier."""
    assert violations(changed(samples[EventType.DIRECTIVE], audience=audience), county) == []


@pytest.mark.parametrize(
    ("classification", "audience"),
    [(Classification.INTERNAL, Audience.MEMBERS), (Classification.PUBLIC, Audience.PUBLIC)],
)
def test_case_update_naming_suspects_stays_at_hq(
    samples: dict[EventType, Event[Any]], county: County, classification: Classification, audience: Audience
):
    """A case update with suspects outside the hq tier is INCONSISTENT; without suspects it is clean."""
    event = changed(samples[EventType.CASE_UPDATE], classification=classification, audience=audience)
    assert event.body.suspects
    assert violations(event, county) == [
        Violation(Breach.INCONSISTENT, Problem("header.audience", "a case update naming suspects stays at the hq tier"))
    ]
    assert violations(changed(event, body={"suspects": []}), county) == []


# --- lifecycle ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "references", "message"),
    [
        (MessageKind.ALERT, "other", "an alert is new information and references nothing"),
        (MessageKind.UPDATE, "none", "an update must reference the event it changes"),
        (MessageKind.CANCEL, "none", "must reference the event it changes"),
        (MessageKind.UPDATE, "self", "an event cannot reference itself"),
        (MessageKind.CANCEL, "self", "an event cannot reference itself"),
    ],
)
def test_bad_references_are_reported(
    samples: dict[EventType, Event[Any]], county: County, kind: MessageKind, references: str, message: str
):
    """Alerts with references, updates/cancels without, and self-references are BAD_REFERENCE breaches."""
    event = samples[EventType.FIRE_REPORT]
    chosen = {"other": [uuid4()], "none": [], "self": [event.header.event_id]}[references]
    found = violations(changed(event, kind=kind, references=chosen), county)
    assert [v.breach for v in found] == [Breach.BAD_REFERENCE]
    assert found[0].problem.field == "header.references"
    assert message in found[0].problem.message


def test_alert_referencing_itself_breaks_both_rules(samples: dict[EventType, Event[Any]], county: County):
    """An alert that references itself is reported both as a referencing alert and as a self-reference."""
    event = samples[EventType.FIRE_REPORT]
    found = violations(changed(event, references=[event.header.event_id]), county)
    assert [v.breach for v in found] == [Breach.BAD_REFERENCE, Breach.BAD_REFERENCE]


@pytest.mark.parametrize("kind", [MessageKind.UPDATE, MessageKind.CANCEL])
@pytest.mark.parametrize("event_type", list(SAMPLE_UNITS))
def test_update_and_cancel_referencing_an_earlier_event_are_clean(
    samples: dict[EventType, Event[Any]], county: County, kind: MessageKind, event_type: EventType
):
    """An update or cancel referencing other events breaks no rule."""
    event = changed(samples[event_type], kind=kind, references=[uuid4(), uuid4()])
    assert violations(event, county) == []


@pytest.mark.parametrize("incident_id", [None, ""])
@pytest.mark.parametrize("event_type", [EventType.FIRE_REPORT, EventType.TRAFFIC_CONTROL])
def test_incident_types_need_an_incident_id(
    samples: dict[EventType, Event[Any]], county: County, event_type: EventType, incident_id: str | None
):
    """A fire_report or traffic_control without an incident id is INCONSISTENT on header.incident_id."""
    found = violations(changed(samples[event_type], incident_id=incident_id), county)
    assert found == [
        Violation(Breach.INCONSISTENT, Problem("header.incident_id", f"a {event_type.value} belongs to an incident"))
    ]


@pytest.mark.parametrize(
    "event_type", [t for t in SAMPLE_UNITS if t not in (EventType.FIRE_REPORT, EventType.TRAFFIC_CONTROL)]
)
def test_other_types_need_no_incident_id(samples: dict[EventType, Event[Any]], county: County, event_type: EventType):
    """Types that are not incident types break no rule without an incident id."""
    assert violations(changed(samples[event_type], incident_id=None), county) == []


# --- timestamps --------------------------------------------------------------------------------------------------

SKEW_PLUS_MS = MAX_CLOCK_SKEW + MS
TIMESTAMP_CASES = [
    pytest.param(EventType.WORK_UPDATE, {"published_at": NOW + SKEW_PLUS_MS}, "header.published_at", id="future"),
    pytest.param(EventType.WORK_UPDATE, {"published_at": NOW + MAX_CLOCK_SKEW}, None, id="future-at-skew-limit"),
    pytest.param(
        EventType.WORK_UPDATE,
        {"published_at": NOW - timedelta(days=3), "occurred_at": NOW - timedelta(days=4)},
        None,
        id="published-in-the-past",
    ),
    pytest.param(EventType.WORK_UPDATE, {"occurred_at": NOW + SKEW_PLUS_MS}, "header.occurred_at", id="occurs-later"),
    pytest.param(EventType.WORK_UPDATE, {"occurred_at": NOW + MAX_CLOCK_SKEW}, None, id="occurs-at-skew-limit"),
    pytest.param(
        EventType.WORK_UPDATE, {"occurred_at": NOW - MAX_EVENT_AGE - MS}, "header.occurred_at", id="over-a-year-old"
    ),
    pytest.param(EventType.WORK_UPDATE, {"occurred_at": NOW - timedelta(days=365)}, None, id="within-a-year"),
    pytest.param(
        EventType.RISK_WARNING,
        {"body": {"valid_to": datetime(2026, 3, 12, tzinfo=UTC)}},
        "body.valid_to",
        id="warning-ends-when-it-starts",
    ),
    pytest.param(
        EventType.RISK_WARNING,
        {"body": {"valid_to": datetime(2026, 3, 11, tzinfo=UTC)}},
        "body.valid_to",
        id="warning-ends-before-it-starts",
    ),
    pytest.param(
        EventType.RISK_WARNING,
        {"body": {"valid_to": datetime(2026, 3, 12, 0, 0, 0, 1000, tzinfo=UTC)}},
        None,
        id="warning-one-ms-long",
    ),
    pytest.param(
        EventType.TRAFFIC_CONTROL,
        {"body": {"ends_at": datetime(2026, 3, 12, 6, 30, tzinfo=UTC)}},
        "body.ends_at",
        id="closure-ends-when-it-starts",
    ),
    pytest.param(
        EventType.TRAFFIC_CONTROL,
        {"body": {"ends_at": datetime(2026, 3, 12, 6, tzinfo=UTC)}},
        "body.ends_at",
        id="closure-ends-before-it-starts",
    ),
    pytest.param(
        EventType.TRAFFIC_CONTROL,
        {"body": {"ends_at": datetime(2026, 3, 12, 18, tzinfo=UTC)}},
        None,
        id="closure-ends-later",
    ),
    pytest.param(EventType.TRAFFIC_CONTROL, {"body": {"ends_at": None}}, None, id="closure-open-ended"),
    pytest.param(
        EventType.FIRE_REPORT,
        {"body": {"discovered_at": NOW + SKEW_PLUS_MS}},
        "body.discovered_at",
        id="fire-discovered-after-report",
    ),
]


@pytest.mark.parametrize(("event_type", "changes", "field"), TIMESTAMP_CASES)
def test_timestamps(
    samples: dict[EventType, Event[Any]],
    county: County,
    event_type: EventType,
    changes: dict[str, Any],
    field: str | None,
):
    """Impossible or stale timestamps are one BAD_TIMESTAMP breach on the field; boundary values are accepted."""
    found = violations(changed(samples[event_type], **changes), county)
    if field is None:
        assert found == []
    else:
        assert [(v.breach, v.problem.field) for v in found] == [(Breach.BAD_TIMESTAMP, field)]
        with pytest.raises(InvalidEventError) as caught:
            raise_for(found)
        assert type(caught.value) is InvalidEventError


def test_stale_event_message_names_the_time(samples: dict[EventType, Event[Any]], county: County):
    """An event older than a year is reported with its occurred_at and 'more than a year old'."""
    old = datetime(2025, 1, 1, tzinfo=UTC)
    found = violations(changed(samples[EventType.WORK_UPDATE], occurred_at=old), county)
    assert [v.problem for v in found] == [
        Problem("header.occurred_at", "2025-01-01T00:00:00+00:00 is more than a year old")
    ]


def test_rules_use_the_given_clock(samples: dict[EventType, Event[Any]], county: County):
    """The same event is in the future for an earlier clock and fine for the clock it was made at."""
    event = samples[EventType.WORK_UPDATE]
    assert governance_violations(event, county, now=NOW) == []
    earlier = governance_violations(event, county, now=NOW - timedelta(hours=1))
    assert [v.problem.field for v in earlier] == ["header.published_at"]


# --- raise_for ---------------------------------------------------------------------------------------------------


def test_raise_for_lists_every_problem_of_a_real_event(samples: dict[EventType, Event[Any]], county: County):
    """An event breaking several non-specific rules raises a plain InvalidEventError naming every field."""
    event = changed(
        samples[EventType.FIRE_REPORT],
        incident_id=None,
        published_at=NOW + timedelta(hours=2),
        kind=MessageKind.UPDATE,
        audience=Audience.PUBLIC,
        body={"place": {"township": "dongye"}},
    )
    found = violations(event, county)
    assert {v.breach for v in found} == {Breach.INCONSISTENT, Breach.BAD_REFERENCE, Breach.BAD_TIMESTAMP}
    with pytest.raises(InvalidEventError) as caught:
        raise_for(found)
    assert type(caught.value) is InvalidEventError
    assert caught.value.problems == tuple(v.problem for v in found)
    message = str(caught.value)
    fields = [
        "header.incident_id",
        "header.published_at",
        "header.references",
        "header.audience",
        "body.place.township",
    ]
    for field in fields:
        assert field in message


def test_unknown_unit_wins_over_the_rest(samples: dict[EventType, Event[Any]], county: County):
    """An unknown unit with other breaches raises UnknownUnitError listing every problem."""
    event = changed(published_by(samples[EventType.FIRE_REPORT], "nobody"), incident_id=None, townships=["atlantis"])
    found = violations(event, county)
    with pytest.raises(UnknownUnitError) as caught:
        raise_for(found)
    assert {p.field for p in caught.value.problems} == {
        "header.publisher.unit",
        "header.incident_id",
        "header.townships",
        "body.place.township",
    }


def test_duty_violation_wins_over_area_and_lifecycle(samples: dict[EventType, Event[Any]], county: County):
    """A township unit outside its duties and area raises DutyViolationError listing both problems."""
    event = changed(published_by(samples[EventType.CONSULTATION], "twp_manghe"), kind=MessageKind.CANCEL)
    found = violations(event, county)
    assert [v.breach for v in found] == [Breach.OUTSIDE_DUTIES, Breach.OUTSIDE_AREA, Breach.BAD_REFERENCE]
    with pytest.raises(DutyViolationError) as caught:
        raise_for(found)
    assert len(caught.value.problems) == 3


PRECEDENCE = [
    (Breach.CLASSIFIED, ClassifiedEventError),
    (Breach.UNKNOWN_UNIT, UnknownUnitError),
    (Breach.OUTSIDE_DUTIES, DutyViolationError),
]


def expected_error(breaches: set[Breach]) -> type[InvalidEventError]:
    return next((error for breach, error in PRECEDENCE if breach in breaches), InvalidEventError)


@given(
    st.lists(
        st.tuples(
            st.sampled_from(list(Breach)),
            st.text(alphabet="abcdefghij._", min_size=1, max_size=12),
            st.text(min_size=1, max_size=30),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_raise_for_picks_the_most_specific_error_and_lists_all(items: list[tuple[Breach, str, str]]):
    """For any non-empty violations, raise_for raises the highest-precedence error listing every problem in order."""
    listed = [Violation(breach, Problem(field, message)) for breach, field, message in items]
    with pytest.raises(InvalidEventError) as caught:
        raise_for(listed)
    assert type(caught.value) is expected_error({v.breach for v in listed})
    assert caught.value.problems == tuple(v.problem for v in listed)
    message = str(caught.value)
    position = 0
    for violation in listed:
        found_at = message.find(str(violation.problem), position)
        assert found_at >= 0
        position = found_at + len(str(violation.problem))


@pytest.mark.parametrize("breach", list(Breach))
def test_raise_for_single_breach_class(breach: Breach):
    """A single violation of each kind maps onto its documented error class."""
    with pytest.raises(InvalidEventError) as caught:
        raise_for([Violation(breach, Problem("header.x", "wrong"))])
    assert type(caught.value) is expected_error({breach})
    assert str(caught.value) == "invalid event: header.x: wrong"
