"""The portal's HTTP request latencies, by route template (``/notices/{thread_id}``, never the raw path), method and
status: an ASGI middleware around the Starlette app, observing :data:`firebus.metrics.HTTP_REQUEST_DURATION`.

The time measured is from the request's arrival to the start of its response: for a page that is nearly all of
it, and for the HQ console's event stream it is the time the stream took to open, not how long it stayed open.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from starlette.routing import BaseRoute, Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from firebus import metrics

UNMATCHED = "unmatched"
"""The route label of a request no route matched (a 404), so that probing random paths adds no label values."""


def route_template(routes: Sequence[BaseRoute], scope: Scope) -> str:
    """The template of the route that takes the request (a method it does not allow included: that is its 405)."""
    for route in routes:
        match, _child = route.matches(scope)
        if match is not Match.NONE:
            path = str(getattr(route, "path", UNMATCHED))
            return f"{path}/{{path}}" if isinstance(route, Mount) else path
    return UNMATCHED


class RequestMetrics:
    """Observes one latency per HTTP request; other ASGI traffic (lifespan) passes through untouched."""

    def __init__(self, app: ASGIApp, *, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        route, method = route_template(self.routes, scope), str(scope["method"])
        observed = False

        def observe(status: object) -> None:
            nonlocal observed
            observed = True
            metrics.HTTP_REQUEST_DURATION.labels(route=route, method=method, status=str(status)).observe(
                time.perf_counter() - started
            )

        async def timed_send(message: Message) -> None:
            if message["type"] == "http.response.start" and not observed:
                observe(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            if not observed:  # the app failed before it answered: the server answers 500
                observe(500)
