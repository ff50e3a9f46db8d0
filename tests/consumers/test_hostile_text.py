"""Whatever the text rules accept, every reader can read: hostile text in any text field of any event type (the
fields come from the contracts, not from a list here) is either refused by ``text_problems`` naming that field, or
renders through the portal's real renderers and templates as well-formed Atom, schema-valid CAP 1.2 and strictly
valid HTML5 — with the text intact. Long unbroken text wraps instead of widening the page (real Chromium).
"""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4
from xml.etree import ElementTree as ET

import capvalidator
import html5lib
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import event as tally
from hypothesis import strategies as st
from playwright.async_api import Browser

from consumers.portal.app import Portal
from consumers.portal.board import Board, Thread
from consumers.portal.describe import facts, title
from consumers.portal.feeds import ATOM_NS, CAP_NS, atom_feed, cap_alert
from consumers.portal.queue import PAGE_SIZE, QueueFilter, counts, queue_page
from firebus.avro_schema import Array, Enum, Fixed, Map, Node, Primitive, Record, Resolved, SchemaTree, Union
from firebus.catalogue import CountyWords
from firebus.codec import Codec
from firebus.contracts import Contract, default_contracts
from firebus.county import load_county
from firebus.events import Audience, Event, EventType, MessageKind
from firebus.records import ReviewItem, ReviewStatus
from firebus.settings import SAMPLE_CONFIG, Settings
from firebus.text import nfc, text_problems
from producers import ReviewDesk
from tests.consumers.test_portal_units import notice_of
from tests.samples import sample_event

CONTRACTS = default_contracts()
CODEC = Codec(CONTRACTS)
COUNTY = load_county(SAMPLE_CONFIG)
TOWNSHIPS = {township.id: township.name for township in COUNTY.townships}
WORDS = CountyWords.of(COUNTY)
T0 = datetime(2026, 3, 12, 6, 0, tzinfo=UTC)
STEP = re.compile(r"\[\]|\{\}|[^.\[\]{}]+")
PORTAL_CSS = Path(__file__).resolve().parents[2] / "consumers" / "portal" / "static" / "portal.css"

TEXT_SITES = [
    (contract.event_type, path)
    for contract in CONTRACTS
    if contract.event_type is not None
    for path, info in contract.fields.items()
    if info.text
]
"""Every (event type, field path) that holds text, as the contracts say."""

HOSTILE = [
    *"\x00\x01\x08\t\n\x0b\x0c\r\x1b\x1f\x7f\x80\x85\x9f",
    *"\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069",
    *"\ufdd0\ufdef\ufffe\uffff\U0001fffe\U0010ffff",
    *"<>&\"'",
    "]]>",
    "<![CDATA[",
    "<!--",
    "-->",
    "&amp;",
    "&#0;",
    "<script>alert(1)</script>",
    *"\u0301\u0308\u0323",
    "e\u0301",
    "é",
    "蟒河镇桑林村",
    "阳公(森)立字〔2026〕015号",
    *"𠀋🔥\U0001f9ef",
    *"\u3000\u00a0\u2028\u2029\u200b\u200d\u00ad\ufeff\ue000",
]
"""Every class the rules refuse, and what they must let through: markup characters, CJK, combining marks,
astral characters, spaces and format characters that are not bidi controls."""

hostile_text = st.lists(st.one_of(st.sampled_from(HOSTILE), st.characters(codec="utf-8")), max_size=40).map("".join)
long_text = st.builds(
    lambda piece, count: (piece * count)[: count * 2],
    st.sampled_from(["火", "x", "<&>", "🔥", "ab", "e\u0301"]),
    st.integers(min_value=1, max_value=5200),
)
clean_alphabet = st.one_of(
    st.sampled_from(["<", ">", "&", '"', "'", "]]>", "\t", "\n", "火", "🔥", "é", "\u3000", "\u200d", "-->"]),
    st.characters(codec="utf-8", exclude_categories=["Cc", "Cf", "Cs", "Cn"]),
)
plausible_text = st.lists(clean_alphabet, min_size=1, max_size=12).map(lambda parts: nfc("".join(parts)))
"""Text of the kinds the rules let through, for filling every field of an event at once."""

any_text = st.one_of(hostile_text, hostile_text.map(nfc), long_text, plausible_text)
"""Anything, its NFC form (what the client library publishes), and text of the kinds the rules let through."""

# --- putting text into a record, guided by the contract ------------------------------------------------------


def with_text(contract: Contract, record: dict[str, Any], path: str, text: str) -> dict[str, Any]:
    """A copy of ``record`` with ``text`` at field ``path`` (each string of it, for an array or map); an empty
    array on the way gets one minimal item, so every path can be reached."""
    placed: dict[str, Any] = _place(contract.tree, contract.tree.root, copy.deepcopy(record), STEP.findall(path), text)
    return placed


def _present(tree: SchemaTree, node: Node) -> Resolved:
    """The node itself, or for a nullable union the branch that is not null."""
    resolved = tree.resolve(node)
    if isinstance(resolved, Union):
        return _present(tree, next(b for b in resolved.branches if b != Primitive("null")))
    return resolved


def _place(tree: SchemaTree, node: Node, value: Any, steps: list[str], text: str) -> Any:
    resolved = _present(tree, node)
    if not steps:
        return _text_value(tree, resolved, text)
    step, rest = steps[0], steps[1:]
    if isinstance(resolved, Array):
        items = list(value or []) or [_minimal(tree, resolved.items)]
        items[0] = _place(tree, resolved.items, items[0], rest, text)
        return items
    if isinstance(resolved, Map):
        entries = dict(value or {}) or {"key": _minimal(tree, resolved.values)}
        first = next(iter(entries))
        entries[first] = _place(tree, resolved.values, entries[first], rest, text)
        return entries
    assert isinstance(resolved, Record), resolved
    record = dict(value) if value is not None else _minimal(tree, resolved)
    field = next(fld for fld in resolved.fields if fld.name == step)
    record[step] = _place(tree, field.schema, record.get(step), rest, text)
    return record


def _text_value(tree: SchemaTree, node: Resolved, text: str) -> Any:
    if isinstance(node, Array):
        return [_text_value(tree, _present(tree, node.items), text)]
    if isinstance(node, Map):
        return {text: _text_value(tree, _present(tree, node.values), text)}
    return text


def _minimal(tree: SchemaTree, node: Node) -> Any:
    """A small valid value of ``node``: defaults where declared, the first branch, symbol or nothing otherwise."""
    resolved = tree.resolve(node)
    if isinstance(resolved, Record):
        return {
            fld.name: tree.decoded_default(fld.schema, fld.default) if fld.has_default else _minimal(tree, fld.schema)
            for fld in resolved.fields
        }
    if isinstance(resolved, Union):
        return _minimal(tree, resolved.branches[0])
    if isinstance(resolved, Enum):
        return resolved.symbols[0]
    if isinstance(resolved, Array):
        return []
    if isinstance(resolved, Map):
        return {}
    if isinstance(resolved, Fixed):
        return bytes(resolved.size)
    minimal = {"null": None, "boolean": False, "int": 1, "long": 1, "float": 0.0, "double": 0.0, "bytes": b""}
    if resolved.logical == "timestamp-millis":
        return T0
    if resolved.logical == "uuid":
        return uuid4()
    return minimal.get(resolved.name, "x")


# --- rendering through the portal ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Portal:
    """The portal's real templates and helpers; nothing here contacts a broker."""
    home = tmp_path_factory.mktemp("portal")
    configured = Settings(home=home, keys_dir=home)
    return Portal(settings=configured, county=COUNTY, desk=ReviewDesk(settings=configured, county=COUNTY))


def thread_of(event: Event[Any]) -> tuple[Board, Thread]:
    """A thread of two notices carrying ``event``'s text: an alert (its history) and an update (its current state)."""
    alert_id = event.header.event_id
    update = event.model_copy(
        update={
            "header": event.header.model_copy(
                update={"event_id": uuid4(), "kind": MessageKind.UPDATE, "references": [alert_id]}
            )
        }
    )
    board = Board()
    board.add(notice_of(event))
    board.add(notice_of(update, thread_id=alert_id))
    thread = board.thread(alert_id)
    assert thread is not None
    return board, thread


def expected_lines(event: Event[Any]) -> list[str]:
    return [f"{label}：{value}" for label, value in facts(event, WORDS)]


def check_renders(portal: Portal, event: Event[Any]) -> None:
    """Atom, CAP and four portal pages render ``event`` as valid documents that carry its text unchanged."""
    board, thread = thread_of(event)
    headline = title(event, WORDS)
    lines = expected_lines(event)

    feed = atom_feed(
        [thread],
        feed_id="urn:firebus:test",
        feed_title="公开信息",
        base_url="http://portal.test",
        words=WORDS,
        updated=T0,
    )
    entry = ET.fromstring(feed).find(f"{{{ATOM_NS}}}entry")  # noqa: S314  (our own output)
    assert entry is not None
    assert entry.findtext(f"{{{ATOM_NS}}}title") == "【更新】" + headline
    summary = entry.findtext(f"{{{ATOM_NS}}}summary", "")
    assert summary.startswith("\n".join(lines) + "\n历史："), summary
    assert summary.endswith(" " + headline)

    cap = cap_alert(
        thread.current,
        sender="firebus@yangcheng",
        sender_name="县林业局",
        words=WORDS,
        county_name="阳城县",
        lookup=board.notice,
        web="http://portal.test/notices/x",
    )
    assert capvalidator.check_schema(cap).passed, cap.decode()
    alert = ET.fromstring(cap)  # noqa: S314  (our own output)
    info = alert.find(f"{{{CAP_NS}}}info")
    assert info is not None
    assert info.findtext(f"{{{CAP_NS}}}headline") == headline
    assert info.findtext(f"{{{CAP_NS}}}description") == "\n".join(lines)
    incidents = alert.findtext(f"{{{CAP_NS}}}incidents")
    if event.header.incident_id:
        assert incidents is not None
        assert len(incidents.split()) == 1, incidents  # one incident, whatever spaces its id holds

    item = review_item_of(event)
    redactable = sorted(CONTRACTS.for_event_type(event.header.event_type).redactable_paths)
    pages: dict[str, dict[str, Any]] = {
        "board.html": {"threads": [thread], "ready": True, "path": "/"},
        "notice.html": {"thread": thread, "tier": Audience.PUBLIC, "path": "/notices/x"},
        "members.html": {
            "threads": [thread],
            "chosen_type": "",
            "chosen_township": "",
            "townships": TOWNSHIPS,
            "path": "/members",
        },
        "hq.html": {**console_context(item, event, redactable), "path": "/hq"},
    }
    for name, context in pages.items():
        page = portal.templates.env.get_template(name).render(account=None, csrf="token", **context)
        document = html5lib.HTMLParser(strict=True, namespaceHTMLElements=False).parse(page)
        shown = "".join(document.itertext())
        for text in (headline, *(value for _label, value in facts(event, WORDS))):
            assert text in shown, (name, text)


def console_context(item: ReviewItem, event: Event[Any], redactable: list[str]) -> dict[str, Any]:
    """What the HQ console's template is given for a queue of this one item and a live list of this one event."""
    return {
        "live": [event],
        "queue": [(item, event, redactable)],
        "shown": queue_page([item], QueueFilter(), T0),
        "counts": counts([item], T0),
        "chosen": QueueFilter(),
        "townships": TOWNSHIPS,
        "page_size": PAGE_SIZE,
        "live_shown": 50,
        "done": None,
        "done_event": None,
        "error": None,
    }


def review_item_of(event: Event[Any]) -> ReviewItem:
    header = event.header
    return ReviewItem(
        event_id=header.event_id,
        event_type=header.event_type,
        kind=header.kind,
        thread_id=header.event_id,
        partition_key=header.incident_id or str(header.event_id),
        status=ReviewStatus.PENDING,
        publisher_unit=header.publisher.unit,
        publisher_person=header.publisher.person,
        audience=header.audience,
        severity=header.severity,
        received_at=T0,
        deadline=T0,
        event=CODEC.encode(event),
    )


def unindexed(field: str) -> str:
    """A problem's field without its indexes: ``body.forces[1].equipment[0]`` → ``body.forces[].equipment[]``."""
    return re.sub(r"\[\d+\]", "[]", field)


# --- the properties ----------------------------------------------------------------------------------------


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(site=st.sampled_from(TEXT_SITES), text=any_text)
def test_hostile_text_in_any_field_is_refused_there_or_renders_everywhere(
    portal: Portal, site: tuple[EventType, str], text: str
) -> None:
    """One field of one event type gets hostile text: refused with that field named, or rendered cleanly."""
    event_type, path = site
    contract, record = CODEC.decode_data(CODEC.encode(sample_event(event_type, now=T0)))
    changed = with_text(contract, record, path, text)
    problems = text_problems(contract, changed)
    tally("refused" if problems else "rendered")
    if problems:
        for problem in problems:
            assert unindexed(problem.field) in (path, f"{path}[]"), problem
            assert "\n" not in str(problem)
        return
    event = CODEC.to_model(contract, changed)
    assert isinstance(event, Event)
    check_renders(portal, event)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(event_type=st.sampled_from(list(EventType)), data=st.data())
def test_every_text_field_at_once_renders_when_accepted(portal: Portal, event_type: EventType, data: Any) -> None:
    """All text fields of an event filled at once (markup, CJK, astral, tabs, newlines) render cleanly together."""
    contract, record = CODEC.decode_data(CODEC.encode(sample_event(event_type, now=T0)))
    for _type, path in (site for site in TEXT_SITES if site[0] is event_type):
        if contract.fields[path].pattern is None:
            record = with_text(contract, record, path, data.draw(plausible_text, label=path))
    problems = text_problems(contract, record)
    assert all("characters, more than the limit" in problem.message for problem in problems), problems
    tally("refused (too long)" if problems else "rendered")
    if problems:
        return
    event = CODEC.to_model(contract, record)
    assert isinstance(event, Event)
    check_renders(portal, event)


def test_every_event_type_has_text_sites() -> None:
    """The property tests reach every event type and the header's text fields."""
    assert {event_type for event_type, _path in TEXT_SITES} == set(EventType)
    assert {path for _type, path in TEXT_SITES if path.startswith("header.")} == {
        "header.incident_id",
        "header.publisher.unit",
        "header.publisher.person",
        "header.publisher.contact",
        "header.audience_townships",
        "header.townships",
        "header.trace_id",
        # The origin a bridge's upward report carries (the original publisher and how it was reported up).
        "header.origin.immediate",
        "header.origin.level",
        "header.origin.obligation",
        "header.origin.person",
        "header.origin.policy_version",
        "header.origin.reviewer",
        "header.origin.unit",
    }


# --- long unbroken text in a real browser --------------------------------------------------------------------


@pytest.mark.parametrize("event_type", [EventType.WORK_UPDATE, EventType.FIRE_REPORT, EventType.RESOURCE])
async def test_long_unbroken_text_wraps_instead_of_widening_the_page(
    portal: Portal, browser: Browser, event_type: EventType
) -> None:
    """Every text field at its maximum length with no break opportunity: the board and the HQ console stay as wide
    as the window (the portal's stylesheet wraps anywhere when it must)."""
    contract, record = CODEC.decode_data(CODEC.encode(sample_event(event_type, now=T0)))
    for _type, path in (site for site in TEXT_SITES if site[0] is event_type):
        info = contract.fields[path]
        if info.pattern is None and not path.startswith("header."):
            assert info.max_length is not None
            record = with_text(contract, record, path, "W" * info.max_length)
    assert text_problems(contract, record) == []
    event = CODEC.to_model(contract, record)
    assert isinstance(event, Event)
    _board, thread = thread_of(event)
    pages = [
        portal.templates.env.get_template("board.html").render(
            threads=[thread], ready=True, path="/", account=None, csrf="c"
        ),
        portal.templates.env.get_template("hq.html").render(
            **console_context(review_item_of(event), event, []), path="/hq", account=None, csrf="c"
        ),
    ]
    page = await browser.new_page(viewport={"width": 1024, "height": 768})
    try:
        for html in pages:
            await page.set_content(html.replace('<link rel="stylesheet" href="/static/portal.css">', ""))
            await page.add_style_tag(path=str(PORTAL_CSS))
            widths = await page.evaluate(
                "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
            )
            assert widths[0] <= widths[1], widths
    finally:
        await page.close()
