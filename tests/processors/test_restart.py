"""Restart safety: SIGKILL the processors worker mid-stream and start it again."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from uuid import UUID

from firebus.broker import EmbeddedBroker, free_port
from firebus.codec import Codec
from firebus.county import County
from firebus.events import Audience, Classification, Severity
from firebus.kafka import create_topics, read_to_end
from firebus.records import Release, ReviewStatus, Verdict
from firebus.settings import Settings
from firebus.topics import TIERS
from producers import FirebusClient, ReviewDesk, load_draft
from tests.processors.conftest import Worker, decoded, group_on_own_broker

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "events"
STREAM = 1500
# A restarted worker that releases nothing for this long has stalled (it needs a few seconds to rejoin and recover).
STALL_S = 60


async def member_releases(settings: Settings) -> Counter[UUID]:
    """How many times each event was released to the members tier."""
    records = decoded(Codec(), await read_to_end(settings, TIERS[Audience.MEMBERS]))
    return Counter(record.event_id for record in records if isinstance(record, Release))


def log_tail(path: Path) -> str:
    return path.read_text(errors="replace")[-4000:]


async def released_without_stalling(settings: Settings, event_ids: list[UUID], worker_log: Path) -> Counter[UUID]:
    """The member releases once every one of ``event_ids`` is released; fails, with the worker's log, if the worker
    releases nothing new for ``STALL_S`` while some are missing, or if they are not all released within 180 s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 180
    last_count, last_progress = -1, loop.time()
    while True:
        released = await member_releases(settings)
        unreleased = [event_id for event_id in event_ids if released[event_id] == 0]
        if not unreleased:
            return released
        count = sum(released.values())
        if count != last_count:
            last_count, last_progress = count, loop.time()
        missing = f"{len(unreleased)} of {len(event_ids)} events never released"
        assert loop.time() - last_progress <= STALL_S, (
            f"{missing}: the worker stalled (released nothing for {STALL_S}s); worker log ends:\n{log_tail(worker_log)}"
        )
        assert loop.time() < deadline, f"{missing} within 180s; worker log ends:\n{log_tail(worker_log)}"
        await asyncio.sleep(0.5)


async def held_and_streamed(
    settings: Settings, county: County, interrupt: Callable[[], Awaitable[None]]
) -> tuple[list[UUID], list[UUID]]:
    """Publish five fire reports (held for a human) and then a stream of pre-authorised work updates; once a fifth of
    the stream is released, ``interrupt``. Returns the held and the streamed event ids."""
    routine = load_draft(EXAMPLES / "work_update.json").model_copy(
        update={"audience": Audience.MEMBERS, "classification": Classification.INTERNAL, "severity": Severity.MINOR}
    )
    async with FirebusClient(settings=settings, unit="forestry", county=county) as client:
        held = [(await client.publish(load_draft(EXAMPLES / "fire_report.json"))).event_id for _ in range(5)]

        async def stream() -> list[UUID]:
            return [(await client.publish(routine)).event_id for _ in range(STREAM)]

        publishing = asyncio.create_task(stream())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 120
        while sum((await member_releases(settings)).values()) < STREAM // 5:
            assert loop.time() < deadline, "the processors never got going"
            await asyncio.sleep(0.2)
        await interrupt()
        return held, await publishing


async def test_sigkill_mid_stream_loses_no_pending_review_and_releases_nothing_twice(
    settings: Settings, county: County, tmp_path: Path
) -> None:
    """After a SIGKILL and restart, every pre-authorised event is released exactly once and pending reviews remain."""
    async with EmbeddedBroker(port=free_port(), log_path=tmp_path / "broker.log") as broker:
        isolated = settings.model_copy(update={"bootstrap": broker.bootstrap_servers, "home": tmp_path})
        await create_topics(isolated)
        worker = Worker(isolated, tmp_path / "processors.log")
        await worker.start()

        async def restart() -> None:
            await worker.kill()
            await worker.start()

        try:
            held, routine_ids = await held_and_streamed(isolated, county, restart)
            released = await released_without_stalling(isolated, routine_ids, worker.log_path)
            assert {event_id: n for event_id, n in released.items() if n > 1} == {}
            hq = Counter(
                record.event_id
                for record in decoded(Codec(), await read_to_end(isolated, TIERS[Audience.HQ]))
                if isinstance(record, Release)
            )
            assert {event_id: n for event_id, n in hq.items() if n > 1} == {}

            items = await ReviewDesk(settings=isolated, county=county).items()
            assert all(items[event_id].status is ReviewStatus.PENDING for event_id in held)
        finally:
            await worker.stop()


async def test_a_killed_workers_partitions_are_taken_over_without_loss_or_duplicates(
    settings: Settings, county: County, tmp_path: Path
) -> None:
    """Two workers share the partitions; one is SIGKILLed mid-stream and stays down: the other takes its partitions
    over (their review state restored from the changelog), every event is released exactly once, and the reviews
    held for a human are still pending and decidable."""
    async with group_on_own_broker(settings, tmp_path, ("a", "b")) as (isolated, workers):
        held, routine_ids = await held_and_streamed(isolated, county, workers[0].kill)
        released = await released_without_stalling(isolated, routine_ids, workers[1].log_path)
        assert {event_id: n for event_id, n in released.items() if n > 1} == {}

        desk = ReviewDesk(settings=isolated, county=county)
        items = await desk.items()
        assert all(items[event_id].status is ReviewStatus.PENDING for event_id in held)
        await desk.publish(items[held[0]], desk.decision(items[held[0]], reviewer="hq-li", verdict=Verdict.APPROVE))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 120
        while not any(
            isinstance(record, Release) and record.event_id == held[0]
            for record in decoded(Codec(), await read_to_end(isolated, TIERS[Audience.HQ]))
        ):
            assert loop.time() < deadline, "the surviving worker did not release an approved held review"
            await asyncio.sleep(0.5)
