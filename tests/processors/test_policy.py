"""The HQ office's review policy: loading and checking the policy file, which rule pre-authorises which event
(never a public one), escalation deadlines, who may decide a review, and when an item is overdue.

Events are :class:`~firebus.events.Event` models with a fixed header; the county is the shipped sample.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firebus.county import County, load_county, reviewer_may_decide
from firebus.errors import ConfigurationError
from firebus.events import (
    Audience,
    CaseKind,
    CaseStatus,
    CaseUpdate,
    Classification,
    Consultation,
    ConsultationPeriod,
    Directive,
    Event,
    EventBody,
    EventType,
    FirePlace,
    FireReport,
    FireStatus,
    Header,
    IssuingLevel,
    MessageKind,
    Publisher,
    Resource,
    ResourceKind,
    ResourceStatus,
    RiskWarning,
    Severity,
    SignalColour,
    TrafficControl,
    TrafficMeasure,
    Urgency,
    WorkCategory,
    WorkUpdate,
)
from firebus.settings import SAMPLE_CONFIG, SAMPLE_POLICY
from processors.policy import PolicyRule, ReviewPolicy, load_policy, overdue

NOW = datetime(2026, 3, 12, 8, 0, tzinfo=UTC)
COUNTY = load_county(SAMPLE_CONFIG)
POLICY = load_policy(SAMPLE_POLICY, COUNTY)
UNIT_IDS = [unit.id for unit in COUNTY.units]

BODIES: dict[EventType, EventBody] = {
    EventType.FIRE_REPORT: FireReport(
        place=FirePlace(township="manghe", lat=35.25, lon=112.38), discovered_at=NOW, status=FireStatus.REPORTED
    ),
    EventType.TRAFFIC_CONTROL: TrafficControl(
        road="S331", measure=TrafficMeasure.CLOSURE, starts_at=NOW, reason="火场周边道路封闭"
    ),
    EventType.CASE_UPDATE: CaseUpdate(
        case_number="阳林罚〔2026〕1号",
        case_kind=CaseKind.ILLEGAL_FIRE_USE,
        status=CaseStatus.OPENED,
        summary="野外用火",
    ),
    EventType.RISK_WARNING: RiskWarning(
        danger_level=3, signal=SignalColour.YELLOW, area="全县", valid_from=NOW, valid_to=NOW + timedelta(days=1)
    ),
    EventType.DIRECTIVE: Directive(issuing_level=IssuingLevel.COUNTY, leader="县长", text="严防死守", publishable=True),
    EventType.CONSULTATION: Consultation(period=ConsultationPeriod.DAILY, judgement="火险较高"),
    EventType.WORK_UPDATE: WorkUpdate(category=WorkCategory.INSPECTION, title="清明节前检查", text="检查了三个卡口"),
    EventType.RESOURCE: Resource(
        resource_id="wp-manghe-003",
        resource_kind=ResourceKind.WATER_POINT,
        name="押水村蓄水池",
        township="manghe",
        lat=35.2491,
        lon=112.3805,
        status=ResourceStatus.AVAILABLE,
    ),
}
"""A minimal valid body of every event type."""


def make_event(
    event_type: EventType,
    *,
    unit: str,
    severity: Severity = Severity.UNKNOWN,
    audience: Audience = Audience.MEMBERS,
    person: str = "张三",
) -> Event[Any]:
    """An event of ``event_type`` published by ``unit`` with a fixed header."""
    header = Header(
        event_id=UUID("00000000-0000-4000-8000-000000000001"),
        event_type=event_type,
        schema_version=1,
        kind=MessageKind.ALERT,
        publisher=Publisher(unit=unit, person=person),
        classification=Classification.INTERNAL,
        audience=audience,
        severity=severity,
        urgency=Urgency.UNKNOWN,
        occurred_at=NOW,
        published_at=NOW,
        trace_id="trace-policy-test",
    )
    return Event[Any](header=header, body=BODIES[event_type])


def toml_text(
    *,
    version: object = "test-1",
    deadlines: dict[str, object] | None = None,
    rules: list[dict[str, object]] | None = None,
    extra: str = "",
) -> str:
    """A policy file's text; JSON strings, numbers and lists are valid TOML values."""
    lines = [] if version is None else [f"version = {json.dumps(version)}"]
    lines.append(extra)
    if deadlines is not None:
        lines.append("[deadlines]")
        lines.extend(f"{name} = {json.dumps(minutes)}" for name, minutes in deadlines.items())
    for rule in rules or []:
        lines.append("[[rules]]")
        lines.extend(f"{key} = {json.dumps(value, ensure_ascii=False)}" for key, value in rule.items())
    return "\n".join(lines) + "\n"


ALL_DEADLINES: dict[str, object] = dict.fromkeys((t.value for t in EventType), 30)
GOOD_RULE: dict[str, object] = {
    "id": "resource-by-owner",
    "units": ["forestry"],
    "types": ["resource"],
    "severities": ["unknown"],
}


def write_policy(tmp_path: Path, text: str) -> Path:
    """Write ``text`` as a policy file in ``tmp_path`` and return its path."""
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    return path


# --- the shipped policy ----------------------------------------------------------------------------------------


def test_shipped_policy_loads_with_its_version():
    """The shipped sample policy loads against the sample county and carries its version."""
    assert isinstance(POLICY, ReviewPolicy)
    assert POLICY.version == "2026.03-1"
    assert 3 <= len(POLICY.rules) <= 4


def test_shipped_policy_has_no_rule_for_fire_reports():
    """No shipped rule pre-authorises fire reports: every one gets a human reviewer."""
    assert all(EventType.FIRE_REPORT not in rule.types for rule in POLICY.rules)


def test_shipped_policy_rules_stay_within_the_units_duties():
    """Every (unit, type) a shipped rule covers is within that unit's duties, so no rule entry is dead."""
    for rule in POLICY.rules:
        for unit_id in rule.units:
            assert rule.types & COUNTY.unit(unit_id).duties, (rule.id, unit_id)


@pytest.mark.parametrize(
    ("event_type", "minutes"),
    [
        (EventType.FIRE_REPORT, 10),
        (EventType.TRAFFIC_CONTROL, 15),
        (EventType.RISK_WARNING, 30),
        (EventType.CASE_UPDATE, 60),
        (EventType.CONSULTATION, 120),
        (EventType.DIRECTIVE, 120),
        (EventType.WORK_UPDATE, 1440),
        (EventType.RESOURCE, 1440),
    ],
)
def test_deadline_for_each_type(event_type: EventType, minutes: int):
    """deadline_for returns the shipped minutes of each event type as a timedelta."""
    assert POLICY.deadline_for(event_type) == timedelta(minutes=minutes)


# --- matching rules --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("unit", "event_type", "severity", "audience", "rule_id"),
    [
        ("forestry", EventType.RESOURCE, Severity.UNKNOWN, Audience.MEMBERS, "resource-by-owner"),
        ("emergency", EventType.RESOURCE, Severity.MINOR, Audience.MEMBERS, "resource-by-owner"),
        ("forestry", EventType.RESOURCE, Severity.MODERATE, Audience.HQ, "resource-by-owner"),
        ("meteorology", EventType.RISK_WARNING, Severity.MINOR, Audience.MEMBERS, "risk-warning-by-meteorology"),
        ("meteorology", EventType.RISK_WARNING, Severity.MODERATE, Audience.HQ, "risk-warning-by-meteorology"),
        ("police", EventType.WORK_UPDATE, Severity.UNKNOWN, Audience.MEMBERS, "work-update-by-member-units"),
        ("transport", EventType.WORK_UPDATE, Severity.MINOR, Audience.MEMBERS, "work-update-by-member-units"),
        ("emergency", EventType.WORK_UPDATE, Severity.UNKNOWN, Audience.HQ, "work-update-by-member-units"),
    ],
)
def test_matching_rule_applies(unit: str, event_type: EventType, severity: Severity, audience: Audience, rule_id: str):
    """A rule applies when the unit, type and severity are listed and the audience is members or hq."""
    event = make_event(event_type, unit=unit, severity=severity, audience=audience)
    rule = POLICY.matching_rule(event)
    assert rule is not None
    assert rule.id == rule_id
    assert rule.matches(event)


@pytest.mark.parametrize(
    ("unit", "event_type", "severity", "why"),
    [
        ("police", EventType.RESOURCE, Severity.UNKNOWN, "unit not listed"),
        ("emergency", EventType.RISK_WARNING, Severity.MINOR, "unit not listed"),
        ("hq_office", EventType.RISK_WARNING, Severity.MINOR, "unit not listed"),
        ("twp_manghe", EventType.WORK_UPDATE, Severity.UNKNOWN, "township units get a human"),
        ("forestry", EventType.RESOURCE, Severity.SEVERE, "severity not listed"),
        ("emergency", EventType.RESOURCE, Severity.EXTREME, "severity not listed"),
        ("meteorology", EventType.RISK_WARNING, Severity.SEVERE, "severity not listed"),
        ("meteorology", EventType.RISK_WARNING, Severity.UNKNOWN, "severity not listed"),
        ("forestry", EventType.WORK_UPDATE, Severity.MODERATE, "severity not listed"),
        ("forestry", EventType.FIRE_REPORT, Severity.MINOR, "type not listed"),
        ("forestry", EventType.CASE_UPDATE, Severity.UNKNOWN, "type not listed"),
        ("meteorology", EventType.CONSULTATION, Severity.MINOR, "type not listed"),
    ],
)
def test_matching_rule_needs_unit_type_and_severity(unit: str, event_type: EventType, severity: Severity, why: str):
    """No rule applies when the unit, the type or the severity is not listed by any rule."""
    assert POLICY.matching_rule(make_event(event_type, unit=unit, severity=severity)) is None, why


@pytest.mark.parametrize(
    ("unit", "event_type", "severity"),
    [
        ("forestry", EventType.RESOURCE, Severity.UNKNOWN),
        ("meteorology", EventType.RISK_WARNING, Severity.MINOR),
        ("police", EventType.WORK_UPDATE, Severity.UNKNOWN),
    ],
)
def test_public_audience_never_matches(unit: str, event_type: EventType, severity: Severity):
    """An event a rule would cover needs a human once it is addressed to the public."""
    event = make_event(event_type, unit=unit, severity=severity, audience=Audience.PUBLIC)
    assert POLICY.matching_rule(event) is None
    assert all(not rule.matches(event) for rule in POLICY.rules)


@given(
    unit=st.sampled_from(UNIT_IDS),
    event_type=st.sampled_from(list(EventType)),
    severity=st.sampled_from(list(Severity)),
)
def test_public_audience_never_matches_any_event(unit: str, event_type: EventType, severity: Severity):
    """Whatever the unit, type and severity, no rule matches an event addressed to the public."""
    catch_all = ReviewPolicy(
        version="catch-all",
        deadlines=dict.fromkeys(EventType, 1),
        rules=(
            PolicyRule(
                id="everything", units=frozenset(UNIT_IDS), types=frozenset(EventType), severities=frozenset(Severity)
            ),
        ),
    )
    event = make_event(event_type, unit=unit, severity=severity, audience=Audience.PUBLIC)
    assert catch_all.matching_rule(event) is None
    assert catch_all.matching_rule(make_event(event_type, unit=unit, severity=severity)) is not None


def test_first_matching_rule_wins(tmp_path: Path):
    """When two rules cover an event, the one earlier in the file is the reviewer of record."""
    second = {**GOOD_RULE, "id": "second", "severities": ["unknown", "minor"]}
    path = write_policy(tmp_path, toml_text(deadlines=ALL_DEADLINES, rules=[GOOD_RULE, second]))
    policy = load_policy(path, COUNTY)
    rule = policy.matching_rule(make_event(EventType.RESOURCE, unit="forestry"))
    assert rule is not None
    assert rule.id == "resource-by-owner"
    minor_rule = policy.matching_rule(make_event(EventType.RESOURCE, unit="forestry", severity=Severity.MINOR))
    assert minor_rule is not None
    assert minor_rule.id == "second"


def test_policy_without_rules_sends_everything_to_a_human(tmp_path: Path):
    """A policy with deadlines but no rules loads, and no event matches a rule."""
    policy = load_policy(write_policy(tmp_path, toml_text(deadlines=ALL_DEADLINES)), COUNTY)
    assert policy.rules == ()
    assert policy.matching_rule(make_event(EventType.RESOURCE, unit="forestry")) is None


def test_loaded_rule_keeps_description_and_strips_version(tmp_path: Path):
    """A loaded rule keeps its description and the version is stored without surrounding blanks."""
    rule = {**GOOD_RULE, "description": "林业基础数据"}
    policy = load_policy(
        write_policy(tmp_path, toml_text(version=" v2 ", deadlines=ALL_DEADLINES, rules=[rule])), COUNTY
    )
    assert policy.version == "v2"
    assert policy.rules[0].description == "林业基础数据"


# --- loading errors --------------------------------------------------------------------------------------------

WITHOUT_FIRE_REPORT = {name: minutes for name, minutes in ALL_DEADLINES.items() if name != "fire_report"}

BAD_POLICIES: list[Any] = [
    pytest.param(toml_text(version=None, deadlines=ALL_DEADLINES), "version is missing", id="missing-version"),
    pytest.param(toml_text(version="", deadlines=ALL_DEADLINES), "version must be a non-empty", id="empty-version"),
    pytest.param(toml_text(version="  ", deadlines=ALL_DEADLINES), "version must be a non-empty", id="blank-version"),
    pytest.param(toml_text(version=3, deadlines=ALL_DEADLINES), "version must be a non-empty", id="numeric-version"),
    pytest.param(
        toml_text(deadlines=ALL_DEADLINES, rules=[{**GOOD_RULE, "units": ["forestry", "fire_brigade"]}]),
        "rule 'resource-by-owner' names unknown unit 'fire_brigade'",
        id="unknown-unit",
    ),
    pytest.param(
        toml_text(deadlines=ALL_DEADLINES, rules=[{**GOOD_RULE, "types": ["resources"]}]),
        "rule 'resource-by-owner' names unknown event type 'resources'",
        id="unknown-type",
    ),
    pytest.param(
        toml_text(deadlines=ALL_DEADLINES, rules=[{**GOOD_RULE, "severities": ["low"]}]),
        "rule 'resource-by-owner' names unknown severity 'low'",
        id="unknown-severity",
    ),
    pytest.param(
        toml_text(deadlines=ALL_DEADLINES, rules=[GOOD_RULE, {**GOOD_RULE, "units": ["emergency"]}]),
        "duplicate rule id 'resource-by-owner'",
        id="duplicate-rule-id",
    ),
    pytest.param(
        toml_text(deadlines=WITHOUT_FIRE_REPORT), "deadlines has no entry for fire_report", id="missing-deadline"
    ),
    pytest.param(toml_text(), "[deadlines] table is missing", id="missing-deadlines-table"),
    pytest.param(
        toml_text(deadlines={**ALL_DEADLINES, "fire_report": 0}),
        "deadlines.fire_report must be a positive whole number of minutes, got 0",
        id="zero-deadline",
    ),
    pytest.param(
        toml_text(deadlines={**ALL_DEADLINES, "resource": -5}),
        "deadlines.resource must be a positive whole number of minutes, got -5",
        id="negative-deadline",
    ),
    pytest.param(
        toml_text(deadlines={**ALL_DEADLINES, "resource": 2.5}),
        "deadlines.resource must be a positive whole number of minutes",
        id="fractional-deadline",
    ),
    pytest.param(
        toml_text(deadlines={**ALL_DEADLINES, "resource": True}),
        "deadlines.resource must be a positive whole number of minutes",
        id="boolean-deadline",
    ),
    pytest.param(
        toml_text(deadlines={**ALL_DEADLINES, "wildfire": 5}),
        "deadlines names unknown event type 'wildfire'",
        id="unknown-deadline-type",
    ),
    pytest.param(
        toml_text(deadlines=ALL_DEADLINES, rules=[{k: v for k, v in GOOD_RULE.items() if k != "id"}]),
        "rule #1 has no id",
        id="rule-without-id",
    ),
    pytest.param(
        toml_text(deadlines=ALL_DEADLINES, rules=[{**GOOD_RULE, "units": []}]),
        "units must be a non-empty list of strings",
        id="empty-units",
    ),
    pytest.param(
        toml_text(deadlines=ALL_DEADLINES, rules=[{k: v for k, v in GOOD_RULE.items() if k != "severities"}]),
        "severities must be a non-empty list of strings",
        id="missing-severities",
    ),
    pytest.param(
        toml_text(deadlines=ALL_DEADLINES, rules=[{**GOOD_RULE, "audiences": ["public"]}]),
        "rule 'resource-by-owner' has unknown key(s) audiences",
        id="unknown-rule-key",
    ),
    pytest.param(
        toml_text(deadlines=ALL_DEADLINES, rules=[{**GOOD_RULE, "id": "hq-wang"}]),
        "rule 'hq-wang' has the id of a human reviewer",
        id="rule-id-of-a-reviewer",
    ),
    pytest.param(
        toml_text(deadlines=ALL_DEADLINES, extra='rule = "typo"'),
        "unknown top-level key(s) rule",
        id="unknown-top-level-key",
    ),
]


@pytest.mark.parametrize(("text", "problem"), BAD_POLICIES)
def test_load_policy_rejects(tmp_path: Path, text: str, problem: str):
    """A wrong policy file raises one ConfigurationError line naming the file and the problem."""
    path = write_policy(tmp_path, text)
    with pytest.raises(ConfigurationError) as caught:
        load_policy(path, COUNTY)
    message = str(caught.value)
    assert "\n" not in message
    assert str(path) in message
    assert problem in message


def test_load_policy_missing_file(tmp_path: Path):
    """A policy file that does not exist raises a ConfigurationError naming it."""
    path = tmp_path / "absent.toml"
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_policy(path, COUNTY)


def test_load_policy_bad_toml(tmp_path: Path):
    """A policy file that is not TOML raises a ConfigurationError naming it."""
    path = write_policy(tmp_path, "version = \n")
    with pytest.raises(ConfigurationError) as caught:
        load_policy(path, COUNTY)
    assert str(path) in str(caught.value)


# --- who may decide --------------------------------------------------------------------------------------------


def county_with_member_reviewer() -> County:
    """The sample county plus a reviewer registered in the forestry bureau (not the HQ office)."""
    data = COUNTY.model_dump()
    data["reviewers"] = [*data["reviewers"], {"id": "lin-zhao", "name": "赵林", "unit": "forestry"}]
    return County.model_validate(data)


@pytest.mark.parametrize(
    ("reviewer_id", "publisher_person", "publisher_unit"),
    [
        ("hq-wang", "张三", "forestry"),
        ("hq-li", "王建国", "hq_office"),
        ("hq-wang", "hq-li", "hq_office"),
        ("hq-li", "张三", "meteorology"),
    ],
)
def test_reviewer_may_decide_allows(reviewer_id: str, publisher_person: str, publisher_unit: str):
    """A registered HQ-office reviewer who is not the publisher may decide."""
    assert reviewer_may_decide(COUNTY, reviewer_id, publisher_person, publisher_unit) is None


@pytest.mark.parametrize(
    ("reviewer_id", "publisher_person", "publisher_unit", "reason"),
    [
        ("hq-zhao", "张三", "forestry", "reviewer 'hq-zhao' is not registered"),
        ("", "张三", "forestry", "is not registered"),
        ("王建国", "张三", "forestry", "is not registered"),
        ("lin-zhao", "张三", "police", "belongs to unit 'forestry', which is not the HQ office"),
        ("hq-wang", "hq-wang", "hq_office", "is the publisher of this event"),
        ("hq-wang", "王建国", "hq_office", "is the publisher of this event"),
        ("hq-li", " 李秀英 ", "hq_office", "is the publisher of this event"),
        ("hq-li", "李秀英", "forestry", "is the publisher of this event"),
    ],
)
def test_reviewer_may_decide_refuses(reviewer_id: str, publisher_person: str, publisher_unit: str, reason: str):
    """An unregistered reviewer, one outside the HQ office, or the publisher themself gets the reason why not."""
    county = county_with_member_reviewer()
    refusal = reviewer_may_decide(county, reviewer_id, publisher_person, publisher_unit)
    assert refusal is not None
    assert reason in refusal


# --- escalation ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "escalated", "expected"),
    [
        (NOW - timedelta(minutes=1), False, False),
        (NOW - timedelta(milliseconds=1), False, False),
        (NOW, False, True),
        (NOW + timedelta(seconds=1), False, True),
        (NOW + timedelta(days=2), False, True),
        (NOW, True, False),
        (NOW + timedelta(hours=1), True, False),
        (NOW - timedelta(minutes=1), True, False),
    ],
)
def test_overdue(now: datetime, escalated: bool, expected: bool):
    """An item is overdue from its deadline on, until it has been escalated."""
    assert overdue(NOW, now, escalated) is expected


def test_overdue_with_policy_deadline():
    """A fire report received now is overdue exactly ten minutes later under the shipped policy."""
    deadline = NOW + POLICY.deadline_for(EventType.FIRE_REPORT)
    assert not overdue(deadline, NOW + timedelta(minutes=9, seconds=59), escalated=False)
    assert overdue(deadline, NOW + timedelta(minutes=10), escalated=False)
