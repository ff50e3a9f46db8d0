"""Health endpoints of a long-running firebus process: liveness, readiness and Prometheus metrics.

Every long-running stage (``firebus processors``, ``firebus sinks``) runs a :class:`HealthServer` on its health port
(host ``Settings.health_host``), serving, anonymously:

    GET /healthz   200 {"status": "up"} while the process answers; nothing else (no counts, no topic names)
    GET /readyz    200 {"ready": true} when every stage of the process is ready, otherwise
                   503 {"ready": false, "reason": "<stage>: <one short line>"}
    GET /metrics   the Prometheus text exposition of :mod:`firebus.metrics` (and the client library's process metrics)

The server is aiohttp's, in the process's own event loop: aiohttp is already a dependency, it shuts down cleanly
with the loop (``close``), and a liveness answer then proves that the loop which does the work is turning — a
thread of ``prometheus_client``'s own server would answer even with the loop stuck. The port is bound by
:meth:`HealthServer.bind`, synchronously and before anything else starts, so a port already in use is one
:class:`~firebus.errors.ConfigurationError` line and exit 1 before the stage touches Kafka; port 0 binds a free port
(tests), which :attr:`HealthServer.url` tells.

Each stage owns a :class:`Readiness` and says ``ready()`` or ``not_ready(reason)``; what ready means is the stage's
(see the README's health section). A consumer stage's usual condition is its :class:`Backlog`: joined its group with
an assignment, and caught up with what its partitions held when they were assigned.
"""

from __future__ import annotations

import contextlib
import errno
import socket
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog
from aiohttp import web
from prometheus_client.aiohttp import make_aiohttp_handler

from firebus import metrics
from firebus.errors import ConfigurationError

log = structlog.get_logger(__name__)

REASON_MAX = 200
"""Longest readiness reason served: one short line."""


class Readiness:
    """Whether one stage is ready, and if not, why (one short line). Starts not ready: ``starting``."""

    def __init__(self, stage: str) -> None:
        self.stage = stage
        self._reason: str | None = "starting"
        metrics.STAGE_READY.labels(stage=stage).set(0)

    @property
    def is_ready(self) -> bool:
        return self._reason is None

    @property
    def reason(self) -> str | None:
        """Why the stage is not ready; None when it is."""
        return self._reason

    def ready(self) -> None:
        if self._reason is not None:
            log.info("stage_ready", stage=self.stage, was=self._reason)
        self._reason = None
        metrics.STAGE_READY.labels(stage=self.stage).set(1)

    def not_ready(self, reason: str) -> None:
        line = " ".join(reason.split())[:REASON_MAX]
        if self._reason is None:
            log.warning("stage_not_ready", stage=self.stage, reason=line)
        self._reason = line
        metrics.STAGE_READY.labels(stage=self.stage).set(0)


def readiness_of(stages: Iterable[Readiness]) -> tuple[bool, str | None]:
    """The process is ready when every stage is; else the first stage's reason, and how many more are not ready."""
    waiting = [stage for stage in stages if not stage.is_ready]
    if not waiting:
        return True, None
    more = f" (and {len(waiting) - 1} more)" if len(waiting) > 1 else ""
    return False, f"{waiting[0].stage}: {waiting[0].reason}{more}"


@dataclass
class Backlog:
    """The backlog a consumer found on its partitions when they were assigned, and whether it has caught up.

    A partition's target is its high-water mark the first time it is known after the assignment; the partition is
    caught up once the consumer's next offset to handle has reached that target. Records published since do not
    move the target: under a steady stream the lag never reaches 0, yet the stage is working. A new assignment (a
    rebalance that changed the partitions) sets new targets. A consumer without partitions is not ready: it is
    still joining its group, or has nothing to do (more consumers in the group than partitions).
    """

    targets: dict[tuple[str, int], int | None] = field(default_factory=dict)
    reached: set[tuple[str, int]] = field(default_factory=set)

    def assigned(self, partitions: Iterable[tuple[str, int]]) -> set[tuple[str, int]]:
        """The group's current assignment; a changed one starts the catch-up again. Returns the partitions that are
        no longer assigned (another consumer measures them now)."""
        partitions = set(partitions)
        gone = set(self.targets) - partitions
        if partitions != set(self.targets):
            self.targets = dict.fromkeys(partitions)
            self.reached = set()
        return gone

    @property
    def joined(self) -> bool:
        """Whether the consumer has partitions assigned."""
        return bool(self.targets)

    def observe(self, partition: tuple[str, int], next_offset: int, highwater: int | None) -> None:
        """Where the consumer is on one assigned partition (``highwater`` None: not fetched yet)."""
        if partition not in self.targets or highwater is None:
            return
        target = self.targets[partition]
        if target is None:
            target = self.targets[partition] = highwater
        if next_offset >= target:
            self.reached.add(partition)

    @property
    def caught_up(self) -> bool:
        return self.joined and self.reached >= set(self.targets)

    def remaining(self, positions: Mapping[tuple[str, int], int]) -> int:
        """Records still to handle before the targets known so far are reached."""
        return sum(
            max(0, target - positions.get(partition, target))
            for partition, target in self.targets.items()
            if target is not None and partition not in self.reached
        )

    def why_not(self, positions: Mapping[tuple[str, int], int]) -> str:
        if not self.joined:
            return "no partitions assigned: joining the consumer group (or more consumers than partitions)"
        return f"catching up with the backlog at assignment ({self.remaining(positions)} records to go)"


async def measure(
    assignment: Collection[Any],
    next_offset: Callable[[Any], Awaitable[int]],
    highwater: Callable[[Any], int | None],
    *,
    group: str,
    backlog: Backlog,
    readiness: Readiness,
) -> None:
    """Update the lag gauges of a consumer's assigned partitions (each a ``TopicPartition``), and the stage's readiness
    from its backlog. ``highwater`` is the last one a fetch response reported (None before the first: then the
    partition is not measured yet), ``next_offset`` the offset the stage handles next. A stage that is not ready for
    another reason (a sink's outside system is down) says so after this call, and is ready again at the next one."""
    for topic, partition in backlog.assigned((tp.topic, tp.partition) for tp in assignment):
        # Its new owner reports it: a stale figure here would be added to the owner's in every sum over consumers.
        with contextlib.suppress(KeyError):
            metrics.CONSUMER_LAG.remove(group, topic, str(partition))
    positions = {}
    for tp in assignment:
        known = highwater(tp)
        if known is None:
            continue
        position = positions[tp.topic, tp.partition] = await next_offset(tp)
        backlog.observe((tp.topic, tp.partition), position, known)
        metrics.CONSUMER_LAG.labels(group=group, topic=tp.topic, partition=str(tp.partition)).set(
            max(0, known - position)
        )
    if backlog.caught_up:
        readiness.ready()
    else:
        readiness.not_ready(backlog.why_not(positions))


async def measure_consumer(consumer: Any, *, group: str, backlog: Backlog, readiness: Readiness) -> None:
    """:func:`measure` for an aiokafka consumer whose position is the next offset to handle (records are handled
    before the next poll). Cheap, no request: call it after every poll, empty ones included."""
    await measure(
        consumer.assignment(),
        consumer.position,
        consumer.highwater,
        group=group,
        backlog=backlog,
        readiness=readiness,
    )


class HealthServer:
    """``/healthz``, ``/readyz`` and ``/metrics`` for the stages of one process; ``bind`` first, then ``start`` in the
    process's event loop, ``close`` on the way out."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        setting: str,
        stages: Iterable[Readiness] = (),
        routes: Mapping[str, Callable[[web.Request], Awaitable[web.StreamResponse]]] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.stages = list(stages)
        """What /readyz reports on; a process may add its stages after binding the port."""
        self.routes = dict(routes or {})
        """More GET paths the process serves on the same port (the supervisor's ``/stages``)."""
        self.setting = setting
        """The setting that names the port, for the error line when it is taken."""
        self._socket: socket.socket | None = None
        self._runner: web.AppRunner | None = None

    def bind(self) -> HealthServer:
        """Take the port now; a port in use (or not ours to bind) is a :class:`ConfigurationError`."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a TIME_WAIT from our last run is no conflict
        try:
            sock.bind((self.host, self.port))
            sock.listen(64)
        except OSError as exc:
            sock.close()
            taken = exc.errno == errno.EADDRINUSE
            raise ConfigurationError(
                f"health port {self.host}:{self.port} "
                + ("is already in use by another process" if taken else f"cannot be bound: {exc.strerror}")
                + f"; set {self.setting} (FIREBUS_{self.setting.upper()}) to a free port, or 0 for any"
            ) from None
        sock.setblocking(False)
        self._socket = sock
        self.port = int(sock.getsockname()[1])
        return self

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        if self._socket is None:
            self.bind()
        assert self._socket is not None  # noqa: S101  (bound just above)
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", make_aiohttp_handler())
        for path, handler in self.routes.items():
            app.router.add_get(path, handler)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.SockSite(self._runner, self._socket).start()
        log.info("health_serving", url=self.url, stages=[stage.stage for stage in self.stages])

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "up"})

    async def _readyz(self, request: web.Request) -> web.Response:
        ready, reason = readiness_of(self.stages)
        if ready:
            return web.json_response({"ready": True})
        return web.json_response({"ready": False, "reason": reason}, status=503)
