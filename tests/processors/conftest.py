"""A real processors worker (its own process, `firebus processors`) against a broker, for integration tests."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from uuid import UUID

from firebus.broker import EmbeddedBroker, free_port
from firebus.codec import Codec
from firebus.errors import DecodeError, InvalidEventError
from firebus.kafka import create_topics, read_to_end
from firebus.records import ReviewItem
from firebus.settings import Settings
from firebus.topics import Topic
from producers import ReviewDesk

ROOT = Path(__file__).resolve().parents[2]


class Worker:
    """One `firebus processors` process; SIGKILL-able, restartable."""

    def __init__(
        self, settings: Settings, log_path: Path, *, env: dict[str, str] | None = None, stage: str = "all"
    ) -> None:
        self.settings = settings
        self.log_path = log_path
        self.extra_env = env or {}
        self.stage = stage
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        env = {
            **os.environ,
            "FIREBUS_BOOTSTRAP": self.settings.bootstrap_servers,
            "FIREBUS_HOME": str(self.settings.home),
            "FIREBUS_KEYS_DIR": str(self.settings.key_directory),
            "FIREBUS_FETCH_MAX_WAIT_MS": "50",
            "FIREBUS_GROUP_SESSION_TIMEOUT_S": "4",
            "FIREBUS_LOG_FORMAT": "json",
            "FIREBUS_PROCESSORS_HEALTH_PORT": "0",  # several workers (and test sessions) share this machine
            **self.extra_env,
        }
        with self.log_path.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "cli",
                "processors",
                "--workers",
                "1",
                "--stage",
                self.stage,
                env=env,
                cwd=ROOT,
                stdout=log,
                stderr=log,
            )

    async def kill(self) -> None:
        """SIGKILL: no shutdown, no flush, no commit."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), timeout=20)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


def workers_in_one_group(settings: Settings, directory: Path, names: Sequence[str]) -> list[Worker]:
    """Workers of one group on ``settings``' broker, each with a home of its own (``directory/<name>``) and its log
    at ``directory/processors-<name>.log``."""
    return [
        Worker(
            settings.model_copy(update={"home": directory / name, "keys_dir": settings.key_directory}),
            directory / f"processors-{name}.log",
        )
        for name in names
    ]


@asynccontextmanager
async def group_on_own_broker(
    settings: Settings, directory: Path, names: Sequence[str]
) -> AsyncIterator[tuple[Settings, list[Worker]]]:
    """A broker of its own (every topic created) and, started on it, :func:`workers_in_one_group`; all stopped after.
    Yields the settings for that broker and the workers."""
    async with EmbeddedBroker(port=free_port(), log_path=directory / "broker.log") as broker:
        isolated = settings.model_copy(update={"bootstrap": broker.bootstrap_servers, "home": directory})
        await create_topics(isolated)
        workers = workers_in_one_group(isolated, directory, names)
        try:
            for worker in workers:
                await worker.start()
            yield isolated, workers
        finally:
            for worker in workers:
                await worker.stop()


async def wait_for_records(
    settings: Settings,
    topic: Topic,
    match: Callable[[Any], bool],
    *,
    count: int = 1,
    within_s: float = 60.0,
) -> list[Any]:
    """Decoded records on ``topic`` that ``match``, once at least ``count`` are there (or fail after ``within_s``)."""
    codec = Codec()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while True:
        found = [record for record in decoded(codec, await read_to_end(settings, topic)) if match(record)]
        if len(found) >= count:
            return found
        if loop.time() > deadline:
            raise AssertionError(f"{len(found)} of {count} expected records on {topic.name} after {within_s}s")
        await asyncio.sleep(0.3)


async def pending_item(desk: ReviewDesk, event_id: UUID) -> ReviewItem:
    """The review item of ``event_id`` once the processors have it (or fail after a minute)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while loop.time() < deadline:
        item = (await desk.items()).get(event_id)
        if item is not None:
            return item
        await asyncio.sleep(0.3)
    raise AssertionError(f"{event_id} never reached the review queue")


def decoded(codec: Codec, records: list[tuple[bytes | None, bytes | None]]) -> list[Any]:
    """The decodable records; other tests deliberately put garbage on shared topics."""
    found = []
    for _key, value in records:
        try:
            found.append(codec.decode(value or b""))
        except (DecodeError, InvalidEventError):
            continue
    return found
