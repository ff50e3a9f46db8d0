"""The API's idempotency with real PostgreSQL when Kafka fails mid-request: the publisher seam is a stand-in whose
first send fails, so what the API does with an unconfirmed send can be seen (the end-to-end tests use the real one)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from consumers.portal import Api, ApiStore, PortalState, RequestBudget
from firebus.codec import Codec
from firebus.county import County
from firebus.errors import BrokerError
from firebus.events import Event
from firebus.settings import Settings
from producers import FirebusClient, Receipt, draft_from_mapping
from tests.asgi import asgi_request
from tests.consumers.archiving import EXAMPLES

CODEC = Codec()


class FlakyKafka:
    """Signs with the real client library; the first send fails as an unreachable broker does."""

    def __init__(self, client: FirebusClient) -> None:
        self.client = client
        self.prepared = 0
        self.sent: list[bytes] = []

    def prepare(self, unit: str, draft: Mapping[str, Any]) -> Event[Any]:
        self.prepared += 1
        return self.client.prepare(draft_from_mapping(dict(draft)))

    async def send(self, event: Event[Any]) -> Receipt:
        self.sent.append(CODEC.encode(event))
        if len(self.sent) == 1:
            raise BrokerError("no broker answered")
        return Receipt(event.header.event_id, event.header.trace_id, "firebus.intake.fire_report", 0, 7)

    async def close(self) -> None:
        return None


@pytest.fixture
async def api(dsn: str, keys_dir: Path, county: County) -> tuple[Api, FlakyKafka, str]:
    store = ApiStore(dsn=dsn)
    _, token = await store.create(unit="forestry", label="test")
    kafka = FlakyKafka(FirebusClient(settings=Settings(keys_dir=keys_dir), unit="forestry", county=county))
    made = Api(
        county=county,
        publisher=kafka,
        store=store,
        state=PortalState(),
        openapi={},
        budget=RequestBudget(rate_per_minute=60, burst=100),
    )
    return made, kafka, token


async def post(api: Api, token: str, key: str, draft: dict[str, Any]) -> tuple[int, dict[bytes, bytes], Any]:
    response = await asgi_request(
        api.app(),
        "POST",
        "/events/fire_report",
        headers=[(b"authorization", f"Bearer {token}".encode()), (b"idempotency-key", key.encode())],
        body=json.dumps(draft).encode(),
    )
    return response.status, response.headers, json.loads(response.body)


async def test_a_send_never_confirmed_is_503_and_the_retry_sends_the_very_same_signed_event(
    api: tuple[Api, FlakyKafka, str],
) -> None:
    """One prepared (signed) event, sent twice byte for byte: the retry cannot become a second event id."""
    app, kafka, token = api
    draft = json.loads((EXAMPLES / "fire_report.json").read_text(encoding="utf-8"))
    key = str(uuid4())
    status, headers, body = await post(app, token, key, draft)
    assert status == 503, body
    assert headers[b"retry-after"] == b"5"
    status, headers, receipt = await post(app, token, key, draft)
    assert status == 202, receipt
    assert headers[b"idempotent-replayed"] == b"true"
    assert kafka.prepared == 1
    assert len(kafka.sent) == 2
    assert kafka.sent[0] == kafka.sent[1]
    sent = CODEC.decode(kafka.sent[1])
    assert isinstance(sent, Event)
    assert receipt["event_id"] == str(sent.header.event_id)
    status, _, again = await post(app, token, key, draft)
    assert (status, again) == (202, receipt)
    assert len(kafka.sent) == 2
