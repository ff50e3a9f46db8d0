"""The portal's browser-facing safety: security headers on every response, the only messages a URL may ask a page to
show (codes mapped to the server's own zh-CN text), and the client address recorded for logins.

The content security policy allows scripts, styles, images and connections (SSE) from the portal itself only, no
inline script and no framing: every script is a file under ``/static``, and no template carries inline script or
style, so a name or text that slipped past escaping still could not run.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from firebus.errors import FirebusError, InvalidEventError

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
)
HSTS = (b"strict-transport-security", b"max-age=31536000")
NO_STORE = (b"cache-control", b"no-store")
PRIVATE_PATHS = ("/members", "/hq", "/admin", "/login")
"""Pages behind a login: never kept in a browser's or proxy's cache, so the back button after logout shows nothing."""
"""Only when cookies are Secure (the portal is served over HTTPS): a plain-HTTP portal must not pin HTTPS."""


class SecurityHeaders:
    """ASGI middleware: every HTTP response carries :data:`SECURITY_HEADERS` (and HSTS behind HTTPS); pages behind a
    login are not stored (:data:`PRIVATE_PATHS`)."""

    def __init__(self, app: ASGIApp, *, https: bool = False) -> None:
        self.app = app
        self.headers = [*SECURITY_HEADERS, HSTS] if https else list(SECURITY_HEADERS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        private = scope["path"].startswith(PRIVATE_PATHS)

        async def send_with_headers(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                wanted = [*self.headers, NO_STORE] if private else self.headers
                extra = [(name, value) for name, value in wanted if name not in present]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


# --- messages a URL may ask for ----------------------------------------------------------------------------------

MESSAGES: dict[str, str] = {
    "unknown_action": "未知操作，请从页面按钮提交。",
    "redact_needs_field": "删改发布需要至少选择一个字段。",
    "reason_required": "驳回需要填写理由。",
    "reviewer_not_allowed": "您不能审核这条信息（不是登记的审核员，或是该信息的发布人）。",
    "bad_redaction": "所选删改字段不属于该类信息。",
    "bad_text": "理由中含有不允许的字符。",
    "not_pending": "该信息已不在待审核队列（可能已由他人处理或已撤回）。",
    "decision_refused": "审核决定未被接受，请刷新后重试。",
    "not_sent": "决定未能发送到消息总线，请稍后重试。",
    "expired_form": "页面已过期，请刷新后重试。",
}
"""Every message a ``?error=`` code can show; anything else in the URL shows nothing."""

DONE: dict[str, str] = {"approve": "批准", "reject": "驳回", "redact": "删改后批准"}


def message(code: str | None) -> str | None:
    """The server's own text for a ``?error=`` code; None for no code or one the server never sends."""
    return MESSAGES.get(code) if code else None


def refusal_code(error: FirebusError) -> str:
    """The message code for a review decision the desk refused, by the first problem it names."""
    if isinstance(error, InvalidEventError):
        fields = [problem.field.split(".")[0].split("[")[0] for problem in error.problems]
        for field, code in (
            ("event_id", "not_pending"),
            ("reviewer", "reviewer_not_allowed"),
            ("reason", "reason_required"),
            ("redact", "bad_redaction"),
        ):
            if field in fields:
                return code
        if fields:
            return "bad_text"
    return "decision_refused"


def client_address(request: Request) -> str:
    """The address the request came from as the server saw it (behind a reverse proxy: the proxy's, unless uvicorn
    is told to trust its forwarded headers — see deploy/README.md)."""
    return request.client.host if request.client else "unknown"
