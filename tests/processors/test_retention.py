"""Bounded memory: a settled review item past its retention is tombstoned on the review-items changelog and stays
gone after a restart; a pending item never is."""

from __future__ import annotations

import asyncio
from pathlib import Path
from uuid import UUID

from firebus.broker import EmbeddedBroker, free_port
from firebus.county import County
from firebus.events import Audience, Classification, Severity
from firebus.kafka import create_topics, read_to_end
from firebus.records import ReviewStatus
from firebus.settings import Settings
from firebus.topics import REVIEW_ITEMS
from producers import FirebusClient, ReviewDesk, load_draft
from tests.processors.conftest import Worker
from tests.processors.test_restart import log_tail

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "events"
RETENTION = {"FIREBUS_REVIEW_RETENTION_S": "2", "FIREBUS_REVIEW_TICK_S": "0.5"}


async def changelog(settings: Settings) -> list[tuple[bytes | None, bytes | None]]:
    return await read_to_end(settings, REVIEW_ITEMS)


async def tombstoned(settings: Settings, event_id: UUID, log_path: Path) -> int:
    """How many tombstones ``event_id``'s key has on the changelog, once it has at least one (fails after 120 s)."""
    key = str(event_id).encode()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 120
    while True:
        tombstones = sum(1 for k, value in await changelog(settings) if k == key and value is None)
        if tombstones:
            return tombstones
        assert loop.time() < deadline, f"{event_id} never tombstoned; worker log ends:\n{log_tail(log_path)}"
        await asyncio.sleep(0.3)


async def test_a_settled_item_past_retention_is_tombstoned_and_gone_after_a_restart_a_pending_one_never(
    settings: Settings, county: County, tmp_path: Path
) -> None:
    """With a 2 s retention: a released item is tombstoned (last on its key, so every restore and reader drops it),
    the restarted worker does not hold it (it would tombstone it again: a second released item, tombstoned after the
    restart, is the fence), and a fire report held for review, older than both, stays pending with no tombstone."""
    routine = load_draft(EXAMPLES / "work_update.json").model_copy(
        update={"audience": Audience.MEMBERS, "classification": Classification.INTERNAL, "severity": Severity.MINOR}
    )
    async with EmbeddedBroker(port=free_port(), log_path=tmp_path / "broker.log") as broker:
        isolated = settings.model_copy(update={"bootstrap": broker.bootstrap_servers, "home": tmp_path})
        await create_topics(isolated)
        worker = Worker(isolated, tmp_path / "processors.log", env=RETENTION)
        await worker.start()
        try:
            async with FirebusClient(settings=isolated, unit="forestry", county=county) as client:
                held = (await client.publish(load_draft(EXAMPLES / "fire_report.json"))).event_id
                released = (await client.publish(routine)).event_id
                assert await tombstoned(isolated, released, worker.log_path) == 1
                records = [value for key, value in await changelog(isolated) if key == str(released).encode()]
                assert records[-1] is None
                assert records[0] is not None  # it was kept until then

                await worker.kill()
                await worker.start()
                fence = (await client.publish(routine)).event_id
                await tombstoned(isolated, fence, worker.log_path)

            assert await tombstoned(isolated, released, worker.log_path) == 1
            items = await ReviewDesk(settings=isolated, county=county).items()
            assert released not in items
            assert items[held].status is ReviewStatus.PENDING
            assert all(value is not None for key, value in await changelog(isolated) if key == str(held).encode())
        finally:
            await worker.stop()
