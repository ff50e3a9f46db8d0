"""`firebus up` as an operator runs it: its own embedded broker and every stage, on free ports, as real processes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from firebus.broker import free_port
from firebus.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
STAGES = ("processors", "sinks", "portal")
WAIT_S = 180.0
"""Longest wait for a state change (stages start slowly on a loaded machine); never a measured duration."""


def get_json(url: str) -> tuple[int, Any]:
    """GET ``url``: its status and JSON body (0, None when nothing answers)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310  (loopback)
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, None
    except (OSError, ValueError):
        return 0, None


class Up:
    """One `firebus up` process, its ports and files; stages are read from its GET /stages."""

    def __init__(self, directory: Path, *, dsn: str, env: dict[str, str] | None = None) -> None:
        self.directory = directory
        self.home = directory / "home"
        self.broker_port, self.portal_port, self.supervisor_port = free_port(), free_port(), free_port()
        self.portal_url = f"http://127.0.0.1:{self.portal_port}"
        self.stages_url = f"http://127.0.0.1:{self.supervisor_port}/stages"
        self.out_path, self.err_path = directory / "up.out", directory / "up.err"
        self.env = {
            **os.environ,
            "FIREBUS_HOME": str(self.home),
            "FIREBUS_BROKER_PORT": str(self.broker_port),
            "FIREBUS_PORTAL_PORT": str(self.portal_port),
            "FIREBUS_SUPERVISOR_PORT": str(self.supervisor_port),
            # Health ports of the stages (once they have them): any free one, never a fixed port another run holds.
            "FIREBUS_PROCESSORS_HEALTH_PORT": "0",
            "FIREBUS_SINKS_HEALTH_PORT": "0",
            "FIREBUS_ARCHIVE_DSN": dsn,
            "FIREBUS_PORTAL_DEMO": "1",  # the demo accounts (seeded into this schema) log in, as with `up --demo`
            "FIREBUS_PORTAL_SECRET": uuid.uuid4().hex,
            "FIREBUS_FETCH_MAX_WAIT_MS": "50",
            "FIREBUS_GROUP_SESSION_TIMEOUT_S": "4",
            "FIREBUS_STAGES_POLL_S": "1",
            "FIREBUS_LOG_FORMAT": "json",
            **(env or {}),
        }
        self.process: asyncio.subprocess.Process | None = None

    @property
    def settings(self) -> Settings:
        """Settings of a client of this bus (publishing, reading) with the development keys `firebus up` made."""
        return Settings(
            bootstrap=f"127.0.0.1:{self.broker_port}",
            home=self.home,
            keys_dir=self.home / "keys",
            connect_timeout_s=10,
        )

    async def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        with self.out_path.open("wb") as out, self.err_path.open("wb") as err:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "cli", "up", env=self.env, cwd=ROOT, stdout=out, stderr=err
            )

    def out(self) -> str:
        return self.out_path.read_text(errors="replace")

    def err(self) -> str:
        return self.err_path.read_text(errors="replace")

    def terminal(self) -> str:
        """Everything `firebus up` printed, for an assertion's message."""
        return f"--- stdout\n{self.out()}\n--- stderr\n{self.err()}"

    async def stages(self) -> dict[str, dict[str, Any]]:
        status, reports = await asyncio.to_thread(get_json, self.stages_url)
        if status != 200:
            return {}
        return {report["stage"]: report for report in reports}

    async def until(
        self, condition: Callable[[dict[str, dict[str, Any]]], bool], what: str, within_s: float = WAIT_S
    ) -> dict[str, dict[str, Any]]:
        """Poll GET /stages until ``condition`` holds; the stages then."""
        deadline = asyncio.get_running_loop().time() + within_s
        while True:
            assert self.process is not None
            if self.process.returncode is not None:
                raise AssertionError(
                    f"firebus up exited ({self.process.returncode}) waiting for {what}\n{self.terminal()}"
                )
            stages = await self.stages()
            if stages and condition(stages):
                return stages
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"never: {what}; stages {json.dumps(stages, indent=1)}\n{self.terminal()}")
            await asyncio.sleep(0.3)

    async def all_running(self) -> dict[str, dict[str, Any]]:
        return await self.until(
            lambda stages: all(stages.get(name, {}).get("state") == "running" for name in ("broker", *STAGES)),
            "every stage running",
        )

    async def signal_stage(self, stage: str, signum: signal.Signals) -> dict[str, Any]:
        """Send ``signum`` to the stage's process; its report from before."""
        before = (await self.stages())[stage]
        os.kill(before["pid"], signum)
        return before

    async def stop(self, signum: signal.Signals = signal.SIGTERM) -> int:
        """Stop it as an operator does (SIGTERM, or SIGINT for Ctrl-C); its exit code."""
        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(signum)
            try:
                await asyncio.wait_for(self.process.wait(), timeout=120)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
                raise AssertionError(f"firebus up did not stop on {signum.name}\n{self.terminal()}") from None
        assert self.process.returncode is not None
        return self.process.returncode


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (ended, not yet reaped by a parent that is itself gone) counts as ended.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return False
