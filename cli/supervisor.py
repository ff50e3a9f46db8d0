"""The supervisor of ``firebus up``: the thin shell around :mod:`cli.supervision` that starts each stage as its own
process, watches it, restarts it or gives it up as its :class:`~cli.supervision.StageBook` decides, does the same for
the embedded broker (recreating the topics, and saying loudly that everything on it was lost), and serves
``GET /stages`` and ``GET /healthz``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import socket
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from aiohttp import web

from cli.commands import firebus_command, say
from cli.supervision import GiveUp, StageBook, failure_line, last_error_line
from firebus.broker import LOOPBACK, EmbeddedBroker, die_with_parent
from firebus.errors import FirebusError
from firebus.kafka import create_topics
from firebus.settings import Settings
from firebus.stages import StageReport

STOP_GRACE_S = 15.0
"""How long a stage has to stop after SIGTERM before it is killed."""
SETTLE_S = 2.0
"""A stage without a readiness probe counts as running once it has stayed up this long."""
PROBE_EVERY_S = 0.5
LOG_TAIL_BYTES = 64 * 1024
"""How much of the end of a stage's log is searched for its last error."""


def now() -> datetime:
    return datetime.now(UTC)


def shout(line: str) -> None:
    """A line the operator must not miss, on standard error."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def log_tail(path: Path, start: int) -> str:
    """What the log got since ``start`` (its last :data:`LOG_TAIL_BYTES`): this run's lines only."""
    try:
        with path.open("rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(start, size - LOG_TAIL_BYTES))
            return handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def log_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


@dataclass(frozen=True)
class StageSpec:
    """How to run one stage: ``firebus NAME`` with ``env``, logging to ``log_path``."""

    name: str
    env: Mapping[str, str]
    log_path: Path
    probe_urls: tuple[str, ...] = ()
    """Readiness URLs, tried in order (a 404 moves on to the next: ``/readyz``, then ``/healthz``); none: the stage
    is running once it has stayed up :data:`SETTLE_S`."""
    args: tuple[str, ...] = ()
    """What follows ``firebus NAME`` on its command line."""
    command: str = ""
    """The firebus command when it is not ``name`` (several supervised processes of one command)."""
    killed_with_supervisor: bool = False
    """SIGKILL (not SIGTERM) when the supervisor dies: a stage that is restart-safe frees its ports at once for the
    supervisor's successor."""


class SupervisedStage:
    """One stage under supervision: started, watched, restarted with backoff or given up, stopped on request."""

    def __init__(self, spec: StageSpec, book: StageBook) -> None:
        self.spec = spec
        self.book = book
        self._process: asyncio.subprocess.Process | None = None
        self._stopping = asyncio.Event()

    async def _spawn(self) -> asyncio.subprocess.Process:
        self.spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.spec.log_path.open("ab") as output:
            return await asyncio.create_subprocess_exec(
                *firebus_command(self.spec.command or self.spec.name, *self.spec.args),
                env=dict(self.spec.env),
                stdout=output,
                stderr=asyncio.subprocess.STDOUT,
                stdin=asyncio.subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C reaches the supervisor only, which stops the stages in order
                preexec_fn=_killed_with_parent if self.spec.killed_with_supervisor else die_with_parent,
            )

    async def run(self) -> None:
        """Run the stage until it is stopped or given up."""
        name = self.spec.name
        while not self._stopping.is_set():
            start = log_size(self.spec.log_path)
            try:
                process = await self._spawn()
            except OSError as exc:
                decision = self.book.failed(now=now(), error=f"cannot start: {exc}")
            else:
                self._process = process
                if self._stopping.is_set():  # asked to stop while it was being started
                    await self._end(process)
                    break
                self.book.started(process.pid, now=now())
                restarts = self.book.restarts
                restart = f" again (pid {process.pid}, restart {restarts})" if restarts else f" (pid {process.pid})"
                say(f"  {name + ':':<11} running{restart}, log {self.spec.log_path}")
                readiness = asyncio.create_task(self._until_ready(process))
                returncode = await process.wait()
                readiness.cancel()
                if self._stopping.is_set():
                    break
                decision = self.book.exited(returncode, last_error_line(log_tail(self.spec.log_path, start)), now=now())
            report = self.book.report()
            if isinstance(decision, GiveUp):
                shout(f"firebus: error: {failure_line(report, decision)}; its log: {self.spec.log_path}")
                return
            shout(failure_line(report, decision))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=decision.after_s)
        self.book.stopped(now=now())

    async def _until_ready(self, process: asyncio.subprocess.Process) -> None:
        if not self.spec.probe_urls:
            await asyncio.sleep(SETTLE_S)
        else:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
                while not await _answers(session, self.spec.probe_urls):  # noqa: ASYNC110  (polling a server)
                    await asyncio.sleep(PROBE_EVERY_S)
        if process.returncode is None:
            self.book.ready(now=now())

    def signal_group(self, signum: signal.Signals) -> None:
        """Send ``signum`` to the stage's process group (the stage and any worker processes it started)."""
        if self._process is not None and self._process.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._process.pid, signum)

    async def stop(self) -> None:
        """Stop the stage and keep it stopped."""
        self._stopping.set()
        if self._process is not None:
            await self._end(self._process)

    @staticmethod
    async def _end(process: asyncio.subprocess.Process) -> None:
        """SIGTERM, then SIGKILL after :data:`STOP_GRACE_S`."""
        if process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            await asyncio.wait_for(process.wait(), timeout=STOP_GRACE_S)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()


def _killed_with_parent() -> None:
    """Runs in the child before exec: SIGKILL when the supervisor dies (Linux)."""
    if sys.platform == "linux":
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


PR_SET_PDEATHSIG = 1


async def _answers(session: aiohttp.ClientSession, urls: Sequence[str]) -> bool:
    """True when the first of ``urls`` that exists (not 404) answers 200."""
    for url in urls:
        try:
            async with session.get(url) as response:
                if response.status == 404:
                    continue
                return response.status == 200
        except (aiohttp.ClientError, TimeoutError):
            return False
    return False


def broker_lost_lines(report: StageReport, *, bootstrap: str, topics: int, archive: Path) -> list[str]:
    """What ``firebus up`` shouts when its embedded broker came back empty."""
    return [
        "firebus: " + "!" * 100,
        f"firebus: THE EMBEDDED BROKER RESTARTED ({report.last_exit or 'it went down'}) on {bootstrap} with memory "
        "storage: EVERYTHING ON IT WAS LOST",
        "firebus:   pending review items, HQ live, released tiers, audit records, dead letters and every consumer "
        f"group's offsets are gone; {topics} topic(s) were recreated empty.",
        f"firebus:   Records the archive sinks kept can be put back: firebus archive replay --from-files {archive}",
        "firebus:   The embedded broker keeps nothing across a restart; production runs Apache Kafka (deploy/).",
        "firebus: " + "!" * 100,
    ]


BROKER_LOST = (
    "the embedded broker restarted with memory storage: everything on it was lost (pending reviews, tiers, audit, "
    "offsets); production runs Apache Kafka (deploy/)"
)


@contextlib.contextmanager
def frozen(stages: Sequence[SupervisedStage]) -> Iterator[None]:
    """The stages stopped (SIGSTOP) for the duration, continued (SIGCONT) after, whatever happens meanwhile."""
    for stage in stages:
        stage.signal_group(signal.SIGSTOP)
    try:
        yield
    finally:
        for stage in stages:
            stage.signal_group(signal.SIGCONT)


class SupervisedBroker:
    """The embedded broker under supervision: restarted when its process dies, its topics recreated, the loss said.

    While it is started again and its topics created, the stages are frozen: a Kafka client's metadata request makes
    the broker auto-create the topic it names with the broker's default partition count, and a stage reconnecting
    in that window would leave a topic (the review inbox, say) with the wrong count for good."""

    def __init__(
        self,
        broker: EmbeddedBroker,
        book: StageBook,
        settings: Settings,
        log_path: Path,
        *,
        stages: Sequence[SupervisedStage] = (),
    ) -> None:
        self.broker = broker
        self.book = book
        self.settings = settings
        self.log_path = log_path
        self.stages = stages
        self._stopping = asyncio.Event()

    async def start(self) -> None:
        """The first start: a failure here is ``firebus up``'s own (one error line, exit 1), not a restart."""
        await self.broker.start()
        self.book.started(self.broker.pid, now=now())
        self.book.ready(now=now())

    async def run(self) -> None:
        try:
            await self._watch()
        except asyncio.CancelledError:
            if not self._stopping.is_set():
                raise
        self.book.stopped(now=now())

    async def _watch(self) -> None:
        while not self._stopping.is_set():
            start = log_size(self.log_path)
            returncode = await self.broker.wait()
            if self._stopping.is_set():
                break
            decision = self.book.exited(returncode, last_error_line(log_tail(self.log_path, start)), now=now())
            while not isinstance(decision, GiveUp):
                shout(failure_line(self.book.report(), decision))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), timeout=decision.after_s)
                if self._stopping.is_set():
                    break
                try:
                    with frozen(self.stages):
                        await self.broker.start()
                        created = await create_topics(self.settings)
                except FirebusError as exc:
                    await self.broker.stop()  # up but unusable (no topics): the next try starts afresh
                    decision = self.book.failed(now=now(), error=str(exc))
                    continue
                self.book.started(self.broker.pid, now=now())
                self.book.ready(now=now())
                self.book.note(BROKER_LOST)
                for line in broker_lost_lines(
                    self.book.report(),
                    bootstrap=self.broker.bootstrap_servers,
                    topics=len(created),
                    archive=self.settings.archive_directory,
                ):
                    shout(line)
                break
            else:
                shout(f"firebus: error: {failure_line(self.book.report(), decision)}; its log: {self.log_path}")
                await self._stopping.wait()

    async def stop(self, watching: asyncio.Task[None] | None = None) -> None:
        """Stop watching (``watching``: the task running :meth:`run`, which may be restarting the broker right now),
        then the broker."""
        self._stopping.set()
        if watching is not None:
            watching.cancel()
            await asyncio.gather(watching, return_exceptions=True)
        await self.broker.stop()


class StagesServer:
    """``GET /stages`` (every stage's report, JSON) and ``GET /healthz`` on a socket bound beforehand."""

    def __init__(self, books: Sequence[StageBook]) -> None:
        self.books = books
        self._runner: web.AppRunner | None = None

    async def stages(self, _request: web.Request) -> web.Response:
        return web.json_response([book.report().as_json() for book in self.books])

    async def healthz(self, _request: web.Request) -> web.Response:
        return web.json_response({"status": "up"})

    async def start(self, server: socket.socket) -> None:
        """Serve on ``server``, a bound socket (:func:`~firebus.broker.bound_socket`)."""
        app = web.Application()
        app.router.add_get("/stages", self.stages)
        app.router.add_get("/healthz", self.healthz)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.SockSite(self._runner, server).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def probe_host(host: str) -> str:
    """Where a local probe reaches a server listening on ``host`` (a wildcard address is reached on loopback)."""
    return LOOPBACK if host in ("", "0.0.0.0", "::") else host  # noqa: S104  (compared, not bound)


def stop_signals(stop: asyncio.Event) -> None:
    """Ctrl-C and SIGTERM set ``stop`` (the supervisor then stops everything in order)."""
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
