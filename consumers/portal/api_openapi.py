"""The OpenAPI 3.1 document of ``/api/v1``: paths and errors written here, the drafts' JSON Schemas given by the
client library (the composition root passes them in). Served at ``/api/v1/openapi.json``; committed as
``docs/openapi.json`` and kept current by a test (``python -m tests.docs.generated`` rewrites it)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from firebus.catalogue import CATALOGUE
from firebus.events import Audience, EventType

VERSION = "1.0.0"


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _retry(description: str) -> dict[str, Any]:
    return {
        **_error(description),
        "headers": {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer", "minimum": 1}}},
    }


_COMMON_ERRORS = {
    "401": _error("no valid bearer token (missing, unknown or revoked)"),
    "429": _retry("this credential's request budget is spent"),
    "503": _retry("the credential store or Kafka cannot be reached now; retry with the same Idempotency-Key"),
}

_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error", "problems"],
        "properties": {
            "error": {"type": "string"},
            "problems": {
                "type": "array",
                "description": "every bad field, each with what is wrong (the client library's own texts)",
                "items": {"$ref": "#/components/schemas/Problem"},
            },
        },
    },
    "Problem": {
        "type": "object",
        "required": ["field", "message"],
        "properties": {
            "field": {"type": "string", "description": "dotted path, e.g. body.place.township or header.audience"},
            "message": {"type": "string"},
        },
    },
    "Receipt": {
        "type": "object",
        "required": ["event_id", "trace_id", "topic", "partition", "offset"],
        "properties": {
            "event_id": {"type": "string", "format": "uuid"},
            "trace_id": {"type": "string"},
            "topic": {"type": "string"},
            "partition": {"type": "integer"},
            "offset": {"type": "integer"},
        },
    },
    "ReleasedRecord": {
        "type": "object",
        "required": [
            "event_id",
            "release_id",
            "tier",
            "event_type",
            "kind",
            "thread_id",
            "publisher_unit",
            "released_at",
            "event",
        ],
        "properties": {
            "event_id": {"type": "string", "format": "uuid"},
            "release_id": {"type": "string", "format": "uuid"},
            "tier": {"$ref": "#/components/schemas/Audience"},
            "event_type": {"type": "string", "enum": [t.value for t in EventType]},
            "kind": {"$ref": "#/components/schemas/MessageKind"},
            "thread_id": {"type": "string", "format": "uuid"},
            "incident_id": {"type": ["string", "null"]},
            "publisher_unit": {"type": "string"},
            "released_at": {"type": "string", "format": "date-time"},
            "event": {"type": "object", "description": "the event as this tier sees it (redacted for it)"},
        },
    },
    "RecordsPage": {
        "type": "object",
        "required": ["tier", "records", "next_cursor", "caught_up"],
        "properties": {
            "tier": {"$ref": "#/components/schemas/Audience"},
            "records": {"type": "array", "items": {"$ref": "#/components/schemas/ReleasedRecord"}},
            "next_cursor": {"type": "string", "description": "opaque; pass it back to read on from here"},
            "caught_up": {"type": "boolean", "description": "false while the portal is still reading the tier"},
        },
    },
}


def _publish(event_type: EventType) -> dict[str, Any]:
    name = CATALOGUE[event_type].name
    return {
        "post": {
            "operationId": f"publish_{event_type.value}",
            "summary": f"Publish a {event_type.value} draft ({name}) as the calling unit",
            "description": "Validated, signed with the unit's key and sent to the type's intake topic exactly as the "
            "client library does; the HQ office reviews it before release. The same Idempotency-Key with the same "
            "draft returns the first receipt (Idempotent-Replayed: true); with another draft, 422.",
            "tags": ["publishing"],
            "parameters": [{"$ref": "#/components/parameters/IdempotencyKey"}],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{event_type.value}_draft"}}},
            },
            "responses": {
                "202": {
                    "description": "accepted for review: where the signed event landed",
                    "headers": {"Idempotent-Replayed": {"schema": {"type": "string", "enum": ["true", "false"]}}},
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Receipt"}}},
                },
                "400": _error("no Idempotency-Key, or the body is not JSON"),
                "403": _error("the unit's duties do not include this event type"),
                "413": _error("the body is too large"),
                "422": _error(
                    "the draft breaks the schema, the text rules or a governance rule (every problem "
                    "listed), or the Idempotency-Key was used for a different draft"
                ),
                **_COMMON_ERRORS,
            },
        }
    }


def openapi_document(drafts: Mapping[EventType, Mapping[str, Any]], shared: Mapping[str, Any]) -> dict[str, Any]:
    """The document, given each type's draft schema and the named schemas they refer to."""
    paths: dict[str, Any] = {f"/events/{event_type.value}": _publish(event_type) for event_type in EventType}
    paths["/records"] = {
        "get": {
            "operationId": "read_records",
            "summary": "Released records of the caller's tier, oldest read first (各部门自行获取所需信息)",
            "description": "A unit reads the members tier (the HQ office the hq tier) or a wider one. Follow "
            "next_cursor to page on without gaps or repeats; an empty page means nothing newer yet.",
            "tags": ["reading"],
            "parameters": [
                {
                    "name": "tier",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "string", "enum": [tier.value for tier in Audience]},
                    "description": "default: the caller's own tier",
                },
                {"name": "cursor", "in": "query", "required": False, "schema": {"type": "string"}},
                {
                    "name": "limit",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 100},
                },
            ],
            "responses": {
                "200": {
                    "description": "one page",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/RecordsPage"}}},
                },
                "400": _error("a bad tier, limit or cursor"),
                "403": _error("a tier narrower than the caller's"),
                **_COMMON_ERRORS,
            },
        }
    }
    schemas = {**shared, **_SCHEMAS, **{f"{t.value}_draft": dict(s) for t, s in drafts.items()}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "firebus HTTP API",
            "version": VERSION,
            "description": "For department systems without Kafka: publish drafts as your unit and read released "
            "records of your tier. Credentials: `firebus api-keys create --unit UNIT` (ask the HQ office).",
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "parameters": {
                "IdempotencyKey": {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": True,
                    "description": "your id of this publication (e.g. a UUID): a retry with the same key and draft "
                    "never publishes twice",
                    "schema": {"type": "string", "minLength": 1, "maxLength": 200},
                }
            },
            "schemas": dict(sorted(schemas.items())),
        },
    }


def openapi_json(drafts: Mapping[EventType, Mapping[str, Any]], shared: Mapping[str, Any]) -> str:
    """The document as committed: indented JSON, Chinese as is, ending in a newline."""
    return json.dumps(openapi_document(drafts, shared), indent=2, ensure_ascii=False) + "\n"
