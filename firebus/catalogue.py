"""The event catalogue: everything firebus says about each event type, one entry per type.

A new event type is its Avro schema, its body model in :mod:`firebus.events` and one :class:`EventKind` here. The
entry holds the type's zh-CN name, the portal's headline and fact labels, the SMS template, the CAP 1.2 mapping and
the facts the governance rules need (the townships its body names, the times that must be in order, when it must
stay at the HQ tier). The portal, the SMS sink, the CAP feed and :mod:`firebus.rules` ask :func:`kind_of`; none of
them tests a body's class, and ``tests/firebus/test_catalogue.py`` fails when an entry is missing or incomplete.

Pure functions and values: no Kafka, no I/O. Plain zh-CN names of enumeration values come from
:mod:`firebus.labels`; the phrasings here are the templates' own.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from types import MappingProxyType
from typing import Any, ClassVar, Generic, NamedTuple, TypeVar

from firebus.county import County
from firebus.events import (
    CaseUpdate,
    Consultation,
    Deployment,
    Directive,
    Event,
    EventBody,
    EventType,
    FireReport,
    FireStatus,
    IssuingLevel,
    Resource,
    ResourceStatus,
    RiskWarning,
    Severity,
    Suspect,
    TrafficControl,
    TrafficMeasure,
    WorkUpdate,
)
from firebus.labels import zh
from firebus.records import NearbyResource

B = TypeVar("B", bound=EventBody)


@dataclass(frozen=True, kw_only=True)
class CountyWords:
    """How texts name the county's townships and units, and the clock they tell time by."""

    townships: Mapping[str, str]
    units: Mapping[str, str]
    zone: tzinfo

    @classmethod
    def of(cls, county: County) -> CountyWords:
        return cls(
            townships={township.id: township.name for township in county.townships},
            units={unit.id: unit.name for unit in county.units},
            zone=county.zone,
        )

    def township(self, township_id: str) -> str:
        """The township's name (its id when the registry has none)."""
        return self.townships.get(township_id, township_id)

    def unit(self, unit_id: str) -> str:
        """The unit's name (its id when the registry has none)."""
        return self.units.get(unit_id, unit_id)

    def township_list(self, township_ids: Iterable[str]) -> str:
        """``蟒河镇、北留镇``."""
        return "、".join(self.township(township_id) for township_id in township_ids)

    def sms_time(self, moment: datetime) -> str:
        """``3月14日18:02`` in the county's time zone."""
        local = moment.astimezone(self.zone)
        return f"{local.month}月{local.day}日{local:%H:%M}"


class TimeWindow(NamedTuple):
    """Two body times in order: ``end`` (when set) must be after ``start``."""

    start: str
    end: str


class Observed(NamedTuple):
    """A body time the publisher saw happen, so it cannot be after the event is published; ``message`` says so."""

    field: str
    message: str


class CapTimes(NamedTuple):
    """The CAP 1.2 ``<info>`` times of an event, in the schema's order; None ones are left out."""

    effective: datetime | None = None
    onset: datetime | None = None
    expires: datetime | None = None


class EventKind(ABC, Generic[B]):
    """Everything firebus says about one event type. Subclasses set every attribute and both templates."""

    body: type[B]
    """The body model; its ``event_type`` is the kind's type."""
    name: ClassVar[str]
    """The zh-CN name (火情报告): tags on the portal, CAP ``<event>``, Atom category labels."""
    watched_live: ClassVar[bool]
    """The HQ office sees these live, before review (reporting to HQ is not publication)."""
    incident_bound: ClassVar[bool]
    """Every event of the type belongs to an incident (``header.incident_id``)."""
    labels: ClassVar[Mapping[str, str]]
    """The zh-CN label of every field of the body, by dotted path (``place.township``)."""
    township_fields: ClassVar[tuple[str, ...]] = ()
    """Body fields holding a township id: checked against the registry and header, shown by name."""
    unit_fields: ClassVar[tuple[str, ...]] = ()
    """Body fields holding a unit id: shown by the unit's name."""
    area_fields: ClassVar[tuple[str, ...]] = ()
    """Free-text body fields that may list township ids (``beiliu、devzone``): shown with the townships' names."""
    fact_formats: ClassVar[Mapping[str, Callable[[Any], str]]] = MappingProxyType({})
    """How the portal shows the body fields that are lists of records."""
    time_windows: ClassVar[tuple[TimeWindow, ...]] = ()
    observed: ClassVar[tuple[Observed, ...]] = ()
    cap_categories: ClassVar[tuple[str, ...]]
    """CAP 1.2 ``<category>`` values: every notice of a fire HQ is about fire, some also about roads and so on."""

    _REQUIRED: ClassVar[tuple[str, ...]] = (
        "body",
        "name",
        "watched_live",
        "incident_bound",
        "labels",
        "cap_categories",
    )

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        missing = [name for name in cls._REQUIRED if not hasattr(cls, name)]
        if missing:
            raise TypeError(f"event kind {cls.__name__} leaves out {', '.join(missing)}")

    @property
    def event_type(self) -> EventType:
        return self.body.event_type

    @abstractmethod
    def title(self, event: Event[B], words: CountyWords) -> str:
        """The one-line zh-CN headline of the portal, the Atom entry and the CAP message."""

    @abstractmethod
    def sms(self, event: Event[B], nearby: Sequence[NearbyResource], words: CountyWords) -> str:
        """The type's sentences of an SMS text (what, where, status, when), between the sender tag and publisher."""

    def stays_at_hq(self, body: B) -> str | None:
        """Why this body may reach no tier but hq, if it may not."""
        return None

    def cap_certainty(self, body: B) -> str:
        """CAP ``<certainty>``: what a department publishes it has observed, unless the type says otherwise."""
        return "Observed"

    def cap_times(self, body: B) -> CapTimes:
        return CapTimes()

    def cap_instructions(self, body: B) -> list[str]:
        """CAP ``<instruction>`` lines: what the public should do."""
        return []


# --- the eight kinds ---------------------------------------------------------------------------------------------


class _FireReportKind(EventKind[FireReport]):
    body = FireReport
    name = "火情报告"
    watched_live = True
    incident_bound = True
    labels = MappingProxyType(
        {
            "place.township": "乡镇",
            "place.village": "村",
            "place.description": "位置",
            "place.lat": "纬度",
            "place.lon": "经度",
            "discovered_at": "发现时间",
            "status": "状态",
            "burned_area_ha": "过火面积（公顷）",
            "forces": "投入力量",
            "deaths": "死亡",
            "injuries": "受伤",
            "suspected_cause": "疑似起因",
            "reporter_name": "报告人",
            "reporter_phone": "报告人电话",
            "serious_injuries": "重伤",
            "threatens": "威胁或涉及",
            "satellite_pixels": "卫星热点像元数",
            "needs_support": "请求上级支援",
            "in_news": "已有媒体报道",
            "extinguished_at": "明火扑灭时间",
        }
    )
    township_fields = ("place.township",)
    fact_formats = MappingProxyType({"forces": lambda forces: "；".join(_deployment(force) for force in forces)})
    observed = (
        Observed("discovered_at", "a fire cannot be discovered after the report is published"),
        Observed("extinguished_at", "a fire cannot be out after the report is published"),
    )
    cap_categories = ("Fire",)

    STATUS_PHRASES: ClassVar[Mapping[FireStatus, str]] = MappingProxyType(
        {
            FireStatus.REPORTED: "已报告待核实",
            FireStatus.VERIFIED: "已核实",
            FireStatus.SUPPRESSING: "正在扑救",
            FireStatus.CONTAINED: "已控制",
            FireStatus.EXTINGUISHED: "已扑灭",
            FireStatus.FALSE_ALARM: "经核实为误报",
        }
    )
    SEVERITY_PHRASES: ClassVar[Mapping[Severity, str]] = MappingProxyType(
        {
            Severity.EXTREME: "特别严重",
            Severity.SEVERE: "严重",
            Severity.MODERATE: "较重",
            Severity.MINOR: "一般",
            Severity.UNKNOWN: "等级未定",
        }
    )

    def title(self, event: Event[FireReport], words: CountyWords) -> str:
        body = event.body
        return f"{words.township(body.place.township)}{body.place.village or ''}火情（{zh(body.status)}）"

    def sms(self, event: Event[FireReport], nearby: Sequence[NearbyResource], words: CountyWords) -> str:
        body = event.body
        place = body.place
        where = f"{words.township(place.township)}{place.village or ''}{place.description or ''}"
        status = self.STATUS_PHRASES[body.status]
        severity = self.SEVERITY_PHRASES[event.header.severity]
        text = f"火情：{where}，{status}（{severity}），发现于{words.sms_time(body.discovered_at)}。"
        if body.burned_area_ha is not None:
            text += f"过火约{body.burned_area_ha:g}公顷。"
        if body.forces:
            people = sum(force.personnel for force in body.forces)
            vehicles = sum(force.vehicles for force in body.forces)
            units = "、".join(words.unit(force.unit) for force in body.forces)
            text += f"出动{people}人{f'{vehicles}车' if vehicles else ''}（{units}）。"
        if body.deaths or body.injuries:
            text += f"伤亡：死亡{body.deaths}人，受伤{body.injuries}人。"
        return text + _sentence("疑似原因", body.suspected_cause) + _nearest(nearby)

    def cap_certainty(self, body: FireReport) -> str:
        """A first unverified report is likely, a false alarm unlikely, every other status observed."""
        if body.status is FireStatus.REPORTED:
            return "Likely"
        if body.status is FireStatus.FALSE_ALARM:
            return "Unlikely"
        return "Observed"

    def cap_times(self, body: FireReport) -> CapTimes:
        return CapTimes(onset=body.discovered_at)


class _TrafficControlKind(EventKind[TrafficControl]):
    body = TrafficControl
    name = "交通管控"
    watched_live = True
    incident_bound = True
    labels = MappingProxyType(
        {
            "road": "道路",
            "section": "路段",
            "measure": "措施",
            "starts_at": "开始",
            "ends_at": "结束",
            "reason": "原因",
            "detour": "绕行",
            "officer_phone": "民警电话",
        }
    )
    time_windows = (TimeWindow("starts_at", "ends_at"),)
    cap_categories = ("Fire", "Transport")

    MEASURE_PHRASES: ClassVar[Mapping[TrafficMeasure, str]] = MappingProxyType(
        {TrafficMeasure.CLOSURE: "封闭", TrafficMeasure.RESTRICTION: "限行", TrafficMeasure.ESCORT: "护送通行"}
    )

    def title(self, event: Event[TrafficControl], words: CountyWords) -> str:
        body = event.body
        return f"{body.road}{body.section or ''}交通{zh(body.measure)}"

    def sms(self, event: Event[TrafficControl], nearby: Sequence[NearbyResource], words: CountyWords) -> str:
        body = event.body
        until = f"至{words.sms_time(body.ends_at)}" if body.ends_at else "起"
        return (
            f"交通管控：{body.road}{body.section or ''}{self.MEASURE_PHRASES[body.measure]}，"
            f"{words.sms_time(body.starts_at)}{until}。"
            f"原因：{body.reason}。{_sentence('绕行', body.detour)}"
        )


class _CaseUpdateKind(EventKind[CaseUpdate]):
    body = CaseUpdate
    name = "案件查处"
    watched_live = True
    incident_bound = False
    labels = MappingProxyType(
        {
            "case_number": "案件编号",
            "case_kind": "案件类型",
            "status": "状态",
            "summary": "摘要",
            "suspects": "嫌疑人",
            "penalty": "处罚",
        }
    )
    fact_formats = MappingProxyType({"suspects": lambda suspects: "、".join(_suspect(each) for each in suspects)})
    cap_categories = ("Fire", "Security")

    def title(self, event: Event[CaseUpdate], words: CountyWords) -> str:
        body = event.body
        return f"{zh(body.case_kind)}案件{body.case_number}（{zh(body.status)}）"

    def sms(self, event: Event[CaseUpdate], nearby: Sequence[NearbyResource], words: CountyWords) -> str:
        body = event.body  # never the suspects: an SMS may go to anyone of the tier
        return (
            f"案件：{body.case_number}（{zh(body.case_kind)}）{zh(body.status)}。"
            f"{_end(body.summary)}{_sentence('处罚', body.penalty)}"
        )

    def stays_at_hq(self, body: CaseUpdate) -> str | None:
        return "a case update naming suspects stays at the hq tier" if body.suspects else None


class _RiskWarningKind(EventKind[RiskWarning]):
    body = RiskWarning
    name = "火险预警"
    watched_live = True
    incident_bound = False
    labels = MappingProxyType(
        {
            "danger_level": "火险等级",
            "signal": "预警信号",
            "area": "区域",
            "valid_from": "生效",
            "valid_to": "截止",
            "measures": "措施",
        }
    )
    time_windows = (TimeWindow("valid_from", "valid_to"),)
    area_fields = ("area",)
    cap_categories = ("Fire",)

    def title(self, event: Event[RiskWarning], words: CountyWords) -> str:
        body = event.body
        return f"{area_text(body.area, words)}森林火险{body.danger_level}级{zh(body.signal)}预警"

    def sms(self, event: Event[RiskWarning], nearby: Sequence[NearbyResource], words: CountyWords) -> str:
        body = event.body
        return (
            f"火险预警：{area_text(body.area, words)}{body.danger_level}级{zh(body.signal)}预警，"
            f"{words.sms_time(body.valid_from)}至{words.sms_time(body.valid_to)}。"
            f"{_sentence('措施', _list(body.measures))}"
        )

    def cap_certainty(self, body: RiskWarning) -> str:
        """A warning is a forecast: likely, not observed."""
        return "Likely"

    def cap_times(self, body: RiskWarning) -> CapTimes:
        return CapTimes(effective=body.valid_from, onset=body.valid_from, expires=body.valid_to)

    def cap_instructions(self, body: RiskWarning) -> list[str]:
        return list(body.measures)


class _DirectiveKind(EventKind[Directive]):
    body = Directive
    name = "指示批示"
    watched_live = False
    incident_bound = False
    labels = MappingProxyType(
        {
            "issuing_level": "批示层级",
            "leader": "领导",
            "text": "内容",
            "publishable": "可公开",
            "related_documents": "相关文件",
        }
    )
    cap_categories = ("Fire",)

    LEVEL_PHRASES: ClassVar[Mapping[IssuingLevel, str]] = MappingProxyType(
        {
            IssuingLevel.PROVINCE: "省领导",
            IssuingLevel.CITY: "市领导",
            IssuingLevel.COUNTY: "县领导",
            IssuingLevel.FIRE_HQ: "森防指",
        }
    )

    def title(self, event: Event[Directive], words: CountyWords) -> str:
        body = event.body
        return f"{zh(body.issuing_level)}领导指示批示（{body.leader}）"

    def sms(self, event: Event[Directive], nearby: Sequence[NearbyResource], words: CountyWords) -> str:
        body = event.body
        return f"指示批示（{self.LEVEL_PHRASES[body.issuing_level]}{body.leader}）：{_end(body.text)}"

    def stays_at_hq(self, body: Directive) -> str | None:
        return None if body.publishable else "a directive that is not publishable stays at the hq tier"


class _ConsultationKind(EventKind[Consultation]):
    body = Consultation
    name = "会商研判"
    watched_live = False
    incident_bound = False
    labels = MappingProxyType(
        {"period": "会商类型", "lead_unit": "牵头单位", "judgement": "研判意见", "measures": "措施"}
    )
    unit_fields = ("lead_unit",)
    cap_categories = ("Fire",)

    def title(self, event: Event[Consultation], words: CountyWords) -> str:
        where = words.township_list(event.header.townships)
        return f"{zh(event.body.period)}会商研判{('：' + where) if where else ''}"

    def sms(self, event: Event[Consultation], nearby: Sequence[NearbyResource], words: CountyWords) -> str:
        body = event.body
        return f"会商研判（{zh(body.period)}）：{_end(body.judgement)}{_sentence('措施', _list(body.measures))}"


class _WorkUpdateKind(EventKind[WorkUpdate]):
    body = WorkUpdate
    name = "工作动态"
    watched_live = False
    incident_bound = False
    labels = MappingProxyType({"category": "类别", "title": "标题", "text": "内容"})
    cap_categories = ("Fire",)

    def title(self, event: Event[WorkUpdate], words: CountyWords) -> str:
        return event.body.title

    def sms(self, event: Event[WorkUpdate], nearby: Sequence[NearbyResource], words: CountyWords) -> str:
        body = event.body
        return f"工作动态（{zh(body.category)}）：{_end(body.title)}{_end(body.text)}"


class _ResourceKind(EventKind[Resource]):
    body = Resource
    name = "基础数据"
    watched_live = False
    incident_bound = False
    labels = MappingProxyType(
        {
            "resource_id": "编号",
            "resource_kind": "类型",
            "name": "名称",
            "township": "乡镇",
            "lat": "纬度",
            "lon": "经度",
            "geometry_wkt": "范围",
            "capacity": "容量",
            "capacity_unit": "容量单位",
            "status": "状态",
            "contact_phone": "联系电话",
        }
    )
    township_fields = ("township",)
    cap_categories = ("Fire", "Infra")

    def title(self, event: Event[Resource], words: CountyWords) -> str:
        body = event.body
        return f"{zh(body.resource_kind)}：{body.name}"

    def sms(self, event: Event[Resource], nearby: Sequence[NearbyResource], words: CountyWords) -> str:
        body = event.body
        return f"基础数据：{zh(body.resource_kind)}{body.name}（{words.township(body.township)}）{zh(body.status)}。"


CATALOGUE: Mapping[EventType, EventKind[Any]] = MappingProxyType(
    {
        kind.event_type: kind
        for kind in (
            _FireReportKind(),
            _TrafficControlKind(),
            _CaseUpdateKind(),
            _RiskWarningKind(),
            _DirectiveKind(),
            _ConsultationKind(),
            _WorkUpdateKind(),
            _ResourceKind(),
        )
    }
)
"""Every event type's entry, in the order of :class:`~firebus.events.EventType`."""

FIRE_RELATED_TYPES = frozenset(event_type for event_type, kind in CATALOGUE.items() if kind.watched_live)
"""Types the HQ office watches live (reporting to HQ is not publication)."""


def kind_of(event_type: EventType) -> EventKind[Any]:
    """The catalogue entry of ``event_type``."""
    return CATALOGUE[event_type]


def field_value(body: EventBody, path: str) -> Any:
    """The value at a dotted field path of a body (``place.township``)."""
    value: Any = body
    for name in path.split("."):
        value = getattr(value, name)
    return value


# --- phrasing helpers of the templates ---------------------------------------------------------------------------


def area_text(area: str, words: CountyWords) -> str:
    """A warning's area as written, with any township id in its 、-separated list shown by name (older simulated
    warnings listed ids)."""
    return "、".join(words.township(part) for part in area.split("、"))


def _end(text: str) -> str:
    """``text`` as a sentence: ends with a full stop unless it already ends with punctuation."""
    text = text.strip()
    return text if not text or text[-1] in "。！？…；;.!?" else f"{text}。"


def _sentence(label: str, value: str | None) -> str:
    return f"{label}：{_end(value)}" if value else ""


def _list(items: list[str]) -> str | None:
    return "；".join(item.strip() for item in items if item.strip()) or None


def _nearest(resources: Iterable[NearbyResource]) -> str:
    """The nearest available resource the processors found, if any (``最近：取水点X1.2公里。``)."""
    ranked = sorted(
        (resource for resource in resources if resource.status is ResourceStatus.AVAILABLE),
        key=lambda resource: resource.distance_km,
    )
    if not ranked:
        return ""
    first = ranked[0]
    return f"最近：{zh(first.resource_kind)}{first.name}{first.distance_km:.1f}公里。"


def _deployment(force: Deployment) -> str:
    return f"{force.unit} {force.personnel}人 {force.vehicles}车"


def _suspect(suspect: Suspect) -> str:
    return suspect.name
