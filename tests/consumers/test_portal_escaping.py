"""Hostile text (markup, script, entity look-alikes) in every place a person's or a unit's words reach: every page,
the console's live stream, the Atom feed and CAP alerts show it as text, never as markup. Turning Jinja's
autoescaping off, or un-escaping anything in ``feeds.py``, turns this red.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4
from xml.etree import ElementTree as ET

import pytest

from consumers.portal import MemoryDirectory, Portal, Role, load_accounts
from consumers.portal.accounts import Security, SecurityEvent
from firebus.codec import Codec
from firebus.county import County
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
    Severity,
    Urgency,
)
from firebus.records import AuditAction, AuditEvent, ReviewStatus
from firebus.settings import SAMPLE_PORTAL_ACCOUNTS, Settings
from tests.consumers.portal_sessions import anonymous, call, logged_in, open_request
from tests.consumers.test_portal_units import InMemoryDesk, notice_of
from tests.samples import review_item

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>&lt;i&gt;'
RAW = ("<script>alert", "<img src=x", "<i>")
"""What must never reach a browser unescaped."""
ESCAPED = "&lt;script&gt;"
CODEC = Codec()
AT = datetime(2026, 12, 2, 6, 0, tzinfo=UTC)


def hostile_fire(marker: str) -> Event[Any]:
    return Event[FireReport](
        header=Header(
            event_id=uuid4(),
            event_type=EventType.FIRE_REPORT,
            schema_version=1,
            kind=MessageKind.ALERT,
            references=[],
            incident_id=f"YC-{marker}",
            publisher=Publisher(unit="forestry", person=HOSTILE),
            classification=Classification.PUBLIC,
            audience=Audience.PUBLIC,
            severity=Severity.SEVERE,
            urgency=Urgency.IMMEDIATE,
            occurred_at=AT,
            published_at=AT,
            townships=["manghe"],
            trace_id="t",
        ),
        body=FireReport(
            place=FirePlace(township="manghe", village=f"{marker}{HOSTILE}", description=HOSTILE),
            discovered_at=AT,
            status=FireStatus.REPORTED,
            burned_area_ha=0.5,
        ),
    )


def shows_as_text(page: str) -> None:
    for raw in RAW:
        assert raw not in page, raw
    assert ESCAPED in page


@pytest.fixture
async def portal(county: County, settings: Settings) -> Portal:
    """A portal holding hostile text everywhere: public and member notices, HQ live, the review queue, the audit
    trail, an account's name and the security log (a login tried with hostile text)."""
    marker = uuid4().hex
    event = hostile_fire(marker)
    item = review_item(event=CODEC.encode(event), event_id=event.header.event_id, publisher_person=HOSTILE)
    portal = Portal(
        settings=settings.model_copy(update={"portal_demo": True}),
        county=county,
        desk=InMemoryDesk(county),
        directory=MemoryDirectory(load_accounts(SAMPLE_PORTAL_ACCOUNTS)),
    )
    for tier in (Audience.PUBLIC, Audience.MEMBERS):
        portal.state.boards[tier].add(notice_of(event, tier=tier))
    portal.state.add_live(event)
    portal.state.apply_item(item)
    hostile_person = (await portal.directory.account("forestry")).model_copy(  # type: ignore[union-attr]
        update={"id": "forestry-x", "name": HOSTILE, "role": Role.UNIT_ADMIN}
    )
    await portal.directory.add(hostile_person)
    await portal.directory.record(SecurityEvent(AT, Security.LOGIN_FAILED, HOSTILE, HOSTILE, HOSTILE, "forestry"))
    audit = AuditEvent(
        audit_id=uuid4(),
        action=AuditAction.REJECTED,
        event_id=event.header.event_id,
        actor=HOSTILE,
        reason=f"{marker}{HOSTILE}",
        details={"note": HOSTILE},
        at=datetime.now(UTC) + timedelta(days=1),
    )
    portal.state.add_audit(audit)  # the audit trail the portal follows
    portal.marker = marker  # type: ignore[attr-defined]
    portal.event = event  # type: ignore[attr-defined]
    return portal


@pytest.mark.parametrize(
    ("path", "account"),
    [
        ("/", None),
        ("/notices/{thread}", None),
        ("/members", "forestry"),
        ("/members/notices/{thread}", "forestry"),
        ("/hq", "hq-wang"),
        ("/hq/audit?q={marker}", "hq-wang"),
        ("/admin", "hq-li"),
        ("/members", "forestry-x"),
    ],
)
async def test_every_page_shows_hostile_text_as_text(portal: Portal, path: str, account: str | None) -> None:
    """Every page that shows event text, a person's name, the audit trail or the security log escapes it."""
    filled = path.format(thread=portal.event.header.event_id, marker=portal.marker)  # type: ignore[attr-defined]
    target, _, query = filled.partition("?")
    session = await logged_in(portal, account) if account else anonymous(portal)
    if "/hq/audit" in path:
        for _ in range(200):  # the audit page reads the topic: wait until our record is there (a fence, not a timer)
            response = await call(portal, "GET", target, session, query=query)
            if portal.marker in response.body.decode():  # type: ignore[attr-defined]
                break
    else:
        response = await call(portal, "GET", target, session, query=query)
    assert response.status == 200
    shows_as_text(response.body.decode())


async def test_login_page_escapes_what_the_url_and_the_form_carry(portal: Portal) -> None:
    """The login page's ``next`` (from the URL) and a failed login keep hostile text inert."""
    page = await call(portal, "GET", "/login", anonymous(portal), query='next=/"><script>alert(1)</script>')
    for raw in RAW:
        assert raw not in page.body.decode()
    failed = await call(
        portal, "POST", "/login", anonymous(portal), {"username": HOSTILE, "password": "x", "next": HOSTILE}
    )
    assert failed.status == 401
    for raw in RAW:
        assert raw not in failed.body.decode()


async def test_console_stream_sends_hostile_text_escaped(portal: Portal) -> None:
    """The HTML the live stream pushes (a new fire, a new review item) is rendered and escaped by the server."""
    session = await logged_in(portal, "hq-wang")
    stream = await open_request(portal, "GET", "/hq/live/stream", session)
    await stream.started()
    event = hostile_fire(uuid4().hex)
    portal.state.add_live(event)
    portal.state.apply_item(
        review_item(event=CODEC.encode(event), event_id=event.header.event_id, status=ReviewStatus.PENDING)
    )
    kinds: set[str] = set()
    for _ in range(1000):
        chunks = [chunk for chunk in stream.body().decode().split("\n\n") if chunk.startswith("event: ")]
        kinds = {chunk.split("\n")[0] for chunk in chunks}
        if {"event: fire", "event: review"} <= kinds:
            break
        await asyncio.sleep(0.01)  # the stream runs in this loop: let it
    stream.disconnect()
    assert {"event: fire", "event: review"} <= kinds
    for chunk in chunks:
        kind, _, data = chunk.partition("\ndata: ")
        if kind in ("event: fire", "event: review") and str(event.header.event_id) in data:
            shows_as_text(json.loads(data)["html"])


async def test_atom_feed_and_cap_alert_carry_hostile_text_as_text(portal: Portal) -> None:
    """The Atom feed and the CAP alert are well-formed XML whose text is exactly the hostile text (nothing
    un-escaped, nothing double-escaped), with no HTML-typed content."""
    event = portal.event  # type: ignore[attr-defined]
    feed = (await call(portal, "GET", "/feed.atom")).body
    cap = (await call(portal, "GET", f"/cap/{event.header.event_id}.xml")).body
    for document in (feed, cap):
        for raw in RAW:
            assert raw.encode() not in document
        texts = [element.text or "" for element in ET.fromstring(document).iter()]  # noqa: S314  (our own output)
        assert any(HOSTILE in text for text in texts), document.decode()[:2000]
        assert b'type="html"' not in document
        assert b'type="xhtml"' not in document
