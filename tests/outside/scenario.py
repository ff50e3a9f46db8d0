"""The outside department's story, shared by the one-worker and two-worker tests: signed events of several types,
every codec, with and without keys, published by :mod:`tests.outside.department_client`; reviewed with the real
``firebus review`` command; checked on HQ live, the tiers, ``review list --all`` and the review desk.

Only this module and the tests look at firebus; the department client does not.
"""

from __future__ import annotations

import asyncio
import re
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

from firebus.catalogue import FIRE_RELATED_TYPES
from firebus.codec import Codec
from firebus.county import County
from firebus.events import Audience, Event, EventType
from firebus.kafka import read_to_end
from firebus.records import Release, ReviewStatus
from firebus.settings import Settings
from firebus.topics import HQ_LIVE, INTAKE, TIERS
from processors._sender import partition_for
from processors.review import allowed_tiers
from producers import ReviewDesk
from tests.conftest import cli_env_for
from tests.outside.department_client import DepartmentClient, EventWriter, Sent, load_schemas, now_ms
from tests.processors.conftest import decoded
from tests.test_cli import error_lines, firebus

CODEC = Codec()
SCHEMAS = load_schemas()
MINUTE_MS = 60_000

PUBLISHER = {
    "fire_report": "forestry",
    "traffic_control": "police",
    "risk_warning": "emergency",
    "work_update": "forestry",
}
"""A unit whose duties include the type, and which no rule of the sample review policy pre-authorises at the
severity used here: every event waits for a human."""

CLASSIFICATION = {"public": "public", "members": "internal", "hq": "restricted"}
"""The narrowest classification allowing each audience."""


@dataclass(frozen=True)
class Planned:
    """One alert of the story: how it is sent and to whom it is addressed."""

    codec: str
    keyed: bool
    event_type: str
    audience: str


ALERTS = (
    Planned("none", True, "fire_report", "public"),
    Planned("none", False, "work_update", "members"),
    Planned("gzip", True, "traffic_control", "public"),
    Planned("gzip", False, "fire_report", "members"),
    Planned("snappy", True, "risk_warning", "public"),
    Planned("snappy", False, "traffic_control", "members"),
    Planned("lz4", True, "work_update", "hq"),
    Planned("lz4", False, "risk_warning", "hq"),
    Planned("zstd", True, "fire_report", "hq"),
    Planned("zstd", False, "fire_report", "public"),
)
"""Every codec with and without a key; every type keyed and unkeyed; every audience."""


def body(event_type: str, at_ms: int) -> dict[str, Any]:
    """A plain, valid body of each type, as Avro values."""
    if event_type == "fire_report":
        return {
            "place": {"township": "manghe", "village": "桑林村", "description": "东山坡", "lat": 35.26, "lon": 112.37},
            "discovered_at": at_ms - MINUTE_MS,
            "status": "reported",
            "burned_area_ha": 0.5,
            "forces": [{"unit": "蟒河镇扑火队", "personnel": 12, "vehicles": 2, "equipment": ["风力灭火机"]}],
            "deaths": 0,
            "injuries": 0,
            "suspected_cause": None,
            "reporter_name": "李护林",
            "reporter_phone": "13900001111",
        }
    if event_type == "traffic_control":
        return {
            "road": "S331 省道",
            "section": "桑林村至押水村",
            "measure": "closure",
            "starts_at": at_ms - MINUTE_MS,
            "ends_at": None,
            "reason": "森林火灾扑救，保障扑火车辆通行",
            "detour": "经 G55 绕行",
            "officer_phone": "0356-4220110",
        }
    if event_type == "risk_warning":
        return {
            "danger_level": 4,
            "signal": "orange",
            "area": "蟒河镇东部林区",
            "valid_from": at_ms,
            "valid_to": at_ms + 24 * 60 * MINUTE_MS,
            "measures": ["严禁野外用火"],
        }
    if event_type == "work_update":
        return {"category": "inspection", "title": "林区防火检查", "text": "检查重点林区入山口 6 处。"}
    raise ValueError(event_type)


def fire_alert(writer: EventWriter, incident_prefix: str) -> dict[str, Any]:
    """A plain fire report of a new incident."""
    incident = f"{incident_prefix}-{uuid4().hex[:8]}"
    return writer.event(
        "fire_report", body("fire_report", now_ms()), person="赵林", incident_id=incident, townships=["manghe"]
    )


def foreign_incident(partitions: int) -> str:
    """An incident id that librdkafka's default partitioner (consistent_random: CRC-32 of the key) puts on another
    partition than Kafka's default (murmur2), the one firebus keeps review state on."""
    while True:
        incident = f"OUT-{uuid4().hex[:10]}"
        key = incident.encode()
        if zlib.crc32(key) % partitions != partition_for(key, partitions):
            return incident


class Department:
    """The outside systems of every unit of the story, one librdkafka producer per (unit, codec)."""

    def __init__(self, *, bootstrap_servers: str, keys_dir: Path) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.keys_dir = keys_dir
        self._clients: dict[tuple[str, str], DepartmentClient] = {}

    def writer(self, unit: str, *, key_of: str | None = None) -> EventWriter:
        """``unit``'s writer, signing with ``<keys_dir>/<unit>.key`` (or, for a forgery, another unit's key)."""
        return EventWriter(unit=unit, signing_key=self.keys_dir / f"{key_of or unit}.key", schemas=SCHEMAS)

    def client(self, unit: str, codec: str) -> DepartmentClient:
        if (unit, codec) not in self._clients:
            self._clients[unit, codec] = DepartmentClient(
                self.writer(unit), bootstrap_servers=self.bootstrap_servers, compression=codec
            )
        return self._clients[unit, codec]

    def alert(self, planned: Planned) -> dict[str, Any]:
        unit = PUBLISHER[planned.event_type]
        incident = None
        if planned.event_type in ("fire_report", "traffic_control"):
            incident = foreign_incident(INTAKE[EventType(planned.event_type)].partitions)
        return self.client(unit, planned.codec).writer.event(
            planned.event_type,
            body(planned.event_type, now_ms()),
            person="赵林",
            contact="0356-4220119",
            incident_id=incident,
            classification=CLASSIFICATION[planned.audience],
            audience=planned.audience,
            severity="severe",
            townships=["manghe"],
        )

    def flush(self) -> None:
        for client in self._clients.values():
            client.flush()

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()

    def partition_of(self, sent: Sent) -> int:
        return next(
            client.partitions[sent.value] for client in self._clients.values() if sent.value in client.partitions
        )


@dataclass
class Published:
    """What the story sent, by event id."""

    sent: dict[UUID, Sent] = field(default_factory=dict)
    audience: dict[UUID, Audience] = field(default_factory=dict)
    event_type: dict[UUID, EventType] = field(default_factory=dict)

    def add(self, record: Mapping[str, Any], sent: Sent) -> UUID:
        event_id = UUID(record["header"]["event_id"])
        self.sent[event_id] = sent
        self.audience[event_id] = Audience(record["header"]["audience"])
        self.event_type[event_id] = EventType(record["header"]["event_type"])
        return event_id

    @property
    def ids(self) -> set[UUID]:
        return set(self.sent)

    @property
    def fire_related(self) -> set[UUID]:
        return {event_id for event_id, kind in self.event_type.items() if kind in FIRE_RELATED_TYPES}


# --- the firebus command ----------------------------------------------------------------------------------------


LISTED = re.compile(r"^([0-9a-f-]{36})\s+(\S+)\s+(\S+)\s", re.MULTILINE)


async def listed_states(env: dict[str, str]) -> dict[UUID, str]:
    """``firebus review list --all``: each item's status as the command prints it."""
    code, out, err = await firebus("review", "list", "--all", env=env)
    assert code == 0, err
    return {UUID(event_id): status for event_id, _type, status in LISTED.findall(out)}


async def decide(env: dict[str, str], verdict: str, event_id: UUID, *extra: str) -> None:
    code, out, err = await firebus("review", verdict, str(event_id), "--reviewer", "hq-wang", *extra, env=env)
    assert code == 0, f"review {verdict} {event_id} failed: {err}"
    assert f"{verdict}d {event_id} as hq-wang" in out


async def refused_second_approval(env: dict[str, str], event_id: UUID) -> str:
    """Approve a decided item again: the one error line the command prints."""
    code, _out, err = await firebus("review", "approve", str(event_id), "--reviewer", "hq-li", env=env)
    lines = error_lines(err)
    assert code == 1, err
    assert len(lines) == 1, lines
    assert lines[0].startswith("firebus: error: "), lines
    return lines[0]


# --- waiting and counting ---------------------------------------------------------------------------------------


async def eventually(probe: Callable[[], Awaitable[Any]], what: str, within_s: float = 90.0) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while True:
        found = await probe()
        if found:
            return found
        if loop.time() > deadline:
            raise AssertionError(f"{what}: not within {within_s}s")
        await asyncio.sleep(0.3)


async def desk_states(desk: ReviewDesk, ids: set[UUID]) -> dict[UUID, str]:
    items = await desk.items()
    return {event_id: items[event_id].status.value for event_id in ids if event_id in items}


async def states_become(desk: ReviewDesk, expected: Mapping[UUID, ReviewStatus]) -> dict[UUID, str]:
    want = {event_id: status.value for event_id, status in expected.items()}

    async def probe() -> dict[UUID, str] | None:
        found = await desk_states(desk, set(expected))
        return found if found == want else None

    return await eventually(probe, f"review states {Counter(want.values())}")  # type: ignore[no-any-return]


async def live_counts(settings: Settings, ids: set[UUID]) -> Counter[UUID]:
    records = decoded(CODEC, await read_to_end(settings, HQ_LIVE))
    return Counter(r.header.event_id for r in records if isinstance(r, Event) and r.header.event_id in ids)


async def release_counts(settings: Settings, ids: set[UUID]) -> dict[Audience, Counter[UUID]]:
    counts = {}
    for tier, topic in TIERS.items():
        records = decoded(CODEC, await read_to_end(settings, topic))
        counts[tier] = Counter(r.event_id for r in records if isinstance(r, Release) and r.event_id in ids)
    return counts


def expected_releases(published: Published, released: set[UUID]) -> dict[Audience, Counter[UUID]]:
    """Once per tier its audience allows, for each released event; nothing else."""
    return {
        tier: Counter({event_id: 1 for event_id in released if tier in allowed_tiers(published.audience[event_id])})
        for tier in TIERS
    }


async def releases_become(settings: Settings, expected: dict[Audience, Counter[UUID]], ids: set[UUID]) -> None:
    async def probe() -> bool:
        found = await release_counts(settings, ids)
        return all(found[tier][event_id] >= n for tier, wanted in expected.items() for event_id, n in wanted.items())

    await eventually(probe, "releases on every tier")


# --- the story --------------------------------------------------------------------------------------------------


@dataclass
class Story:
    """What :func:`outside_story` did, for further checks by the caller."""

    published: Published
    approved: set[UUID]
    rejected: UUID
    update: UUID
    original: UUID


async def outside_story(
    settings: Settings,
    county: County,
    *,
    keys_dir: Path,
    pending_seen: Callable[[Published], Awaitable[None]] | None = None,
    settled_seen: Callable[[Story], Awaitable[None]] | None = None,
) -> Story:
    """The department publishes :data:`ALERTS` and one more traffic control; HQ approves the alerts and rejects the
    extra one with ``firebus review``; then an update of a released fire report, sent without a key, is approved as
    well. ``pending_seen`` and ``settled_seen`` add checks while everything is pending and once all is settled."""
    department = Department(bootstrap_servers=settings.bootstrap_servers, keys_dir=keys_dir)
    try:
        return await _story(settings, county, department, pending_seen=pending_seen, settled_seen=settled_seen)
    finally:
        department.close()


async def _story(
    settings: Settings,
    county: County,
    department: Department,
    *,
    pending_seen: Callable[[Published], Awaitable[None]] | None,
    settled_seen: Callable[[Story], Awaitable[None]] | None,
) -> Story:
    env = cli_env_for(settings)
    desk = ReviewDesk(settings=settings, county=county)
    published = Published()

    # Alerts, every codec, with and without keys; one more to be rejected.
    records = [department.alert(planned) for planned in ALERTS]
    extra = department.alert(Planned("gzip", True, "traffic_control", "members"))
    for planned, record in [*zip(ALERTS, records, strict=True), (Planned("gzip", True, "traffic_control", ""), extra)]:
        client = department.client(record["header"]["publisher"]["unit"], planned.codec)
        published.add(record, client.publish(record, keyed=planned.keyed))
    department.flush()
    rejected = UUID(extra["header"]["event_id"])
    for event_id, sent in published.sent.items():
        if sent.key is not None and published.event_type[event_id] in (
            EventType.FIRE_REPORT,
            EventType.TRAFFIC_CONTROL,
        ):
            topic = INTAKE[published.event_type[event_id]]
            assert department.partition_of(sent) == zlib.crc32(sent.key) % topic.partitions, "not librdkafka's choice"
            assert department.partition_of(sent) != partition_for(sent.key, topic.partitions)

    live = await eventually(
        lambda: _all_there(live_counts(settings, published.fire_related), published.fire_related), "HQ live"
    )
    assert live == Counter(dict.fromkeys(published.fire_related, 1))

    pending = dict.fromkeys(published.ids, ReviewStatus.PENDING)
    await states_become(desk, pending)
    listed = await listed_states(env)
    assert {event_id: listed.get(event_id) for event_id in published.ids} == dict.fromkeys(published.ids, "pending")
    if pending_seen is not None:
        await pending_seen(published)

    approved = published.ids - {rejected}
    await asyncio.gather(*(decide(env, "approve", event_id) for event_id in sorted(approved)))
    await decide(env, "reject", rejected, "--reason", "路段信息有误，请核实后重报")
    settled = {**dict.fromkeys(approved, ReviewStatus.RELEASED), rejected: ReviewStatus.REJECTED}
    await states_become(desk, settled)
    await releases_become(settings, expected_releases(published, approved), published.ids)

    # An update of a released fire report: no key, another codec; placed by its incident id all the same.
    original_record = records[0]
    original = UUID(original_record["header"]["event_id"])
    header = original_record["header"]
    writer = department.client("forestry", "gzip").writer
    update = writer.event(
        "fire_report",
        {**body("fire_report", now_ms()), "status": "suppressing", "burned_area_ha": 2.0},
        person="赵林",
        kind="update",
        references=[str(original)],
        incident_id=header["incident_id"],
        classification=header["classification"],
        audience=header["audience"],
        severity="severe",
        townships=["manghe"],
    )
    update_id = published.add(update, department.client("forestry", "gzip").publish(update, keyed=False))
    department.flush()
    await eventually(lambda: _all_there(live_counts(settings, {update_id}), {update_id}), "the update on HQ live")
    await states_become(desk, {update_id: ReviewStatus.PENDING, original: ReviewStatus.RELEASED})
    await decide(env, "approve", update_id)
    approved.add(update_id)
    await states_become(desk, {**settled, update_id: ReviewStatus.RELEASED})
    await releases_become(settings, expected_releases(published, approved), published.ids)
    items = await desk.items()
    assert items[update_id].thread_id == original
    assert items[update_id].partition_key == items[original].partition_key == header["incident_id"]

    # Exactly once, everywhere, now that later work (the update) went through after everything else.
    assert await live_counts(settings, published.ids) == Counter(dict.fromkeys(published.fire_related, 1))
    assert await release_counts(settings, published.ids) == expected_releases(published, approved)

    story = Story(published=published, approved=approved, rejected=rejected, update=update_id, original=original)
    final = {event_id: ("rejected" if event_id == rejected else "released") for event_id in published.ids}
    listed = await listed_states(env)
    assert {event_id: listed.get(event_id) for event_id in published.ids} == final
    assert await desk_states(desk, published.ids) == final
    line = await refused_second_approval(env, original)
    assert f"{original} is released, not pending" in line
    if settled_seen is not None:
        await settled_seen(story)
    assert await desk_states(desk, published.ids) == final, "a refused approval changed a state"
    return story


async def fence(settings: Settings, department: Department) -> Sent:
    """Publish a valid fire report and wait until it is on HQ live: the intake gate has handled what came before."""
    record = fire_alert(department.writer("forestry"), "FENCE")
    sent = department.client("forestry", "zstd").publish(record)
    department.flush()
    fence_id = UUID(record["header"]["event_id"])
    await eventually(lambda: _all_there(live_counts(settings, {fence_id}), {fence_id}), "the fence on HQ live")
    return sent


async def _all_there(counting: Awaitable[Counter[UUID]], ids: set[UUID]) -> Counter[UUID] | None:
    found = await counting
    return found if set(found) == ids else None
