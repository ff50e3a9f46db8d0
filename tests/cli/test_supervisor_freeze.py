"""While the embedded broker is started again, the stages are frozen — their whole process groups — and always
thawed after, so no stage's client can make the new broker auto-create a topic before firebus creates it."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest

from cli.supervision import RestartPolicy, StageBook
from cli.supervisor import StageSpec, SupervisedStage, frozen, now


def state_of(pid: int) -> str:
    """The process's scheduler state letter from /proc (T: stopped)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def settled_states(*pids: int, stopped: bool) -> tuple[str, ...]:
    """The states once a signal sent to them has taken effect (delivery is asynchronous), or as they are after 10 s."""
    deadline = time.monotonic() + 10
    while True:
        states = tuple(state_of(pid) for pid in pids)
        if all((state == "T") == stopped for state in states) or time.monotonic() > deadline:
            return states
        time.sleep(0.01)


async def test_frozen_stops_a_stage_and_its_children_and_continues_them_after_an_error(tmp_path: Path) -> None:
    """Inside ``frozen`` the stage and the child it started are stopped; after it, even when the block raised,
    both run again."""
    stage = SupervisedStage(
        StageSpec("stand-in", {}, tmp_path / "log"), StageBook("stand-in", RestartPolicy(), now=now())
    )
    process = await asyncio.create_subprocess_exec(
        "sh", "-c", "sleep 60 & echo $!; wait", stdout=asyncio.subprocess.PIPE, start_new_session=True
    )
    assert process.stdout is not None
    child = int((await process.stdout.readline()).decode())
    stage._process = process  # the stage as the supervisor would have started it
    try:
        seen: list[tuple[str, ...]] = []

        def broker_start_fails() -> None:
            with frozen([stage]):
                seen.append(settled_states(process.pid, child, stopped=True))
                raise RuntimeError("the broker did not start")

        with pytest.raises(RuntimeError):
            broker_start_fails()
        assert seen == [("T", "T")]
        assert "T" not in settled_states(process.pid, child, stopped=False)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        await process.wait()
