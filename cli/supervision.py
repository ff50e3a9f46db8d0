"""What the supervisor of ``firebus up`` decides, with no process in sight: when to restart a stage that exited,
how long to wait first, when to give up on it, and what to say about it.

A stage that exits is restarted after a wait that doubles with each failure in the last
``supervisor_give_up_within_s`` (from ``supervisor_backoff_s`` up to ``supervisor_backoff_max_s``); the
``supervisor_give_up_after``-th failure within that window gives it up for good (state ``failed``). The shell around
it (:mod:`cli.supervisor`) starts and watches the processes and reports each step to a :class:`StageBook`.
"""

from __future__ import annotations

import json
import re
import signal
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta

from firebus.settings import Settings
from firebus.stages import StageReport, StageState

ERROR_LINE_CHARS = 300
"""A reported error is one line of at most this many characters (a traceback's last line, a log event)."""


@dataclass(frozen=True)
class RestartPolicy:
    """Exponential backoff, capped, and the give-up rule: ``give_up_after`` failures within ``within_s``."""

    first_delay_s: float = 1.0
    max_delay_s: float = 30.0
    give_up_after: int = 5
    within_s: float = 60.0

    @classmethod
    def of(cls, settings: Settings) -> RestartPolicy:
        return cls(
            first_delay_s=settings.supervisor_backoff_s,
            max_delay_s=settings.supervisor_backoff_max_s,
            give_up_after=settings.supervisor_give_up_after,
            within_s=settings.supervisor_give_up_within_s,
        )

    def delay_s(self, recent_failures: int) -> float:
        """The wait before the restart that follows the ``recent_failures``-th failure in the window."""
        doublings = min(max(recent_failures - 1, 0), 30)  # 2**30 s is past any cap; keeps the float finite
        return min(self.max_delay_s, self.first_delay_s * float(2**doublings))


@dataclass(frozen=True)
class Restart:
    """Start the stage again after ``after_s`` seconds."""

    after_s: float
    recent_failures: int


@dataclass(frozen=True)
class GiveUp:
    """Leave the stage down: it failed ``failures`` times within ``within_s`` seconds."""

    failures: int
    within_s: float


Decision = Restart | GiveUp


def describe_exit(returncode: int) -> str:
    """``exit code 1``, or ``signal SIGKILL`` for a process a signal ended (a negative return code)."""
    if returncode >= 0:
        return f"exit code {returncode}"
    try:
        return f"signal {signal.Signals(-returncode).name}"
    except ValueError:
        return f"signal {-returncode}"


class StageBook:
    """One supervised stage's life: its state, process, restarts and the cause of its last exit.

    The shell tells it what happened (:meth:`started`, :meth:`ready`, :meth:`exited`, :meth:`stopped`) with the time
    it happened; :meth:`exited` answers what to do next. :meth:`report` is its entry in ``GET /stages``.
    """

    def __init__(self, stage: str, policy: RestartPolicy, *, now: datetime) -> None:
        self.stage = stage
        self.policy = policy
        self.state = StageState.STARTING
        self.since = now
        self.pid: int | None = None
        self.restarts = 0
        self.last_exit: str | None = None
        self.last_error: str | None = None
        self._failures: deque[datetime] = deque()

    def _enter(self, state: StageState, now: datetime) -> None:
        if state is not self.state:
            self.state, self.since = state, now

    def started(self, pid: int | None, *, now: datetime) -> None:
        """A process was started for the stage (a restart when it had failed before)."""
        if self.state is StageState.RESTARTING:
            self.restarts += 1
        self.pid = pid
        self._enter(StageState.STARTING, now)

    def ready(self, *, now: datetime) -> None:
        """The stage answers (its readiness probe, or it stayed up): running."""
        if self.state is StageState.STARTING:
            self._enter(StageState.RUNNING, now)

    def exited(self, returncode: int, last_error: str | None, *, now: datetime) -> Decision:
        """The stage's process ended without being asked to: restart it after a wait, or give it up."""
        self.pid = None
        self.last_exit = describe_exit(returncode)
        self.last_error = last_error
        return self.failed(now=now)

    def failed(self, *, now: datetime, error: str | None = None) -> Decision:
        """The stage went down (its process exited, or could not be started: ``error``): what now."""
        if error is not None:
            self.last_error = error
        self._failures.append(now)
        window_start = now - timedelta(seconds=self.policy.within_s)
        while self._failures and self._failures[0] < window_start:
            self._failures.popleft()
        recent = len(self._failures)
        if recent >= self.policy.give_up_after:
            self._enter(StageState.FAILED, now)
            return GiveUp(failures=recent, within_s=self.policy.within_s)
        self._enter(StageState.RESTARTING, now)
        return Restart(after_s=self.policy.delay_s(recent), recent_failures=recent)

    def note(self, text: str) -> None:
        """What the supervisor has to say about the stage (``last_error`` of its report)."""
        self.last_error = one_line(text)

    def stopped(self, *, now: datetime) -> None:
        """Stopped on purpose (``firebus up`` is shutting down)."""
        self.pid = None
        self._enter(StageState.STOPPED, now)

    def report(self) -> StageReport:
        return StageReport(
            stage=self.stage,
            state=self.state,
            pid=self.pid,
            restarts=self.restarts,
            last_exit=self.last_exit,
            last_error=self.last_error,
            since=self.since,
        )


# --- what the operator reads -------------------------------------------------------------------------------------


def one_line(text: str) -> str:
    """``text`` on one line, cut to :data:`ERROR_LINE_CHARS`."""
    flat = " ".join(text.split())
    return flat if len(flat) <= ERROR_LINE_CHARS else flat[: ERROR_LINE_CHARS - 1] + "…"


_CLI_ERROR = "firebus: error: "
_LOG_ERROR_LEVELS = frozenset({"error", "critical", "exception", "fatal"})
_TRACEBACK_END = re.compile(r"^(?:[A-Za-z_][\w.]*\.)?[A-Z]\w*(?:Error|Exception|Exit|Interrupt|Warning)\b(?::.*)?$")
_CONSOLE_ERROR = re.compile(r"\[(?:error|critical|exception)\s*\]", re.IGNORECASE)


def last_error_line(log_text: str) -> str | None:
    """The last error a stage's log shows, on one line: the CLI's ``firebus: error: …`` line, a JSON log event at
    level error or above (with the last line of its exception), a console-rendered error event, or the final line
    of a Python traceback. None when the log shows no error (a process killed while all was well)."""
    for raw in reversed(log_text.splitlines()):
        line = raw.strip()
        if not line:
            continue
        if line.startswith(_CLI_ERROR):
            return one_line(line)
        if line.startswith("{"):
            found = _json_error(line)
            if found is not None:
                return one_line(found)
            continue
        if _CONSOLE_ERROR.search(line) or _TRACEBACK_END.match(line):
            return one_line(line)
    return None


def _json_error(line: str) -> str | None:
    try:
        entry = json.loads(line)
    except ValueError:
        return None
    if not isinstance(entry, dict) or str(entry.get("level", "")).lower() not in _LOG_ERROR_LEVELS:
        return None
    parts = [str(entry.get("event", ""))]
    parts += [f"{key}={entry[key]}" for key in ("error", "reason") if entry.get(key)]
    exception = entry.get("exception")
    if isinstance(exception, str) and exception.strip():
        parts.append(exception.strip().splitlines()[-1])
    return ": ".join(part for part in parts if part)


def failure_line(report: StageReport, decision: Decision) -> str:
    """The terminal line about a stage that went down: its cause, and the restart or the giving up."""
    cause = report.last_exit or "could not start"
    if report.last_error:
        cause += f"; last error: {report.last_error}"
    if isinstance(decision, GiveUp):
        return (
            f"{report.stage} failed {decision.failures} times within {decision.within_s:g} s; "
            f"not restarting it (last: {cause})"
        )
    return f"  {report.stage + ':':<11} went down ({cause}); restarting in {decision.after_s:g} s"
