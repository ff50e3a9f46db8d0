"""The season simulator: reproducible, realistic, and everything it plans is publishable by its unit."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from firebus.county import County
from firebus.events import EventType, FireReport, FireStatus, MessageKind
from firebus.kafka import read_to_end
from firebus.rules import governance_violations
from firebus.settings import Settings
from firebus.topics import INTAKE
from producers import FirebusClient
from producers._simulate import Planned, SeasonSimulator, publish_season, resolve

END = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def plan(county: County, seed: int, count: int = 300) -> list[Planned]:
    return list(SeasonSimulator(county, seed=seed, end=END).plan(count))


def test_the_same_seed_plans_the_same_season(county: County) -> None:
    """A fixed seed reproduces the drafts exactly; another seed does not."""
    assert [p.draft for p in plan(county, 7)] == [p.draft for p in plan(county, 7)]
    assert [p.draft for p in plan(county, 7)] != [p.draft for p in plan(county, 8)]


def test_a_season_has_every_kind_of_traffic(county: County) -> None:
    """Fires with their lifecycle, road closures, cases, warnings, resources and work updates all occur."""
    planned = plan(county, 1, 600)
    types = Counter(p.draft.event_type for p in planned)
    assert set(types) >= {
        EventType.FIRE_REPORT,
        EventType.TRAFFIC_CONTROL,
        EventType.CASE_UPDATE,
        EventType.RISK_WARNING,
        EventType.RESOURCE,
        EventType.WORK_UPDATE,
    }
    statuses = {p.draft.body.status for p in planned if isinstance(p.draft.body, FireReport)}
    assert {FireStatus.REPORTED, FireStatus.CONTAINED, FireStatus.EXTINGUISHED} <= statuses
    assert any(p.follows for p in planned)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_planned_draft_is_publishable_by_its_unit(
    seed: int, county: County, keys_dir: Path, tmp_path: Path
) -> None:
    """Each draft, with its reference resolved, passes the governance rules for the unit that will publish it."""
    settings = Settings(keys_dir=keys_dir, home=tmp_path)
    clients: dict[str, FirebusClient] = {}
    published: dict[str, UUID] = {}
    for planned in SeasonSimulator(county, seed=seed, end=datetime.now(UTC)).plan(400):
        draft = resolve(planned, published)
        assert draft is not None
        client = clients.setdefault(planned.unit, FirebusClient(settings=settings, unit=planned.unit, county=county))
        event = client.prepare(draft)
        assert governance_violations(event, county, now=datetime.now(UTC)) == []
        published[planned.key] = event.header.event_id
        if planned.follows:
            assert event.header.kind in (MessageKind.UPDATE, MessageKind.CANCEL)
            assert event.header.references == [published[planned.follows]]


async def test_simulate_publishes_through_the_client_library(settings: Settings, county: County) -> None:
    """`publish_season` lands every planned event on its intake topic, signed and valid."""
    seed = uuid4().int % 10_000
    before = len(await read_to_end(settings, INTAKE[EventType.FIRE_REPORT]))
    report = await publish_season(settings, county, count=60, seed=seed)
    assert report.published == 60
    assert report.skipped == 0
    after = len(await read_to_end(settings, INTAKE[EventType.FIRE_REPORT]))
    assert after - before == report.by_type.get("fire_report", 0)
