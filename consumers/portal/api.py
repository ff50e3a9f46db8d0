"""The HTTP API for department systems without Kafka (``/api/v1``, served by the portal process).

    POST /api/v1/events/{type}    publish a draft (JSON) as the calling unit; ``Idempotency-Key`` required;
                                  202 with the receipt
    GET  /api/v1/records          released records of the caller's tier, paged with an opaque cursor
    GET  /api/v1/openapi.json     the OpenAPI 3.1 document (also committed as docs/openapi.json)

Callers authenticate with a per-unit bearer token (``firebus api-keys create --unit U``), checked against the
hashes in PostgreSQL on every request, so a revocation holds from the next request on. Each credential has its own
request budget (token bucket; 429 with ``Retry-After`` when spent).

The API never judges a draft itself: it hands the JSON to the injected :class:`UnitPublisher` — the client
library's, which validates (schema, text hygiene, governance) and signs with the unit's own key exactly as a
unit's own system would — and answers every refusal with its problems, each naming its field. An idempotency key
is held (a PostgreSQL advisory lock) while its request runs, and the signed event is recorded before it is sent:
a retry finds the first attempt's receipt, or re-sends the very same signed event when the first send was never
confirmed, so one key is one event however often the request comes.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any, Protocol

import structlog
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from consumers.portal.api_store import ApiStore, Attempt, Claim, Credential
from consumers.portal.board import Notice
from consumers.portal.released import decode_cursor, encode_cursor
from consumers.portal.state import PortalState
from firebus.codec import Codec
from firebus.county import County, Unit, UnitKind
from firebus.errors import (
    BrokerError,
    ClassifiedEventError,
    DutyViolationError,
    FirebusError,
    InvalidEventError,
    Problem,
    SigningKeyError,
    StoreUnavailableError,
    UnknownUnitError,
)
from firebus.events import Audience, Event, EventType

log = structlog.get_logger(__name__)

MAX_BODY_BYTES = 256 * 1024
PAGE_DEFAULT = 100
PAGE_MAX = 500
IDEMPOTENCY_KEY_MAX = 200
RETRY_AFTER_S = 5


class Landed(Protocol):
    """Where a sent event landed (the client library's ``Receipt``)."""

    @property
    def topic(self) -> str: ...

    @property
    def partition(self) -> int: ...

    @property
    def offset(self) -> int: ...


class UnitPublisher(Protocol):
    """What the API needs to publish as a unit; the composition root injects the client library's ``UnitClients``."""

    def prepare(self, unit: str, draft: Mapping[str, Any]) -> Event[Any]:
        """The signed event; refusals are :class:`InvalidEventError` (and kinds) listing every problem."""

    async def send(self, event: Event[Any]) -> Landed: ...

    async def close(self) -> None: ...


class RequestBudget:
    """A token bucket per credential: ``burst`` requests at once, then ``rate_per_minute``. Pure arithmetic over
    the clock it is given."""

    def __init__(self, *, rate_per_minute: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate_per_s = rate_per_minute / 60.0
        self.burst = float(burst)
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, credential_id: str) -> float:
        """Spend one request; 0 when allowed, else the seconds until one is there again (nothing spent)."""
        now = self._clock()
        tokens, at = self._buckets.get(credential_id, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate_per_s)
        if tokens < 1:
            self._buckets[credential_id] = (tokens, now)
            return (1 - tokens) / self.rate_per_s
        self._buckets[credential_id] = (tokens - 1, now)
        return 0.0


def tier_of(unit: Unit) -> Audience:
    """The narrowest tier a unit reads: the HQ office reads hq, every other unit members."""
    return Audience.HQ if unit.kind is UnitKind.HQ_OFFICE else Audience.MEMBERS


def request_digest(event_type: EventType, draft: Mapping[str, Any]) -> bytes:
    """What makes two requests the same request: the type and the JSON value (not its spacing or key order)."""
    canonical = json.dumps([event_type.value, draft], sort_keys=True, separators=(",", ":"))  # ASCII: surrogates too
    return hashlib.sha256(canonical.encode("utf-8")).digest()


def refusal(status: int, message: str, problems: tuple[Problem, ...] = (), **headers: str) -> Response:
    """The one shape of every error: a message, and every bad field with what is wrong with it."""
    body = {"error": message, "problems": [{"field": p.field, "message": p.message} for p in problems]}
    # ASCII escapes: a refused draft's own text may be quoted back, lone surrogates included, which UTF-8 cannot carry
    return Response(
        json.dumps(body, ensure_ascii=True),
        status_code=status,
        media_type="application/json",
        headers={k.replace("_", "-"): v for k, v in headers.items()},
    )


def receipt(attempt: Attempt, *, replayed: bool) -> JSONResponse:
    body = {
        "event_id": str(attempt.event_id),
        "trace_id": attempt.trace_id,
        "topic": attempt.topic,
        "partition": attempt.partition,
        "offset": attempt.offset,
    }
    return JSONResponse(body, status_code=202, headers={"Idempotent-Replayed": "true" if replayed else "false"})


def record_json(notice: Notice) -> dict[str, Any]:
    release = notice.release
    return {
        "event_id": str(release.event_id),
        "release_id": str(release.release_id),
        "tier": release.tier.value,
        "event_type": release.event_type.value,
        "kind": release.kind.value,
        "thread_id": str(release.thread_id),
        "incident_id": release.incident_id,
        "publisher_unit": release.publisher_unit,
        "released_at": release.released_at.isoformat(),
        "event": notice.event.model_dump(mode="json"),
    }


Handler = Callable[[Request, Credential, Unit], Awaitable[Response]]


class Api:
    """The API's collaborators and handlers; :meth:`app` is the ASGI app the portal mounts at ``/api/v1``."""

    def __init__(
        self,
        *,
        county: County,
        publisher: UnitPublisher,
        store: ApiStore,
        state: PortalState,
        openapi: Mapping[str, Any],
        budget: RequestBudget,
        codec: Codec | None = None,
    ) -> None:
        self.county = county
        self.publisher = publisher
        self.store = store
        self.state = state
        self.openapi = dict(openapi)
        self.budget = budget
        self.codec = codec or Codec()

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/events/{event_type}", self._guarded(self.publish), methods=["POST"]),
                Route("/records", self._guarded(self.records), methods=["GET"]),
                Route("/openapi.json", self.openapi_document, methods=["GET"]),
            ]
        )

    async def close(self) -> None:
        await self.publisher.close()

    async def openapi_document(self, request: Request) -> Response:
        return JSONResponse(self.openapi)

    # --- who is calling --------------------------------------------------------------------------------------

    def _guarded(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """``handler`` behind the bearer token and the credential's request budget; an unreachable store or broker
        is a 503 to retry later, never a 500."""

        async def guarded(request: Request) -> Response:
            try:
                found = await self._caller(request)
                if isinstance(found, Response):
                    return found
                credential, unit = found
                wait = self.budget.take(credential.credential_id)
                if wait > 0:
                    log.info("api_rate_limited", credential=credential.credential_id, unit=unit.id)
                    retry = str(max(1, int(wait + 0.999)))
                    return refusal(429, "too many requests for this credential", retry_after=retry)
                return await handler(request, credential, unit)
            except (StoreUnavailableError, BrokerError) as exc:
                log.error("api_unavailable", path=request.url.path, error=str(exc))
                return refusal(503, "temporarily unavailable; retry later", retry_after=str(RETRY_AFTER_S))

        return guarded

    async def _caller(self, request: Request) -> tuple[Credential, Unit] | Response:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        credential = await self.store.authenticate(token.strip()) if scheme.lower() == "bearer" and token else None
        if credential is None:
            log.info("api_unauthenticated", path=request.url.path, client=request.client.host if request.client else "")
            return refusal(
                401,
                "a valid API token is required (Authorization: Bearer …)",
                www_authenticate='Bearer realm="firebus", error="invalid_token"',
            )
        try:
            unit = self.county.unit(credential.unit)
        except UnknownUnitError:
            return refusal(403, f"unit {credential.unit} is no longer in the county's registry")
        return credential, unit

    # --- publishing ------------------------------------------------------------------------------------------

    async def publish(self, request: Request, credential: Credential, unit: Unit) -> Response:
        raw_type = request.path_params["event_type"]
        try:
            event_type = EventType(raw_type)
        except ValueError:
            known = ", ".join(t.value for t in EventType)
            return refusal(404, "no such event type", (Problem("type", f"{raw_type!r} is not one of {known}"),))
        if event_type not in unit.duties:
            duties = ", ".join(sorted(duty.value for duty in unit.duties))
            problem = Problem(
                "type", f"{unit.name} ({unit.id}) may not publish {event_type.value}; its duties are {duties}"
            )
            return refusal(403, "outside the unit's duties", (problem,))
        key = request.headers.get("idempotency-key", "")
        if not key or len(key) > IDEMPOTENCY_KEY_MAX or not key.isascii() or not key.isprintable():
            problem = Problem("Idempotency-Key", f"give a key of 1 to {IDEMPOTENCY_KEY_MAX} printable ASCII characters")
            return refusal(400, "an Idempotency-Key header is required", (problem,))
        draft = await _json_object(request)
        if isinstance(draft, Response):
            return draft
        if draft.get("type", event_type.value) != event_type.value:
            problem = Problem("type", f"the path says {event_type.value}; leave type out or make it the same")
            return refusal(422, "invalid draft", (problem,))
        draft = {**draft, "type": event_type.value}
        digest = request_digest(event_type, draft)
        async with self.store.claim(unit.id, key) as claim:
            earlier = await claim.earlier()
            if earlier is not None:
                if earlier.request_sha256 != digest:
                    problem = Problem("Idempotency-Key", "already used for a different request; use a new key")
                    return refusal(422, "idempotency key reused", (problem,))
                if earlier.topic is None:  # the first send was never confirmed: the same signed event again
                    earlier = await self._send(claim, earlier, self._event(earlier.event))
                log.info("api_publish_replayed", unit=unit.id, event_id=str(earlier.event_id))
                return receipt(earlier, replayed=True)
            try:
                event = self.publisher.prepare(unit.id, draft)
            except (InvalidEventError, SigningKeyError) as exc:
                return _refused(exc, unit)
            attempt = Attempt(
                digest, event.header.event_id, event.header.trace_id, self.codec.encode(event), None, None, None
            )
            await claim.remember(
                request_sha256=digest,
                credential_id=credential.credential_id,
                event_id=attempt.event_id,
                trace_id=attempt.trace_id,
                event=attempt.event,
            )
            sent = await self._send(claim, attempt, event)
        log.info("api_published", unit=unit.id, credential=credential.credential_id, **event.log_context())
        return receipt(sent, replayed=False)

    async def _send(self, claim: Claim, attempt: Attempt, event: Event[Any]) -> Attempt:
        landed = await self.publisher.send(event)
        await claim.sent(topic=landed.topic, partition=landed.partition, offset=landed.offset)
        return replace(attempt, topic=landed.topic, partition=landed.partition, offset=landed.offset)

    def _event(self, stored: bytes) -> Event[Any]:
        event = self.codec.decode(stored)
        if not isinstance(event, Event):  # only this API writes the column, and only events
            raise TypeError(f"the idempotency store holds a {type(event).__name__}, not an event")
        return event

    # --- reading ---------------------------------------------------------------------------------------------

    async def records(self, request: Request, credential: Credential, unit: Unit) -> Response:
        own = tier_of(unit)
        problems: list[Problem] = []
        tier = own
        wanted = request.query_params.get("tier")
        if wanted:
            try:
                tier = Audience(wanted)
            except ValueError:
                problems.append(Problem("tier", f"{wanted!r} is not a tier (public, members, hq)"))
        limit = PAGE_DEFAULT
        raw_limit = request.query_params.get("limit")
        if raw_limit:
            limit = int(raw_limit) if raw_limit.isdigit() else 0
            if not 1 <= limit <= PAGE_MAX:
                problems.append(Problem("limit", f"give a whole number from 1 to {PAGE_MAX}"))
        if problems:
            return refusal(400, "invalid query", tuple(problems))
        if tier.rank > own.rank:
            problem = Problem("tier", f"{unit.name} ({unit.id}) reads the {own.value} tier and wider, not {tier.value}")
            return refusal(403, "tier not open to this unit", (problem,))
        try:
            cursor = decode_cursor(tier, request.query_params.get("cursor") or encode_cursor(tier, {}))
        except ValueError as exc:
            return refusal(400, "invalid cursor", (Problem("cursor", str(exc)),))
        notices, moved = self.state.released[tier].page(cursor, limit)
        body = {
            "tier": tier.value,
            "records": [record_json(notice) for notice in notices],
            "next_cursor": encode_cursor(tier, moved),
            "caught_up": self.state.ready.is_set(),
        }
        return JSONResponse(body)


async def _json_object(request: Request) -> dict[str, Any] | Response:
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        return refusal(413, f"a draft is at most {MAX_BODY_BYTES} bytes")
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return refusal(400, "the body is not JSON (UTF-8)", (Problem("", str(exc).splitlines()[0]),))
    if not isinstance(data, dict):
        return refusal(422, "invalid draft", (Problem("", "expected a JSON object (the draft)"),))
    return data


def _refused(error: FirebusError, unit: Unit) -> Response:
    """The library's refusal as HTTP: duties 403, everything else about the draft 422, a missing key 500."""
    if isinstance(error, SigningKeyError):
        log.error("api_signing_key_missing", unit=unit.id, error=str(error))
        return refusal(500, f"the server holds no valid signing key for {unit.id}; tell the HQ office")
    if not isinstance(error, InvalidEventError):
        raise error
    log.info("api_publish_refused", unit=unit.id, kind=type(error).__name__, problems=len(error.problems))
    if isinstance(error, DutyViolationError):
        return refusal(403, "outside the unit's duties", error.problems)
    if isinstance(error, ClassifiedEventError):
        return refusal(422, "classified (涉密) information may not be shared on the bus", error.problems)
    return refusal(422, "invalid draft", error.problems)
