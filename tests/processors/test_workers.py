"""`firebus processors --workers N`: N worker processes in one command, supervised: one SIGKILLed is started again by
the command, and every event is still released exactly once."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from cli.processors import default_workers
from firebus.broker import EmbeddedBroker, free_port
from firebus.county import County
from firebus.kafka import create_topics
from firebus.settings import Settings
from tests.processors.conftest import ROOT
from tests.processors.test_restart import held_and_streamed, log_tail, released_without_stalling

RUNNING = re.compile(r"(processors-\d+): +running (?:again )?\(pid (\d+)")


def pids(output: Path) -> dict[str, list[int]]:
    """Each worker's pids so far, from the command's lines (``processors-1: running again (pid 12, restart 1)``)."""
    found: dict[str, list[int]] = {}
    for name, pid in RUNNING.findall(output.read_text(errors="replace")):
        found.setdefault(name, []).append(int(pid))
    return found


async def until(condition: Callable[[], bool], what: str, output: Path, *, within_s: float = 120) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while not condition():
        assert loop.time() < deadline, f"{what}; the command said:\n{log_tail(output)}"
        await asyncio.sleep(0.2)


def test_the_default_is_one_worker_per_core_capped_by_the_review_partitions() -> None:
    """More workers than review partitions would sit idle; at least one always runs."""
    assert default_workers(2, 3) == 2
    assert default_workers(16, 3) == 3
    assert default_workers(None, 3) == 1


async def test_two_workers_in_one_command_one_sigkilled_is_restarted_and_nothing_is_released_twice(
    settings: Settings, county: County, tmp_path: Path
) -> None:
    """`firebus processors --workers 2`: one worker is SIGKILLed mid-stream; the command starts it again (a new pid,
    said on its output), and every pre-authorised event is released exactly once."""
    async with EmbeddedBroker(port=free_port(), log_path=tmp_path / "broker.log") as broker:
        isolated = settings.model_copy(update={"bootstrap": broker.bootstrap_servers, "home": tmp_path})
        await create_topics(isolated)
        env = {
            **os.environ,
            "FIREBUS_BOOTSTRAP": isolated.bootstrap_servers,
            "FIREBUS_HOME": str(tmp_path),
            "FIREBUS_KEYS_DIR": str(isolated.key_directory),
            "FIREBUS_FETCH_MAX_WAIT_MS": "50",
            "FIREBUS_GROUP_SESSION_TIMEOUT_S": "4",
            "FIREBUS_LOG_FORMAT": "json",
            "FIREBUS_PROCESSORS_HEALTH_PORT": "0",
        }
        output = tmp_path / "processors.out"
        with output.open("ab") as out:
            command = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "cli", "processors", "--workers", "2", env=env, cwd=ROOT, stdout=out, stderr=out
            )
        try:
            await until(lambda: len(pids(output)) == 2, "two workers never started", output)
            killed = pids(output)["processors-0"][0]

            async def kill_one() -> None:
                os.kill(killed, signal.SIGKILL)
                await until(
                    lambda: len(pids(output)["processors-0"]) == 2, "the killed worker was not started again", output
                )

            _held, routine_ids = await held_and_streamed(isolated, county, kill_one)
            released = await released_without_stalling(isolated, routine_ids, tmp_path / "processors-0.log")
            assert {event_id: n for event_id, n in released.items() if n > 1} == {}
            assert "processors-0: went down (signal SIGKILL)" in log_tail(output)
        finally:
            command.terminate()
            await asyncio.wait_for(command.wait(), timeout=60)
        assert command.returncode == 0
