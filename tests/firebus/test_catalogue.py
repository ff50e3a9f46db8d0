"""The event catalogue: one complete entry per event type, its texts pinned, and no type switch outside it."""

from __future__ import annotations

import ast
import types
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

import pytest
from pydantic import BaseModel

from firebus.catalogue import CATALOGUE, FIRE_RELATED_TYPES, CountyWords, EventKind, field_value, kind_of
from firebus.codec import event_model
from firebus.county import County
from firebus.events import BODY_TYPES, Event, EventBody, EventType, FireReport, FireStatus
from producers import load_draft
from tests.consumers.sms.samples import header
from tests.samples import EXAMPLES

ROOT = Path(__file__).resolve().parents[2]

CAP_CATEGORIES = {"Geo", "Met", "Safety", "Security", "Rescue", "Fire", "Health", "Env", "Transport", "Infra"}
CAP_CATEGORIES |= {"CBRNE", "Other"}
CAP_CERTAINTIES = {"Observed", "Likely", "Possible", "Unlikely", "Unknown"}


def options(annotation: Any) -> tuple[Any, ...]:
    """The types an annotation allows (``X | None`` → ``(X, None)``), without their ``Annotated`` metadata."""
    allowed = get_args(annotation) if get_origin(annotation) in (Union, types.UnionType) else (annotation,)
    return tuple(get_args(each)[0] if get_origin(each) is Annotated else each for each in allowed)


def leaf_fields(model: type[BaseModel], prefix: str = "") -> dict[str, Any]:
    """Dotted path → annotation of every field a fact can show: nested records are walked, lists are leaves."""
    found: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        nested = [each for each in options(field.annotation) if isinstance(each, type) and issubclass(each, BaseModel)]
        if nested:
            found |= leaf_fields(nested[0], f"{prefix}{name}.")
        else:
            found[f"{prefix}{name}"] = field.annotation
    return found


def sample_event(event_type: EventType, **header_changes: Any) -> Event[Any]:
    """The shipped example draft of ``event_type`` as an event, published in 蟒河镇."""
    body = load_draft(EXAMPLES / f"{event_type.value}.json").body
    return event_model(event_type)(header=header(type(body), **header_changes), body=body)


@pytest.fixture(scope="module")
def words(county: County) -> CountyWords:
    return CountyWords.of(county)


# --- every type has a complete entry -----------------------------------------------------------------------------


def test_every_event_type_has_an_entry_in_enum_order() -> None:
    """The catalogue names every EventType once, in the enum's order, each with its own body model."""
    assert list(CATALOGUE) == list(EventType)
    for event_type, kind in CATALOGUE.items():
        assert isinstance(kind, EventKind)
        assert kind.event_type is event_type
        assert kind.body is BODY_TYPES[event_type]
        assert kind_of(event_type) is kind


def test_an_entry_that_leaves_something_out_is_refused_when_defined() -> None:
    """A kind without, say, its labels fails as its module is imported, naming what is missing."""
    with pytest.raises(TypeError, match="leaves out labels"):

        class _Incomplete(EventKind[FireReport]):
            body = FireReport
            name = "火情报告"
            watched_live = True
            incident_bound = True
            cap_categories = ("Fire",)


def test_names_are_distinct_chinese_words() -> None:
    """Each type has its own zh-CN name (tags, CAP <event>, Atom categories)."""
    names = [kind.name for kind in CATALOGUE.values()]
    assert len(set(names)) == len(names)
    assert all(name and all("\u4e00" <= char <= "\u9fff" for char in name) for name in names)


@pytest.mark.parametrize("event_type", list(EventType), ids=str)
def test_every_body_field_has_a_label_and_no_label_is_stale(event_type: EventType) -> None:
    """The labels name exactly the body's fields, so the portal never shows a raw field name."""
    kind = kind_of(event_type)
    assert set(kind.labels) == set(leaf_fields(kind.body))
    assert all(label.strip() for label in kind.labels.values())


@pytest.mark.parametrize("event_type", list(EventType), ids=str)
def test_type_facts_name_real_fields(event_type: EventType) -> None:
    """Township fields are text fields; windows and observed times are time fields; formats are list fields."""
    kind = kind_of(event_type)
    fields = leaf_fields(kind.body)
    for path in kind.township_fields:
        assert fields[path] is str, path
    times = [moment.field for moment in kind.observed]
    times += [name for window in kind.time_windows for name in window]
    for path in times:
        assert datetime in options(fields[path]), path
    for path in kind.fact_formats:
        assert get_origin(fields[path]) is list, path


@pytest.mark.parametrize("event_type", list(EventType), ids=str)
def test_cap_mapping_uses_cap_vocabulary(event_type: EventType) -> None:
    """Every type is about fire first, with CAP 1.2's own category and certainty words."""
    kind = kind_of(event_type)
    body = sample_event(event_type).body
    assert kind.cap_categories[0] == "Fire"
    assert set(kind.cap_categories) <= CAP_CATEGORIES
    assert kind.cap_certainty(body) in CAP_CERTAINTIES
    assert all(moment is None or isinstance(moment, datetime) for moment in kind.cap_times(body))


def test_the_hq_office_watches_the_fire_related_types_live() -> None:
    """Fire reports, traffic control, case updates and risk warnings reach the HQ live view before review."""
    assert {
        EventType.FIRE_REPORT,
        EventType.TRAFFIC_CONTROL,
        EventType.CASE_UPDATE,
        EventType.RISK_WARNING,
    } == FIRE_RELATED_TYPES


# --- each type's texts, pinned -----------------------------------------------------------------------------------

TEXTS = {
    EventType.FIRE_REPORT: (
        "蟒河镇桑林村火情（已报告）",
        "火情：蟒河镇桑林村蟒河景区东侧山坡，已报告待核实（严重），发现于3月12日13:42。过火约0.5公顷。"
        "出动25人2车（蟒河镇半专业扑火队）。疑似原因：上坟烧纸。",
    ),
    EventType.TRAFFIC_CONTROL: (
        "S331 省道蟒河镇桑林村至押水村交通封闭",
        "交通管控：S331 省道蟒河镇桑林村至押水村封闭，3月12日14:30起。原因：森林火灾扑救，保障扑火车辆通行。"
        "绕行：经 G55 二广高速绕行。",
    ),
    EventType.CASE_UPDATE: (
        "违规用火案件阳公(森)立字〔2026〕015号（侦查中）",
        "案件：阳公(森)立字〔2026〕015号（违规用火）侦查中。祭祀用火引发林地火情，已传唤当事人。",
    ),
    EventType.RISK_WARNING: (
        "县境南部蟒河、东冶、西河林区森林火险4级橙色预警",
        "火险预警：县境南部蟒河、东冶、西河林区4级橙色预警，3月12日08:00至3月15日08:00。"
        "措施：严禁一切野外用火；加强巡山护林和卡口检查。",
    ),
    EventType.DIRECTIVE: (
        "县级领导指示批示（县委主要领导）",
        "指示批示（县领导县委主要领导）：清明前后是森林火灾高发期，各乡镇、各部门要压实责任，严防死守，"
        "确保不发生重特大森林火灾。",
    ),
    EventType.CONSULTATION: (
        "特殊时段会商研判：蟒河镇",
        "会商研判（特殊时段）：清明期间气温回升、风力较大，祭祀用火集中，全县森林火险等级高。"
        "措施：重点林区入口设卡检查；扑火队伍 24 小时靠前驻防。",
    ),
    EventType.WORK_UPDATE: (
        "林业局开展清明防火宣传进村入户",
        "工作动态（宣传教育）：林业局开展清明防火宣传进村入户。县林业局组织宣传小分队深入 12 个重点村发放"
        "防火宣传单 3000 余份。",
    ),
    EventType.RESOURCE: ("取水点：押水村蓄水池", "基础数据：取水点押水村蓄水池（蟒河镇）可用。"),
}


@pytest.mark.parametrize("event_type", list(EventType), ids=str)
def test_each_type_renders_its_headline_and_sms_sentences(event_type: EventType, words: CountyWords) -> None:
    """The portal headline and the SMS sentences of every type's example read exactly as agreed."""
    event = sample_event(event_type)
    kind = kind_of(event_type)
    assert (kind.title(event, words), kind.sms(event, [], words)) == TEXTS[event_type]


@pytest.mark.parametrize(
    ("event_type", "changes", "words_said"),
    [
        (EventType.TRAFFIC_CONTROL, {"measure": "closure"}, "至押水村封闭，"),
        (EventType.TRAFFIC_CONTROL, {"measure": "restriction"}, "至押水村限行，"),
        (EventType.TRAFFIC_CONTROL, {"measure": "escort"}, "至押水村护送通行，"),
        (EventType.DIRECTIVE, {"issuing_level": "province"}, "（省领导"),
        (EventType.DIRECTIVE, {"issuing_level": "city"}, "（市领导"),
        (EventType.DIRECTIVE, {"issuing_level": "county"}, "（县领导"),
        (EventType.DIRECTIVE, {"issuing_level": "fire_hq"}, "（森防指"),
        (EventType.FIRE_REPORT, {"status": "reported"}, "，已报告待核实（"),
        (EventType.FIRE_REPORT, {"status": "verified"}, "，已核实（"),
        (EventType.FIRE_REPORT, {"status": "suppressing"}, "，正在扑救（"),
        (EventType.FIRE_REPORT, {"status": "contained"}, "，已控制（"),
        (EventType.FIRE_REPORT, {"status": "extinguished"}, "，已扑灭（"),
        (EventType.FIRE_REPORT, {"status": "false_alarm"}, "，经核实为误报（"),
    ],
    ids=lambda value: "-".join(value.values()) if isinstance(value, dict) else str(value),
)
def test_sms_phrases_of_each_value(
    event_type: EventType, changes: dict[str, str], words_said: str, words: CountyWords
) -> None:
    """Where an SMS phrases a value its own way (护送通行, 省领导, 正在扑救), every value has its phrase."""
    event = sample_event(event_type)
    body = type(event.body).model_validate({**event.body.model_dump(), **changes})
    assert words_said in kind_of(event_type).sms(event.model_copy(update={"body": body}), [], words)


@pytest.mark.parametrize(
    ("severity", "words_said"),
    [
        ("extreme", "（特别严重）"),
        ("severe", "（严重）"),
        ("moderate", "（较重）"),
        ("minor", "（一般）"),
        ("unknown", "（等级未定）"),
    ],
)
def test_fire_sms_says_the_severity(severity: str, words_said: str, words: CountyWords) -> None:
    """A fire report's SMS names its severity in words; an unknown one is "not yet graded"."""
    event = sample_event(EventType.FIRE_REPORT, severity=severity)
    assert words_said in kind_of(EventType.FIRE_REPORT).sms(event, [], words)


@pytest.mark.parametrize(
    ("event_type", "categories", "certainty", "times"),
    [
        (EventType.FIRE_REPORT, ("Fire",), "Likely", ("onset",)),
        (EventType.TRAFFIC_CONTROL, ("Fire", "Transport"), "Observed", ()),
        (EventType.CASE_UPDATE, ("Fire", "Security"), "Observed", ()),
        (EventType.RISK_WARNING, ("Fire",), "Likely", ("effective", "onset", "expires")),
        (EventType.DIRECTIVE, ("Fire",), "Observed", ()),
        (EventType.CONSULTATION, ("Fire",), "Observed", ()),
        (EventType.WORK_UPDATE, ("Fire",), "Observed", ()),
        (EventType.RESOURCE, ("Fire", "Infra"), "Observed", ()),
    ],
    ids=str,
)
def test_cap_mapping_of_each_type(
    event_type: EventType, categories: tuple[str, ...], certainty: str, times: tuple[str, ...]
) -> None:
    """Each type's CAP categories, certainty (of its example) and the CAP times it sets."""
    kind = kind_of(event_type)
    body = sample_event(event_type).body
    assert kind.cap_categories == categories
    assert kind.cap_certainty(body) == certainty
    assert tuple(name for name, moment in kind.cap_times(body)._asdict().items() if moment is not None) == times


@pytest.mark.parametrize(
    ("status", "certainty"),
    [(FireStatus.REPORTED, "Likely"), (FireStatus.VERIFIED, "Observed"), (FireStatus.FALSE_ALARM, "Unlikely")],
)
def test_fire_certainty_follows_its_status(status: FireStatus, certainty: str) -> None:
    """A first report is likely, a verified fire observed, a false alarm unlikely."""
    body = sample_event(EventType.FIRE_REPORT).body.model_copy(update={"status": status})
    assert kind_of(EventType.FIRE_REPORT).cap_certainty(body) == certainty


def test_field_value_follows_a_dotted_path() -> None:
    """Township fields are read by path from nested records."""
    body: EventBody = sample_event(EventType.FIRE_REPORT).body
    assert field_value(body, "place.township") == "manghe"
    assert field_value(body, "status") is FireStatus.REPORTED


# --- no type switch outside the catalogue ------------------------------------------------------------------------

PACKAGES = ("firebus", "consumers", "processors", "producers")
TYPE_AGNOSTIC = (
    "consumers/portal/describe.py",
    "consumers/portal/feeds.py",
    "consumers/sms/templates.py",
    "firebus/rules.py",
)
"""Modules that serve every event type alike: what differs by type, they ask the catalogue."""
TYPE_OWNERS = ("firebus/catalogue.py", "firebus/events.py")
BODY_NAMES = {f"EventType.{event_type.name}": body.__name__ for event_type, body in BODY_TYPES.items()}
BODY_NAMES |= {body.__name__: body.__name__ for body in BODY_TYPES.values()}
"""What names an event type in code (a body class, an EventType member) → the body class's name."""


def type_references(tree: ast.AST) -> set[str]:
    """The event types this code tests for (by body class name), through a body class or an EventType member in
    an isinstance / match / ``is`` / ``==`` / dict key / set element."""
    found: set[str] = set()

    def named(node: ast.AST) -> set[str]:
        if isinstance(node, ast.Name) and node.id in BODY_NAMES:
            return {BODY_NAMES[node.id]}
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "EventType":
            member = f"EventType.{node.attr}"
            return {BODY_NAMES[member]} if member in BODY_NAMES else set()
        if isinstance(node, ast.Tuple):
            return set().union(*(named(element) for element in node.elts))
        return set()

    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "isinstance":
            found |= named(node.args[1]) if len(node.args) == 2 else set()
        elif isinstance(node, ast.MatchClass | ast.MatchValue):
            found |= named(node.cls if isinstance(node, ast.MatchClass) else node.value)
        elif isinstance(node, ast.Compare):
            found |= set().union(*(named(side) for side in [node.left, *node.comparators]))
        elif isinstance(node, ast.Dict):
            found |= set().union(set(), *(named(key) for key in node.keys if key is not None))
        elif isinstance(node, ast.Set):
            found |= set().union(set(), *(named(element) for element in node.elts))
    return found


def scopes(tree: ast.Module) -> list[tuple[str, ast.AST]]:
    """The module's top level and each function in it (a nested function counts with its own scope too)."""
    top = ast.Module(
        body=[node for node in tree.body if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)],
        type_ignores=[],
    )
    functions = [node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)]
    return [("<module>", top), *((function.name, function) for function in functions)]


def source_files() -> list[Path]:
    return sorted(path for package in PACKAGES for path in (ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("relative", TYPE_AGNOSTIC)
def test_type_agnostic_modules_test_for_no_event_type(relative: str) -> None:
    """The portal descriptions, the feeds, the SMS templates and the rules name no body class or EventType member
    in a type test: a new event type needs no change there."""
    tree = ast.parse((ROOT / relative).read_text(encoding="utf-8"))
    assert type_references(tree) == set()
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) for alias in node.names}
    assert imported.isdisjoint(BODY_NAMES)


def test_no_type_switch_anywhere_outside_the_catalogue() -> None:
    """No function (and no module's top level) tests for two or more event types: that is a switch over types,
    which belongs in one catalogue entry per type."""
    switches = []
    for path in source_files():
        relative = path.relative_to(ROOT).as_posix()
        if relative in TYPE_OWNERS:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for name, scope in scopes(tree):
            tested = type_references(scope)
            if len(tested) > 1:
                switches.append(f"{relative}:{name} tests {sorted(tested)}")
    assert switches == []


@pytest.mark.parametrize(
    "snippet",
    [
        "def f(body):\n    if isinstance(body, FireReport):\n        return 1\n"
        "    if isinstance(body, Resource):\n        return 2\n",
        "def f(body):\n    match body:\n        case FireReport():\n            return 1\n"
        "        case RiskWarning():\n            return 2\n",
        "NAMES = {EventType.FIRE_REPORT: 'a', EventType.RESOURCE: 'b'}\n",
        "def f(event):\n    return event.event_type is EventType.FIRE_REPORT or event.event_type == EventType.RESOURCE",
        "def f(body):\n    return isinstance(body, (FireReport, TrafficControl))\n",
    ],
    ids=["isinstance-chain", "match", "dict-keyed-by-type", "comparisons", "isinstance-tuple"],
)
def test_the_switch_detector_sees_every_form_of_switch(snippet: str) -> None:
    """The detector above is not vacuous: each way of switching over types is seen."""
    assert len(type_references(ast.parse(snippet))) == 2
