"""Role gates of every portal route: each route is classified public, member, HQ or admin; every HQ and admin page,
stream and POST refuses a logged-out client and a member session (and the admin pages an HQ reviewer), while the
role it is for gets through. Loosening any gate (e.g. ``Area.HQ`` changed to ``Area.MEMBERS``) turns this red.
"""

from __future__ import annotations

import pytest
from starlette.routing import Mount, Route

from consumers.portal import Portal, Role, create_app
from firebus.county import County
from firebus.settings import Settings
from tests.asgi import AsgiResponse
from tests.consumers.portal_sessions import LoggedIn, anonymous, call, logged_in
from tests.consumers.test_portal_units import InMemoryDesk
from tests.samples import review_item

WAITING = review_item()
ANY_UUID = "00000000-0000-0000-0000-000000000001"

PUBLIC = "public"
MEMBERS = "members"
HQ = "hq"
ADMIN = "admin"

ROUTES: dict[tuple[str, str], str] = {
    ("/", "GET"): PUBLIC,
    ("/notices/{thread_id}", "GET"): PUBLIC,
    ("/feed.atom", "GET"): PUBLIC,
    ("/cap/{event_id}.xml", "GET"): PUBLIC,
    ("/healthz", "GET"): PUBLIC,
    ("/readyz", "GET"): PUBLIC,
    ("/metrics", "GET"): PUBLIC,
    ("/login", "GET"): PUBLIC,
    ("/login", "POST"): PUBLIC,
    ("/logout", "POST"): PUBLIC,
    ("/members", "GET"): MEMBERS,
    ("/members/notices/{thread_id}", "GET"): MEMBERS,
    ("/members/status/stream", "GET"): MEMBERS,
    ("/hq", "GET"): HQ,
    ("/hq/live/stream", "GET"): HQ,
    ("/hq/review/{event_id}", "POST"): HQ,
    ("/hq/audit", "GET"): HQ,
    ("/admin", "GET"): ADMIN,
    ("/admin/accounts", "POST"): ADMIN,
    ("/admin/accounts/{account_id}/{action}", "POST"): ADMIN,
}
"""Every route of the app and who it is for; a route missing here fails :func:`test_every_route_is_classified`."""

CONCRETE = {
    "/notices/{thread_id}": f"/notices/{ANY_UUID}",
    "/cap/{event_id}.xml": f"/cap/{ANY_UUID}.xml",
    "/members/notices/{thread_id}": f"/members/notices/{ANY_UUID}",
    "/hq/review/{event_id}": f"/hq/review/{WAITING.event_id}",
    "/admin/accounts/{account_id}/{action}": "/admin/accounts/forestry/revoke",
}
FORMS: dict[str, dict[str, str]] = {
    "/hq/review/{event_id}": {"action": "approve"},
    "/admin/accounts": {"account_id": "x", "name": "", "unit": "forestry", "role": "reporter", "password": "p"},
}
STREAMS = {"/members/status/stream", "/hq/live/stream"}
GATED = sorted(key for key, area in ROUTES.items() if area in (HQ, ADMIN))
ALLOWED_ACCOUNT = {MEMBERS: "forestry", HQ: "hq-wang", ADMIN: "hq-li"}


@pytest.fixture
def desk(county: County) -> InMemoryDesk:
    return InMemoryDesk(county)


@pytest.fixture
def portal(county: County, settings: Settings, desk: InMemoryDesk) -> Portal:
    """The portal on the session's real broker (the audit page reads the audit topic) with the demo accounts."""
    portal = Portal(settings=settings, county=county, desk=desk)
    portal.state.apply_item(WAITING)
    return portal


async def send(portal: Portal, method: str, path: str, session: LoggedIn, form: dict[str, str] | None) -> AsgiResponse:
    return await call(portal, method, path, session, form, until_started=path in STREAMS)


def refused(response: AsgiResponse, *, logged_out: bool) -> bool:
    """Refused: to the login page (logged out), a 403 page (wrong role), or a stream's 401 with no events."""
    if response.status == 401:
        return b"event:" not in response.body
    if logged_out:
        return response.status == 303 and response.headers[b"location"].startswith(b"/login?next=")
    return response.status == 403


def test_every_route_is_classified(portal: Portal) -> None:
    """Every route the app serves has an entry in ROUTES; every /hq and /admin route is classified HQ or admin."""
    served = set()
    for route in create_app(portal, follow_topics=False).routes:
        if isinstance(route, Mount):
            continue
        assert isinstance(route, Route)
        for method in route.methods or ():
            if method != "HEAD":
                served.add((route.path, method))
    assert served == set(ROUTES)
    for (path, _), area in ROUTES.items():
        if path.startswith("/hq"):
            assert area == HQ, path
        if path.startswith("/admin"):
            assert area == ADMIN, path


@pytest.mark.parametrize(("path", "method"), GATED, ids=[f"{m} {p}" for p, m in GATED])
async def test_logged_out_client_is_refused(portal: Portal, desk: InMemoryDesk, path: str, method: str) -> None:
    """Logged out (a session cookie with a valid CSRF token, but no login): sent to login, nothing done."""
    response = await send(portal, method, CONCRETE.get(path, path), anonymous(portal), FORMS.get(path))
    assert refused(response, logged_out=True), (response.status, response.headers)
    assert desk.published == []


@pytest.mark.parametrize(("path", "method"), GATED, ids=[f"{m} {p}" for p, m in GATED])
async def test_member_session_is_refused(portal: Portal, desk: InMemoryDesk, path: str, method: str) -> None:
    """A member unit's officer (reporter) with a live session and a valid CSRF token gets a 403, nothing done."""
    response = await send(
        portal, method, CONCRETE.get(path, path), await logged_in(portal, "forestry"), FORMS.get(path)
    )
    assert refused(response, logged_out=False), (response.status, response.headers)
    assert desk.published == []


ADMIN_ROUTES = [key for key in GATED if ROUTES[key] == ADMIN]


@pytest.mark.parametrize(("path", "method"), ADMIN_ROUTES, ids=[f"{m} {p}" for p, m in ADMIN_ROUTES])
async def test_hq_reviewer_is_refused_account_administration(portal: Portal, path: str, method: str) -> None:
    """An HQ reviewer who is not an administrator gets no account administration."""
    response = await send(portal, method, CONCRETE.get(path, path), await logged_in(portal, "hq-wang"), FORMS.get(path))
    assert refused(response, logged_out=False), (response.status, response.headers)


@pytest.mark.parametrize(("path", "method"), GATED, ids=[f"{m} {p}" for p, m in GATED])
async def test_the_role_a_route_is_for_gets_through(portal: Portal, desk: InMemoryDesk, path: str, method: str) -> None:
    """The control: the same request from the role the route is for is served (so the refusals above are the
    gate's, not a broken request)."""
    account = ALLOWED_ACCOUNT[ROUTES[(path, method)]]
    response = await send(portal, method, CONCRETE.get(path, path), await logged_in(portal, account), FORMS.get(path))
    if method == "GET":
        assert response.status == 200, response.status
    else:
        location = response.headers.get(b"location", b"")
        assert response.status in (303, 400), response.status
        assert not location.startswith(b"/login"), location
    if path == "/hq/review/{event_id}":
        assert [decision.reviewer for decision in desk.published] == ["hq-wang"]


async def test_unit_administrator_manages_only_their_own_unit(portal: Portal, county: County) -> None:
    """A unit administrator may add a reporter of their own unit, not of another unit and not an HQ role."""
    await portal.directory.add(
        (await portal.directory.account("forestry")).model_copy(  # type: ignore[union-attr]
            update={"id": "forestry-admin", "role": Role.UNIT_ADMIN, "demo": False}
        )
    )
    session = await logged_in(portal, "forestry-admin")
    form = {"account_id": "forestry-zhang", "name": "张三", "role": "reporter", "password": "long-enough-1"}
    own = await send(portal, "POST", "/admin/accounts", session, {**form, "unit": "forestry"})
    assert (own.status, own.headers[b"location"]) == (303, b"/admin?done=added")
    other = await send(
        portal, "POST", "/admin/accounts", session, {**form, "account_id": "police-li", "unit": "police"}
    )
    assert other.status == 400
    assert "您无权管理该单位或该角色的账号。" in other.body.decode()
    hq = await send(portal, "POST", "/admin/accounts", session, {**form, "account_id": "x-hq", "role": "hq_admin"})
    assert hq.status == 400
    changed = await send(portal, "POST", "/admin/accounts/police/disable", session, {})
    assert changed.status == 400
    assert not (await portal.directory.account("police")).disabled  # type: ignore[union-attr]
    assert await portal.directory.account("police-li") is None
    page = await send(portal, "GET", "/admin", session, None)
    assert b"forestry-zhang" in page.body
    assert b'data-account="police"' not in page.body
