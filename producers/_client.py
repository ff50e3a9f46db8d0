"""The client library a department system imports: build, validate, sign and publish typed events."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, NamedTuple
from uuid import UUID

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError

from firebus.codec import Codec, event_model, problems_from
from firebus.county import County, Unit, load_county
from firebus.errors import BrokerError, InvalidEventError, SigningKeyError
from firebus.events import Event
from firebus.kafka import producer_options, unreachable
from firebus.rules import governance_violations, raise_for
from firebus.settings import Settings
from firebus.signing import load_signing_key, public_key_text, registered_public_keys, sign_event
from firebus.text import nfc, text_problems
from firebus.topics import INTAKE
from producers._drafts import Draft

log = structlog.get_logger(__name__)

MAX_BACKOFF_S = 5.0


class Receipt(NamedTuple):
    """Where a published event landed."""

    event_id: UUID
    trace_id: str
    topic: str
    partition: int
    offset: int


class FirebusClient:
    """Publishes a unit's events to their intake topics: ``async with FirebusClient(...) as client``.

    Before anything is sent the event is validated against its schema and the governance rules (duty matrix,
    classification, townships, lifecycle, timestamps) and signed with the unit's Ed25519 key. ``secret`` is
    refused. Sends use acks=all and a bounded number of retries with backoff; an unreachable broker is a
    :class:`~firebus.errors.BrokerUnavailableError`.
    """

    def __init__(
        self,
        *,
        settings: Settings,
        unit: str,
        person: str | None = None,
        contact: str | None = None,
        county: County | None = None,
        signing_key: Ed25519PrivateKey | None = None,
        codec: Codec | None = None,
    ) -> None:
        self.settings = settings
        self.county = county if county is not None else load_county(settings.config)
        self.unit: Unit = self.county.unit(unit)
        self.person = person or self.unit.name
        self.contact = contact
        self.codec = codec or Codec()
        self._key = signing_key or load_signing_key(settings.key_directory, unit)
        self._check_key_is_registered()
        self._producer: AIOKafkaProducer | None = None

    def _check_key_is_registered(self) -> None:
        registered = registered_public_keys(self.county, self.settings.key_directory).get(self.unit.id)
        mine = public_key_text(self._key.public_key())
        if registered is None:
            raise SigningKeyError(f"unit {self.unit.id} has no registered public key (registry or keys directory)")
        if public_key_text(registered) != mine:
            raise SigningKeyError(f"the signing key given for {self.unit.id} is not the unit's registered key")

    # --- building ------------------------------------------------------------------------------------------

    def prepare(self, draft: Draft, *, now: datetime | None = None) -> Event[Any]:
        """The signed event a draft becomes; raises :class:`InvalidEventError` listing every problem.

        Every string is put in Unicode NFC first (the same text, as the bus requires it); other text hygiene
        problems (control or bidi characters, lengths, patterns: :mod:`firebus.text`) are refused.
        """
        moment = now or datetime.now(UTC)
        event = draft.to_event(
            codec=self.codec, unit=self.unit.id, person=self.person, contact=self.contact, published_at=moment
        )
        event_type = event.header.event_type
        record = event.model_dump()
        normalised = nfc(record)
        if normalised != record:
            try:
                event = event_model(event_type).model_validate(normalised)
            except ValidationError as exc:
                raise InvalidEventError(problems_from(exc), subject=f"{event_type.value} event") from exc
        problems = text_problems(self.codec.contracts.for_event_type(event_type), normalised)
        if problems:
            raise InvalidEventError(problems, subject=f"{event_type.value} event")
        raise_for(governance_violations(event, self.county, now=moment))
        return sign_event(self.codec, event, self._key)

    # --- sending -------------------------------------------------------------------------------------------

    async def start(self) -> None:
        producer = AIOKafkaProducer(
            **producer_options(self.settings, client_id=f"{self.settings.client_id}-{self.unit.id}", linger_ms=5)
        )
        try:
            await asyncio.wait_for(producer.start(), timeout=self.settings.connect_timeout_s)
        except (KafkaConnectionError, OSError, TimeoutError) as exc:
            await producer.stop()
            raise unreachable(self.settings, exc) from exc
        self._producer = producer

    async def stop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def publish(self, draft: Draft) -> Receipt:
        """Validate, sign and send one draft to its type's intake topic; returns where it landed."""
        return await self.send(self.prepare(draft))

    async def send(self, event: Event[Any]) -> Receipt:
        """Send an already prepared (signed) event, retrying retriable failures a bounded number of times."""
        if self._producer is None:
            raise BrokerError("client is not started; use `async with FirebusClient(...)` or await start()")
        topic = INTAKE[event.header.event_type].name
        value = self.codec.encode(event)
        key = event.partition_key().encode("utf-8")
        context = event.log_context()
        attempts = self.settings.send_retries + 1
        for attempt in range(1, attempts + 1):
            try:
                metadata = await self._producer.send_and_wait(topic, value, key=key)
            except (KafkaError, OSError) as exc:
                if not _retriable(exc) or attempt == attempts:
                    log.error("event_publish_failed", **context, topic=topic, attempts=attempt, error=repr(exc))
                    failure = f"publishing event {event.header.event_id} to {topic} failed after {attempt} attempt(s)"
                    raise BrokerError(f"{failure}: {exc!r}") from exc
                backoff = min(MAX_BACKOFF_S, 0.2 * 2 ** (attempt - 1))
                log.warning(
                    "event_publish_retry", **context, topic=topic, attempt=attempt, backoff_s=backoff, error=repr(exc)
                )
                await asyncio.sleep(backoff)
            else:
                receipt = Receipt(
                    event.header.event_id, event.header.trace_id, topic, metadata.partition, metadata.offset
                )
                log.info(
                    "event_published", **context, topic=topic, partition=metadata.partition, offset=metadata.offset
                )
                return receipt
        raise AssertionError("unreachable")  # pragma: no cover  (the loop returns or raises)

    async def __aenter__(self) -> FirebusClient:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()


def _retriable(exc: BaseException) -> bool:
    # A delivery time-out means the broker may come back; aiokafka marks it non-retriable only for itself.
    if isinstance(exc, KafkaTimeoutError | OSError):
        return True
    return bool(getattr(exc, "retriable", False))
