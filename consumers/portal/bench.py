"""``firebus bench console-pages``: what the HQ console's pages cost as the review and audit history grows.

For each history size (review items on ``firebus.review.items``, three audit records each on ``firebus.audit``),
the benchmark fills the topics, starts ``firebus portal`` as its own process (as deployed), waits until it has
caught up, logs in as an HQ reviewer through the login form and times, over HTTP: the console (unfiltered, and
filtered to page 2), an approval, and audit searches (by event id, by free text, by action). The pending queue is
held at a realistic size (``pending``, about a third of it overdue) at every history size, so what grows is the
history alone: the pages must cost the same at every size. Figures are printed, nothing is asserted.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.cookiejar
import os
import random
import re
import statistics
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO
from uuid import UUID, uuid4

from aiokafka import AIOKafkaProducer

from firebus.broker import EmbeddedBroker, die_with_parent, free_port
from firebus.codec import Codec
from firebus.county import County
from firebus.events import Audience, EventType, MessageKind, Severity
from firebus.kafka import create_topics, producer_options
from firebus.records import AuditAction, AuditEvent, ReviewItem, ReviewStatus
from firebus.settings import Settings
from firebus.topics import AUDIT, REVIEW_ITEMS

BENCH_REVIEWER = ("hq-wang", "fangmie-wang-2026")
"""The sample HQ reviewer account the benchmark logs in with (the shipped demo accounts)."""
REPEATS = 30
APPROVALS = 15
TEXT = urllib.parse.quote("核实")
_CSRF = re.compile(rb'name="csrf" value="([^"]+)"')


@dataclass(frozen=True)
class Timing:
    """Milliseconds of repeated requests to one page."""

    name: str
    ms: list[float]
    cpu_ms: float
    """The portal process's CPU time per request (user + system): what a page costs, whatever else runs."""

    def line(self) -> str:
        ordered = sorted(self.ms)
        p95 = ordered[max(0, int(len(ordered) * 0.95) - 1)]
        return (
            f"  {self.name:<30} p50 {statistics.median(ordered):6.1f} ms  p95 {p95:6.1f} ms  "
            f"max {ordered[-1]:6.1f} ms  portal CPU {self.cpu_ms:5.1f} ms/request  (n={len(ordered)})"
        )


class _History:
    """Fills the review and audit topics: ``pending`` items awaiting review and the rest of history decided."""

    def __init__(self, codec: Codec, county: County, event: bytes, *, seed: int = 2026) -> None:
        self.codec = codec
        self.event = event
        self.random = random.Random(seed)  # noqa: S311  (reproducible load, not a secret)
        self.townships = [township.id for township in county.townships]
        self.units = [unit.id for unit in county.units if unit.kind.value != "hq_office"]
        self.items = 0
        self.pending: list[UUID] = []
        self.now = datetime.now(UTC)

    def item(self, *, pending: bool) -> tuple[ReviewItem, list[AuditEvent]]:
        event_id = uuid4()
        event_type = self.random.choice(list(EventType))
        received = self.now - timedelta(minutes=self.random.uniform(1, 60 * 24 * 60))
        overdue = self.random.random() < 0.37
        deadline = self.now + timedelta(minutes=(-1 if overdue else 1) * self.random.uniform(1, 120))
        item = ReviewItem(
            event_id=event_id,
            event_type=event_type,
            kind=MessageKind.ALERT,
            thread_id=event_id,
            partition_key=f"bench/{event_id}",
            status=ReviewStatus.PENDING if pending else ReviewStatus.RELEASED,
            publisher_unit=self.random.choice(self.units),
            publisher_person="赵林",
            audience=Audience.MEMBERS,
            severity=Severity.SEVERE,
            townships=self.random.sample(self.townships, k=1),
            received_at=received if not pending else self.now - timedelta(minutes=self.random.uniform(1, 300)),
            deadline=deadline,
            escalated=pending and overdue,
            event=self.event,
        )
        actions = (
            (AuditAction.ACCEPTED,) if pending else (AuditAction.ACCEPTED, AuditAction.DECIDED, AuditAction.RELEASED)
        )
        audits = [
            AuditEvent(
                audit_id=uuid4(),
                action=action,
                event_id=event_id,
                event_type=event_type,
                actor="processors.review" if action is not AuditAction.DECIDED else "hq-li",
                publisher_unit=item.publisher_unit,
                tier=Audience.MEMBERS if action is AuditAction.RELEASED else None,
                reason="核实无误" if action is AuditAction.DECIDED else None,
                at=received,
            )
            for action in actions
        ]
        return item, audits

    async def grow(self, settings: Settings, *, to: int, pending: int) -> None:
        """Publish items until history holds ``to`` of them, ``pending`` (at most) still awaiting review."""
        producer = AIOKafkaProducer(
            **producer_options(settings, client_id="firebus-bench-console", linger_ms=20, max_batch_size=512 * 1024)
        )
        await producer.start()
        try:
            sent: list[asyncio.Future[Any]] = []
            while self.items < to:
                waiting = len(self.pending) < min(pending, to)
                item, audits = self.item(pending=waiting)
                if waiting:
                    self.pending.append(item.event_id)
                sent.append(await producer.send(REVIEW_ITEMS.name, self.codec.encode(item), key=item.event_id.bytes))
                for record in audits:
                    sent.append(await producer.send(AUDIT.name, self.codec.encode(record), key=item.event_id.bytes))
                self.items += 1
                if len(sent) >= 5_000:
                    await asyncio.gather(*sent)
                    sent.clear()
            await asyncio.gather(*sent)
        finally:
            await producer.stop()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class _Browser:
    """A logged-in HQ reviewer over plain HTTP (cookies kept, redirects not followed: each request timed alone)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), _NoRedirect()
        )
        self.csrf = ""

    def request(self, path: str, form: dict[str, str] | None = None) -> tuple[int, bytes]:
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        try:
            with self.opener.open(self.base + path, data=data, timeout=60) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def timed(self, path: str, form: dict[str, str] | None = None) -> float:
        start = time.perf_counter()
        status, _ = self.request(path, form)
        elapsed = (time.perf_counter() - start) * 1000
        if status not in (200, 303):
            raise RuntimeError(f"{path} answered {status}")
        return elapsed

    def login(self) -> None:
        _, page = self.request("/login")
        self.csrf = _csrf(page)
        account, password = BENCH_REVIEWER
        status, _ = self.request(
            "/login", {"csrf": self.csrf, "username": account, "password": password, "next": "/hq"}
        )
        if status != 303:
            raise RuntimeError(f"login as {account} answered {status}")
        _, console = self.request("/hq")
        self.csrf = _csrf(console)


def _csrf(page: bytes) -> str:
    found = _CSRF.search(page)
    if found is None:
        raise RuntimeError("no CSRF token on the page")
    return found.group(1).decode()


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds the process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _timing(name: str, pid: int, requests: list[Callable[[], float]]) -> Timing:
    before = _cpu_s(pid)
    ms = [request() for request in requests]
    return Timing(name, ms, (_cpu_s(pid) - before) * 1000 / max(1, len(ms)))


def _measure(browser: _Browser, history: _History, pid: int) -> list[Timing]:
    browser.login()

    def page(path: str) -> list[Callable[[], float]]:
        return [lambda: browser.timed(path)] * REPEATS

    timings = [
        _timing("/hq (first page)", pid, page("/hq")),
        _timing("/hq?overdue=1&page=2", pid, page("/hq?overdue=1&page=2")),
    ]
    some = history.pending[-1]
    taken = min(APPROVALS, len(history.pending) // 2)
    approvals = history.pending[:taken]
    del history.pending[:taken]  # each decided once: the next size approves others
    form = {"csrf": browser.csrf, "action": "approve", "reason": "基准测试"}
    posts: list[Callable[[], float]] = [
        lambda event_id=event_id: browser.timed(f"/hq/review/{event_id}", form)  # type: ignore[misc]
        for event_id in approvals
    ]
    timings.append(_timing("POST /hq/review/… (approve)", pid, posts))
    timings += [
        _timing("/hq/audit?q=<event id>", pid, page(f"/hq/audit?q={some}")),
        _timing("/hq/audit?q=核实 (free text)", pid, page(f"/hq/audit?q={TEXT}")),
        _timing("/hq/audit?action=released", pid, page("/hq/audit?action=released")),
    ]
    return timings


async def _portal(settings: Settings, command: Sequence[str], port: int, log: Path) -> asyncio.subprocess.Process:
    env = {
        **os.environ,
        "FIREBUS_BOOTSTRAP": settings.bootstrap_servers,
        "FIREBUS_HOME": str(settings.home),
        "FIREBUS_KEYS_DIR": str(settings.key_directory),
        "FIREBUS_PORTAL_PORT": str(port),
        "FIREBUS_PORTAL_HOST": "127.0.0.1",
        "FIREBUS_LOG_FORMAT": "json",
        "FIREBUS_LOG_LEVEL": "warning",
    }
    with log.open("ab") as handle:
        return await asyncio.create_subprocess_exec(
            *command, env=env, stdout=handle, stderr=handle, preexec_fn=die_with_parent
        )


def _rss_mb(pid: int) -> float:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


async def _ready(base: str, process: asyncio.subprocess.Process) -> None:
    def probe() -> int:
        try:
            with urllib.request.urlopen(base + "/readyz", timeout=5) as response:  # noqa: S310  (loopback)
                return int(response.status)
        except (urllib.error.URLError, OSError):
            return 0

    while await asyncio.to_thread(probe) != 200:
        if process.returncode is not None:
            raise RuntimeError(f"the portal exited with {process.returncode}")
        await asyncio.sleep(0.2)


async def run_console_bench(
    settings: Settings,
    county: County,
    *,
    event: bytes,
    portal_command: Sequence[str],
    sizes: Sequence[int],
    pending: int,
    out: TextIO,
    codec: Codec | None = None,
) -> None:
    history = _History(codec or Codec(), county, event)
    log = settings.home_dir / "bench-portal.log"
    for size in sorted(sizes):
        started = time.perf_counter()
        await history.grow(settings, to=size, pending=pending)
        filled = time.perf_counter() - started
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        started = time.perf_counter()
        process = await _portal(settings, portal_command, port, log)
        try:
            await _ready(base, process)
            caught_up = time.perf_counter() - started
            timings = await asyncio.to_thread(_measure, _Browser(base), history, process.pid)
            rss = _rss_mb(process.pid)
        finally:
            process.terminate()
            await process.wait()
        print(
            f"history {size:>7,} review items ({3 * size - 2 * min(size, pending):,} audit records; "
            f"{min(size, pending)} pending): topics filled in {filled:.1f} s, portal ready in {caught_up:.1f} s, "
            f"RSS {rss:.0f} MB",
            file=out,
        )
        for timing in timings:
            print(timing.line(), file=out)
        out.flush()


async def bench_console(
    settings: Settings,
    county: County,
    *,
    event: bytes,
    portal_command: Sequence[str],
    sizes: Sequence[int] = (10, 10_000, 100_000),
    pending: int = 460,
    out: TextIO,
) -> None:
    """Run the benchmark on a fresh embedded broker (its topics must start empty), or on the configured Kafka."""
    settings.home_dir.mkdir(parents=True, exist_ok=True)
    if not settings.embedded:
        await create_topics(settings)
        await run_console_bench(
            settings, county, event=event, portal_command=portal_command, sizes=sizes, pending=pending, out=out
        )
        return
    port = free_port()
    async with EmbeddedBroker(port=port, log_path=settings.home_dir / "bench-broker.log"):
        scoped = settings.model_copy(update={"bootstrap": f"127.0.0.1:{port}"})
        await create_topics(scoped)
        await run_console_bench(
            scoped, county, event=event, portal_command=portal_command, sizes=sizes, pending=pending, out=out
        )
