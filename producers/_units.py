"""Publishing on behalf of many units from one server process (the portal's HTTP API): one client per unit.

Each unit's client signs with that unit's own key from the keys directory, exactly as the unit's own system would,
so the processors verify what a server publishes like any other event. Clients are made when a unit first
publishes and started when it first sends; a unit whose key is missing or not the registered one is refused with
:class:`~firebus.errors.SigningKeyError` then, not at start-up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import structlog

from firebus.codec import Codec
from firebus.county import County
from firebus.events import BODY_TYPES, Event, EventType
from firebus.settings import Settings
from producers._client import FirebusClient, Receipt
from producers._drafts import Draft, draft_from_mapping

log = structlog.get_logger(__name__)


class UnitClients:
    """``prepare(unit, draft)`` validates and signs as ``unit``; ``send(event)`` publishes with its unit's client."""

    def __init__(self, *, settings: Settings, county: County, codec: Codec | None = None) -> None:
        self.settings = settings
        self.county = county
        self.codec = codec or Codec()
        self._clients: dict[str, FirebusClient] = {}
        self._started: set[str] = set()
        self._starting = asyncio.Lock()

    def _client(self, unit: str) -> FirebusClient:
        client = self._clients.get(unit)
        if client is None:
            client = FirebusClient(settings=self.settings, unit=unit, county=self.county, codec=self.codec)
            self._clients[unit] = client
        return client

    def prepare(self, unit: str, draft: Mapping[str, Any]) -> Event[Any]:
        """The signed event ``draft`` (JSON as parsed, with its ``type``) becomes for ``unit``; the library's
        refusals (:class:`~firebus.errors.InvalidEventError` and its kinds) list every problem."""
        return self._client(unit).prepare(draft_from_mapping(dict(draft)))

    async def send(self, event: Event[Any]) -> Receipt:
        """Send a prepared event with its publisher's client (started on first use)."""
        unit = event.header.publisher.unit
        client = self._client(unit)
        if unit not in self._started:
            async with self._starting:
                if unit not in self._started:
                    await client.start()
                    self._started.add(unit)
                    log.info("unit_client_started", unit=unit)
        return await client.send(event)

    async def close(self) -> None:
        for unit in sorted(self._started):
            await self._clients[unit].stop()
        self._started.clear()


def draft_json_schemas(ref_template: str) -> tuple[dict[EventType, dict[str, Any]], dict[str, Any]]:
    """JSON Schema (2020-12, as OpenAPI 3.1 uses it) of a draft of each event type, and the named schemas they
    refer to through ``ref_template`` (e.g. ``#/components/schemas/{model}``)."""
    shared: dict[str, Any] = {}
    drafts: dict[EventType, dict[str, Any]] = {}
    envelope = Draft.model_json_schema(ref_template=ref_template)
    shared.update(envelope.pop("$defs", {}))
    shared.pop("EventBody", None)
    for event_type, body_type in BODY_TYPES.items():
        body = body_type.model_json_schema(ref_template=ref_template)
        shared.update(body.pop("$defs", {}))
        shared[body_type.__name__] = body
        schema = {**envelope, "title": f"{body_type.__name__}Draft", "properties": dict(envelope["properties"])}
        schema["properties"]["body"] = {"$ref": ref_template.format(model=body_type.__name__)}
        drafts[event_type] = schema
    return drafts, dict(sorted(shared.items()))
