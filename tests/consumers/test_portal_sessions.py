"""Person accounts, server-side sessions and login safety against real PostgreSQL (a schema of this module's own):
the directory's rules (the in-memory one must agree), throttling with growing delays per account and per client,
every login attempt in the security log with its address, logout and revocation ending the session (a replayed
cookie is refused, an open SSE stream ends), demo accounts refused outside demo mode, security headers, Secure
cookies and ``?error=`` messages only from the server's own words.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from consumers.portal import (
    Account,
    Directory,
    MemoryDirectory,
    Portal,
    PostgresDirectory,
    Role,
    hash_password,
    load_accounts,
    seed_demo_accounts,
)
from consumers.portal import app as portal_app
from consumers.portal.accounts import FIRST_WAIT, LONGEST_WAIT, Failures, Security, throttle_wait, wait_after
from consumers.portal.security import CONTENT_SECURITY_POLICY, MESSAGES
from firebus.county import County
from firebus.errors import AccountError
from firebus.settings import SAMPLE_PORTAL_ACCOUNTS, Settings
from tests.asgi import AsgiResponse
from tests.consumers.archiving import create_schema, drop_schema, dsn_for
from tests.consumers.portal_sessions import anonymous, call, cookie_of, logged_in, open_request
from tests.consumers.test_portal_units import InMemoryDesk

T0 = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)


@dataclass
class Clock:
    """The portal's clock in these tests: time moves only when a test moves it (no timed assertions)."""

    at: datetime = field(default=T0)

    def now(self) -> datetime:
        return self.at

    def advance(self, by: timedelta) -> None:
        self.at += by


@pytest.fixture
async def dsn() -> AsyncIterator[str]:
    name = await create_schema()
    yield dsn_for(name)
    await drop_schema(name)


@pytest.fixture
async def pg(dsn: str) -> AsyncIterator[PostgresDirectory]:
    """The PostgreSQL directory on a fresh schema, migrated, with the demo accounts seeded."""
    directory = PostgresDirectory(dsn)
    await directory.start()
    await seed_demo_accounts(directory, load_accounts(SAMPLE_PORTAL_ACCOUNTS))
    yield directory
    await directory.close()


@pytest.fixture(params=["memory", "postgres"])
async def directory(request: pytest.FixtureRequest, pg: PostgresDirectory) -> Directory:
    """Each directory implementation, holding the demo accounts."""
    if request.param == "memory":
        return MemoryDirectory(load_accounts(SAMPLE_PORTAL_ACCOUNTS))
    return pg


@pytest.fixture
def clock() -> Clock:
    return Clock()


def portal_on(directory: Directory, county: County, clock: Clock, **settings: Any) -> Portal:
    return Portal(
        settings=Settings(**{"portal_demo": True, **settings}),
        county=county,
        desk=InMemoryDesk(county),
        directory=directory,
        clock=clock.now,
    )


async def log_in(portal: Portal, account: str, password: str, *, client: str = "127.0.0.1") -> AsgiResponse:
    return await call(
        portal, "POST", "/login", anonymous(portal), {"username": account, "password": password}, client=client
    )


async def log_kinds(directory: Directory) -> list[tuple[str, str, str]]:
    return [(line.kind.value, line.account_id, line.client) for line in reversed(await directory.security_log())]


# --- the directory's rules, in PostgreSQL and in memory alike ---------------------------------------------------


async def test_directory_adds_changes_and_refuses_like_its_twin(directory: Directory) -> None:
    """Accounts are added once, changed only when they exist, listed by unit then id."""
    person = Account(
        id="forestry-zhang", name="张三", unit="forestry", role=Role.REPORTER, password_hash=hash_password("x")
    )
    await directory.add(person)
    with pytest.raises(AccountError, match="exists already") as taken:
        await directory.add(person)
    assert taken.value.code == "account_exists"
    with pytest.raises(AccountError) as unknown:
        await directory.update("nobody", disabled=True)
    assert unknown.value.code == "unknown_account"
    await directory.update("forestry-zhang", disabled=True)
    assert (await directory.account("forestry-zhang")) == person.model_copy(update={"disabled": True})
    assert [a.id for a in await directory.accounts(unit="forestry")] == ["forestry", "forestry-zhang"]
    assert (await directory.account("hq-wang")).demo  # type: ignore[union-attr]


async def test_sessions_live_until_ended_expired_or_account_disabled(directory: Directory) -> None:
    """A session opens its account until it ends, expires (12 h) or the account is disabled."""
    await directory.open_session("t1", "forestry", client="10.0.0.1", now=T0)
    await directory.open_session("t2", "forestry", client="10.0.0.2", now=T0)
    await directory.open_session("t3", "police", client="10.0.0.3", now=T0)
    assert (await directory.session_account("t1", now=T0)).id == "forestry"  # type: ignore[union-attr]
    assert await directory.session_account("nope", now=T0) is None
    assert await directory.session_account("t1", now=T0 + timedelta(hours=12)) is None
    await directory.end_session("t1", now=T0)
    assert await directory.session_account("t1", now=T0) is None
    assert await directory.session_account("t2", now=T0) is not None
    assert await directory.end_sessions("forestry", now=T0) == 1
    assert await directory.session_account("t2", now=T0) is None
    assert [info.account_id for info in await directory.live_sessions(now=T0)] == ["police"]
    await directory.update("police", disabled=True)
    assert await directory.session_account("t3", now=T0) is None


async def test_failures_count_per_account_since_success_and_per_client_in_the_window(directory: Directory) -> None:
    """An account's failures count since its last success; a client's within the hour, whatever account."""
    from consumers.portal.accounts import SecurityEvent  # noqa: PLC0415

    def failed(at: datetime, account: str, client: str) -> SecurityEvent:
        return SecurityEvent(at, Security.LOGIN_FAILED, account, client, account)

    await directory.record(failed(T0, "forestry", "10.0.0.9"))
    await directory.record(SecurityEvent(T0 + timedelta(seconds=1), Security.LOGIN_OK, "forestry", "10.0.0.9"))
    for second in range(2, 5):
        await directory.record(failed(T0 + timedelta(seconds=second), "forestry", "10.0.0.9"))
    await directory.record(failed(T0 + timedelta(seconds=5), "police", "10.0.0.9"))
    now = T0 + timedelta(seconds=10)
    assert await directory.failures(account_id="forestry", now=now) == Failures(3, T0 + timedelta(seconds=4))
    assert await directory.failures(client="10.0.0.9", now=now) == Failures(5, T0 + timedelta(seconds=5))
    assert await directory.failures(client="10.0.0.9", now=T0 + timedelta(hours=2)) == Failures(0, None)


# --- throttling ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("failures", "free", "wait"),
    [(0, 3, 0), (2, 3, 0), (3, 3, 2), (4, 3, 4), (5, 3, 8), (9, 10, 0), (10, 10, 2), (40, 3, 900)],
)
def test_waits_grow_after_the_free_attempts(failures: int, free: int, wait: int) -> None:
    """No wait for the first few failures, then 2 s doubling per failure, never more than 15 minutes."""
    assert wait_after(failures, free) == timedelta(seconds=wait)
    assert timedelta(seconds=2) == FIRST_WAIT
    assert timedelta(minutes=15) == LONGEST_WAIT


def test_the_longer_of_the_account_and_client_waits_applies() -> None:
    """The next attempt waits for whichever of its account and its client address must wait longer."""
    account = Failures(4, T0)  # 4 s
    client = Failures(11, T0 + timedelta(seconds=1))  # 4 s from T0 + 1
    assert throttle_wait(account, client, T0) == timedelta(seconds=5)
    assert throttle_wait(account, Failures(0, None), T0 + timedelta(seconds=4)) == timedelta(0)
    assert throttle_wait(Failures(2, T0 + timedelta(hours=1)), Failures(2, T0), T0) == timedelta(0)  # free, even ahead


async def test_login_is_throttled_per_account_with_growing_delays_and_every_attempt_logged(
    pg: PostgresDirectory, county: County, clock: Clock
) -> None:
    """Three wrong passwords, then even the right one waits (429, Retry-After); once the wait is over the right
    password opens the account; each attempt is in the security log with its client address."""
    portal = portal_on(pg, county, clock)
    for _ in range(3):
        assert (await log_in(portal, "hq-wang", "wrong-password", client="192.0.2.7")).status == 401
    throttled = await log_in(portal, "hq-wang", "fangmie-wang-2026", client="192.0.2.7")
    assert throttled.status == 429
    assert throttled.headers[b"retry-after"] == b"3"
    assert "尝试次数过多，请 3 秒后再试。" in throttled.body.decode()
    clock.advance(timedelta(seconds=2))
    assert (await log_in(portal, "hq-wang", "wrong-password", client="192.0.2.7")).status == 401  # 4th: now 4 s
    assert (await log_in(portal, "hq-wang", "fangmie-wang-2026", client="192.0.2.7")).headers[b"retry-after"] == b"5"
    clock.advance(timedelta(seconds=4))
    opened = await log_in(portal, "hq-wang", "fangmie-wang-2026", client="192.0.2.7")
    assert (opened.status, opened.headers[b"location"]) == (303, b"/hq")
    assert (await log_in(portal, "hq-wang", "wrong-password", client="192.0.2.7")).status == 401  # counter reset
    assert await log_kinds(pg) == [
        *[("login_failed", "hq-wang", "192.0.2.7")] * 3,
        ("login_throttled", "hq-wang", "192.0.2.7"),
        ("login_failed", "hq-wang", "192.0.2.7"),
        ("login_throttled", "hq-wang", "192.0.2.7"),
        ("login_ok", "hq-wang", "192.0.2.7"),
        ("login_failed", "hq-wang", "192.0.2.7"),
    ]
    async with await psycopg.AsyncConnection.connect(pg._dsn) as connection:
        rows = await connection.execute("SELECT count(*) FROM portal_security_log WHERE client = '192.0.2.7'")
        assert (await rows.fetchone()) == (8,)


async def test_login_is_throttled_per_client_address_across_accounts(
    pg: PostgresDirectory, county: County, clock: Clock
) -> None:
    """Ten failures from one address on ten different accounts: the eleventh attempt from it waits, even for an
    account never tried; another address is not slowed."""
    portal = portal_on(pg, county, clock)
    for number in range(10):
        assert (await log_in(portal, f"guess-{number}", "x", client="198.51.100.4")).status == 401
    assert (await log_in(portal, "forestry", "linye-2026", client="198.51.100.4")).status == 429
    assert (await log_in(portal, "forestry", "linye-2026", client="198.51.100.5")).status == 303


async def test_demo_accounts_are_refused_outside_demo_mode(pg: PostgresDirectory, county: County, clock: Clock) -> None:
    """A demo account seeded in the database does not open outside demo mode; a real account does."""
    portal = portal_on(pg, county, clock, portal_demo=False)
    refused = await log_in(portal, "hq-wang", "fangmie-wang-2026")
    assert refused.status == 401
    assert "演示账号只能在演示模式" in refused.body.decode()
    await pg.add(
        Account(
            id="hq-zhao", name="赵", unit="hq_office", role=Role.HQ_ADMIN, password_hash=hash_password("zhao-2026!!")
        )
    )
    assert (await log_in(portal, "hq-zhao", "zhao-2026!!")).status == 303


# --- sessions end --------------------------------------------------------------------------------------------------


async def test_logout_ends_the_session_replayed_cookie_refused_and_open_stream_closed(
    pg: PostgresDirectory, county: County, clock: Clock
) -> None:
    """After logout, the old cookie opens nothing, and the console's open SSE stream ends (with a last event)."""
    portal = portal_on(pg, county, clock)
    opened = await log_in(portal, "hq-wang", "fangmie-wang-2026")
    session = cookie_of(portal, opened, anonymous(portal))
    assert (await call(portal, "GET", "/hq", session)).status == 200
    stream = await open_request(portal, "GET", "/hq/live/stream", session)
    await stream.started()
    assert len(portal.streams) == 1
    out = await call(portal, "POST", "/logout", session)
    assert (out.status, out.headers[b"location"]) == (303, b"/")
    ended = await asyncio.wait_for(stream.response(), timeout=60)
    assert ended.status == 200
    assert ended.body.endswith(b"event: session\ndata: ended\n\n")
    replayed = await call(portal, "GET", "/hq", session)
    assert (replayed.status, replayed.headers[b"location"]) == (303, b"/login?next=/hq")
    assert (await call(portal, "GET", "/hq/live/stream", session, until_started=True)).status == 401
    assert ("logout", "hq-wang", "127.0.0.1") in await log_kinds(pg)


async def test_administrator_revocation_ends_sessions_and_streams(
    pg: PostgresDirectory, county: County, clock: Clock
) -> None:
    """An HQ administrator revokes an officer's sessions on /admin: the officer's stream ends, the cookie is dead."""
    portal = portal_on(pg, county, clock)
    officer = await logged_in(portal, "hq-wang")
    stream = await open_request(portal, "GET", "/hq/live/stream", officer)
    await stream.started()
    admin = await logged_in(portal, "hq-li")
    revoked = await call(portal, "POST", "/admin/accounts/hq-wang/revoke", admin)
    assert (revoked.status, revoked.headers[b"location"]) == (303, b"/admin?done=revoked")
    assert (await asyncio.wait_for(stream.response(), timeout=60)).body.endswith(b"data: ended\n\n")
    assert (await call(portal, "GET", "/hq", officer)).status == 303
    assert (await call(portal, "GET", "/hq", admin)).status == 200
    assert ("sessions_revoked", "hq-wang", "127.0.0.1") in await log_kinds(pg)


async def test_revocation_elsewhere_ends_the_stream_at_its_next_keepalive(
    pg: PostgresDirectory, county: County, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sessions ended by another process (``firebus accounts revoke-sessions``) end the open stream at its next
    keep-alive check."""
    monkeypatch.setattr(portal_app, "KEEPALIVE_S", 0.05)
    portal = portal_on(pg, county, clock)
    officer = await logged_in(portal, "hq-wang")
    stream = await open_request(portal, "GET", "/hq/live/stream", officer)
    await stream.started()
    other = PostgresDirectory(pg._dsn)
    assert await other.end_sessions("hq-wang", now=clock.now()) == 1
    await other.close()
    assert (await asyncio.wait_for(stream.response(), timeout=60)).body.endswith(b"data: ended\n\n")


async def test_disabling_or_a_new_password_ends_sessions(pg: PostgresDirectory, county: County, clock: Clock) -> None:
    """Disabling an account or setting its password on /admin ends its sessions; the disabled account cannot log in."""
    portal = portal_on(pg, county, clock)
    admin = await logged_in(portal, "hq-li")
    officer = await logged_in(portal, "forestry")
    assert (
        await call(portal, "POST", "/admin/accounts/forestry/password", admin, {"password": "new-pass-2026"})
    ).status == 303
    assert (await call(portal, "GET", "/members", officer)).status == 303
    assert (await log_in(portal, "forestry", "new-pass-2026")).status == 303
    officer = await logged_in(portal, "forestry")
    assert (await call(portal, "POST", "/admin/accounts/forestry/disable", admin)).status == 303
    assert (await call(portal, "GET", "/members", officer)).status == 303
    assert (await log_in(portal, "forestry", "new-pass-2026")).status == 401
    weak = await call(portal, "POST", "/admin/accounts/police/password", admin, {"password": "short"})
    assert weak.status == 400
    assert "密码至少 10 个字符。" in weak.body.decode()


# --- headers and messages --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "account"),
    [
        ("/", None),
        ("/login", None),
        ("/feed.atom", None),
        ("/static/portal.css", None),
        ("/nothing-here", None),
        ("/hq", None),
        ("/members", "forestry"),
        ("/hq", "hq-wang"),
        ("/admin", "hq-li"),
        ("/hq/live/stream", "hq-wang"),
    ],
)
async def test_every_response_carries_the_security_headers(
    county: County, clock: Clock, path: str, account: str | None
) -> None:
    """Pages, redirects, feeds, static files, 404s and streams: CSP, no framing, nosniff, a referrer policy."""
    portal = portal_on(MemoryDirectory(load_accounts(SAMPLE_PORTAL_ACCOUNTS)), county, clock)
    session = await logged_in(portal, account) if account else anonymous(portal)
    response = await call(portal, "GET", path, session, until_started=path.endswith("/stream"))
    assert response.headers[b"content-security-policy"] == CONTENT_SECURITY_POLICY.encode()
    assert b"frame-ancestors 'none'" in response.headers[b"content-security-policy"]
    assert b"script-src 'self';" in response.headers[b"content-security-policy"]
    assert response.headers[b"x-frame-options"] == b"DENY"
    assert response.headers[b"x-content-type-options"] == b"nosniff"
    assert response.headers[b"referrer-policy"] == b"same-origin"
    assert b"strict-transport-security" not in response.headers
    if path.startswith(("/hq", "/members", "/admin")):
        assert response.headers[b"cache-control"] in (b"no-store", b"no-cache")  # the SSE stream says no-cache


@pytest.mark.parametrize("secure", [False, True])
async def test_session_cookie_is_secure_when_set(county: County, clock: Clock, secure: bool) -> None:
    """FIREBUS_PORTAL_COOKIE_SECURE marks the cookie Secure (and sends HSTS); it is always HttpOnly and SameSite."""
    portal = portal_on(
        MemoryDirectory(load_accounts(SAMPLE_PORTAL_ACCOUNTS)), county, clock, portal_cookie_secure=secure
    )
    response = await log_in(portal, "forestry", "linye-2026")
    cookie = response.headers[b"set-cookie"].decode().lower()
    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    assert ("; secure" in cookie) is secure
    assert (b"strict-transport-security" in response.headers) is secure


@pytest.mark.parametrize(
    ("query", "shown", "absent"),
    [
        ("error=请立即拨打12345", None, "请立即拨打12345"),
        ("error=%3Cb%3Eboom%3C%2Fb%3E", None, "boom"),
        ("error=reason_required", MESSAGES["reason_required"], None),
        ("done=approve&event=请立即拨打12345", "已批准", "请立即拨打12345"),
        ("done=呼叫&event=00000000-0000-0000-0000-000000000001", None, "呼叫"),
    ],
)
async def test_console_messages_come_only_from_the_servers_own_words(
    county: County, clock: Clock, query: str, shown: str | None, absent: str | None
) -> None:
    """A ``?error=`` or ``?done=`` in the URL shows only text the server owns; anything else shows nothing."""
    portal = portal_on(MemoryDirectory(load_accounts(SAMPLE_PORTAL_ACCOUNTS)), county, clock)
    from urllib.parse import quote  # noqa: PLC0415

    encoded = "&".join(f"{k}={quote(v, safe='%')}" for k, v in (part.split("=", 1) for part in query.split("&")))
    page = (await call(portal, "GET", "/hq", await logged_in(portal, "hq-wang"), query=encoded)).body.decode()
    if shown is not None:
        assert shown in page
    else:
        assert 'id="flash"' not in page
    if absent is not None:
        assert absent not in page
