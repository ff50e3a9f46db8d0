"""The portal's pure parts: accounts and sessions, thread folding, zh-CN descriptions, CAP 1.2 and Atom output."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlencode
from uuid import UUID, uuid4
from xml.etree import ElementTree as ET
from zoneinfo import ZoneInfo

import capvalidator
import pytest

from consumers.portal.accounts import Role
from consumers.portal.app import Portal, create_app
from consumers.portal.audit_log import AuditLog
from consumers.portal.auth import Session, SessionCodec, hash_password, load_accounts, password_matches, safe_next
from consumers.portal.board import Board, Notice
from consumers.portal.describe import facts, local, title
from consumers.portal.feeds import CAP_NS, atom_feed, cap_alert, cap_certainty, cap_time
from consumers.portal.state import LIVE_KEPT, PortalState
from firebus.catalogue import CountyWords
from firebus.codec import Codec
from firebus.county import County
from firebus.errors import ConfigurationError
from firebus.events import (
    Audience,
    Classification,
    Event,
    EventType,
    FirePlace,
    FireReport,
    FireStatus,
    Header,
    MessageKind,
    Publisher,
    RiskWarning,
    Severity,
    SignalColour,
    Urgency,
)
from firebus.records import (
    AuditAction,
    AuditEvent,
    Release,
    ReviewDecision,
    ReviewerKind,
    ReviewItem,
    ReviewStatus,
    Verdict,
)
from firebus.settings import SAMPLE_PORTAL_ACCOUNTS, Settings
from producers import ReviewDesk
from tests.asgi import asgi_request
from tests.consumers.portal_sessions import logged_in
from tests.samples import review_item

T0 = datetime(2026, 3, 12, 5, 42, tzinfo=UTC)
WORDS = CountyWords(
    townships={"manghe": "蟒河镇", "beiliu": "北留镇"}, units={"forestry": "县林业局"}, zone=ZoneInfo("Asia/Shanghai")
)
CODEC = Codec()


def fire_event(
    *,
    event_id: UUID | None = None,
    kind: MessageKind = MessageKind.ALERT,
    references: list[UUID] | None = None,
    status: FireStatus = FireStatus.REPORTED,
    at: datetime = T0,
    townships: list[str] | None = None,
) -> Event[Any]:
    return Event[FireReport](
        header=Header(
            event_id=event_id or uuid4(),
            event_type=EventType.FIRE_REPORT,
            schema_version=1,
            kind=kind,
            references=references or [],
            incident_id="YC-2026-0312-01",
            publisher=Publisher(unit="forestry", person="赵林"),
            classification=Classification.PUBLIC,
            audience=Audience.PUBLIC,
            severity=Severity.SEVERE,
            urgency=Urgency.IMMEDIATE,
            occurred_at=at,
            published_at=at,
            townships=townships or ["manghe"],
            trace_id="t",
        ),
        body=FireReport(
            place=FirePlace(township="manghe", village="桑林村", description="蟒河景区东侧山坡"),
            discovered_at=at,
            status=status,
            burned_area_ha=0.5,
        ),
    )


def notice_of(event: Event[Any], *, thread_id: UUID | None = None, tier: Audience = Audience.PUBLIC) -> Notice:
    header = event.header
    decision = ReviewDecision(
        decision_id=uuid4(),
        event_id=header.event_id,
        event_type=header.event_type,
        verdict=Verdict.APPROVE,
        reviewer="hq-wang",
        reviewer_kind=ReviewerKind.HUMAN,
        decided_at=header.published_at,
        trace_id="t",
    )
    release = Release(
        release_id=uuid4(),
        tier=tier,
        event_id=header.event_id,
        event_type=header.event_type,
        kind=header.kind,
        thread_id=thread_id or header.event_id,
        incident_id=header.incident_id,
        publisher_unit=header.publisher.unit,
        decision=decision,
        released_at=header.published_at + timedelta(minutes=1),
        event=CODEC.encode(event),
    )
    return Notice(release=release, event=event)


def thread_of_three() -> tuple[Board, list[Notice]]:
    alert = notice_of(fire_event())
    first = alert.event_id
    update = notice_of(
        fire_event(
            kind=MessageKind.UPDATE, references=[first], status=FireStatus.CONTAINED, at=T0 + timedelta(hours=1)
        ),
        thread_id=first,
    )
    cancel = notice_of(
        fire_event(
            kind=MessageKind.CANCEL, references=[first], status=FireStatus.EXTINGUISHED, at=T0 + timedelta(hours=2)
        ),
        thread_id=first,
    )
    board = Board()
    for notice in (cancel, alert, update):  # arrival order is not publication order
        board.add(notice)
    return board, [alert, update, cancel]


# --- accounts, sessions, CSRF ------------------------------------------------------------------------------------


def test_password_hash_verifies_only_its_password() -> None:
    """A scrypt hash authenticates its own password and refuses another one, an unknown and a disabled account."""
    stored = hash_password("linye-2026")
    assert not password_matches(None, "x")
    assert stored.startswith("scrypt$")
    assert "linye-2026" not in stored
    forestry = {account.id: account for account in load_accounts(SAMPLE_PORTAL_ACCOUNTS)}["forestry"]
    assert password_matches(forestry, "linye-2026")
    assert forestry.role is Role.REPORTER
    assert forestry.demo
    assert not password_matches(forestry, "linye-2027")
    assert not password_matches(forestry.model_copy(update={"disabled": True}), "linye-2026")


def test_sample_accounts_use_the_documented_demo_passwords() -> None:
    """Every sample account opens with the password the README lists, and HQ accounts are county reviewers."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    accounts = {account.id: account for account in load_accounts(SAMPLE_PORTAL_ACCOUNTS)}
    demo = {
        "hq-wang": "fangmie-wang-2026",
        "hq-li": "fangmie-li-2026",
        "forestry": "linye-2026",
        "emergency": "yingji-2026",
        "police": "gongan-2026",
        "meteorology": "qixiang-2026",
        "twp_manghe": "manghe-2026",
    }
    assert len(accounts) == len(demo)
    for account_id, password in demo.items():
        assert password_matches(accounts[account_id], password), account_id
        assert f"`{account_id}` / `{password}`" in readme
    assert accounts["hq-wang"].role is Role.HQ_REVIEWER
    assert accounts["hq-li"].role is Role.HQ_ADMIN


def test_bad_accounts_file_names_the_entry(tmp_path: Path) -> None:
    """An accounts entry without a proper hash is refused with the file and entry named."""
    path = tmp_path / "accounts.toml"
    path.write_text(
        '[[accounts]]\nid = "x"\nname = "x"\nunit = "forestry"\nrole = "reporter"\npassword_hash = "plain"\n'
    )
    with pytest.raises(ConfigurationError, match=r"accounts\[0\]\.password_hash"):
        load_accounts(path)


def test_session_cookie_round_trips_and_rejects_tampering() -> None:
    """A signed session reads back as written; another key's, a tampered or an expired cookie reads as none."""
    codec = SessionCodec("secret-1")
    session = Session.anonymous().login("token-1")
    cookie = codec.dumps(session)
    assert codec.loads(cookie) == session
    assert SessionCodec("secret-2").loads(cookie) is None
    assert codec.loads(cookie[:-2] + ("AA" if not cookie.endswith("AA") else "BB")) is None
    assert SessionCodec("secret-1", max_age_s=-1).loads(cookie) is None
    assert codec.loads(None) is None


def test_csrf_token_must_match_and_changes_at_login() -> None:
    """Only the session's own token passes; logging in issues a new one."""
    anonymous = Session.anonymous()
    assert anonymous.csrf_ok(anonymous.csrf)
    assert not anonymous.csrf_ok(None)
    assert not anonymous.csrf_ok(anonymous.csrf + "x")
    logged_in = anonymous.login("token-1")
    assert logged_in.token == "token-1"  # noqa: S105 (a test token)
    assert logged_in.csrf != anonymous.csrf
    assert not logged_in.csrf_ok(anonymous.csrf)


@pytest.mark.parametrize(
    ("target", "expected"),
    [("/members", "/members"), ("//evil.example/", "/"), ("https://evil.example/", "/"), (None, "/"), ("/\\x", "/")],
)
def test_login_redirects_stay_on_the_portal(target: str | None, expected: str) -> None:
    """After login the portal only redirects to a local path."""
    assert safe_next(target) == expected


# --- threads -----------------------------------------------------------------------------------------------------


def test_thread_shows_current_state_and_history() -> None:
    """An alert, its update and its cancel fold into one thread whose current state is the latest, newest first."""
    board, (alert, update, cancel) = thread_of_three()
    (thread,) = board.threads()
    assert thread.current.event_id == cancel.event_id
    assert thread.cancelled
    assert thread.original is not None
    assert thread.original.event_id == alert.event_id
    assert [notice.event_id for notice in thread.history] == [update.event_id, alert.event_id]


def test_a_release_seen_twice_shows_once() -> None:
    """The same event released again (replay, re-release) is not added a second time."""
    board = Board()
    notice = notice_of(fire_event())
    assert board.add(notice)
    assert not board.add(notice_of(notice.event))
    assert len(board) == 1
    assert len(board.threads()[0].notices) == 1


def test_board_filters_by_type_and_township_newest_first() -> None:
    """Threads come newest first and filter by event type and by township."""
    board = Board()
    older = notice_of(fire_event(townships=["beiliu"]))
    newer = notice_of(fire_event(at=T0 + timedelta(hours=3)))
    board.add(older)
    board.add(newer)
    assert [thread.thread_id for thread in board.threads()] == [newer.event_id, older.event_id]
    assert [thread.thread_id for thread in board.threads(township="beiliu")] == [older.event_id]
    assert board.threads(event_type=EventType.RISK_WARNING) == []
    assert len(board.threads(event_type=EventType.FIRE_REPORT)) == 2


# --- descriptions ------------------------------------------------------------------------------------------------


def test_descriptions_are_chinese_and_local_time() -> None:
    """Titles and facts read in Chinese, and times are shown in the county's UTC+8."""
    event = fire_event()
    assert title(event, WORDS) == "蟒河镇桑林村火情（已报告）"
    shown = dict(facts(event, WORDS))
    assert shown["乡镇"] == "蟒河镇"
    assert shown["状态"] == "已报告"
    assert shown["发现时间"] == "2026-03-12 13:42"
    assert local(T0, WORDS.zone) == "2026-03-12 13:42"
    assert "纬度" not in shown  # absent (redacted) coordinates are not shown


# --- CAP 1.2 -----------------------------------------------------------------------------------------------------


def cap_of(notice: Notice, board: Board) -> bytes:
    return cap_alert(
        notice,
        sender="firebus@yangcheng",
        sender_name="县林业局",
        words=WORDS,
        county_name="阳城县",
        lookup=board.notice,
        web="http://portal.example/notices/x",
    )


def cap_fields(document: bytes) -> dict[str, Any]:
    root = ET.fromstring(document)  # noqa: S314  (our own output)
    ns = {"cap": CAP_NS}
    return {
        "msgType": root.findtext("cap:msgType", namespaces=ns),
        "sent": root.findtext("cap:sent", namespaces=ns),
        "references": root.findtext("cap:references", namespaces=ns),
        "categories": [e.text for e in root.findall("cap:info/cap:category", ns)],
        "certainty": root.findtext("cap:info/cap:certainty", namespaces=ns),
        "severity": root.findtext("cap:info/cap:severity", namespaces=ns),
        "urgency": root.findtext("cap:info/cap:urgency", namespaces=ns),
        "areaDesc": root.findtext("cap:info/cap:area/cap:areaDesc", namespaces=ns),
    }


def test_cap_alert_is_valid_cap_1_2() -> None:
    """Each message of a thread validates against the OASIS CAP 1.2 schema, with mapped enumerations and dates."""
    board, notices = thread_of_three()
    for notice in notices:
        document = cap_of(notice, board)
        result = capvalidator.check_schema(document)
        assert result.passed, result.message
    alert = cap_fields(cap_of(notices[0], board))
    assert alert["msgType"] == "Alert"
    assert alert["sent"] == "2026-03-12T13:42:00+08:00"
    assert alert["references"] is None
    assert alert["categories"] == ["Fire"]
    assert (alert["urgency"], alert["severity"], alert["certainty"]) == ("Immediate", "Severe", "Likely")
    assert alert["areaDesc"] == "阳城县蟒河镇"
    update = cap_fields(cap_of(notices[1], board))
    assert update["msgType"] == "Update"
    assert update["references"] == f"firebus@yangcheng,{notices[0].event_id},2026-03-12T13:42:00+08:00"
    assert update["certainty"] == "Observed"
    assert cap_fields(cap_of(notices[2], board))["msgType"] == "Cancel"
    dates = capvalidator.get_dates(cap_of(notices[0], board))
    assert dates.sent is not None


@pytest.mark.parametrize(
    ("status", "certainty"),
    [(FireStatus.REPORTED, "Likely"), (FireStatus.SUPPRESSING, "Observed"), (FireStatus.FALSE_ALARM, "Unlikely")],
)
def test_cap_certainty_follows_fire_status(status: FireStatus, certainty: str) -> None:
    """An unverified report is likely, a confirmed fire observed, a false alarm unlikely."""
    assert cap_certainty(notice_of(fire_event(status=status))) == certainty


def test_cap_risk_warning_has_validity_window() -> None:
    """A risk warning's CAP info carries its validity as effective/onset/expires in CAP's date format."""
    event = fire_event()
    warning = Event[RiskWarning](
        header=event.header.model_copy(update={"event_type": EventType.RISK_WARNING, "severity": Severity.MODERATE}),
        body=RiskWarning(
            danger_level=4, signal=SignalColour.ORANGE, area="全县", valid_from=T0, valid_to=T0 + timedelta(days=1)
        ),
    )
    document = cap_of(notice_of(warning), Board())
    assert capvalidator.check_schema(document).passed
    assert b"<expires>2026-03-13T13:42:00+08:00</expires>" in document
    assert cap_time(T0.replace(microsecond=123456), WORDS.zone) == "2026-03-12T13:42:00+08:00"


# --- Atom --------------------------------------------------------------------------------------------------------


def test_atom_feed_has_one_entry_per_thread_with_history() -> None:
    """The Atom feed lists each thread once, in its current state, linking its CAP message."""
    board, notices = thread_of_three()
    document = atom_feed(
        board.threads(),
        feed_id="urn:firebus:yangcheng:public",
        feed_title="公开信息",
        base_url="http://portal.example",
        words=WORDS,
        updated=T0,
    )
    root = ET.fromstring(document)  # noqa: S314  (our own output)
    ns = {"a": "http://www.w3.org/2005/Atom"}
    entries = root.findall("a:entry", ns)
    assert len(entries) == 1
    assert entries[0].findtext("a:id", namespaces=ns) == f"urn:uuid:{notices[2].event_id}"
    assert (entries[0].findtext("a:title", namespaces=ns) or "").startswith("【已撤销】")
    assert entries[0].findtext("a:author/a:name", namespaces=ns) == "县林业局"
    assert "历史" in (entries[0].findtext("a:summary", namespaces=ns) or "")
    assert root.findtext("a:updated", namespaces=ns) == "2026-03-12T15:43:00+08:00"


# --- audit search ------------------------------------------------------------------------------------------------


def test_audit_search_matches_event_id_unit_and_action() -> None:
    """The audit search finds records by event id, unit or actor text, and by action."""
    event_id = uuid4()
    record = AuditEvent(
        audit_id=uuid4(),
        action=AuditAction.DECIDED,
        event_id=event_id,
        event_type=EventType.FIRE_REPORT,
        actor="hq-wang",
        publisher_unit="forestry",
        reason="核实",
        at=T0,
    )
    log = AuditLog()
    assert log.add(record, "审核决定 王建国")
    assert not log.add(record.model_copy())  # the topic is at least once: kept once

    def found(text: str, action: str) -> bool:
        return log.search(text=text, action=action).total == 1

    assert found("", "")
    assert found(str(event_id)[:8], "decided")
    assert found(str(event_id), "decided")
    assert found("FORESTRY", "")
    assert found("王建国", "")  # what the officer sees is searchable too
    assert not found("police", "")
    assert not found("", "released")


async def test_review_queue_follows_item_states_and_tells_console_listeners() -> None:
    """Pending items join the queue, a changed pending item (escalated) is told again, a settled one leaves; a
    repeated or unknown settled state changes nothing and tells nobody."""
    state = PortalState()
    listener = state.listen()
    waiting = review_item()

    assert state.apply_item(waiting)
    assert not state.apply_item(waiting)  # the changelog read again after a restart
    escalated = waiting.model_copy(update={"escalated": True})
    assert state.apply_item(escalated)
    assert state.pending == {waiting.event_id: escalated}
    released = waiting.model_copy(update={"status": ReviewStatus.RELEASED})
    assert state.apply_item(released)
    assert state.pending == {}
    assert not state.apply_item(released)
    assert not state.apply_item(review_item(ReviewStatus.REJECTED))  # decided before this portal saw it pending

    told = [listener.get_nowait() for _ in range(listener.qsize())]
    assert told == [waiting, escalated, released]
    state.unlisten(listener)
    state.apply_item(review_item())
    assert listener.empty()


async def test_an_hq_live_event_seen_again_is_shown_and_told_once_however_late() -> None:
    """firebus.hq.live is at least once: an event that comes again, at once or after hundreds of others pushed it off
    the shown list, is neither shown again nor told to the console again."""
    state = PortalState()
    listener = state.listen()
    repeated = fire_event()
    assert state.add_live(repeated)
    assert not state.add_live(repeated)
    others = [fire_event() for _ in range(LIVE_KEPT + 50)]
    for other in others:
        assert state.add_live(other)
    assert repeated not in state.live
    told = [listener.get_nowait() for _ in range(listener.qsize())]
    assert [update for update in told if update == repeated] == [repeated]

    assert not state.add_live(repeated.model_copy())
    assert [event.header.event_id for event in state.live] == [e.header.event_id for e in reversed(others)][:LIVE_KEPT]
    assert listener.empty()


# --- the HQ console's review actions, through the desk the portal is given -------------------------------------


class InMemoryDesk(ReviewDesk):
    """The client library's review desk with its published decisions kept, not sent; it never reads the review
    topic (the portal's queue is its followed state)."""

    def __init__(self, county: County) -> None:
        super().__init__(settings=Settings(), county=county)
        self.published: list[ReviewDecision] = []

    async def items(self) -> dict[UUID, ReviewItem]:
        raise AssertionError("the portal must not read the whole review topic for a decision")

    async def publish(self, item: ReviewItem, decision: ReviewDecision) -> None:
        self.published.append(decision)


async def post_review(portal: Portal, event_id: UUID, form: dict[str, Any]) -> str:
    """POST the console's review form as the HQ reviewer ``hq-wang``; the redirect's target."""
    session = await logged_in(portal, "hq-wang")
    response = await asgi_request(
        create_app(portal, follow_topics=False),
        "POST",
        f"/hq/review/{event_id}",
        headers=[(b"content-type", b"application/x-www-form-urlencoded"), session.cookie],
        body=urlencode({**form, "csrf": session.csrf}, doseq=True).encode(),
    )
    assert response.status == 303
    return unquote(response.headers[b"location"].decode())


@pytest.fixture
def desk_and_portal(county: County) -> tuple[InMemoryDesk, Portal, ReviewItem]:
    waiting = review_item()
    desk = InMemoryDesk(county)
    portal = Portal(settings=Settings(), county=county, desk=desk)
    portal.state.apply_item(waiting)
    return desk, portal, waiting


async def test_console_approval_is_published_through_the_given_desk(
    desk_and_portal: tuple[InMemoryDesk, Portal, ReviewItem],
) -> None:
    """Approve on the console: the desk the composition root injected checks and publishes the decision."""
    desk, portal, waiting = desk_and_portal
    target = await post_review(portal, waiting.event_id, {"action": "redact", "redact": ["body.reporter_phone"]})
    assert target == f"/hq?done=redact&event={waiting.event_id}"
    [decision] = desk.published
    assert (decision.event_id, decision.reviewer, decision.verdict) == (waiting.event_id, "hq-wang", Verdict.APPROVE)
    assert decision.redactions == ["body.reporter_phone"]


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({"action": "delete"}, "unknown_action"),
        ({"action": "redact"}, "redact_needs_field"),
        ({"action": "reject"}, "reason_required"),
        ({"action": "approve", "redact": ["body.nonsense"]}, None),
    ],
    ids=["unknown-action", "redact-nothing", "reject-without-reason", "approve-ignores-redactions"],
)
async def test_console_refusals_go_back_to_the_console_and_publish_nothing(
    desk_and_portal: tuple[InMemoryDesk, Portal, ReviewItem], form: dict[str, Any], error: str | None
) -> None:
    """A console action the reviewer must correct comes back as the console's error and nothing is published; an
    approval (not a redaction) ignores stray redaction fields."""
    desk, portal, waiting = desk_and_portal
    target = await post_review(portal, waiting.event_id, form)
    if error is None:
        assert target.startswith("/hq?done=approve")
        assert desk.published[0].redactions == []
        return
    assert target == f"/hq?error={error}"
    assert desk.published == []
