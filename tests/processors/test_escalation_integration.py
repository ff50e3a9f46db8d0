"""Escalation through a real worker: an item past its deadline is escalated once, to the audit trail and the office."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from uuid import UUID

from firebus.broker import EmbeddedBroker, free_port
from firebus.codec import Codec
from firebus.county import County
from firebus.kafka import create_topics, read_to_end
from firebus.records import AuditAction, AuditEvent, ReviewStatus
from firebus.settings import Settings
from firebus.topics import AUDIT, HQ_NOTICES
from producers import FirebusClient, ReviewDesk, load_draft
from tests.processors.conftest import Worker, decoded, pending_item

ROOT = Path(__file__).resolve().parents[2]
SHIPPED_POLICY = ROOT / "firebus" / "data" / "review_policy.toml"
TICK_S = 1


def escalations(records: list[object], event_id: UUID) -> list[AuditEvent]:
    return [
        r for r in records if isinstance(r, AuditEvent) and r.event_id == event_id and r.action is AuditAction.ESCALATED
    ]


async def test_an_overdue_fire_report_is_escalated_once_to_the_audit_trail_and_the_office(
    settings: Settings, county: County, tmp_path: Path
) -> None:
    """With the shortest deadline the policy allows (one minute), a fire report nobody decides is escalated by the
    worker: one audit record, one office notice, the item marked; later ticks do not repeat it (the fence: a second
    report, published three ticks later, escalated in a later tick)."""
    policy = tmp_path / "policy.toml"
    shipped = SHIPPED_POLICY.read_text(encoding="utf-8")
    assert "\nfire_report = 10\n" in shipped
    policy.write_text(shipped.replace("\nfire_report = 10\n", "\nfire_report = 1\n"), encoding="utf-8")
    async with EmbeddedBroker(port=free_port(), log_path=tmp_path / "broker.log") as broker:
        isolated = settings.model_copy(update={"bootstrap": broker.bootstrap_servers, "home": tmp_path})
        await create_topics(isolated)
        worker = Worker(
            isolated,
            tmp_path / "processors.log",
            env={"FIREBUS_REVIEW_POLICY": str(policy), "FIREBUS_REVIEW_TICK_S": str(TICK_S)},
        )
        await worker.start()
        try:
            report = load_draft(ROOT / "examples" / "events" / "fire_report.json")
            desk = ReviewDesk(settings=isolated, county=county)
            async with FirebusClient(settings=isolated, unit="forestry", county=county) as client:
                event_id = (await client.publish(report)).event_id
                await pending_item(desk, event_id)  # received: its deadline runs
                await asyncio.sleep(3 * TICK_S)  # spaces the deadlines (this is no check that nothing happened)
                marker_id = (await client.publish(report)).event_id
            codec = Codec()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 150
            while not escalations(decoded(codec, await read_to_end(isolated, HQ_NOTICES)), marker_id):
                assert loop.time() < deadline, "no escalation notice within 150 s of a one-minute deadline"
                await asyncio.sleep(1.0)

            notices = escalations(decoded(codec, await read_to_end(isolated, HQ_NOTICES)), event_id)
            audits = escalations(decoded(codec, await read_to_end(isolated, AUDIT)), event_id)
            assert len(notices) == 1
            assert len(audits) == 1
            assert "past its deadline" in (audits[0].reason or "")
            items = await desk.items()
            item = items[event_id]
            assert item.status is ReviewStatus.PENDING
            assert item.escalated
            # The marker's first possible tick came at least two ticks after the report's: ticks ran in between.
            assert items[marker_id].deadline - item.deadline >= timedelta(seconds=2 * TICK_S)
        finally:
            await worker.stop()
