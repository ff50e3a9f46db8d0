"""One HTTP request through an ASGI app in process (the portal's Starlette app), without a server or a client
library: what unit tests of the portal's pages and forms send."""

from __future__ import annotations

from collections.abc import MutableMapping, Sequence
from typing import Any, NamedTuple


class AsgiResponse(NamedTuple):
    status: int
    headers: dict[bytes, bytes]
    body: bytes


async def asgi_request(
    app: Any, method: str, path: str, *, headers: Sequence[tuple[bytes, bytes]] = (), body: bytes = b""
) -> AsgiResponse:
    """Send one request to ``app`` and collect its whole response."""
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"portal.test"), *headers],
        "client": ("127.0.0.1", 1),
        "server": ("portal.test", 80),
    }
    await app(scope, receive, send)
    start = sent[0]
    return AsgiResponse(
        status=start["status"],
        headers=dict(start.get("headers", [])),
        body=b"".join(message.get("body", b"") for message in sent[1:]),
    )
