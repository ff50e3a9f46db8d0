"""The processors worker's health: its review queue figures, and a real `firebus processors` process serving
/healthz, /readyz and /metrics on its health port while events, and records it must dead-letter, go through."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from firebus.broker import EmbeddedBroker, free_port
from firebus.county import County
from firebus.events import EventType
from firebus.kafka import create_topics
from firebus.records import ReviewStatus
from firebus.settings import Settings
from firebus.topics import INTAKE, REVIEW_INBOX, REVIEW_ITEMS
from processors._state import queue_figures
from tests.health import get_json, health_url, logged, scrape, series, until_grown, until_ready, value
from tests.processors.conftest import Worker
from tests.processors.test_pipeline_integration import produce_raw, publish, sample
from tests.samples import review_item

NOW = datetime(2026, 3, 12, 8, 0, tzinfo=UTC)


def test_queue_figures_count_open_items_by_status_and_age_the_oldest_pending_one() -> None:
    """Settled items do not count; the oldest pending item's age and the pending items past their deadline do."""
    items = [
        review_item(received_at=NOW - timedelta(minutes=30), deadline=NOW - timedelta(minutes=10)),
        review_item(received_at=NOW - timedelta(minutes=5), deadline=NOW + timedelta(minutes=25)),
        review_item(ReviewStatus.RELEASING, received_at=NOW - timedelta(hours=2)),
        review_item(ReviewStatus.RELEASED, received_at=NOW - timedelta(hours=3)),
    ]
    figures = queue_figures(items, NOW)
    assert figures.depth == {ReviewStatus.PENDING: 2, ReviewStatus.RELEASING: 1}
    assert figures.oldest_pending_age_s == 30 * 60
    assert figures.overdue == 1
    assert queue_figures([], NOW).oldest_pending_age_s == 0


async def test_a_worker_serves_health_readiness_and_metrics_that_follow_its_work(
    settings: Settings, county: County, tmp_path: Path
) -> None:
    """`firebus processors` (its own broker, port 0): /healthz is up; /readyz turns ready after start (each stage
    logs its way from not ready to ready); after events and two unreadable records, /metrics shows events in and
    out of the gate and the review stage, dead letters by stage and reason, the review queue and consumer lag."""
    async with EmbeddedBroker(port=free_port(), log_path=tmp_path / "broker.log") as broker:
        isolated = settings.model_copy(update={"bootstrap": broker.bootstrap_servers, "home": tmp_path})
        await create_topics(isolated)
        worker = Worker(isolated, tmp_path / "processors.log", env={"FIREBUS_REVIEW_TICK_S": "0.5"})
        await worker.start()
        try:
            assert worker.process is not None
            url = await health_url(worker.log_path, worker.process)
            assert await get_json(f"{url}/healthz") == (200, {"status": "up"})

            await until_ready(url, "the worker ready")
            was = {line["stage"]: line["was"] for line in logged(worker.log_path, "stage_ready")}
            assert set(was) == {"processors.gate", "processors.review"}
            before = await scrape(url)

            events = [
                await publish(isolated, county, "forestry", sample("work_update", incident_id=f"YC-HEALTH-{n}"))
                for n in range(3)
            ]
            await produce_raw(isolated, INTAKE[EventType.FIRE_REPORT].name, b"not avro at all")
            await produce_raw(isolated, REVIEW_INBOX.name, b"\xc3\x01 garbage in the inbox")
            inbox, items = {"topic": REVIEW_INBOX.name}, {"topic": REVIEW_ITEMS.name}
            after = await until_grown(
                url,
                before,
                {
                    "gate in": ("firebus_events_in_total", 4, {"stage": "processors.gate"}),
                    "gate out": ("firebus_events_out_total", 3, {"stage": "processors.gate", **inbox}),
                    "review in": ("firebus_events_in_total", 4, {"stage": "processors.review", **inbox}),
                    "review out": ("firebus_events_out_total", 3, {"stage": "processors.review", **items}),
                    "intake dead letter": (
                        "firebus_dead_letters_total",
                        1,
                        {"stage": "processors.intake", "reason": "corrupt"},
                    ),
                    "review dead letter": (
                        "firebus_dead_letters_total",
                        1,
                        {"stage": "processors.review", "reason": "poison"},
                    ),
                },
                also=lambda now: {"queue": value(now, "firebus_review_queue_depth", status="pending") >= len(events)},
            )
            assert value(after, "firebus_review_oldest_pending_age_seconds") > 0
            assert (
                value(
                    after, "firebus_events_in_total", stage="processors.gate", topic=INTAKE[EventType.WORK_UPDATE].name
                )
                >= 3
            )
            lagging = {entry["group"] for entry in series(after, "firebus_consumer_lag")}
            assert lagging == {"firebus-intake", "firebus-processors"}
            inbox_partitions = {
                entry["partition"] for entry in series(after, "firebus_consumer_lag", topic=REVIEW_INBOX.name)
            }
            assert inbox_partitions == {str(p) for p in range(REVIEW_INBOX.partitions)}
            assert value(after, "firebus_stage_ready", stage="processors.gate") == 1
            assert value(after, "firebus_stage_ready", stage="processors.review") == 1
        finally:
            await worker.stop()
        assert worker.process.returncode == 0
