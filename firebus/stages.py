"""The stages of a running firebus as an observer sees them: the supervisor's ``GET /stages`` (or, with no
supervisor, each stage's own ``/readyz``) and whether Kafka answers.

``firebus up`` serves :class:`StageReport` lists; the portal (its HQ banner) and ``firebus status`` read them back
with :func:`observe_stages` and ask :func:`kafka_problem` about the bus itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import aiohttp
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import KafkaError
from pydantic import BaseModel, ConfigDict, ValidationError

from firebus.kafka import client_options
from firebus.settings import Settings

PROBE_TIMEOUT_S = 2.0
"""How long one look at a stage or at Kafka may take: an observer polls every few seconds."""

EMBEDDED_BROKER = "broker"
"""The stage name of the embedded broker (Tansu) in the supervisor's reports."""


class StageState(StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    RESTARTING = "restarting"
    FAILED = "failed"
    """Given up on after repeated fast failures: nobody restarts it."""
    STOPPED = "stopped"


class StageReport(BaseModel):
    """One stage in ``GET /stages``: what it is doing, since when, and why it last went down."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    stage: str
    state: StageState
    pid: int | None = None
    restarts: int = 0
    last_exit: str | None = None
    """How its last process ended: ``exit code 1``, ``signal SIGKILL``."""
    last_error: str | None = None
    """One line: the last error in its log, or what the supervisor has to say about it."""
    since: datetime
    """When it entered ``state`` (UTC)."""

    @property
    def healthy(self) -> bool:
        return self.state is StageState.RUNNING

    def as_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def reports_from_json(data: Any) -> list[StageReport]:
    """The supervisor's answer, checked; :class:`ValueError` when it is not a list of stage reports."""
    if not isinstance(data, list):
        raise ValueError("GET /stages must answer a JSON list")
    try:
        return [StageReport.model_validate(item) for item in data]
    except ValidationError as exc:
        raise ValueError(f"GET /stages answered something else than stage reports: {exc}") from exc


@dataclass(frozen=True)
class StagesSeen:
    """What one look at the stages found: the reports, where they came from, and why there are none."""

    reports: tuple[StageReport, ...] = ()
    source: str | None = None
    """The supervisor's /stages URL, ``readiness`` (each stage's /readyz), or None: nothing to ask."""
    problem: str | None = None
    """Why the stages could not be seen (the supervisor did not answer); None when they were, or none is expected."""

    @property
    def unhealthy(self) -> tuple[StageReport, ...]:
        return tuple(report for report in self.reports if not report.healthy)


async def _get_json(session: aiohttp.ClientSession, url: str) -> tuple[int, Any]:
    async with session.get(url) as response:
        body = await response.read()
    try:
        return response.status, json.loads(body) if body else None
    except ValueError:
        return response.status, None


async def observe_stages(settings: Settings) -> StagesSeen:
    """The stages from the supervisor's ``stages_url``; with no supervisor configured, from ``readiness_urls``."""
    timeout = aiohttp.ClientTimeout(total=PROBE_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        if settings.stages_url:
            try:
                status, data = await _get_json(session, settings.stages_url)
                if status != 200:
                    raise ValueError(f"HTTP {status}")
                return StagesSeen(tuple(reports_from_json(data)), source=settings.stages_url)
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                problem = f"the supervisor at {settings.stages_url} does not answer ({_reason(exc)})"
                if not settings.readiness_urls:
                    return StagesSeen(problem=problem)
        if not settings.readiness_urls:
            return StagesSeen()
        reports = await asyncio.gather(
            *(_readiness(session, stage, url) for stage, url in settings.readiness_urls.items())
        )
        return StagesSeen(tuple(reports), source="readiness")


async def _readiness(session: aiohttp.ClientSession, stage: str, url: str) -> StageReport:
    """A stage's ``/readyz`` as a report: ready is running, not ready is starting (with its reason), no answer is
    stopped."""
    now = datetime.now(UTC)
    try:
        status, data = await _get_json(session, url)
    except (aiohttp.ClientError, TimeoutError) as exc:
        return StageReport(
            stage=stage, state=StageState.STOPPED, last_error=f"no answer at {url}: {_reason(exc)}", since=now
        )
    if status == 200:
        return StageReport(stage=stage, state=StageState.RUNNING, since=now)
    reason = data.get("reason") if isinstance(data, Mapping) else None
    return StageReport(
        stage=stage, state=StageState.STARTING, last_error=str(reason or f"not ready (HTTP {status})"), since=now
    )


def _reason(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def bootstrap_addresses(bootstrap_servers: str) -> list[tuple[str, int]]:
    """``host:port`` pairs of a bootstrap list (``[::1]:9092`` included); port 9092 when none is given."""
    found = []
    for entry in filter(None, (part.strip() for part in bootstrap_servers.split(","))):
        host, colon, port = entry.rpartition(":")
        if not colon or not port.isdigit():
            host, port = entry, "9092"
        found.append((host.strip("[]"), int(port)))
    return found


async def _accepts(host: str, port: int) -> bool:
    try:
        _reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout=PROBE_TIMEOUT_S)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


async def kafka_problem(settings: Settings) -> str | None:
    """None when Kafka answers a metadata request; else one line saying what is wrong.

    A bare TCP probe comes first, so a broker that is down costs no Kafka client (and none of its log lines)."""
    addresses = bootstrap_addresses(settings.bootstrap_servers)
    reachable = await asyncio.gather(*(_accepts(host, port) for host, port in addresses))
    if not any(reachable):
        return f"cannot reach Kafka at {settings.bootstrap_servers}: nothing answers there"
    options = client_options(settings, client_id=f"{settings.client_id}-probe")
    options["request_timeout_ms"] = int(PROBE_TIMEOUT_S * 1000)
    client = AIOKafkaClient(**options)
    try:
        await asyncio.wait_for(client.bootstrap(), timeout=PROBE_TIMEOUT_S * 2)
    except (KafkaError, OSError, TimeoutError) as exc:
        return f"Kafka at {settings.bootstrap_servers} does not answer: {_reason(exc)}"
    finally:
        await client.close()
    return None
