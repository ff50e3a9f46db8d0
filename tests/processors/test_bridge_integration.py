"""A county and its city as two firebus installations on two embedded brokers, joined by `firebus bridge`."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from firebus.broker import EmbeddedBroker, free_port
from firebus.codec import Codec
from firebus.county import County, load_county
from firebus.events import Event, EventType
from firebus.kafka import create_topics, read_to_end
from firebus.records import AuditAction, AuditEvent, Release, ReviewItem, ReviewStatus, Verdict
from firebus.settings import SAMPLE_CONFIG, Settings
from firebus.signing import check_origin, generate_unit_key
from firebus.topics import HQ_NOTICES, INTAKE, TIERS, upward_ledger
from processors.reporting import upward_event_id
from producers import (
    Audience,
    Classification,
    Directive,
    Draft,
    FirebusClient,
    FirePlace,
    FireReport,
    FireStatus,
    IssuingLevel,
    ReviewDesk,
    Severity,
    Urgency,
)
from tests.processors.conftest import ROOT, Worker, decoded, pending_item, wait_for_records

CITY_CONFIG = ROOT / "examples" / "city" / "city.toml"
CITY_POLICY = ROOT / "examples" / "city" / "review_policy.toml"


class BridgeProcess:
    """One `firebus bridge` process; SIGKILL-able, restartable."""

    def __init__(self, settings: Settings, log_path: Path) -> None:
        self.settings = settings
        self.log_path = log_path
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        env = {
            **os.environ,
            "FIREBUS_CONFIG": str(self.settings.config),
            "FIREBUS_BOOTSTRAP": self.settings.bootstrap_servers,
            "FIREBUS_HOME": str(self.settings.home),
            "FIREBUS_KEYS_DIR": str(self.settings.key_directory),
            "FIREBUS_REQUEST_TIMEOUT_MS": "3000",
            "FIREBUS_LOG_FORMAT": "json",
        }
        with self.log_path.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "cli", "bridge", env=env, cwd=ROOT, stdout=log, stderr=log
            )

    async def kill(self) -> None:
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


@dataclass
class Levels:
    county: Settings
    county_registry: County
    city: Settings
    city_registry: County
    city_broker: EmbeddedBroker
    bridge: BridgeProcess


@asynccontextmanager
async def two_levels(directory: Path) -> AsyncIterator[Levels]:
    """Two brokers, a processors worker on each (county, city), one key directory, and the county's bridge."""
    county_registry = load_county(SAMPLE_CONFIG)
    city_registry = load_county(CITY_CONFIG)
    keys = directory / "keys"
    for unit_id in {unit.id for unit in (*county_registry.units, *city_registry.units)}:
        generate_unit_key(keys, unit_id)
    async with (
        EmbeddedBroker(port=free_port(), log_path=directory / "county-broker.log") as county_broker,
        EmbeddedBroker(port=free_port(), log_path=directory / "city-broker.log") as city_broker,
    ):
        config = directory / "county.toml"
        config.write_text(
            SAMPLE_CONFIG.read_text(encoding="utf-8")
            + "\n[bridge]\n"
            + f'upper_bootstrap = "{city_broker.bootstrap_servers}"\n'
            + 'upper_unit = "yangcheng_hq"\nupper_area = "yangcheng"\nperson = "县森防办值班室"\n'
            + 'upstream_unit = "jincheng_hq"\ntick_s = 0.5\nretry_s = 0.5\n',
            encoding="utf-8",
        )
        county = Settings(
            bootstrap=county_broker.bootstrap_servers, home=directory / "county", keys_dir=keys, config=config
        )
        city = Settings(
            bootstrap=city_broker.bootstrap_servers,
            home=directory / "city",
            keys_dir=keys,
            config=CITY_CONFIG,
            review_policy=CITY_POLICY,
        )
        await create_topics(county)
        await create_topics(city)
        workers = [
            Worker(county, directory / "county-processors.log", env={"FIREBUS_CONFIG": str(config)}),
            Worker(
                city,
                directory / "city-processors.log",
                env={"FIREBUS_CONFIG": str(CITY_CONFIG), "FIREBUS_REVIEW_POLICY": str(CITY_POLICY)},
            ),
        ]
        bridge = BridgeProcess(county, directory / "bridge.log")
        try:
            for worker in workers:
                await worker.start()
            await bridge.start()
            yield Levels(county, county_registry, city, city_registry, city_broker, bridge)
        finally:
            await bridge.stop()
            for worker in workers:
                await worker.stop()


def fire(township: str, incident: str, *, found: datetime, **body: Any) -> Draft:
    return Draft(
        body=FireReport(
            place=FirePlace(township=township, village="桑林村", description="东山坡"),
            discovered_at=found,
            status=FireStatus.SUPPRESSING,
            burned_area_ha=2.0,
            **body,
        ),
        classification=Classification.INTERNAL,
        audience=Audience.MEMBERS,
        severity=Severity.MODERATE,
        urgency=Urgency.EXPECTED,
        incident_id=incident,
        townships=[township],
        occurred_at=found,
    )


async def publish_fire(levels: Levels, incident: str, *, found: datetime, **body: Any) -> UUID:
    async with FirebusClient(
        settings=levels.county, unit="twp_manghe", person="李明", county=levels.county_registry
    ) as client:
        receipt = await client.publish(fire("manghe", incident, found=found, **body))
    return receipt.event_id


async def approve(settings: Settings, registry: County, event_id: UUID, reviewer: str) -> None:
    desk = ReviewDesk(settings=settings, county=registry)
    item = await pending_item(desk, event_id)
    await desk.publish(item, desk.decision(item, reviewer=reviewer, verdict=Verdict.APPROVE, reason="核实"))


async def city_items(levels: Levels) -> dict[UUID, ReviewItem]:
    return await ReviewDesk(settings=levels.city, county=levels.city_registry).items()


async def escalations(levels: Levels) -> Counter[UUID | None]:
    notices = decoded(Codec(), await read_to_end(levels.county, HQ_NOTICES))
    return Counter(
        notice.event_id
        for notice in notices
        if isinstance(notice, AuditEvent) and notice.actor == "bridge" and notice.action is AuditAction.ESCALATED
    )


async def wait_until(check: Any, what: str, *, within_s: float = 120.0) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while True:
        found = await check()
        if found:
            return found
        if loop.time() > deadline:
            raise AssertionError(f"{what}: not after {within_s}s")
        await asyncio.sleep(0.3)


async def test_fires_go_up_with_their_origin_exactly_once_through_crashes_and_a_frozen_city(tmp_path: Path) -> None:
    """Township fire reports reviewed and released in the county reach the city's review once each, signed by the
    county office with an origin the city verifies, though the bridge is killed mid-stream and the city's broker is
    frozen for longer than the session time-outs; a fire about to miss its first-report deadline escalates once."""
    codec = Codec()
    async with two_levels(tmp_path) as levels:
        now = datetime.now(UTC)
        late = await publish_fire(levels, "YC-LATE-1", found=now - timedelta(minutes=25))
        fires = [
            await publish_fire(levels, f"YC-UP-{n}", found=now, threatens=["residential"] if n == 0 else [])
            for n in range(8)
        ]
        await wait_until(lambda: _has(escalations(levels), late), "the late fire escalated")
        for event_id in fires[:3]:
            await approve(levels.county, levels.county_registry, event_id, "hq-wang")
        first_up = upward_event_id(fires[0], "yangcheng")
        await wait_until(lambda: _has(city_items(levels), first_up), "the first fire reached the city")

        await levels.bridge.kill()  # mid-stream: more released fires wait for it
        for event_id in fires[3:5]:
            await approve(levels.county, levels.county_registry, event_id, "hq-li")
        await levels.bridge.start()
        await wait_until(lambda: _has(city_items(levels), upward_event_id(fires[3], "yangcheng")), "after restart")

        # The city's broker freezes while the county releases more: the bridge keeps trying and catches up.
        assert levels.city_broker.pid is not None
        retries_before = _log_count(levels.bridge.log_path, "bridge_retry")
        os.kill(levels.city_broker.pid, signal.SIGSTOP)
        try:
            for event_id in fires[5:]:
                await approve(levels.county, levels.county_registry, event_id, "hq-wang")
            await wait_until(
                lambda: _later(_log_count(levels.bridge.log_path, "bridge_retry") > retries_before),
                "the bridge found the city unreachable",
            )
            await asyncio.sleep(10)  # frozen longer than the group session (4 s) and request (3 s) time-outs
        finally:
            os.kill(levels.city_broker.pid, signal.SIGCONT)

        wanted = {upward_event_id(event_id, "yangcheng"): event_id for event_id in fires}
        items = await wait_until(
            lambda: _all(city_items(levels), set(wanted)), "every released fire at the city", within_s=180
        )
        for upward_id, original in wanted.items():
            item = items[upward_id]
            assert item.publisher_unit == "yangcheng_hq"
            event = event_of(item.event)
            assert isinstance(event, Event)
            origin = event.header.origin
            assert origin is not None
            assert (origin.event_id, origin.unit, origin.person, origin.level) == (
                original,
                "twp_manghe",
                "李明",
                "yangcheng",
            )
            check_origin(codec, origin)  # the chain verifies end to end
        first = event_of(items[first_up].event)
        assert first.header.origin is not None
        assert first.header.origin.immediate == ["threatens:residential"]
        assert first.header.urgency is Urgency.IMMEDIATE
        assert upward_event_id(late, "yangcheng") not in items  # never released in the county: never sent

        # The city reviews the county's report like any member's, and releases it once.
        await approve(levels.city, levels.city_registry, first_up, "city-zhao")
        releases = await wait_for_records(
            levels.city, TIERS[Audience.HQ], lambda r: isinstance(r, Release) and r.event_id == first_up
        )
        members = await wait_for_records(
            levels.city, TIERS[Audience.MEMBERS], lambda r: isinstance(r, Release) and r.event_id == first_up
        )
        assert event_of(releases[0].event).header.origin is not None
        assert event_of(members[0].event).header.origin is None  # the origin stays at the city's HQ tier
        assert "header.origin" in members[0].redacted_fields

        # Nothing twice: one city review item per original, one ledger record per original.
        ledger = decoded(codec, await read_to_end(levels.city, upward_ledger("yangcheng")))
        assert Counter(event.header.origin.event_id for event in ledger) == Counter(fires)
        upper_intake = decoded(codec, await read_to_end(levels.city, INTAKE[EventType.FIRE_REPORT]))
        sent = Counter(event.header.event_id for event in upper_intake if isinstance(event, Event))
        print(f"upper intake records per upward report: {sorted(sent.values())}")

        # Escalated once, across a restart: a second late fire's escalation is the fence.
        await levels.bridge.kill()
        await levels.bridge.start()
        fence = await publish_fire(levels, "YC-LATE-2", found=datetime.now(UTC) - timedelta(minutes=25))
        await wait_until(lambda: _has(escalations(levels), fence), "the fence fire escalated")
        counted = await escalations(levels)
        assert counted[late] == 1
        assert counted[fence] == 1
        assert all(counted[event_id] == 0 for event_id in fires)


async def test_a_city_directive_comes_down_and_is_reviewed_in_the_county(tmp_path: Path) -> None:
    """A directive the city office releases to its members arrives in the county's intake as the registered upstream
    unit's, waits for the county's own review, and is released to the county's members once approved."""
    async with two_levels(tmp_path) as levels:
        async with FirebusClient(
            settings=levels.city, unit="jincheng_hq", person="赵志强", county=levels.city_registry
        ) as client:
            receipt = await client.publish(
                Draft(
                    body=Directive(
                        issuing_level=IssuingLevel.CITY,
                        leader="市领导",
                        text="各县立即开展林区火源排查，严防清明期间火情。",
                        publishable=True,
                    ),
                    classification=Classification.INTERNAL,
                    audience=Audience.MEMBERS,
                    severity=Severity.SEVERE,
                    urgency=Urgency.IMMEDIATE,
                )
            )
        directive = receipt.event_id
        await approve(levels.city, levels.city_registry, directive, "city-sun")
        county_desk = ReviewDesk(settings=levels.county, county=levels.county_registry)
        item = await pending_item(county_desk, directive)
        assert item.publisher_unit == "jincheng_hq"
        assert item.status is ReviewStatus.PENDING  # the county reviews it under its own policy
        await county_desk.publish(item, county_desk.decision(item, reviewer="hq-wang", verdict=Verdict.APPROVE))
        released = await wait_for_records(
            levels.county, TIERS[Audience.MEMBERS], lambda r: isinstance(r, Release) and r.event_id == directive
        )
        assert len(released) == 1
        assert event_of(released[0].event).body.text.startswith("各县立即")


def event_of(raw: bytes) -> Event[Any]:
    event = Codec().decode(raw)
    assert isinstance(event, Event)
    return event


def _log_count(path: Path, event: str) -> int:
    return path.read_text(encoding="utf-8", errors="replace").count(f'"event": "{event}"')


async def _later(value: bool) -> bool:
    return value


async def _has(found: Any, key: Any) -> bool:
    return key in await found


async def _all(found: Any, keys: set[Any]) -> Any:
    got = await found
    return got if keys <= set(got) else None
