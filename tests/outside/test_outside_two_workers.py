"""The outside department's story with two `firebus processors` workers in one group, on a broker of its own: the
partitions an outside client's records arrive on and those their review state lives on are shared out between
two processes, and still every event is released exactly once and every view agrees."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from firebus.county import County
from firebus.settings import Settings
from tests.outside.scenario import ALERTS, outside_story
from tests.processors.conftest import Worker, group_on_own_broker


def assigned(log_path: Path, event: str) -> int | None:
    """How many partitions the worker's last ``event`` log line (``gate_assigned``) gave it; None before any."""
    found = None
    for line in log_path.read_text(errors="replace").splitlines():
        if f'"{event}"' in line:  # a JSON log line, maybe after a terminal control sequence
            found = int(json.loads(line[line.index("{") :]).get("partitions", 0))
    return found


async def both_working(workers: list[Worker], within_s: float = 90.0) -> None:
    """Wait until each worker's intake gate holds partitions: the group has settled with both in it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while not all(assigned(worker.log_path, "gate_assigned") for worker in workers):
        for worker in workers:
            assert worker.process is not None
            assert worker.process.returncode is None, worker.log_path.read_text(errors="replace")[-3000:]
        assert loop.time() < deadline, "the two workers never shared the intake"
        await asyncio.sleep(0.5)


async def test_two_workers_release_an_outside_client_s_events_once_and_agree(
    settings: Settings, county: County, keys_dir: Path, tmp_path: Path
) -> None:
    """The story of test_outside_client with two workers sharing every partition: each fire-related event on HQ live
    once, each approved one released once per tier, `review list --all` and the desk agree, a second approval is
    refused; both workers kept their share and ran to the end."""
    async with group_on_own_broker(settings, tmp_path, ("a", "b")) as (isolated, workers):
        await both_working(workers)
        story = await outside_story(isolated, county, keys_dir=keys_dir)
        assert len(story.approved) == len(ALERTS) + 1
        for worker in workers:
            assert worker.process is not None
            assert worker.process.returncode is None, f"{worker.log_path.name} stopped"
            assert assigned(worker.log_path, "gate_assigned"), f"{worker.log_path.name} lost its share"
