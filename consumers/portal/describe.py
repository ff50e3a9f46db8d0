"""zh-CN words for events: titles, labelled facts and times in the county's local time (UTC+8).

Pure functions over :class:`~firebus.events.Event`; the templates, the Atom feed and the CAP alerts all use them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from enum import StrEnum
from typing import Any

from pydantic import BaseModel

from firebus.events import (
    CaseUpdate,
    Consultation,
    Directive,
    Event,
    EventType,
    FireReport,
    MessageKind,
    Resource,
    RiskWarning,
    Severity,
    TrafficControl,
    Urgency,
    WorkUpdate,
)
from firebus.labels import zh

LOCAL_TIME = timezone(timedelta(hours=8), "CST")
"""China Standard Time, the county's clock (no daylight saving)."""

EVENT_TYPE_NAMES: dict[EventType, str] = {
    EventType.FIRE_REPORT: "火情报告",
    EventType.TRAFFIC_CONTROL: "交通管控",
    EventType.CASE_UPDATE: "案件查处",
    EventType.RISK_WARNING: "火险预警",
    EventType.DIRECTIVE: "指示批示",
    EventType.CONSULTATION: "会商研判",
    EventType.WORK_UPDATE: "工作动态",
    EventType.RESOURCE: "基础数据",
}

KIND_NAMES: dict[MessageKind, str] = {MessageKind.ALERT: "发布", MessageKind.UPDATE: "更新", MessageKind.CANCEL: "撤销"}

SEVERITY_NAMES: dict[Severity, str] = {
    Severity.EXTREME: "特别严重",
    Severity.SEVERE: "严重",
    Severity.MODERATE: "较重",
    Severity.MINOR: "一般",
    Severity.UNKNOWN: "未知",
}

URGENCY_NAMES: dict[Urgency, str] = {
    Urgency.IMMEDIATE: "立即",
    Urgency.EXPECTED: "预期",
    Urgency.FUTURE: "将来",
    Urgency.PAST: "已过去",
    Urgency.UNKNOWN: "未知",
}


_LABELS: dict[str, str] = {
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
    "road": "道路",
    "section": "路段",
    "measure": "措施",
    "starts_at": "开始",
    "ends_at": "结束",
    "reason": "原因",
    "detour": "绕行",
    "officer_phone": "民警电话",
    "case_number": "案件编号",
    "case_kind": "案件类型",
    "summary": "摘要",
    "suspects": "嫌疑人",
    "penalty": "处罚",
    "danger_level": "火险等级",
    "signal": "预警信号",
    "area": "区域",
    "valid_from": "生效",
    "valid_to": "截止",
    "measures": "措施",
    "issuing_level": "批示层级",
    "leader": "领导",
    "text": "内容",
    "publishable": "可公开",
    "related_documents": "相关文件",
    "period": "会商类型",
    "lead_unit": "牵头单位",
    "judgement": "研判意见",
    "category": "类别",
    "title": "标题",
    "resource_id": "编号",
    "resource_kind": "类型",
    "name": "名称",
    "township": "乡镇",
    "lat": "纬度",
    "lon": "经度",
    "geometry_wkt": "范围",
    "capacity": "容量",
    "capacity_unit": "容量单位",
    "contact_phone": "联系电话",
}


def local(moment: datetime) -> str:
    """``2026-03-12 13:42`` in the county's local time."""
    return moment.astimezone(LOCAL_TIME).strftime("%Y-%m-%d %H:%M")


def value_name(value: Any) -> str:
    """A display form of one field value."""
    if isinstance(value, StrEnum):
        return zh(value)
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, datetime):
        return local(value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def township_names(codes: list[str], names: Mapping[str, str]) -> str:
    return "、".join(names.get(code, code) for code in codes)


def title(event: Event[Any], townships: Mapping[str, str]) -> str:
    """A one-line zh-CN headline for an event."""
    body = event.body
    where = township_names(event.header.townships, townships)
    if isinstance(body, FireReport):
        place = townships.get(body.place.township, body.place.township) + (body.place.village or "")
        return f"{place}火情（{value_name(body.status)}）"
    if isinstance(body, RiskWarning):
        return f"{body.area}森林火险{body.danger_level}级{value_name(body.signal)}预警"
    if isinstance(body, TrafficControl):
        return f"{body.road}{body.section or ''}交通{value_name(body.measure)}"
    if isinstance(body, CaseUpdate):
        return f"{value_name(body.case_kind)}案件{body.case_number}（{value_name(body.status)}）"
    if isinstance(body, Directive):
        return f"{value_name(body.issuing_level)}领导指示批示（{body.leader}）"
    if isinstance(body, Consultation):
        return f"{value_name(body.period)}会商研判{('：' + where) if where else ''}"
    if isinstance(body, WorkUpdate):
        return body.title
    if isinstance(body, Resource):
        return f"{value_name(body.resource_kind)}：{body.name}"
    return EVENT_TYPE_NAMES[event.event_type]


def facts(event: Event[Any], townships: Mapping[str, str]) -> list[tuple[str, str]]:
    """Labelled values of the body's filled-in fields, in schema order (redacted fields are empty, so absent)."""
    found: list[tuple[str, str]] = []
    _collect(event.body, "", found, townships)
    return found


def _collect(model: Any, prefix: str, found: list[tuple[str, str]], townships: Mapping[str, str]) -> None:
    for name in type(model).model_fields:
        value = getattr(model, name)
        path = f"{prefix}{name}"
        if value is None or value in ([], ""):
            continue
        if isinstance(value, BaseModel):
            _collect(value, f"{path}.", found, townships)
            continue
        label = _LABELS.get(path, name)
        if name == "township":
            found.append((label, townships.get(value, value)))
        elif path == "forces":
            found.append((label, "；".join(f"{f.unit} {f.personnel}人 {f.vehicles}车" for f in value)))
        elif path == "suspects":
            found.append((label, "、".join(suspect.name for suspect in value)))
        elif isinstance(value, list):
            found.append((label, "；".join(value_name(item) for item in value)))
        else:
            found.append((label, value_name(value)))
