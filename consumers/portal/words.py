"""The portal's own zh-CN vocabulary: tiers, review and audit words, field labels, rule names.

What the bus carries in English or as ids (audit actions and the processors' audit reasons, tier values, field paths,
policy rule ids) is put into Chinese here, at display time, so the records
on the bus stay the contract the other readers (statistics, archive) rely on. Pure functions and tables.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any
from uuid import UUID

from firebus.catalogue import CountyWords, kind_of
from firebus.errors import ConfigurationError
from firebus.events import Audience, EventType
from firebus.records import AuditAction, AuditEvent
from firebus.settings import read_config_file

TIER_NAMES: dict[Audience, str] = {
    Audience.PUBLIC: "社会公众",
    Audience.MEMBERS: "成员单位",
    Audience.HQ: "仅指挥部",
}

AUDIT_ACTION_NAMES: dict[AuditAction, str] = {
    AuditAction.ACCEPTED: "验证通过",
    AuditAction.REJECTED: "退回",
    AuditAction.QUARANTINED: "涉密隔离",
    AuditAction.DECIDED: "审核决定",
    AuditAction.REDACTED: "删改",
    AuditAction.ESCALATED: "超时升级",
    AuditAction.RELEASED: "分级发布",
    AuditAction.WITHDRAWN: "撤回",
    AuditAction.DELIVERED: "已送达",
    AuditAction.DELIVERY_FAILED: "送达失败",
    AuditAction.OTHER: "其他",
}


ACTOR_NAMES: dict[str, str] = {
    "processors.intake": "系统：接入校验",
    "processors.gate": "系统：接入校验",
    "processors.review": "系统：审核发布",
    "consumers.archive": "系统：数据库归档",
    "consumers.archive-files": "系统：文件归档",
    "consumers.sms": "系统：短信",
    "consumers.portal": "系统：门户网站",
}
"""The stages that write audit records, by the actor they write."""

SUB_FIELD_LABELS: dict[str, str] = {
    "header.origin": "上报来源（原发布单位、发布人及其签名）",
    "header.publisher.contact": "发布人联系方式",
    "forces.equipment": "投入装备",
    "forces.vehicles": "投入车辆",
    "suspects.age": "嫌疑人年龄",
    "suspects.id_number": "嫌疑人身份证号",
    "suspects.name": "嫌疑人姓名",
}
"""Labels of the redactable paths the catalogue's flat labels do not name (inside lists of records, the header)."""

RULE_PREFIX = "自动规则："

_ESCALATED = re.compile(r"awaiting review since (?P<since>\S+), (?P<late>\d+) min past its deadline")
_WITHDRAWN = re.compile(r"(?P<how>cancelled|superseded) by (?P<by>[0-9a-f-]{36})")
_NOTHING_TO_CANCEL = re.compile(r"nothing published to cancel: (?P<ids>.*)")
_CLASSIFIED = re.compile(r"classified \(涉密\) information may not be shared")


def tier_name(tier: Audience | str | None) -> str:
    if tier is None:
        return ""
    try:
        return TIER_NAMES[Audience(tier)]
    except ValueError:
        return str(tier)


def tier_list(tiers: Any) -> str:
    return "、".join(tier_name(tier) for tier in tiers)


def field_label(event_type: EventType, path: str) -> str:
    """The zh-CN label of a redactable field path (``body.suspects[].id_number`` → 嫌疑人身份证号)."""
    if path in SUB_FIELD_LABELS:
        return SUB_FIELD_LABELS[path]
    plain = path.removeprefix("body.").replace("[]", "")
    labels = kind_of(event_type).labels
    return SUB_FIELD_LABELS.get(plain) or labels.get(plain) or plain


def load_rule_names(policy: Path) -> dict[str, str]:
    """Policy rule id → a short zh-CN name (the first clause of the rule's description), for showing a rule as the
    reviewer of record. An unreadable policy gives no names (the ids are then shown as 自动规则：<id>)."""
    try:
        raw = read_config_file(policy)
    except ConfigurationError:
        return {}
    names: dict[str, str] = {}
    for rule in raw.get("rules", []):
        if isinstance(rule, dict) and isinstance(rule.get("id"), str):
            description = str(rule.get("description") or rule["id"])
            names[rule["id"]] = re.split(r"[，；。,;]", description, maxsplit=1)[0]
    return names


class Vocabulary:
    """Everything the pages name: county words, reviewers (person accounts), policy rules."""

    def __init__(self, words: CountyWords, *, reviewers: Mapping[str, str], rules: Mapping[str, str]) -> None:
        self.words = words
        self.reviewers = dict(reviewers)
        self.rules = dict(rules)

    def reviewer(self, reviewer: str) -> str:
        """A person's name, or ``自动规则：…`` for a policy rule; ids no one knows are shown as they are."""
        if reviewer in self.reviewers:
            return self.reviewers[reviewer]
        if reviewer in self.rules:
            return f"{RULE_PREFIX}{self.rules[reviewer]}"
        return reviewer

    def actor(self, actor: str) -> str:
        if actor in ACTOR_NAMES:
            return ACTOR_NAMES[actor]
        return self.reviewer(actor)

    def publisher(self, unit: str, person: str | None) -> str:
        """``县林业局 赵林``; the unit once when the person is the unit (``县林业局``)."""
        unit_name = self.words.unit(unit)
        person = (person or "").strip()
        if not person or person in (unit, unit_name):
            return unit_name
        return f"{unit_name} {person}"

    def local(self, moment: datetime) -> str:
        return _local(moment, self.words.zone)

    def audit_reason(self, record: AuditEvent) -> str:
        """The record's reason in zh-CN: the processors' fixed phrasings translated, the rest (reviewers' own
        words) as written."""
        reason = record.reason or ""
        if not reason:
            return ""
        if record.action is AuditAction.REDACTED and record.event_type is not None:
            event_type = record.event_type
            return "、".join(field_label(event_type, path.strip()) for path in reason.split(",") if path.strip())
        if record.action is AuditAction.DECIDED and record.actor in self.rules:
            return f"{RULE_PREFIX}{self.rules[record.actor]}"
        if found := _ESCALATED.fullmatch(reason):
            since = self.local(datetime.fromisoformat(found["since"]))
            return f"自 {since} 起待审核，已超过审核时限 {found['late']} 分钟"
        if found := _WITHDRAWN.fullmatch(reason):
            how = "被撤销" if found["how"] == "cancelled" else "被续报取代"
            return f"{how}（{found['by']}）"
        if found := _NOTHING_TO_CANCEL.fullmatch(reason):
            return f"撤销的原信息尚未发布：{found['ids']}"
        if _CLASSIFIED.match(reason):
            return "涉密信息不得在总线上共享，请通过电话或公文渠道报送"
        return reason


def expired(valid_to: datetime | None, now: datetime) -> bool:
    return valid_to is not None and valid_to <= now


def short_id(event_id: UUID | str | None) -> str:
    """The first block of an event id: enough to tell items apart on screen, the full id stays in the page."""
    return str(event_id).split("-")[0] if event_id else ""


def _local(moment: datetime, zone: tzinfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")
