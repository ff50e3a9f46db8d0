"""The HQ console's review queue (pure): urgency order, filters, paging, header counts; and the portal's zh-CN words."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consumers.portal.audit_log import AuditLog
from consumers.portal.queue import PAGE_SIZE, QueueFilter, counts, page_number, queue_page, rank
from consumers.portal.words import Vocabulary, field_label, load_rule_names, tier_name
from firebus.catalogue import CATALOGUE, CountyWords
from firebus.codec import Codec
from firebus.events import Audience, EventType
from firebus.records import AuditAction, AuditEvent, ReviewItem
from firebus.settings import SAMPLE_POLICY
from tests.samples import review_item

NOW = datetime(2026, 3, 12, 8, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
WORDS = CountyWords(
    townships={"manghe": "蟒河镇", "beiliu": "北留镇"}, units={"forestry": "县林业局"}, zone=ZoneInfo("Asia/Shanghai")
)


def item(event_type: EventType = EventType.FIRE_REPORT, *, received: int, deadline: int, **changes: Any) -> ReviewItem:
    """An item received ``received`` minutes before NOW, due ``deadline`` minutes after NOW (negative: overdue)."""
    return review_item(
        event_type=event_type, received_at=NOW - received * MIN, deadline=NOW + deadline * MIN, **changes
    )


def ordered(items: list[ReviewItem], chosen: QueueFilter | None = None) -> list[ReviewItem]:
    return queue_page(items, chosen or QueueFilter(), NOW).items


def test_newest_fire_on_top_then_overdue_then_nearest_deadline() -> None:
    """Fresh fire reports come first, newest on top; then overdue items (fires first, longest overdue first);
    then the rest by nearest deadline."""
    old_fire = item(received=8, deadline=2)
    new_fire = item(received=1, deadline=9)
    overdue_fire = item(received=30, deadline=-20)
    long_overdue_warning = item(EventType.RISK_WARNING, received=90, deadline=-60)
    overdue_warning = item(EventType.RISK_WARNING, received=40, deadline=-10)
    escalated_not_yet_due = item(EventType.TRAFFIC_CONTROL, received=5, deadline=10, escalated=True)
    soon = item(EventType.WORK_UPDATE, received=600, deadline=30)
    later = item(EventType.RESOURCE, received=1, deadline=1400)
    queue = [
        later,
        overdue_warning,
        soon,
        old_fire,
        long_overdue_warning,
        new_fire,
        escalated_not_yet_due,
        overdue_fire,
    ]
    assert ordered(queue) == [
        new_fire,
        old_fire,
        overdue_fire,
        long_overdue_warning,
        overdue_warning,
        escalated_not_yet_due,
        soon,
        later,
    ]


@given(
    st.lists(st.tuples(st.integers(0, 2000), st.integers(-2000, 2000), st.sampled_from(list(EventType))), max_size=40)
)
def test_rank_strings_sort_exactly_like_the_queue(specs: list[tuple[int, int, EventType]]) -> None:
    """The rank the console's script compares gives the same order as the server: a pushed item lands where a
    reload would put it."""
    items = [item(event_type, received=received, deadline=deadline) for received, deadline, event_type in specs]
    page = queue_page(items, QueueFilter(), NOW)
    keys = [rank(each, NOW) for each in page.items]
    assert keys == sorted(keys)
    assert len(set(keys)) == len(keys)


@pytest.mark.parametrize(
    ("chosen", "expected"),
    [
        (QueueFilter(), {"fire-manghe", "fire-beiliu-police", "warning-overdue"}),
        (QueueFilter(event_type="fire_report"), {"fire-manghe", "fire-beiliu-police"}),
        (QueueFilter(township="beiliu"), {"fire-beiliu-police", "warning-overdue"}),
        (QueueFilter(unit="police"), {"fire-beiliu-police"}),
        (QueueFilter(overdue=True), {"warning-overdue"}),
        (QueueFilter(event_type="fire_report", township="beiliu", unit="forestry"), set()),
    ],
    ids=["none", "type", "township", "unit", "overdue", "combined"],
)
def test_filters_narrow_by_type_township_unit_and_overdue(chosen: QueueFilter, expected: set[str]) -> None:
    """Each filter narrows the queue; together they all must hold."""
    queue = [
        item(received=1, deadline=9, townships=["manghe"], note="fire-manghe"),
        item(received=2, deadline=8, townships=["beiliu"], publisher_unit="police", note="fire-beiliu-police"),
        item(EventType.RISK_WARNING, received=50, deadline=-20, townships=["beiliu", "manghe"], note="warning-overdue"),
    ]
    assert {each.note for each in ordered(queue, chosen)} == expected


def test_pages_hold_page_size_items_in_order_and_clamp() -> None:
    """Paging cuts the ordered queue into pages of PAGE_SIZE; a page past the end shows the last page."""
    queue = [item(EventType.WORK_UPDATE, received=0, deadline=minutes) for minutes in range(1, 2 * PAGE_SIZE + 6)]
    everything = queue_page(queue, QueueFilter(), NOW, page=1)
    assert (everything.pages, everything.matching, len(everything.items)) == (3, 2 * PAGE_SIZE + 5, PAGE_SIZE)
    second = queue_page(queue, QueueFilter(), NOW, page=2)
    assert second.items == sorted(queue, key=lambda each: each.deadline)[PAGE_SIZE : 2 * PAGE_SIZE]
    assert queue_page(queue, QueueFilter(), NOW, page=99).page == 3
    assert len(queue_page(queue, QueueFilter(), NOW, page=3).items) == 5
    assert queue_page([], QueueFilter(), NOW).pages == 1


@pytest.mark.parametrize(("text", "page"), [(None, 1), ("", 1), ("3", 3), ("0", 1), ("-2", 1), ("x", 1), ("9" * 12, 1)])
def test_page_number_from_the_query_string(text: str | None, page: int) -> None:
    """Anything that is not a small positive number is page 1."""
    assert page_number(text) == page


def test_header_counts_per_type_and_overdue() -> None:
    """The header counts every pending item, the overdue ones, and each type present."""
    queue = [
        item(received=1, deadline=9),
        item(received=20, deadline=-10),
        item(EventType.RISK_WARNING, received=5, deadline=5, escalated=True),
    ]
    found = counts(queue, NOW)
    assert (found.total, found.overdue) == (3, 2)
    assert found.by_type == {EventType.FIRE_REPORT: 2, EventType.RISK_WARNING: 1}


def test_filter_query_keeps_only_what_is_chosen() -> None:
    """Pager links carry the filters, and the page only past the first."""
    assert QueueFilter().query() == ""
    assert QueueFilter(event_type="fire_report", overdue=True).query(page=2) == "type=fire_report&overdue=1&page=2"


# --- the audit trail kept in memory ------------------------------------------------------------------------------


def audit(number: int, action: AuditAction = AuditAction.ACCEPTED) -> AuditEvent:
    from uuid import uuid4  # noqa: PLC0415

    return AuditEvent(audit_id=uuid4(), action=action, event_id=uuid4(), actor=f"actor-{number}", at=NOW)


def test_audit_log_is_bounded_and_forgets_the_oldest() -> None:
    """The kept trail holds the newest records only; searching an id that left finds nothing."""
    log = AuditLog(kept=3)
    records = [audit(number) for number in range(5)]
    for record in records:
        log.add(record)
    assert len(log) == 3
    assert log.search(text=str(records[0].event_id)).total == 0
    assert log.search(text=str(records[4].event_id)).records == [records[4]]
    assert [record.actor for record in log.search().records] == ["actor-4", "actor-3", "actor-2"]
    assert log.search(text="actor-1").total == 0
    assert log.search(action="accepted").total == 3  # the action's own index forgets with the rest
    assert [record.actor for record in log.search(limit=2, skip=1).records] == ["actor-3", "actor-2"]


def test_audit_search_shows_at_most_the_limit_and_counts_all() -> None:
    log = AuditLog()
    for number in range(30):
        log.add(audit(number, AuditAction.RELEASED if number % 3 == 0 else AuditAction.ACCEPTED))
    found = log.search(action="released", limit=4)
    assert (len(found.records), found.total) == (4, 10)


# --- words -------------------------------------------------------------------------------------------------------


def test_every_redactable_field_has_a_chinese_label() -> None:
    """No redaction box is labelled with a field path."""
    codec = Codec()
    for event_type in CATALOGUE:
        for path in codec.contracts.for_event_type(event_type).redactable_paths:
            label = field_label(event_type, path)
            assert not any("a" <= ch <= "z" for ch in label.lower()), (event_type, path, label)


def test_tiers_rules_and_publishers_are_chinese() -> None:
    """Tier values, policy rule ids and a unit published as a person read as zh-CN."""
    assert [tier_name(tier) for tier in Audience] == ["社会公众", "成员单位", "仅指挥部"]
    rules = load_rule_names(SAMPLE_POLICY)
    words = Vocabulary(WORDS, reviewers={"hq-wang": "王建国"}, rules=rules)
    assert words.reviewer("hq-wang") == "王建国"
    assert words.reviewer("resource-by-owner").startswith("自动规则：")
    assert "resource-by-owner" not in words.reviewer("resource-by-owner")
    assert words.publisher("forestry", "县林业局") == "县林业局"
    assert words.publisher("forestry", "赵林") == "县林业局 赵林"


def test_audit_reasons_of_the_processors_read_as_chinese_in_local_time() -> None:
    """An escalation's English reason becomes zh-CN with the county's local time; redacted paths become labels."""
    from uuid import uuid4  # noqa: PLC0415

    words = Vocabulary(WORDS, reviewers={}, rules={})
    escalated = AuditEvent(
        audit_id=uuid4(),
        action=AuditAction.ESCALATED,
        actor="processors.review",
        reason="awaiting review since 2026-12-01T21:15:04+00:00, 12 min past its deadline",
        at=NOW,
    )
    assert words.audit_reason(escalated) == "自 2026-12-02 05:15 起待审核，已超过审核时限 12 分钟"
    assert words.actor("processors.review") == "系统：审核发布"
    redacted = escalated.model_copy(
        update={
            "action": AuditAction.REDACTED,
            "event_type": EventType.CASE_UPDATE,
            "reason": "body.suspects[].id_number, header.publisher.contact",
        }
    )
    assert words.audit_reason(redacted) == "嫌疑人身份证号、发布人联系方式"
