"""The HTTP API (/api/v1) from outside: a department system with a plain HTTP client (aiohttp) against the real
`firebus portal` process, on this module's own embedded broker with a real `firebus processors` worker and a
PostgreSQL schema of its own; credentials made with the real `firebus api-keys` command."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import aiohttp
import psycopg
import pytest

from firebus.codec import Codec
from firebus.county import County, load_county
from firebus.errors import InvalidEventError
from firebus.events import Audience, Event, EventType
from firebus.kafka import read_to_end
from firebus.records import Release, ReviewStatus, Verdict
from firebus.settings import Settings
from firebus.signing import check_signature, registered_public_keys
from firebus.topics import INTAKE, TIERS
from producers import FirebusClient, ReviewDesk, draft_from_mapping
from tests.consumers.archiving import EXAMPLES, crafted_release, outgoing, produce
from tests.consumers.test_portal_browser import PortalProcess
from tests.processors.conftest import Worker

ROOT = Path(__file__).resolve().parents[2]
CODEC = Codec()
BURST = 40


# --- fixtures --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def worker(kafka: Settings, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Worker]:
    """The real processors worker on this module's broker."""
    running = Worker(kafka, tmp_path_factory.mktemp("api-worker") / "processors.log")
    await running.start()
    yield running
    await running.stop()


@pytest.fixture(scope="module")
async def portal(
    kafka: Settings, dsn: str, worker: Worker, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[PortalProcess]:
    """`firebus portal` serving the API; each credential may make BURST requests, then one a minute."""
    running = PortalProcess(kafka, tmp_path_factory.mktemp("api-portal") / "portal.log", dsn=dsn)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FIREBUS_API_BURST", str(BURST))
        patch.setenv("FIREBUS_API_RATE_PER_MINUTE", "1")
        try:
            await running.start()
            yield running
        finally:
            await running.stop()


async def firebus(kafka: Settings, dsn: str, *args: str) -> tuple[int, str, str]:
    env = {**os.environ, "FIREBUS_BOOTSTRAP": kafka.bootstrap_servers, "FIREBUS_ARCHIVE_DSN": dsn}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cli", *args, env=env, cwd=ROOT, stdout=-1, stderr=-1
    )
    out, err = await process.communicate()
    return process.returncode or 0, out.decode(), err.decode()


async def token_for(kafka: Settings, dsn: str, unit: str) -> tuple[str, str]:
    """A new credential of ``unit`` made with `firebus api-keys create`: (credential id, token)."""
    code, out, err = await firebus(kafka, dsn, "api-keys", "create", "--unit", unit, "--json")
    assert code == 0, err
    made = json.loads(out)
    return made["credential_id"], made["token"]


class Department:
    """A department system's HTTP client: a bearer token and nothing of firebus."""

    def __init__(self, portal: PortalProcess, token: str) -> None:
        self.url = f"{portal.url}/api/v1"
        self.headers = {"Authorization": f"Bearer {token}"}

    async def post(self, event_type: str, draft: Any, key: str | None) -> tuple[int, Mapping[str, str], Any]:
        headers = {**self.headers, **({"Idempotency-Key": key} if key is not None else {})}
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{self.url}/events/{event_type}", json=draft, headers=headers) as response,
        ):
            return response.status, response.headers.copy(), await response.json()

    async def get(self, path: str, **params: str) -> tuple[int, Mapping[str, str], Any]:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{self.url}{path}", params=params, headers=self.headers) as response,
        ):
            return response.status, response.headers.copy(), await response.json()


def draft(name: str = "fire_report", **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXAMPLES / f"{name}.json").read_text(encoding="utf-8"))
    data.pop("type", None)
    data.update(changes)
    return data


async def eventually(probe: Any, within_s: float = 90.0, poll_s: float = 0.3) -> Any:
    deadline = asyncio.get_running_loop().time() + within_s
    while True:
        found = await probe()
        if found:
            return found
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(poll_s)


async def intake_events(kafka: Settings, event_type: EventType, incident_id: str) -> list[Event[Any]]:
    """What is on the type's intake topic for ``incident_id``, each signature checked against the registry."""
    found = []
    keys = registered_public_keys(load_county(kafka.config), kafka.key_directory)
    for _key, value in await read_to_end(kafka, INTAKE[event_type]):
        record = CODEC.decode(value or b"")
        if isinstance(record, Event) and record.header.incident_id == incident_id:
            assert check_signature(CODEC, value or b"", keys) == record.header.publisher.unit
            found.append(record)
    return found


def problems(body: dict[str, Any]) -> list[tuple[str, str]]:
    return [(p["field"], p["message"]) for p in body["problems"]]


def library_problems(kafka: Settings, county: County, data: dict[str, Any], event_type: str) -> list[tuple[str, str]]:
    """What the client library itself says of the same draft."""
    client = FirebusClient(settings=kafka, unit="forestry", county=county)
    with pytest.raises(InvalidEventError) as refused:
        client.prepare(draft_from_mapping({**data, "type": event_type}))
    return [(p.field, p.message) for p in refused.value.problems]


# --- publishing ------------------------------------------------------------------------------------------------


async def test_a_retried_publish_whose_first_response_was_lost_is_one_event_released_by_the_worker(
    kafka: Settings, dsn: str, county: County, portal: PortalProcess
) -> None:
    """The first request is sent whole and its connection dropped before the answer; retries with the same key —
    one after the first was done, two at once — all get the first receipt; the intake topic holds one event, the
    worker queues it, a reviewer approves it, and the unit reads it back as released."""
    _, token = await token_for(kafka, dsn, "forestry")
    marker = f"API-{uuid4().hex[:10]}"
    data = draft(incident_id=marker)
    key = str(uuid4())
    body = json.dumps(data).encode()
    host, port = "127.0.0.1", portal.port
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(
        f"POST /api/v1/events/fire_report HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
        f"Idempotency-Key: {key}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    await writer.drain()

    async def first_sent() -> Any:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as connection:
            cursor = await connection.execute(
                "SELECT event_id FROM api_idempotency WHERE idempotency_key = %s AND sent_at IS NOT NULL", (key,)
            )
            return await cursor.fetchone()

    (first_id,) = await eventually(first_sent)
    writer.close()  # the answer, written by now, is never read: lost
    del reader
    department = Department(portal, token)
    retries = await asyncio.gather(*(department.post("fire_report", data, key) for _ in range(3)))
    for status, headers, receipt in retries:
        assert status == 202, receipt
        assert headers["Idempotent-Replayed"] == "true"
        assert receipt["event_id"] == str(first_id)
        assert receipt["topic"] == INTAKE[EventType.FIRE_REPORT].name
    assert [event.header.event_id for event in await intake_events(kafka, EventType.FIRE_REPORT, marker)] == [first_id]

    desk = ReviewDesk(settings=kafka, county=county)

    async def pending() -> Any:
        item = (await desk.items()).get(first_id)
        return item if item is not None and item.status is ReviewStatus.PENDING else None

    item = await eventually(pending)
    await desk.publish(item, desk.decision(item, reviewer="hq-li", verdict=Verdict.APPROVE))

    async def released() -> bool:
        status, _, page = await department.get("/records", limit="500")
        assert status == 200, page
        return any(record["event_id"] == str(first_id) for record in page["records"])

    await eventually(released)


async def test_a_fresh_key_publishes_once_and_the_same_key_with_another_draft_is_refused(
    kafka: Settings, dsn: str, portal: PortalProcess
) -> None:
    """202 with the receipt (event id, trace id); the key reused for a changed draft is 422 and publishes nothing."""
    _, token = await token_for(kafka, dsn, "twp_manghe")
    department = Department(portal, token)
    marker = f"API-{uuid4().hex[:10]}"
    key = str(uuid4())
    status, headers, receipt = await department.post("fire_report", draft(incident_id=marker), key)
    assert status == 202, receipt
    assert headers["Idempotent-Replayed"] == "false"
    assert UUID(receipt["event_id"])
    assert len(receipt["trace_id"]) == 32
    status, _, refused = await department.post("fire_report", draft(incident_id=marker, severity="minor"), key)
    assert status == 422
    assert [field for field, _ in problems(refused)] == ["Idempotency-Key"]
    published = await intake_events(kafka, EventType.FIRE_REPORT, marker)
    assert [event.header.event_id for event in published] == [UUID(receipt["event_id"])]
    assert published[0].header.publisher.unit == "twp_manghe"


async def test_every_bad_field_is_named_in_one_422_with_the_librarys_own_words(
    kafka: Settings, dsn: str, county: County, portal: PortalProcess
) -> None:
    _, token = await token_for(kafka, dsn, "forestry")
    data = draft(audience="everyone", townships=["nowhere"])
    data["body"] = {**data["body"], "place": {**data["body"]["place"], "lat": 200}}
    del data["body"]["status"]
    status, _, body = await Department(portal, token).post("fire_report", data, str(uuid4()))
    assert status == 422, body
    fields = [field for field, _ in problems(body)]
    assert {"audience", "body.place.lat", "body.status"} <= set(fields), fields
    assert problems(body) == library_problems(kafka, county, data, "fire_report")


async def test_hostile_text_is_refused_as_the_library_refuses_it_and_the_key_stays_usable(
    kafka: Settings, dsn: str, county: County, portal: PortalProcess
) -> None:
    """Bidi overrides, control characters and lone surrogates are refused field by field, with the library's
    words; the same key then publishes the corrected draft (a refused request leaves nothing behind)."""
    _, token = await token_for(kafka, dsn, "forestry")
    department = Department(portal, token)
    marker = f"API-{uuid4().hex[:10]}"
    data = draft(incident_id=marker)
    data["body"] = {
        **data["body"],
        "place": {**data["body"]["place"], "village": "桑林村\u202egnp.exe", "description": "山\x00火\ud800"},
    }
    key = str(uuid4())
    status, _, body = await department.post("fire_report", data, key)
    assert status == 422, body
    assert {field for field, _ in problems(body)} == {"body.place.village", "body.place.description"}
    assert problems(body) == library_problems(kafka, county, data, "fire_report")
    status, _, receipt = await department.post("fire_report", draft(incident_id=marker), key)
    assert status == 202, receipt


async def test_a_type_outside_the_units_duties_is_403_and_an_unknown_type_404(
    kafka: Settings, dsn: str, portal: PortalProcess
) -> None:
    _, token = await token_for(kafka, dsn, "forestry")
    department = Department(portal, token)
    status, _, body = await department.post("traffic_control", draft("traffic_control"), str(uuid4()))
    assert status == 403
    assert [field for field, _ in problems(body)] == ["type"]
    assert "traffic_control" in body["problems"][0]["message"]
    status, _, body = await department.post("wildfire", draft(), str(uuid4()))
    assert status == 404


async def test_no_idempotency_key_or_no_json_is_400(kafka: Settings, dsn: str, portal: PortalProcess) -> None:
    _, token = await token_for(kafka, dsn, "forestry")
    department = Department(portal, token)
    status, _, body = await department.post("fire_report", draft(), None)
    assert status == 400
    assert [field for field, _ in problems(body)] == ["Idempotency-Key"]
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{department.url}/events/fire_report",
            data=b"{not json",
            headers={**department.headers, "Idempotency-Key": "k-1"},
        ) as response,
    ):
        assert response.status == 400


async def test_a_wrong_missing_or_revoked_token_is_401(kafka: Settings, dsn: str, portal: PortalProcess) -> None:
    """Refused before anything else; a token revoked with `firebus api-keys revoke` is refused from the next
    request on, and `api-keys list` shows it revoked."""
    credential_id, token = await token_for(kafka, dsn, "police")
    department = Department(portal, token)
    assert (await department.get("/records"))[0] == 200
    for wrong in (Department(portal, token + "x"), Department(portal, "")):
        status, headers, body = await wrong.post("traffic_control", draft("traffic_control"), str(uuid4()))
        assert status == 401, body
        assert headers["WWW-Authenticate"].startswith("Bearer")
    code, out, err = await firebus(kafka, dsn, "api-keys", "revoke", credential_id, "--unit", "police")
    assert code == 0, err
    status, _, _ = await department.get("/records")
    assert status == 401
    code, out, _ = await firebus(kafka, dsn, "api-keys", "list", "--unit", "police", "--json")
    listed = {c["credential_id"]: c for c in json.loads(out)["credentials"]}
    assert listed[credential_id]["revoked_at"] is not None
    assert token not in out


async def test_api_keys_refuses_an_unknown_unit_in_one_line(kafka: Settings, dsn: str) -> None:
    code, _, err = await firebus(kafka, dsn, "api-keys", "create", "--unit", "nobody")
    assert code == 1
    assert err.count("\n") == 1
    assert "nobody" in err


async def test_a_credential_over_its_budget_gets_429_with_retry_after(
    kafka: Settings, dsn: str, portal: PortalProcess
) -> None:
    """BURST requests pass, the next is 429 with the seconds to wait; another credential of the same unit is not
    held up."""
    _, token = await token_for(kafka, dsn, "meteorology")
    department = Department(portal, token)
    statuses = [(await department.get("/records", limit="1"))[0] for _ in range(BURST)]
    assert statuses == [200] * BURST
    status, headers, body = await department.get("/records", limit="1")
    assert status == 429, body
    assert int(headers["Retry-After"]) >= 1
    _, other = await token_for(kafka, dsn, "meteorology")
    assert (await Department(portal, other).get("/records", limit="1"))[0] == 200


# --- reading ---------------------------------------------------------------------------------------------------


async def test_a_unit_reads_its_own_tier_or_wider_and_only_the_hq_office_reads_hq(
    kafka: Settings, dsn: str, portal: PortalProcess
) -> None:
    _, member = await token_for(kafka, dsn, "twp_xihe")
    _, office = await token_for(kafka, dsn, "hq_office")
    township, hq = Department(portal, member), Department(portal, office)
    assert (await township.get("/records"))[2]["tier"] == "members"
    assert (await township.get("/records", tier="public"))[2]["tier"] == "public"
    status, _, body = await township.get("/records", tier="hq")
    assert status == 403
    assert [field for field, _ in problems(body)] == ["tier"]
    assert (await hq.get("/records"))[2]["tier"] == "hq"
    status, _, body = await township.get("/records", tier="secret", limit="0")
    assert status == 400
    assert {field for field, _ in problems(body)} == {"tier", "limit"}
    hq_cursor = (await hq.get("/records", tier="hq"))[2]["next_cursor"]
    status, _, body = await township.get("/records", tier="members", cursor=hq_cursor)
    assert status == 400  # a cursor of the hq tier does not open it, nor read members


async def test_paging_with_the_cursor_reads_every_released_record_once_while_more_arrive(
    kafka: Settings, dsn: str, county: County, portal: PortalProcess
) -> None:
    """Releases on all partitions of the members tier, more of them produced between pages: following next_cursor
    with small pages yields every release on the topic exactly once, in no page twice."""
    _, token = await token_for(kafka, dsn, "emergency")
    department = Department(portal, token)
    client = FirebusClient(settings=kafka, unit="forestry", county=county)
    marker = f"PAGE-{uuid4().hex[:8]}"
    now = datetime.now(UTC)
    for partition in range(3):
        await produce(
            kafka, outgoing([crafted_release(client, Audience.MEMBERS, marker, now) for _ in range(3)], partition)
        )
    seen: list[str] = []
    cursor = ""

    async def read_on() -> list[str]:
        nonlocal cursor
        status, _, page = await department.get("/records", limit="4", **({"cursor": cursor} if cursor else {}))
        assert status == 200, page
        cursor = page["next_cursor"]
        got = [record["event_id"] for record in page["records"]]
        seen.extend(got)
        return got

    await read_on()
    late = [crafted_release(client, Audience.MEMBERS, marker, now) for _ in range(4)]
    await produce(kafka, outgoing(late))  # keyed by incident: one partition
    expected = {
        str(record.event_id)
        for _key, value in await read_to_end(kafka, TIERS[Audience.MEMBERS])
        if isinstance(record := CODEC.decode(value or b""), Release)
    }
    assert {str(r.event_id) for r in late} <= expected

    async def all_read() -> bool:
        await read_on()
        return expected <= set(seen)

    await eventually(all_read, within_s=60.0, poll_s=1.0)
    assert len(seen) == len(set(seen)), "a record came twice"
    assert set(seen) == expected


async def test_the_portal_serves_the_committed_openapi_document(portal: PortalProcess) -> None:
    status, body = await portal.get("/api/v1/openapi.json")
    assert status == 200
    assert json.loads(body) == json.loads((ROOT / "docs" / "openapi.json").read_text(encoding="utf-8"))
