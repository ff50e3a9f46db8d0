"""Logged-in requests for in-process portal tests: a real server-side session opened in the portal's directory, and
the cookie and CSRF token that go with it (a signed cookie alone opens nothing)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import MutableMapping
from typing import Any, NamedTuple
from urllib.parse import urlencode

from consumers.portal import Portal, Session, create_app
from consumers.portal.accounts import new_session_token
from consumers.portal.sessions import SESSION_COOKIE
from tests.asgi import AsgiResponse


class LoggedIn(NamedTuple):
    cookie: tuple[bytes, bytes]
    csrf: str
    token: str


async def logged_in(portal: Portal, account_id: str) -> LoggedIn:
    """A live session of ``account_id`` (which must be in the portal's directory)."""
    assert await portal.directory.account(account_id) is not None, account_id
    token = new_session_token()
    await portal.directory.open_session(token, account_id, client="127.0.0.1", now=portal.clock())
    session = Session.anonymous().login(token)
    return LoggedIn((b"cookie", f"{SESSION_COOKIE}={portal.sessions.dumps(session)}".encode()), session.csrf, token)


def anonymous(portal: Portal) -> LoggedIn:
    """A logged-out client that has a session cookie (so it has a CSRF token to post forms with)."""
    session = Session.anonymous()
    return LoggedIn((b"cookie", f"{SESSION_COOKIE}={portal.sessions.dumps(session)}".encode()), session.csrf, "")


async def call(
    portal: Portal,
    method: str,
    path: str,
    session: LoggedIn | None = None,
    form: dict[str, str] | None = None,
    *,
    client: str = "127.0.0.1",
    query: str = "",
    until_started: bool = False,
) -> AsgiResponse:
    """One request through the portal's app, in process; ``until_started``: a stream, only until its response
    starts (then the client goes away)."""
    opened = await open_request(portal, method, path, session, form, client=client, query=query)
    if until_started:
        await opened.started()
        opened.disconnect()
    return await opened.response()


class OpenRequest:
    """A request running in the app: its messages as they come, the client's disconnect, the whole response."""

    def __init__(
        self,
        task: asyncio.Task[None],
        sent: list[MutableMapping[str, Any]],
        gone: asyncio.Event,
        start_seen: asyncio.Event,
    ) -> None:
        self.task = task
        self.sent = sent
        self.gone = gone
        self.start_seen = start_seen

    async def started(self) -> None:
        """Until the response starts (or the app ends without one)."""
        waiting = asyncio.ensure_future(self.start_seen.wait())
        await asyncio.wait({self.task, waiting}, return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()

    def body(self) -> bytes:
        return b"".join(message.get("body", b"") for message in self.sent if message["type"] == "http.response.body")

    def disconnect(self) -> None:
        self.gone.set()
        self.task.cancel()

    async def response(self) -> AsgiResponse:
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        start = next(message for message in self.sent if message["type"] == "http.response.start")
        return AsgiResponse(start["status"], dict(start.get("headers", [])), self.body())


async def open_request(
    portal: Portal,
    method: str,
    path: str,
    session: LoggedIn | None = None,
    form: dict[str, str] | None = None,
    *,
    client: str = "127.0.0.1",
    query: str = "",
) -> OpenRequest:
    headers = [session.cookie] if session is not None else []
    body = b""
    if method == "POST":
        headers.append((b"content-type", b"application/x-www-form-urlencoded"))
        csrf = {"csrf": session.csrf} if session is not None else {}
        body = urlencode({**(form or {}), **csrf}).encode()
    sent: list[MutableMapping[str, Any]] = []
    gone = asyncio.Event()
    start_seen = asyncio.Event()
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.start":
            start_seen.set()

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query.encode(),
        "headers": [(b"host", b"portal.test"), *headers],
        "client": (client, 1),
        "server": ("portal.test", 80),
    }
    app = create_app(portal, follow_topics=False)
    return OpenRequest(asyncio.create_task(app(scope, receive, send)), sent, gone, start_seen)


def cookie_of(portal: Portal, response: AsgiResponse, before: LoggedIn) -> LoggedIn:
    """The session a response set (its Set-Cookie), as a client would keep it."""
    set_cookie = response.headers[b"set-cookie"].decode()
    value = set_cookie.split(";", 1)[0].split("=", 1)[1]
    session = portal.sessions.loads(value)
    assert session is not None
    return LoggedIn((b"cookie", f"{SESSION_COOKIE}={value}".encode()), session.csrf, session.token or before.token)
