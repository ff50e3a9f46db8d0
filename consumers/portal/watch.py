"""The portal keeps an eye on the bus for the system banner: every ``stages_poll_s`` it looks at the stages (the
supervisor's ``/stages``, or their ``/readyz``) and at Kafka itself, and puts what is wrong in the state, which
pushes it to every open HQ console and member page."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import tzinfo

import structlog

from consumers.portal.alerts import alerts_for
from consumers.portal.state import PortalState
from firebus.settings import Settings
from firebus.stages import kafka_problem, observe_stages

log = structlog.get_logger(__name__)


async def watch(settings: Settings, state: PortalState, stop: asyncio.Event, *, zone: tzinfo) -> None:
    """Refresh ``state.alerts`` until ``stop`` is set."""
    while not stop.is_set():
        seen, problem = await asyncio.gather(observe_stages(settings), kafka_problem(settings))
        alerts = alerts_for(seen, kafka_problem=problem, follower_problem=state.follower_problem, zone=zone)
        if state.set_alerts(alerts):
            if alerts:
                log.warning("portal_banner_shown", alerts=[f"{alert.headline}: {alert.detail}" for alert in alerts])
            else:
                log.info("portal_banner_cleared")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=settings.stages_poll_s)
