"""The sinks' health: a runner is ready once it has caught up and not while its outside system is down, and a real
`firebus sinks` process serves /healthz, /readyz and /metrics that follow what it archives and dead-letters."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from uuid import uuid4

from prometheus_client import REGISTRY

from consumers import Delivery, SinkRunner
from firebus.errors import SinkUnavailableError
from firebus.events import Audience
from firebus.settings import Settings
from firebus.topics import AUDIT, TIERS
from producers import FirebusClient
from tests.consumers.archiving import DAY_2, ROOT, crafted_release, outgoing, produce
from tests.consumers.test_runner import CODEC, RecordingSink, release
from tests.consumers.test_runner import produce as produce_values
from tests.health import get_json, health_url, logged, scrape, series, until, until_grown, until_ready


class OutageSink(RecordingSink):
    """A recording sink whose outside system is down until ``back`` is set."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.back = asyncio.Event()

    async def deliver(self, delivery: Delivery) -> None:
        if not self.back.is_set():
            raise SinkUnavailableError("database unavailable")
        await super().deliver(delivery)


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_a_runner_is_not_ready_while_its_sink_retries_and_ready_once_caught_up(settings: Settings) -> None:
    """While the sink's outside system is down the runner retries, counts the retries and says why it is not ready;
    once it is back, the runner delivers and is ready when the backlog found at assignment is applied."""
    sink = OutageSink(f"health-{uuid4().hex[:8]}")
    runner = SinkRunner(sink, settings=settings)
    stage = f"consumers.{sink.name}"
    assert runner.readiness.stage == stage
    mine = release()
    await produce_values(settings, TIERS[Audience.MEMBERS], [CODEC.encode(mine)])
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    try:

        async def retrying() -> bool:
            assert not task.done()
            return sample("firebus_sink_retries_total", sink=sink.name, step="deliver") >= 2

        await until(retrying, "the runner retrying")
        assert not runner.readiness.is_ready
        assert runner.readiness.reason == "retrying, its outside system is unavailable: database unavailable"
        assert sample("firebus_sink_deliveries_total", sink=sink.name) == 0
        sink.back.set()

        async def caught_up() -> bool:
            assert not task.done()
            return runner.readiness.is_ready and mine.event_id in sink.flushed

        await until(caught_up, "the runner ready after the outage")
        assert sample("firebus_sink_deliveries_total", sink=sink.name) >= 1
        assert sample("firebus_events_in_total", stage=stage, topic=TIERS[Audience.MEMBERS].name) >= 1
        assert sample("firebus_stage_ready", stage=stage) == 1
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)


async def test_firebus_sinks_serves_health_readiness_and_metrics(
    kafka: Settings,
    client: FirebusClient,
    cli_env: dict[str, str],
    dsn: str,
    tmp_path: Path,
) -> None:
    """`firebus sinks` (port 0): /healthz is up, /readyz turns ready (each sink logs its way there); a release and an
    unreadable record on a tier show in /metrics as records in, deliveries per sink, dead letters by stage and reason,
    audit records out and lag per group; SIGTERM stops it cleanly."""
    env = {
        **cli_env,
        "FIREBUS_BOOTSTRAP": kafka.bootstrap_servers,
        "FIREBUS_ARCHIVE_DSN": dsn,
        "FIREBUS_ARCHIVE_DIR": str(tmp_path / "archive"),
        "FIREBUS_GROUP_SESSION_TIMEOUT_S": "4",
        "FIREBUS_FETCH_MAX_WAIT_MS": "50",
    }
    log_path = tmp_path / "sinks.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "cli", "sinks", env=env, cwd=ROOT, stdout=log, stderr=log
        )
    try:
        url = await health_url(log_path, process)
        assert await get_json(f"{url}/healthz") == (200, {"status": "up"})

        await until_ready(url, "the sinks ready")
        assert {line["stage"] for line in logged(log_path, "stage_ready")} == {
            "consumers.archive",
            "consumers.archive-files",
        }
        before = await scrape(url)
        members = TIERS[Audience.MEMBERS].name
        await produce(kafka, outgoing([crafted_release(client, Audience.MEMBERS, f"health-{uuid4().hex[:8]}", DAY_2)]))
        await produce(kafka, [(TIERS[Audience.MEMBERS], b"health", b"not a release", None)])
        wanted = {}
        for sink in ("archive", "archive-files"):
            stage = f"consumers.{sink}"
            wanted[f"{sink} in"] = ("firebus_events_in_total", 2, {"stage": stage, "topic": members})
            wanted[f"{sink} delivered"] = ("firebus_sink_deliveries_total", 1, {"sink": sink})
            wanted[f"{sink} dead letter"] = ("firebus_dead_letters_total", 1, {"stage": stage, "reason": "poison"})
        wanted["audit out"] = ("firebus_events_out_total", 2, {"stage": "consumers.archive", "topic": AUDIT.name})
        after = await until_grown(url, before, wanted)
        groups = {entry["group"] for entry in series(after, "firebus_consumer_lag", topic=members)}
        assert groups == {"firebus-sink-archive", "firebus-sink-archive-files"}
    finally:
        if process.returncode is None:
            process.terminate()
        returncode = await asyncio.wait_for(process.wait(), timeout=30)
    assert returncode == 0, log_path.read_text()
