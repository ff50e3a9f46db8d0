"""A real Kannel for the SMS tests: bearerbox + smsbox on free loopback ports, with an HTTP SMSC that is a receiver
the tests read.

The gateway path under test is the production one: sink → smsbox ``/cgi-bin/sendsms`` → bearerbox → SMSC. The SMSC
is Kannel's ``smsc = http`` with ``system-type = kannel`` (Kannel's own gateway-to-SMSC HTTP protocol), pointed at
a small aiohttp server here that answers ``Sent.`` and records every part it is handed, with its arrival time.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from aiohttp import ClientSession, web
from pydantic import SecretStr
from yarl import URL

from firebus.broker import free_port
from firebus.settings import Settings

USERNAME = "firebus"
PASSWORD = "sms-test-secret"  # noqa: S105  (the test gateway's own sendsms-user)


@dataclass(frozen=True)
class Part:
    """One SMS part as the SMSC received it from bearerbox."""

    at: float
    to: str
    text: str
    udh: bytes
    sender: str


@dataclass(frozen=True)
class Sms:
    """A whole message as the phone shows it: its parts joined by their concatenation header."""

    to: str
    text: str
    parts: int
    first_at: float
    last_at: float


def part_of(query: str, at: float) -> Part:
    """The SMS part a sendsms or SMSC request carries in its query string (Kannel spells both alike)."""
    fields = parse_qs(query, keep_blank_values=True, encoding="latin-1")

    def raw(name: str) -> bytes:
        return fields.get(name, [""])[0].encode("latin-1")

    coding = raw("coding").decode()
    data = raw("text")
    text = data.decode("utf-16-be") if coding == "2" else data.decode("latin-1")
    return Part(at, raw("to").decode(), text, raw("udh"), raw("from").decode())


class Receiver:
    """The SMSC end: an HTTP server speaking Kannel's ``system-type = kannel`` protocol."""

    def __init__(self) -> None:
        self.port = free_port()
        self.parts: list[Part] = []
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._receive)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _receive(self, request: web.Request) -> web.Response:
        self.parts.append(part_of(request.rel_url.raw_query_string, asyncio.get_running_loop().time()))
        return web.Response(status=202, text="Sent.")

    def messages(self, to: str | None = None, containing: str = "") -> list[Sms]:
        """Whole messages (parts joined by reference), optionally to one number and holding ``containing``."""
        whole: list[Sms] = []
        pending: dict[tuple[str, int], dict[int, Part]] = {}
        for part in self.parts:
            if len(part.udh) >= 6 and part.udh[1] == 0x00:
                reference, total, sequence = part.udh[3], part.udh[4], part.udh[5]
                group = pending.setdefault((part.to, reference), {})
                if sequence in group:  # an unfinished message with the same reference: start afresh
                    group.clear()
                group[sequence] = part
                if len(group) == total:
                    ordered = [group[number] for number in sorted(group)]
                    whole.append(
                        Sms(
                            part.to,
                            "".join(p.text for p in ordered),
                            total,
                            min(p.at for p in ordered),
                            max(p.at for p in ordered),
                        )
                    )
                    del pending[(part.to, reference)]
            else:
                whole.append(Sms(part.to, part.text, 1, part.at, part.at))
        return [sms for sms in whole if (to is None or sms.to == to) and containing in sms.text]

    async def wait_for(self, count: int, containing: str, within_s: float = 30.0) -> list[Sms]:
        """The messages holding ``containing``, once at least ``count`` are there (or fail after ``within_s``)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within_s
        while True:
            found = self.messages(containing=containing)
            if len(found) >= count:
                return found
            if loop.time() > deadline:
                raise AssertionError(f"{len(found)} of {count} SMS holding {containing!r} after {within_s}s")
            await asyncio.sleep(0.1)


class Unanswered:
    """An HTTP hop in front of smsbox's sendsms that passes every request on to Kannel, which takes the part, but
    never lets Kannel's answer to the first ``unanswered`` requests reach the sink: it holds the answer until the sink
    gives up (``drop=False``: a time-out) or drops the connection (``drop=True``). Either way the part went out and
    the sink cannot know it. Every request is recorded, so a part handed over twice shows twice in ``requests``."""

    def __init__(self, target: str, *, unanswered: int = 1, drop: bool = False) -> None:
        self.target = target
        self.unanswered = unanswered
        self.drop = drop
        self.port = free_port()
        self.requests: list[Part] = []
        self._released = asyncio.Event()
        self._session: ClientSession | None = None
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/cgi-bin/sendsms"

    async def __aenter__(self) -> Unanswered:
        self._session = ClientSession()
        app = web.Application()
        app.router.add_get("/cgi-bin/sendsms", self._relay)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self._released.set()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _relay(self, request: web.Request) -> web.StreamResponse:
        assert self._session is not None
        query = request.rel_url.raw_query_string
        self.requests.append(part_of(query, asyncio.get_running_loop().time()))
        answered = len(self.requests) > self.unanswered
        async with self._session.get(URL(f"{self.target}?{query}", encoded=True)) as answer:
            status, body = answer.status, await answer.read()
        if not answered:
            if self.drop and request.transport is not None:
                request.transport.close()
            await self._released.wait()
        return web.Response(status=status, body=body)


class Kannel:
    """bearerbox + smsbox with their own kannel.conf; stoppable and restartable on the same ports."""

    def __init__(self, directory: Path, receiver: Receiver) -> None:
        self.directory = directory
        self.receiver = receiver
        self.admin_port, self.smsbox_port, self.sendsms_port, self.smsc_port = (free_port() for _ in range(4))
        self.conf = directory / "kannel.conf"
        self.processes: list[asyncio.subprocess.Process] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sendsms_port}/cgi-bin/sendsms"

    def write_conf(self) -> None:
        self.conf.write_text(
            f"""
group = core
admin-port = {self.admin_port}
admin-interface = 127.0.0.1
admin-password = admin-test
smsbox-port = {self.smsbox_port}
smsbox-interface = 127.0.0.1
box-allow-ip = 127.0.0.1
log-file = "{self.directory}/bearerbox.log"
log-level = 1
access-log = "{self.directory}/access.log"
dlr-storage = internal

group = smsc
smsc = http
smsc-id = loopback
system-type = kannel
send-url = "http://127.0.0.1:{self.receiver.port}/"
smsc-username = smsc-user
smsc-password = smsc-pass
port = {self.smsc_port}
connect-allow-ip = 127.0.0.1

group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = {self.smsbox_port}
sendsms-port = {self.sendsms_port}
sendsms-interface = 127.0.0.1
log-file = "{self.directory}/smsbox.log"
log-level = 1

group = sendsms-user
username = {USERNAME}
password = {PASSWORD}
max-messages = 1
""",
            encoding="utf-8",
        )

    async def start(self) -> None:
        self.write_conf()
        with (self.directory / "boxes.out").open("ab") as out:
            for box in ("bearerbox", "smsbox"):
                binary = shutil.which(box) or f"/usr/sbin/{box}"
                process = await asyncio.create_subprocess_exec(binary, str(self.conf), stdout=out, stderr=out)
                self.processes.append(process)
                await self._wait_port(self.smsbox_port if box == "bearerbox" else self.sendsms_port)

    async def stop(self) -> None:
        for process in reversed(self.processes):
            if process.returncode is None:
                process.terminate()
                try:
                    await asyncio.wait_for(process.wait(), timeout=10)
                except TimeoutError:
                    process.kill()
                    await process.wait()
        self.processes.clear()

    async def _wait_port(self, port: int, within_s: float = 20.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within_s
        while True:
            try:
                _reader, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                if loop.time() > deadline:
                    log = (self.directory / "boxes.out").read_text(errors="replace")
                    raise AssertionError(f"Kannel did not listen on {port} within {within_s}s: {log[-2000:]}") from None
                await asyncio.sleep(0.1)
            else:
                writer.close()
                await writer.wait_closed()
                return


@pytest.fixture(scope="session")
async def receiver() -> AsyncIterator[Receiver]:
    """The SMSC end Kannel hands messages to, for the whole session."""
    running = Receiver()
    await running.start()
    yield running
    await running.stop()


@pytest.fixture(scope="session")
async def kannel(receiver: Receiver, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Kannel]:
    """A real Kannel (bearerbox + smsbox) on free loopback ports, for the whole session."""
    gateway = Kannel(tmp_path_factory.mktemp("kannel"), receiver)
    await gateway.start()
    yield gateway
    await gateway.stop()


@pytest.fixture
def sms_settings(settings: Settings, kannel: Kannel, tmp_path: Path) -> Settings:
    """Session settings plus the SMS gateway, a fresh ledger, no quiet hours and a generous rate."""
    return settings.model_copy(
        update={
            "sms_gateway_url": kannel.url,
            "sms_username": USERNAME,
            "sms_password": SecretStr(PASSWORD),
            "sms_ledger": tmp_path / "sms.sqlite3",
            "sms_quiet_hours": "",
            "sms_rate_per_minute": 6000,
            "sms_burst": 100,
        }
    )
