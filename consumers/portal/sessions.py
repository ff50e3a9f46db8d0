"""Server-side sessions at the portal's door: each request's cookie is read once and its session looked up in the
directory (a signed cookie alone opens nothing: logout and revocation end the session where it is kept), and the
open SSE streams are told when their session ends, so a revoked officer's console goes quiet at once.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime

from starlette.types import ASGIApp, Receive, Scope, Send

from consumers.portal.accounts import Directory
from consumers.portal.auth import Session, SessionCodec

SESSION_COOKIE = "firebus_session"


class SessionLoader:
    """ASGI middleware: puts the request's :class:`Session` (``firebus.session``) and its live account or None
    (``firebus.account``) in the scope. A missing, forged or expired cookie becomes a new anonymous session; a
    cookie whose server-side session ended keeps its CSRF token but loses its login (``firebus.session_new`` asks
    the page to send the corrected cookie)."""

    def __init__(
        self, app: ASGIApp, *, codec: SessionCodec, directory: Directory, clock: Callable[[], datetime]
    ) -> None:
        self.app = app
        self.codec = codec
        self.directory = directory
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].startswith("/static/"):
            cookie = _cookie(scope, SESSION_COOKIE)
            session = self.codec.loads(cookie)
            account = None
            if session is None:
                session = Session.anonymous()
                scope["firebus.session_new"] = True
            elif session.token is not None:
                account = await self.directory.session_account(session.token, now=self.clock())
                if account is None:
                    session = Session(csrf=session.csrf)
                    scope["firebus.session_new"] = True
            scope["firebus.session"] = session
            scope["firebus.account"] = account
        await self.app(scope, receive, send)


def _cookie(scope: Scope, name: str) -> str | None:
    for header, value in scope.get("headers", []):
        if header == b"cookie":
            text: str = value.decode("latin-1")
            for part in text.split(";"):
                key, _, found = part.strip().partition("=")
                if key == name:
                    return found
    return None


class OpenStreams:
    """The SSE streams open per session token: ending a session (logout, revocation) sets their events."""

    def __init__(self) -> None:
        self._by_token: dict[str, set[asyncio.Event]] = defaultdict(set)
        self._accounts: dict[str, str] = {}

    def open(self, token: str, account_id: str) -> asyncio.Event:
        ended = asyncio.Event()
        self._by_token[token].add(ended)
        self._accounts[token] = account_id
        return ended

    def close(self, token: str, ended: asyncio.Event) -> None:
        self._by_token[token].discard(ended)
        if not self._by_token[token]:
            del self._by_token[token]
            self._accounts.pop(token, None)

    def end(self, token: str) -> None:
        for ended in self._by_token.get(token, ()):
            ended.set()

    def end_account(self, account_id: str) -> None:
        for token, owner in list(self._accounts.items()):
            if owner == account_id:
                self.end(token)

    def __len__(self) -> int:
        return sum(len(events) for events in self._by_token.values())
