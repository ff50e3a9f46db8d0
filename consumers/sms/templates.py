"""zh-CN SMS texts, one template per event type: what, where, status, when — then who published it and a reference.

Every text reads ``【<county>森防指】<更新/撤销：><facts>（<publisher>发布，编号<incident>·<event>）``. The facts are
cut (ending with …) when the whole would need more than ``max_parts`` SMS parts; the publisher and the reference
are always kept. Texts are built from the *released* (tier-redacted) event only, and never name suspects, reporters
or coordinates.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from consumers.sms.segmentation import fit
from firebus.county import County
from firebus.events import (
    CaseKind,
    CaseStatus,
    CaseUpdate,
    Consultation,
    ConsultationPeriod,
    Directive,
    Event,
    EventBody,
    FireReport,
    FireStatus,
    IssuingLevel,
    MessageKind,
    Resource,
    ResourceKind,
    ResourceStatus,
    RiskWarning,
    Severity,
    SignalColour,
    TrafficControl,
    TrafficMeasure,
    WorkCategory,
    WorkUpdate,
)
from firebus.labels import zh
from firebus.records import NearbyResource, Release

KIND = {MessageKind.ALERT: "", MessageKind.UPDATE: "更新：", MessageKind.CANCEL: "撤销："}
SEVERITY = {
    Severity.EXTREME: "特别严重",
    Severity.SEVERE: "严重",
    Severity.MODERATE: "较重",
    Severity.MINOR: "一般",
    Severity.UNKNOWN: "等级未定",
}
FIRE_STATUS = {
    FireStatus.REPORTED: "已报告待核实",
    FireStatus.VERIFIED: "已核实",
    FireStatus.SUPPRESSING: "正在扑救",
    FireStatus.CONTAINED: "已控制",
    FireStatus.EXTINGUISHED: "已扑灭",
    FireStatus.FALSE_ALARM: "经核实为误报",
}
MEASURE = {TrafficMeasure.CLOSURE: "封闭", TrafficMeasure.RESTRICTION: "限行", TrafficMeasure.ESCORT: "护送通行"}
CASE_KIND = {value: zh(value) for value in CaseKind}
CASE_STATUS = {value: zh(value) for value in CaseStatus}
SIGNAL = {value: zh(value) for value in SignalColour}
LEVEL = {
    IssuingLevel.PROVINCE: "省领导",
    IssuingLevel.CITY: "市领导",
    IssuingLevel.COUNTY: "县领导",
    IssuingLevel.FIRE_HQ: "森防指",
}
PERIOD = {value: zh(value) for value in ConsultationPeriod}
CATEGORY = {value: zh(value) for value in WorkCategory}
RESOURCE_KIND = {value: zh(value) for value in ResourceKind}
RESOURCE_STATUS = {value: zh(value) for value in ResourceStatus}


class Texts:
    """Renders the SMS text of a released event for one county, time zone and longest length."""

    def __init__(self, *, county: County, zone: ZoneInfo, max_parts: int) -> None:
        self.county = county
        self.zone = zone
        self.max_parts = max_parts
        self._townships = {township.id: township.name for township in county.townships}
        self._units = {unit.id: unit.name for unit in county.units}

    def render(self, event: Event[Any], release: Release) -> str:
        """The whole SMS text of ``event`` as released in ``release``, at most ``max_parts`` parts long."""
        header = event.header
        head = f"【{self.county.county.name}森防指】{KIND[header.kind]}{self.facts(event.body, header.severity)}"
        if isinstance(event.body, FireReport):
            head += self.nearest(release.nearby_resources)
        reference = f"{header.incident_id}·{header.event_id.hex[:8]}" if header.incident_id else header.event_id.hex[:8]
        tail = f"（{self._units.get(release.publisher_unit, release.publisher_unit)}发布，编号{reference}）"
        return fit(head, tail, max_parts=self.max_parts)

    def facts(self, body: EventBody, severity: Severity) -> str:
        """The type-specific sentence(s) of the text."""
        if isinstance(body, FireReport):
            return self._fire_report(body, severity)
        if isinstance(body, TrafficControl):
            until = f"至{self.when(body.ends_at)}" if body.ends_at else "起"
            return (
                f"交通管控：{body.road}{body.section or ''}{MEASURE[body.measure]}，"
                f"{self.when(body.starts_at)}{until}。"
                f"原因：{body.reason}。{_sentence('绕行', body.detour)}"
            )
        if isinstance(body, CaseUpdate):
            return (
                f"案件：{body.case_number}（{CASE_KIND[body.case_kind]}）{CASE_STATUS[body.status]}。"
                f"{_end(body.summary)}{_sentence('处罚', body.penalty)}"
            )
        if isinstance(body, RiskWarning):
            return (
                f"火险预警：{body.area}{body.danger_level}级{SIGNAL[body.signal]}预警，"
                f"{self.when(body.valid_from)}至{self.when(body.valid_to)}。{_sentence('措施', _list(body.measures))}"
            )
        if isinstance(body, Directive):
            return f"指示批示（{LEVEL[body.issuing_level]}{body.leader}）：{_end(body.text)}"
        if isinstance(body, Consultation):
            return f"会商研判（{PERIOD[body.period]}）：{_end(body.judgement)}{_sentence('措施', _list(body.measures))}"
        if isinstance(body, WorkUpdate):
            return f"工作动态（{CATEGORY[body.category]}）：{_end(body.title)}{_end(body.text)}"
        if isinstance(body, Resource):
            return (
                f"基础数据：{RESOURCE_KIND[body.resource_kind]}{body.name}"
                f"（{self.township(body.township)}）{RESOURCE_STATUS[body.status]}。"
            )
        raise TypeError(f"no SMS template for {type(body).__name__}")

    def _fire_report(self, body: FireReport, severity: Severity) -> str:
        place = body.place
        where = f"{self.township(place.township)}{place.village or ''}{place.description or ''}"
        found = self.when(body.discovered_at)
        text = f"火情：{where}，{FIRE_STATUS[body.status]}（{SEVERITY[severity]}），发现于{found}。"
        if body.burned_area_ha is not None:
            text += f"过火约{body.burned_area_ha:g}公顷。"
        if body.forces:
            people = sum(force.personnel for force in body.forces)
            vehicles = sum(force.vehicles for force in body.forces)
            units = "、".join(self._units.get(force.unit, force.unit) for force in body.forces)
            text += f"出动{people}人{f'{vehicles}车' if vehicles else ''}（{units}）。"
        if body.deaths or body.injuries:
            text += f"伤亡：死亡{body.deaths}人，受伤{body.injuries}人。"
        return text + _sentence("疑似原因", body.suspected_cause)

    def nearest(self, resources: Iterable[NearbyResource]) -> str:
        """The nearest available resource the processors found, if any (``最近：取水点X 1.2公里。``)."""
        ranked = sorted(
            (resource for resource in resources if resource.status is ResourceStatus.AVAILABLE),
            key=lambda resource: resource.distance_km,
        )
        if not ranked:
            return ""
        first = ranked[0]
        return f"最近：{RESOURCE_KIND[first.resource_kind]}{first.name}{first.distance_km:.1f}公里。"

    def township(self, township_id: str) -> str:
        return self._townships.get(township_id, township_id)

    def when(self, moment: datetime) -> str:
        """``11月29日18:02`` in the county's time zone."""
        local = moment.astimezone(self.zone)
        return f"{local.month}月{local.day}日{local:%H:%M}"


def _end(text: str) -> str:
    """``text`` as a sentence: ends with a full stop unless it already ends with punctuation."""
    text = text.strip()
    return text if not text or text[-1] in "。！？…；;.!?" else f"{text}。"


def _sentence(label: str, value: str | None) -> str:
    return f"{label}：{_end(value)}" if value else ""


def _list(items: list[str]) -> str | None:
    return "；".join(item.strip() for item in items if item.strip()) or None
