"""docs/openapi.json: the HTTP API's OpenAPI 3.1 document, committed up to date, valid for the specification's own
schema, served by the portal, and true to the drafts the client library accepts."""

from __future__ import annotations

import json
from typing import Any

import pytest
from openapi_spec_validator import validate

from cli import main
from consumers.portal import Api, ApiStore, PortalState, RequestBudget
from firebus.county import County
from firebus.events import EventType
from tests.asgi import asgi_request
from tests.docs.generated import OPENAPI, REGENERATE, openapi_text


def test_the_committed_document_is_what_the_code_makes_now() -> None:
    """A change of the API or of a draft's schema means regenerating docs/openapi.json."""
    assert OPENAPI.read_text(encoding="utf-8") == openapi_text(), f"docs/openapi.json is stale: run `{REGENERATE}`"


def test_the_document_is_valid_openapi_3_1() -> None:
    document = json.loads(OPENAPI.read_text(encoding="utf-8"))
    assert document["openapi"] == "3.1.0"
    validate(document)


def test_firebus_openapi_prints_the_document(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["openapi"]) == 0
    assert capsys.readouterr().out == OPENAPI.read_text(encoding="utf-8")


def test_every_event_type_has_a_publish_path_with_its_own_draft_schema() -> None:
    document = json.loads(OPENAPI.read_text(encoding="utf-8"))
    schemas = document["components"]["schemas"]
    for event_type in EventType:
        body = document["paths"][f"/events/{event_type.value}"]["post"]["requestBody"]
        ref = body["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
        body_ref = schemas[ref]["properties"]["body"]["$ref"].rsplit("/", 1)[1]
        assert schemas[body_ref]["type"] == "object", event_type


class _NoPublisher:
    def prepare(self, unit: str, draft: Any) -> Any:
        raise AssertionError("not in this test")

    async def send(self, event: Any) -> Any:
        raise AssertionError("not in this test")

    async def close(self) -> None:
        return None


async def test_the_api_serves_the_document_without_a_token(county: County) -> None:
    api = Api(
        county=county,
        publisher=_NoPublisher(),
        store=ApiStore(dsn="postgresql://127.0.0.1:1/unused"),
        state=PortalState(),
        openapi=json.loads(OPENAPI.read_text(encoding="utf-8")),
        budget=RequestBudget(rate_per_minute=1, burst=1),
    )
    response = await asgi_request(api.app(), "GET", "/openapi.json")
    assert response.status == 200
    assert json.loads(response.body) == json.loads(OPENAPI.read_text(encoding="utf-8"))
