"""The portal's own zh-CN vocabulary: tiers, review and audit words, field labels, rule names, refusals.

What the bus carries in English or as ids (audit actions and the processors' audit reasons, tier values, field paths,
policy rule ids, the client library's refusal messages) is put into Chinese here, at display time, so the records
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
from firebus.errors import ConfigurationError, InvalidEventError, Problem
from firebus.events import Audience, EventType
from firebus.records import AuditAction, AuditEvent, ReviewStatus
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

REVIEW_STATUS_NAMES: dict[ReviewStatus, str] = {
    ReviewStatus.PENDING: "待审核",
    ReviewStatus.RELEASING: "发布中",
    ReviewStatus.RELEASED: "已发布",
    ReviewStatus.REJECTED: "已驳回",
    ReviewStatus.WITHDRAWN: "已撤回",
    ReviewStatus.OTHER: "其他",
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
_NOT_PENDING = re.compile(r"(?P<id>\S+) is (?P<status>\w+), not pending")
_NOT_IN_QUEUE = re.compile(r"(?P<id>\S+) is not in the review queue")
_NOT_A_FIELD = re.compile(r"(?P<path>\S+) is not a field of (?P<type>\w+)")
_TOO_LONG = re.compile(r"(?P<n>\d+) characters, more than the limit of (?P<max>\d+)")
_TOO_SHORT = re.compile(r"(?P<n>\d+) characters, fewer than the minimum of (?P<min>\d+)")
_FORBIDDEN = re.compile(r"(?:key )?(?P<what>[a-z ]+) (?P<code>U\+[0-9A-F]{4,6}) at index (?P<at>\d+)")

_PROBLEM_FIELDS = {"reason": "理由", "reviewer": "审核人", "redact": "删改字段", "event_id": "事件"}


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

    def refusal(self, error: InvalidEventError) -> str:
        """Why the client library refused a review decision, in zh-CN, every problem named."""
        return "；".join(self.problem(problem) for problem in error.problems)

    def problem(self, problem: Problem) -> str:
        field = _PROBLEM_FIELDS.get(problem.field.split("[")[0], problem.field)
        message = problem.message
        if message == "a rejection needs a reason":
            return "驳回必须填写理由"
        if problem.field == "reviewer":
            return f"审核人：{self._reviewer_refusal(message)}"
        if found := _NOT_PENDING.fullmatch(message):
            status = REVIEW_STATUS_NAMES.get(_status(found["status"]), found["status"])
            return f"该信息{status}，不在待审核状态，无需再审"
        if _NOT_IN_QUEUE.fullmatch(message):
            return "该信息不在待审核队列中"
        if found := _NOT_A_FIELD.fullmatch(message):
            return f"删改字段：{found['path']} 不是该类信息的字段"
        if found := _TOO_LONG.search(message):
            return f"{field}：共 {found['n']} 个字符，超过上限 {found['max']}"
        if found := _TOO_SHORT.search(message):
            return f"{field}：共 {found['n']} 个字符，少于下限 {found['min']}"
        if found := _FORBIDDEN.search(message):
            return f"{field}：第 {int(found['at']) + 1} 个字符（{found['code']}）是不允许的控制字符"
        if "normal form NFC" in message:
            return f"{field}：文字编码不规范（非 NFC），请重新输入"
        return f"{field}：格式不正确"

    @staticmethod
    def _reviewer_refusal(message: str) -> str:
        if "is not registered" in message:
            return "不是登记的审核人"
        if "not the HQ office" in message:
            return "不属于县森防办，不能审核"
        if "is the publisher" in message:
            return "是该信息的发布人，不能审核自己发布的信息"
        return "无权审核该信息"


def expired(valid_to: datetime | None, now: datetime) -> bool:
    return valid_to is not None and valid_to <= now


def short_id(event_id: UUID | str | None) -> str:
    """The first block of an event id: enough to tell items apart on screen, the full id stays in the page."""
    return str(event_id).split("-")[0] if event_id else ""


def _status(value: str) -> ReviewStatus:
    try:
        return ReviewStatus(value)
    except ValueError:
        return ReviewStatus.OTHER


def _local(moment: datetime, zone: tzinfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")
