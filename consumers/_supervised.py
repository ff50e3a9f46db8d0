"""Sinks side by side in one process, each under its own runner: one crashing never stops another.

``firebus sinks`` runs the archive (PostgreSQL), the archive files and, with a gateway, SMS. Each runs in a task of
its own with its own consumer group. When a runner raises, the crash is logged with its cause (``sink_crashed``)
and that sink alone is started again after a pause that doubles with each crash in a row (RESTART_FIRST_S up to
RESTART_MAX_S; a run of HEALTHY_RUN_S or more starts the count again), so a sink failing at every start does not
spin and a sink that fails once is back at once. The other sinks do not notice.

Restarting inside the process, rather than exiting for ``firebus up`` to restart the stage, keeps the healthy sinks
running. What no restart can fix is different: a :class:`~firebus.errors.ConfigurationError` (a bad setting, an
archive directory another sink holds) stops every sink and the process exits 1 with one line naming the sink —
the supervisor of ``firebus up`` reports that, restarts the stage with its own backoff and gives up loudly.

A crashed sink's readiness says so (``crashed (…); restarting``) until its next run has caught up again; the
health server of ``firebus sinks`` serves it on /readyz, next to the readiness of the sinks that are working.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

import structlog

from consumers._runner import SinkRunner, _stopped_within
from firebus.errors import ConfigurationError

log = structlog.get_logger(__name__)

RESTART_FIRST_S = 1.0
RESTART_MAX_S = 30.0
HEALTHY_RUN_S = 60.0


def restart_delay(crashes_in_a_row: int) -> float:
    """How long a sink that crashed ``crashes_in_a_row`` times in a row waits before its next start."""
    return min(RESTART_MAX_S, RESTART_FIRST_S * 2.0 ** max(0, crashes_in_a_row - 1))


@dataclass
class SinkState:
    """One sink's record of crashes, as the supervisor keeps it."""

    crashes: int = 0
    crashes_in_a_row: int = 0
    last_error: str | None = None


class SinkSupervisor:
    """Runs every runner until ``stop`` is set, restarting each one that crashes."""

    def __init__(self, runners: Sequence[SinkRunner]) -> None:
        self.runners = list(runners)
        self.states = {runner.sink.name: SinkState() for runner in self.runners}

    async def run(self, stop: asyncio.Event) -> None:
        """Until ``stop``; a sink that cannot be configured stops them all and its error is raised, naming it."""
        tasks = [asyncio.create_task(self._keep_running(r, stop), name=r.sink.name) for r in self.runners]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        finally:
            stop.set()
            outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome

    async def _keep_running(self, runner: SinkRunner, stop: asyncio.Event) -> None:
        name, state = runner.sink.name, self.states[runner.sink.name]
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            started = loop.time()
            try:
                await runner.run(stop)
            except ConfigurationError as exc:
                raise ConfigurationError(f"sink {name}: {exc}") from exc
            except Exception as exc:  # any crash of one sink: reported, and that sink restarted
                ran_s = loop.time() - started
                state.crashes += 1
                state.crashes_in_a_row = 1 if ran_s >= HEALTHY_RUN_S else state.crashes_in_a_row + 1
                state.last_error = _one_line(exc)
                delay = restart_delay(state.crashes_in_a_row)
                runner.readiness.not_ready(f"crashed ({state.last_error}); restarting in {delay:.0f} s")
                log.error(
                    "sink_crashed",
                    sink=name,
                    error=state.last_error,
                    crashes=state.crashes,
                    ran_s=round(ran_s, 1),
                    restart_in_s=delay,
                    exc_info=exc,
                )
                if not await _stopped_within(stop, delay):
                    log.info("sink_restarting", sink=name, crashes=state.crashes)
            else:
                return


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
