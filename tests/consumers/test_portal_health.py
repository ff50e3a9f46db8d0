"""The portal's health: anonymous /healthz says up and nothing more, /readyz says whether it has caught up with the
topics it follows (and why not), /metrics has its request latencies by route template, never by raw path."""

from __future__ import annotations

import asyncio
import sys
import uuid
from pathlib import Path

from consumers.portal import Portal, create_app
from firebus.broker import free_port
from firebus.county import County
from firebus.settings import Settings
from tests.asgi import asgi_request
from tests.consumers.test_portal_units import InMemoryDesk
from tests.health import get, get_json, parse_metrics, scrape, until, value

ROOT = Path(__file__).resolve().parents[2]
LATENCY = "firebus_http_request_duration_seconds_count"


def portal_of(county: County, settings: Settings | None = None) -> Portal:
    return Portal(settings=settings or Settings(), county=county, desk=InMemoryDesk(county))


async def test_healthz_is_up_and_readyz_waits_for_the_follower(county: County) -> None:
    """Before the portal has caught up, /healthz is already up (and says nothing else) and /readyz is 503 with the
    reason; once caught up, /readyz is ready."""
    portal = portal_of(county)
    app = create_app(portal, follow_topics=False)
    healthz = await asgi_request(app, "GET", "/healthz")
    assert (healthz.status, healthz.body) == (200, b'{"status":"up"}')
    waiting = await asgi_request(app, "GET", "/readyz")
    assert waiting.status == 503
    assert waiting.body == b'{"ready":false,"reason":"catching up with the tier, HQ live and review topics"}'
    portal.state.ready.set()
    assert (await asgi_request(app, "GET", "/readyz")).body == b'{"ready":true}'
    assert (await asgi_request(app, "GET", "/healthz")).body == b'{"status":"up"}'


async def test_a_follower_that_stopped_keeps_the_portal_not_ready_and_says_why(county: County) -> None:
    """The follower cannot reach a broker: it stops, the portal logs it, and /readyz names the failure."""
    settings = Settings(bootstrap=f"127.0.0.1:{free_port()}", connect_timeout_s=1)
    portal = portal_of(county, settings)
    app = create_app(portal)
    async with app.router.lifespan_context(app):

        async def stopped() -> bool:
            return portal.state.follower_problem is not None

        await until(stopped, "the follower stopping", within_s=30)
        answer = await asgi_request(app, "GET", "/readyz")
    assert answer.status == 503
    assert b'"reason":"stopped following its topics: BrokerUnavailableError' in answer.body


async def test_request_latencies_are_labelled_by_route_template(county: County) -> None:
    """A page with a path parameter counts under its template, an unknown path under `unmatched`, a refused
    method under its route with 405, so the label values stay as few as the routes."""
    app = create_app(portal_of(county), follow_topics=False)
    before = parse_metrics((await asgi_request(app, "GET", "/metrics")).body.decode())
    for path in (f"/notices/{uuid.uuid4()}", f"/notices/{uuid.uuid4()}", f"/no/such/{uuid.uuid4()}"):
        await asgi_request(app, "GET", path)
    await asgi_request(app, "POST", "/feed.atom")
    after = parse_metrics((await asgi_request(app, "GET", "/metrics")).body.decode())

    def grew(route: str, method: str, status: str) -> float:
        labels = {"route": route, "method": method, "status": status}
        return value(after, LATENCY, **labels) - value(before, LATENCY, **labels)

    assert grew("/notices/{thread_id}", "GET", "404") == 2
    assert grew("unmatched", "GET", "404") == 1
    assert grew("/feed.atom", "POST", "405") == 1
    assert grew("/metrics", "GET", "200") == 1
    routes = {dict(labels)["route"] for name, labels in after if name == LATENCY}
    assert not any(route.startswith(("/notices/", "/no/")) and "{" not in route for route in routes)


async def test_the_portal_process_serves_health_readiness_and_metrics(cli_env: dict[str, str], tmp_path: Path) -> None:
    """`firebus portal` on the session broker: /healthz says up and holds no counts, /readyz turns ready, /metrics
    has the latency of the requests it answered."""
    port = free_port()
    log_path = tmp_path / "portal.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "cli", "portal", "--port", str(port), env=cli_env, cwd=ROOT, stdout=log, stderr=log
        )
    url = f"http://127.0.0.1:{port}"
    try:

        async def ready() -> bool:
            assert process.returncode is None, log_path.read_text()
            return (await get_json(f"{url}/readyz")) == (200, {"ready": True})

        await until(ready, "the portal ready")
        assert await get_json(f"{url}/healthz") == (200, {"status": "up"})
        assert (await get(f"{url}/"))[0] == 200
        samples = await scrape(url)
        assert value(samples, LATENCY, route="/readyz", method="GET", status="200") >= 1
        assert value(samples, LATENCY, route="/", method="GET", status="200") == 1
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), timeout=30)
