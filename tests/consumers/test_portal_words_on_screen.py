"""Every page, feed and SMS the portal and the SMS sink produce reads as zh-CN: no raw ids (townships, units,
reviewers, policy rules), tier or action values, field paths, UTC timestamps or English words of the bus on screen.

The portal's state is filled with what the bus really carries (every event type pending, released to the public
and the member tier, live; audit records of every action with the processors' own English reasons; a rule as the
reviewer of record; a unit publishing as its own person; an expired risk warning whose area lists township ids),
then every page is fetched and its visible text scanned for the words of :data:`RAW`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any, NamedTuple
from urllib.parse import urlencode
from uuid import UUID, uuid4
from xml.etree import ElementTree as ET

import pytest

from consumers.portal.app import Portal, create_app
from consumers.sms.templates import Texts
from firebus.codec import Codec
from firebus.county import County
from firebus.events import Audience, Event, EventType, RiskWarning
from firebus.records import AuditAction, AuditEvent, Release, ReviewDecision, ReviewerKind, Verdict
from firebus.rules import CLASSIFIED_NOTICE
from firebus.settings import Settings
from tests.consumers.portal_sessions import anonymous, logged_in
from tests.consumers.test_portal_units import InMemoryDesk
from tests.samples import review_item, sample_event

CODEC = Codec()
NOW = datetime.now(UTC)
RULE = "risk-warning-by-meteorology"
ENGLISH = [
    "escalated",
    "awaiting",
    "pending",
    "released",
    "rejected",
    "withdrawn",
    "superseded",
    "cancelled",
    "invalid",
    "decision",
    "rejection",
    "reason",
    "needs",
    "since",
    "deadline",
    "redacted",
    "accepted",
    "quarantined",
    "delivered",
    "classified",
    "reviewer",
]


def raw_words(county: County) -> list[str]:
    """What must never be on screen: every registry id, tier and action value, and the bus's English words."""
    words = [township.id for township in county.townships]
    words += [unit.id for unit in county.units]
    words += [reviewer.id for reviewer in county.reviewers]
    words += [RULE, "resource-by-owner", *(tier.value for tier in Audience), *(action.value for action in AuditAction)]
    return sorted({*words, *ENGLISH})


def found_raw(text: str, county: County) -> list[str]:
    hits = [word for word in raw_words(county) if re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", text, re.I)]
    hits += re.findall(r"\b(?:body|header)\.[\w.\[\]]+", text)
    hits += re.findall(r"\d{4}-\d\d-\d\dT\d\d:\d\d|\+00:00", text)
    return hits


class VisibleText(HTMLParser):
    """The text a person reads: text nodes and placeholder/title/label attributes, not scripts, not the login id."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if tag in ("script", "style") or named.get("id") == "who":
            self._skip += 1
        for key in ("placeholder", "title", "aria-label", "alt"):
            if named.get(key):
                self.parts.append(str(named[key]))

    def handle_endtag(self, tag: str) -> None:
        if self._skip and tag in ("script", "style", "span"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def visible(html: bytes) -> str:
    parser = VisibleText()
    parser.feed(html.decode())
    return " ".join(" ".join(parser.parts).split())


def release_of(event: Event[Any], tier: Audience, *, reviewer: str = "hq-wang") -> Release:
    decision = ReviewDecision(
        decision_id=uuid4(),
        event_id=event.header.event_id,
        event_type=event.event_type,
        verdict=Verdict.APPROVE,
        reviewer=reviewer,
        reviewer_kind=ReviewerKind.HUMAN if reviewer.startswith("hq-") else ReviewerKind.POLICY_RULE,
        decided_at=NOW,
        trace_id="t",
    )
    return Release(
        release_id=uuid4(),
        tier=tier,
        event_id=event.header.event_id,
        event_type=event.event_type,
        kind=event.header.kind,
        thread_id=event.header.event_id,
        incident_id=event.header.incident_id,
        publisher_unit=event.header.publisher.unit,
        decision=decision,
        released_at=NOW,
        event=CODEC.encode(event),
    )


def events() -> list[Event[Any]]:
    """One of each type; the risk warning has expired and lists township ids as its area; the fire report's unit
    published as its own person."""
    found = []
    for event_type in EventType:
        event = sample_event(event_type, now=NOW - timedelta(hours=1))
        if event_type is EventType.RISK_WARNING:
            body = event.body.model_copy(
                update={"area": "beiliu、devzone、fengcheng", "valid_to": NOW - timedelta(minutes=5)}
            )
            assert isinstance(body, RiskWarning)
            event = event.model_copy(update={"body": body})
        if event_type is EventType.FIRE_REPORT:
            publisher = event.header.publisher.model_copy(update={"person": "县林业局"})
            event = event.model_copy(update={"header": event.header.model_copy(update={"publisher": publisher})})
        found.append(event)
    return found


def audit_trail(some: UUID) -> list[AuditEvent]:
    reasons: dict[AuditAction, tuple[str, str | None]] = {
        AuditAction.ACCEPTED: ("processors.intake", None),
        AuditAction.QUARANTINED: ("processors.intake", CLASSIFIED_NOTICE),
        AuditAction.DECIDED: (RULE, "气象局发布的轻微、中等程度（minor、moderate）火险预警，发成员单位"),
        AuditAction.REDACTED: ("processors.review", "body.suspects[].id_number, header.publisher.contact"),
        AuditAction.ESCALATED: (
            "processors.review",
            f"awaiting review since {(NOW - timedelta(minutes=40)).isoformat()}, 30 min past its deadline",
        ),
        AuditAction.RELEASED: ("processors.review", None),
        AuditAction.WITHDRAWN: ("processors.review", f"superseded by {uuid4()}"),
        AuditAction.DELIVERED: ("consumers.sms", None),
    }
    return [
        AuditEvent(
            audit_id=uuid4(),
            action=action,
            event_id=some,
            event_type=EventType.CASE_UPDATE,
            actor=actor,
            publisher_unit="forestry",
            tier=Audience.MEMBERS,
            reason=reason,
            at=NOW,
        )
        for action, (actor, reason) in reasons.items()
    ]


@pytest.fixture(scope="module")
def portal(county: County) -> Portal:
    filled = Portal(settings=Settings(portal_demo=True), county=county, desk=InMemoryDesk(county))
    state = filled.state
    for event in events():
        reviewer = RULE if event.event_type is EventType.RISK_WARNING else "hq-wang"
        for tier in (Audience.PUBLIC, Audience.MEMBERS):
            assert state.add_release(release_of(event, tier, reviewer=reviewer))
        state.add_live(event)
        item = review_item(
            event_id=event.header.event_id,
            event_type=event.event_type,
            audience=Audience.HQ,
            townships=event.header.townships,
            publisher_person=event.header.publisher.person,
            publisher_unit=event.header.publisher.unit,
            received_at=NOW - timedelta(minutes=30),
            deadline=NOW - timedelta(minutes=5)
            if event.event_type is EventType.DIRECTIVE
            else NOW + timedelta(hours=1),
            escalated=event.event_type is EventType.DIRECTIVE,
            event=CODEC.encode(event),
        )
        state.apply_item(item)
    for record in audit_trail(uuid4()):
        state.add_audit(record)
    return filled


class Fetched(NamedTuple):
    status: int
    headers: dict[bytes, bytes]
    body: bytes


async def fetch(portal: Portal, target: str, account: str | None = None, form: dict[str, Any] | None = None) -> Fetched:
    """One request through the app in process, as ``account`` (None: logged out), with its query string."""
    session = await logged_in(portal, account) if account else anonymous(portal)
    headers = [(b"host", b"portal.test"), session.cookie]
    body = b""
    if form is not None:
        headers.append((b"content-type", b"application/x-www-form-urlencoded"))
        body = urlencode({**form, "csrf": session.csrf}).encode()
    path, _, query = target.partition("?")
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST" if form is not None else "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query.encode(),
        "headers": headers,
        "client": ("127.0.0.1", 1),
        "server": ("portal.test", 80),
    }
    await create_app(portal, follow_topics=False)(scope, receive, send)
    return Fetched(
        status=sent[0]["status"],
        headers=dict(sent[0].get("headers", [])),
        body=b"".join(message.get("body", b"") for message in sent[1:]),
    )


def first_thread(portal: Portal, tier: Audience, event_type: EventType) -> UUID:
    return next(t.thread_id for t in portal.state.boards[tier].threads() if t.current.event_type is event_type)


async def pages(portal: Portal) -> dict[str, str]:
    """The visible text of every page and feed, by what was fetched."""
    fire = first_thread(portal, Audience.PUBLIC, EventType.FIRE_REPORT)
    warning = first_thread(portal, Audience.PUBLIC, EventType.RISK_WARNING)
    refused = await fetch(portal, f"/hq/review/{fire}", "hq-wang", {"action": "reject"})
    error_page = refused.headers[b"location"].decode()
    wanted = {
        "/": None,
        f"/notices/{warning}": None,
        "/login": None,
        "/nothing-here": None,
        "/members": "forestry",
        "/members?type=risk_warning": "forestry",
        f"/members/notices/{fire}": "forestry",
        "/hq": "hq-wang",
        "/hq?overdue=1": "hq-wang",
        "/hq?type=case_update&township=manghe": "hq-wang",
        error_page: "hq-wang",
        "/hq/audit": "hq-wang",
        "/hq/audit?action=escalated": "hq-wang",
    }
    shown = {}
    for path, account in wanted.items():
        response = await fetch(portal, path, account)
        assert response.status in (200, 404), (path, response.status)
        shown[path] = visible(response.body)
    feed = ET.fromstring((await fetch(portal, "/feed.atom")).body)  # noqa: S314  (the portal under test)
    people_read_atom = ("title", "summary", "content", "name")
    shown["/feed.atom"] = " ".join(
        [node.text or "" for node in feed.iter() if node.tag.rsplit("}", 1)[-1] in people_read_atom]
        + [node.get("label", "") for node in feed.iter() if node.tag.endswith("category")]
    )
    cap = ET.fromstring((await fetch(portal, f"/cap/{warning}.xml")).body)  # noqa: S314
    ns = "{urn:oasis:names:tc:emergency:cap:1.2}"
    people_read = ("headline", "description", "senderName", "areaDesc", "instruction", "event")
    shown["/cap"] = " ".join(node.text or "" for name in people_read for node in cap.iter(f"{ns}{name}"))
    return shown


def sms_texts(county: County) -> dict[str, str]:
    texts = Texts(county=county, max_parts=4)
    return {
        f"sms {event.event_type.value}": texts.render(event, release_of(event, Audience.MEMBERS)) for event in events()
    }


async def test_no_raw_ids_or_english_on_any_page_feed_or_sms(portal: Portal, county: County) -> None:
    """Every page, the Atom feed, CAP's human-read elements and every SMS type read as zh-CN."""
    shown = await pages(portal) | sms_texts(county)
    problems = {where: hits for where, text in shown.items() if (hits := found_raw(text, county))}
    assert problems == {}, "\n".join(f"{where}: {hits}" for where, hits in problems.items())


async def test_the_words_that_replace_them_are_shown(portal: Portal) -> None:
    """The Chinese forms are there: township names in a warning's title, tier and field names, the rule as
    reviewer, the audit's actions and reasons in local time, an expired warning marked, a refusal in Chinese."""
    shown = await pages(portal)
    assert "北留镇、开发区、凤城镇森林火险4级橙色预警" in shown["/"] or "北留镇" in shown["/"]
    assert "已过期" in shown["/"]
    assert "自动规则：" in shown["/"]
    hq = shown["/hq"]
    assert "发布范围：仅指挥部" in hq
    assert "报告人电话" in hq
    assert "已超时" in hq
    assert "县林业局 县林业局" not in hq
    audit = shown["/hq/audit"]
    for words in (
        "超时升级",
        "审核决定",
        "删改",
        "嫌疑人身份证号",
        "已超过审核时限 30 分钟",
        "系统：短信",
        "自动规则：",
    ):
        assert words in audit, words
    assert any("驳回需要填写理由" in text for text in shown.values())
