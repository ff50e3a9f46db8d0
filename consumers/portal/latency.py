"""``firebus bench console``: how long a fire report takes from its publisher to an HQ officer's screen.

A full stack runs as deployed: the embedded broker, ``firebus processors`` and ``firebus portal`` (demo mode) as
their own processes, and the demo season published alongside (as ``firebus up --demo`` does). Headless Chromium
logs in as an HQ reviewer and keeps the console open; a MutationObserver in the page stamps each live-list entry
with ``performance.timeOrigin + performance.now()`` (wall-clock milliseconds) the moment it is inserted. Fire
reports are then published at a steady rate; each one's latency is that stamp minus the wall clock when the
publisher's send was acknowledged (same machine, same clock). Beside it, a plain consumer of ``firebus.hq.live``
gives the topic's own latency (publish → record read), so the figures say how much the portal and the browser add
to what the processors take. Figures are printed, nothing is asserted.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO
from uuid import UUID

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition

from firebus.broker import EmbeddedBroker, die_with_parent, free_port
from firebus.codec import Codec
from firebus.kafka import client_options, create_topics, partitions_to_create
from firebus.settings import Settings
from firebus.topics import HQ_LIVE

if TYPE_CHECKING:
    from playwright.async_api import Page

log = structlog.get_logger(__name__)

CHROMIUM = "/usr/bin/chromium"
"""Debian's Chromium (never a downloaded browser)."""
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # Without these Chromium keeps calling out to Google's hosts, which this closed network refuses.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
"""Chromium's flags here, for this benchmark and the browser tests' launcher (tests/browser.py) alike."""
BENCH_REVIEWER = ("hq-wang", "fangmie-wang-2026")
"""The demo HQ reviewer account the benchmark logs in with (seeded in demo mode)."""
UNREACHABLE_DSN = "postgresql://127.0.0.1:1/firebus_bench"
"""Where the portal finds no PostgreSQL: in demo mode it keeps accounts and sessions in memory, so the benchmark
touches no shared database."""
WARMUP_TIMEOUT_S = 120.0
"""How long the stack may take to carry a first fire report to the screen (consumer groups joining, caches warm)."""
DRAIN_TIMEOUT_S = 60.0
"""How long after the last publish the benchmark waits for every report to arrive before counting it missing."""

_OBSERVER = """
() => {
  window.firebusSeenAt = {};
  const list = document.getElementById("live");
  new MutationObserver((records) => {
    const at = performance.timeOrigin + performance.now();
    for (const record of records) {
      for (const node of record.addedNodes) {
        const id = node.dataset && node.dataset.eventId;
        if (id && !(id in window.firebusSeenAt)) { window.firebusSeenAt[id] = at; }
      }
    }
  }).observe(list, { childList: true });
  // The live stream dropping and reconnecting (live.js shows it on #live-status): what is published meanwhile is
  // not replayed to this page, so it never appears.
  window.firebusStreamDrops = 0;
  const status = document.getElementById("live-status");
  new MutationObserver(() => {
    if (status.dataset.state === "retrying") { window.firebusStreamDrops += 1; }
  }).observe(status, { attributes: true, attributeFilter: ["data-state"] });
}
"""

Publish = Callable[[int], Awaitable[UUID]]
"""Publishes the n-th fire report and returns its event id once the broker has acknowledged it."""


@dataclass(frozen=True)
class ConsoleLoad:
    """What the composition root supplies: the publisher, the demo season and the stages' command lines."""

    publisher: Callable[[Settings], AbstractAsyncContextManager[Publish]]
    season: Callable[[Settings], Coroutine[Any, Any, object]]
    processors_command: Sequence[str]
    portal_command: Sequence[str]


@dataclass
class Latencies:
    """Milliseconds from an acknowledged publish to where the event was seen, per event id."""

    name: str
    ms: dict[UUID, float] = field(default_factory=dict)

    def line(self, expected: int) -> str:
        ordered = sorted(self.ms.values())
        missing = expected - len(ordered)
        if not ordered:
            return f"  {self.name:<36} no event seen (n=0, missing {missing})"
        return (
            f"  {self.name:<36} p50 {percentile(ordered, 50):7.1f} ms  p95 {percentile(ordered, 95):7.1f} ms  "
            f"p99 {percentile(ordered, 99):7.1f} ms  max {ordered[-1]:7.1f} ms  (n={len(ordered)}, missing {missing})"
        )


def percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of sorted values: the smallest value with at least q% of them at or below it."""
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


def _stage_env(settings: Settings, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "FIREBUS_BOOTSTRAP": settings.bootstrap_servers,
        "FIREBUS_CONFIG": str(settings.config),
        "FIREBUS_HOME": str(settings.home),
        "FIREBUS_KEYS_DIR": str(settings.key_directory),
        "FIREBUS_LOG_FORMAT": "json",
        "FIREBUS_LOG_LEVEL": "warning",
        **extra,
    }


@asynccontextmanager
async def _stage(command: Sequence[str], env: dict[str, str], log_path: Path) -> AsyncIterator[int]:
    """A stage as its own process (dies with this one), terminated after; yields its pid."""
    with log_path.open("ab") as handle:
        process = await asyncio.create_subprocess_exec(
            *command, env=env, stdout=handle, stderr=handle, preexec_fn=die_with_parent
        )
    try:
        yield process.pid
        if process.returncode is not None:
            raise RuntimeError(f"{command[-1]} exited with {process.returncode}; see {log_path}")
    finally:
        if process.returncode is None:
            process.terminate()
        await process.wait()


async def _ready(base: str) -> None:
    def probe() -> int:
        try:
            with urllib.request.urlopen(base + "/readyz", timeout=5) as response:  # noqa: S310  (loopback)
                return int(response.status)
        except (urllib.error.URLError, OSError):
            return 0

    deadline = time.monotonic() + WARMUP_TIMEOUT_S
    while await asyncio.to_thread(probe) != 200:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the portal at {base} was not ready within {WARMUP_TIMEOUT_S:.0f} s")
        await asyncio.sleep(0.2)


@asynccontextmanager
async def _console(base: str, *, sound: bool) -> AsyncIterator[Page]:
    """Chromium logged in as the HQ reviewer, on the console with its live stream open and observed (the new-fire
    tone on or switched off, as an officer may)."""
    from playwright.async_api import async_playwright  # noqa: PLC0415  (only the benchmark needs a browser; the portal does not)

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            await page.goto(f"{base}/login?next=/hq")
            account, password = BENCH_REVIEWER
            await page.fill("input[name=username]", account)
            await page.fill("input[name=password]", password)
            async with page.expect_navigation():
                await page.click("form button[type=submit]")
            if not sound:
                await page.evaluate("() => window.localStorage.setItem('firebus.sound', 'off')")
            if not sound or not page.url.endswith("/hq"):
                await page.goto(f"{base}/hq")
            await page.wait_for_selector("#live-status[data-state=open]", timeout=WARMUP_TIMEOUT_S * 1000)
            await page.evaluate(_OBSERVER)
            yield page
        finally:
            await browser.close()


class _LiveTopic:
    """A plain consumer of the HQ live topic from its end: when each event id was read (wall clock, ms)."""

    def __init__(self, settings: Settings, codec: Codec) -> None:
        self.settings = settings
        self.consumer = AIOKafkaConsumer(
            **client_options(settings, client_id="firebus-bench-live"),
            group_id=None,
            enable_auto_commit=False,
            fetch_max_wait_ms=settings.fetch_max_wait_ms,  # as the portal's reader waits
        )
        self.codec = codec
        self.seen_at: dict[UUID, float] = {}

    async def start(self) -> None:
        await self.consumer.start()
        count = partitions_to_create(self.settings, HQ_LIVE)
        partitions = [TopicPartition(HQ_LIVE.name, p) for p in range(count)]
        self.consumer.assign(partitions)
        await self.consumer.seek_to_end(*partitions)
        for partition in partitions:  # fixes the positions now, before anything is published
            await self.consumer.position(partition)

    async def run(self) -> None:
        async for record in self.consumer:
            at = time.time() * 1000
            if record.value is None:
                continue
            event_id: UUID = self.codec.decode(record.value).header.event_id  # type: ignore[union-attr]
            self.seen_at.setdefault(event_id, at)

    async def stop(self) -> None:
        await self.consumer.stop()


class _PortalStream:
    """The console's SSE stream read by a plain HTTP client with the browser's session cookie: when each fire event
    id left the portal (wall clock, ms), so the portal's share and the browser's can be told apart."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.seen_at: dict[UUID, float] = {}

    async def run(self, cookie: str) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            writer.write(
                f"GET /hq/live/stream HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nAccept: text/event-stream\r\n"
                f"Cookie: {cookie}\r\n\r\n".encode()
            )
            await writer.drain()
            while line := await reader.readline():
                at = time.time() * 1000
                if line.startswith(b"id: "):
                    with contextlib.suppress(ValueError):
                        self.seen_at.setdefault(UUID(line[4:].strip().decode()), at)
        finally:
            writer.close()


async def _seen_on_page(page: Page) -> dict[UUID, float]:
    seen: dict[str, float] = await page.evaluate("() => window.firebusSeenAt")
    return {UUID(event_id): at for event_id, at in seen.items()}


async def _until(condition: Callable[[], Awaitable[bool]], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not await condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.1)
    return True


def _tree_cpu_s(pid: int) -> float:
    """User + system CPU seconds the process and its living descendants have used (``firebus processors`` runs
    its workers as child processes)."""
    total = 0.0
    with contextlib.suppress(OSError, IndexError, ValueError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                total += _tree_cpu_s(int(child))
    return total


async def _steady(publish: Publish, *, first: int, count: int, rate: float) -> dict[UUID, float]:
    """Publish ``count`` reports at ``rate``/s on a fixed schedule (a slow acknowledgement does not delay the next
    one); the wall clock (ms) of each acknowledgement, per event id."""
    acknowledged: dict[UUID, float] = {}
    loop = asyncio.get_running_loop()
    start = loop.time()

    async def one(n: int) -> None:
        event_id = await publish(n)
        acknowledged[event_id] = time.time() * 1000

    sends = []
    for index in range(count):
        await asyncio.sleep(max(0.0, start + index / rate - loop.time()))
        sends.append(asyncio.create_task(one(first + index)))
    await asyncio.gather(*sends)
    return acknowledged


async def _warm_up(publish: Publish, page: Page) -> int:
    """Publish one report at a time until one reaches the screen (consumer groups joined, caches warm); how many
    were published (not counted)."""
    published = 0
    deadline = time.monotonic() + WARMUP_TIMEOUT_S
    while True:
        event_id = await publish(published)
        published += 1

        async def shown(event_id: UUID = event_id) -> bool:
            return event_id in await _seen_on_page(page)

        if await _until(shown, 10.0):
            return published
        if time.monotonic() > deadline:
            raise RuntimeError(f"no fire report reached the HQ console within {WARMUP_TIMEOUT_S:.0f} s")


@dataclass
class _Run:
    acknowledged: dict[UUID, float]
    on_page: dict[UUID, float]
    published_s: float
    cpu: dict[str, float]
    """Cores used by each stage's process tree while measuring (1.0: one core busy)."""
    drops: int
    """How often the page's live stream dropped and reconnected while measuring."""
    streamed: dict[UUID, float]


async def _measure(
    publish: Publish, page: Page, live: _LiveTopic, pids: dict[str, int], *, port: int, rate: float, count: int
) -> _Run:
    first = await _warm_up(publish, page)
    cookies = await page.context.cookies()
    stream = _PortalStream(port)
    streaming = asyncio.create_task(stream.run("; ".join(f"{c['name']}={c['value']}" for c in cookies)))
    try:
        return await _timed(publish, page, live, pids, first=first, rate=rate, count=count, stream=stream)
    finally:
        streaming.cancel()
        with contextlib.suppress(asyncio.CancelledError, OSError):
            await streaming


async def _timed(
    publish: Publish,
    page: Page,
    live: _LiveTopic,
    pids: dict[str, int],
    *,
    first: int,
    rate: float,
    count: int,
    stream: _PortalStream,
) -> _Run:
    cpu_before = {name: _tree_cpu_s(pid) for name, pid in pids.items()}
    started = time.monotonic()
    acknowledged = await _steady(publish, first=first, count=count, rate=rate)
    published_s = time.monotonic() - started

    async def all_arrived() -> bool:
        on_page = await _seen_on_page(page)
        return all(event_id in on_page and event_id in live.seen_at for event_id in acknowledged)

    await _until(all_arrived, DRAIN_TIMEOUT_S)
    elapsed = time.monotonic() - started
    cpu = {name: (_tree_cpu_s(pid) - cpu_before[name]) / elapsed for name, pid in pids.items()}
    drops = int(await page.evaluate("() => window.firebusStreamDrops"))
    return _Run(acknowledged, await _seen_on_page(page), published_s, cpu, drops, dict(stream.seen_at))


async def run_latency_bench(
    settings: Settings,
    load: ConsoleLoad,
    *,
    rate: float,
    seconds: float,
    sound: bool = True,
    out: TextIO,
    codec: Codec | None = None,
) -> None:
    """Start the stages on ``settings``' Kafka, measure and print the figures."""
    home = settings.home_dir
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    processors_env = _stage_env(settings, FIREBUS_PROCESSORS_HEALTH_PORT="0")
    portal_env = _stage_env(
        settings,
        FIREBUS_PORTAL_PORT=str(port),
        FIREBUS_PORTAL_HOST="127.0.0.1",
        FIREBUS_PORTAL_DEMO="1",
        FIREBUS_ARCHIVE_DSN=UNREACHABLE_DSN,
    )
    live = _LiveTopic(settings, codec or Codec())
    count = max(1, round(rate * seconds))
    async with (
        _stage(load.processors_command, processors_env, home / "bench-latency-processors.log") as processors_pid,
        _stage(load.portal_command, portal_env, home / "bench-latency-portal.log") as portal_pid,
        load.publisher(settings) as publish,
    ):
        await _ready(base)
        await live.start()
        reading = asyncio.create_task(live.run(), name="hq live reader")
        season = asyncio.create_task(load.season(settings), name="demo season")
        try:
            async with _console(base, sound=sound) as page:
                pids = {"processors": processors_pid, "portal": portal_pid}
                run = await _measure(publish, page, live, pids, port=port, rate=rate, count=count)
        finally:
            for task in (season, reading):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await live.stop()
    topic = Latencies("HQ live topic (publish → record)")
    streamed = Latencies("portal SSE (publish → sent)")
    screen = Latencies("HQ console (publish → on screen)")
    for event_id, at in run.acknowledged.items():
        if event_id in live.seen_at:
            topic.ms[event_id] = live.seen_at[event_id] - at
        if event_id in run.streamed:
            streamed.ms[event_id] = run.streamed[event_id] - at
        if event_id in run.on_page:
            screen.ms[event_id] = run.on_page[event_id] - at
    print(
        f"console latency: {count} fire reports at {rate:g}/s over {run.published_s:.1f} s, the demo season "
        f"alongside; CPU (cores) processors {run.cpu['processors']:.2f}, portal {run.cpu['portal']:.2f} "
        f"of {os.cpu_count()}; new-fire tone {'on' if sound else 'off'}; the page's live stream dropped {run.drops} "
        "time(s)",
        file=out,
    )
    print(topic.line(count), file=out)
    print(streamed.line(count), file=out)
    print(screen.line(count), file=out)
    out.flush()


async def bench_console_latency(
    settings: Settings,
    load: ConsoleLoad,
    *,
    rate: float = 10.0,
    seconds: float = 60.0,
    sound: bool = True,
    out: TextIO,
) -> None:
    """Run the benchmark on a fresh embedded broker, or on the configured Kafka (its topics created if missing)."""
    settings.home_dir.mkdir(parents=True, exist_ok=True)
    if not settings.embedded:
        await create_topics(settings)
        await run_latency_bench(settings, load, rate=rate, seconds=seconds, sound=sound, out=out)
        return
    port = free_port()
    async with EmbeddedBroker(port=port, log_path=settings.home_dir / "bench-latency-broker.log"):
        scoped = settings.model_copy(update={"bootstrap": f"127.0.0.1:{port}"})
        await create_topics(scoped)
        await run_latency_bench(scoped, load, rate=rate, seconds=seconds, sound=sound, out=out)
