"""The SMS sink: cleared events of the members and HQ tiers, by SMS, to the on-duty people the directory names.

For each release: decode the released event, match recipients, render the text, plan one message per phone number
in the ledger (held until quiet hours end when it is not urgent), then hand the due parts to the gateway, paced by
the token bucket. Everything the sink decides is in the pure modules next to this one; here is only the wiring.

The public tier is not read: what is public goes to the portal. Pre-review HQ live events are not read either:
only what the office cleared goes out by SMS.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import structlog

from consumers._runner import Delivery
from consumers.sms.kannel import Gateway, KannelGateway
from consumers.sms.ledger import Ledger, Message, MessageStatus, PartStatus
from consumers.sms.quiet_hours import QuietHours
from consumers.sms.ratelimit import RateLimiter
from consumers.sms.recipients import Addressed, Directory, is_urgent, load_directory
from consumers.sms.segmentation import concatenation_udh, segment
from consumers.sms.templates import Texts
from firebus import metrics
from firebus.codec import Codec
from firebus.county import County
from firebus.errors import (
    ConfigurationError,
    DecodeError,
    GatewayRejectedError,
    GatewayUnavailableError,
    GatewayUncertainError,
    InvalidEventError,
    PoisonRecordError,
    SinkUnavailableError,
)
from firebus.events import Audience, Event
from firebus.records import Release
from firebus.settings import Settings
from firebus.topics import TIERS, Topic

log = structlog.get_logger(__name__)

SMS_TIERS = (Audience.MEMBERS, Audience.HQ)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def masked(phone: str) -> str:
    """``138****0101``: enough to tell recipients apart in logs, not a full number."""
    return f"{phone[:3]}****{phone[-4:]}" if len(phone) > 7 else "****"


def reference_of(event_id: str, phone: str) -> int:
    """The 8-bit concatenation reference of one message: stable across retries and restarts."""
    return hashlib.blake2b(f"{event_id}/{phone}".encode(), digest_size=1).digest()[0]


class SmsSink:
    """Runs under :class:`consumers.SinkRunner` as ``sms`` (consumer group ``firebus-sink-sms``)."""

    name = "sms"
    topics: Sequence[Topic] = tuple(TIERS[tier] for tier in SMS_TIERS)

    def __init__(
        self,
        *,
        settings: Settings,
        county: County,
        gateway: Gateway | None = None,
        directory: Directory | None = None,
        clock: Callable[[], datetime] = _utc_now,
        codec: Codec | None = None,
        pump_interval_s: float = 5.0,
    ) -> None:
        self.settings = settings
        self.directory = directory or load_directory(settings.sms_recipients, county)
        if gateway is None:
            if settings.sms_password is None:
                raise ConfigurationError("the SMS sink needs sms_password (FIREBUS_SMS_PASSWORD) for the gateway")
            gateway = KannelGateway(
                url=settings.sms_gateway_url,
                username=settings.sms_username,
                password=settings.sms_password,
                sender=settings.sms_sender,
                timeout_s=settings.sms_timeout_s,
            )
        self.gateway = gateway
        self.clock = clock
        self.codec = codec or Codec()
        self.quiet = QuietHours.parse(settings.sms_quiet_hours, county.zone)
        self.texts = Texts(county=county, max_parts=settings.sms_max_parts)
        self.pump_interval_s = pump_interval_s
        self._ledger: Ledger | None = None
        self._limiter: RateLimiter | None = None
        self._sending = asyncio.Lock()
        self._released_unsent = True
        """Released deferred messages may be waiting unsent (after a gateway outage, or left by an earlier run)."""
        self._pump: asyncio.Task[None] | None = None

    @property
    def ledger(self) -> Ledger:
        if self._ledger is None:
            raise RuntimeError("the SMS sink is not started")
        return self._ledger

    async def start(self) -> None:
        self._ledger = Ledger(self.settings.sms_ledger_path)
        uncertain = self._ledger.recover(self.clock())
        if uncertain:
            log.error("sms_parts_uncertain_after_restart", parts=uncertain, ledger=str(self._ledger.path))
        self._limiter = RateLimiter(rate_per_minute=self.settings.sms_rate_per_minute, burst=self.settings.sms_burst)
        await self.gateway.start()
        self._released_unsent = True  # an earlier run may have released deferred messages and not sent them
        self._pump = asyncio.create_task(self._pump_deferred(), name="sms-deferred")

    async def close(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
            await asyncio.gather(self._pump, return_exceptions=True)
            self._pump = None
        await self.gateway.close()
        if self._ledger is not None:
            self._ledger.close()
            self._ledger = None

    async def flush(self) -> None:
        """Nothing to do: every ledger write is committed when it is made."""

    async def deliver(self, delivery: Delivery) -> None:
        release = delivery.record
        if not isinstance(release, Release) or release.tier not in SMS_TIERS:
            return
        try:
            event: Event[Any] = self.codec.decode(release.event)  # type: ignore[assignment]
        except (DecodeError, InvalidEventError) as exc:
            raise PoisonRecordError(f"release {release.release_id}: the released event cannot be read: {exc}") from exc
        if not isinstance(event, Event):
            raise PoisonRecordError(f"release {release.release_id} carries a {type(event).__name__}, not an event")
        self.plan(release, event)
        await self.send_pending(release.event_id)

    def plan(self, release: Release, event: Event[Any]) -> list[Message]:
        """Record in the ledger one message per recipient of ``release``; the messages newly planned."""
        header = event.header
        addressed = Addressed(release.event_type, release.tier, frozenset(header.townships), header.severity)
        recipients = self.directory.match(addressed)
        if not recipients:
            return []
        text = self.texts.render(event, release)
        parts = len(segment(text))
        now = self.clock()
        due = now if self.quiet is None or is_urgent(header.severity, header.urgency) else self.quiet.ends_after(now)
        status = MessageStatus.DEFERRED if due > now else MessageStatus.PENDING
        planned: list[Message] = []
        for recipient in recipients:
            message = Message(
                event_id=release.event_id,
                phone=recipient.phone,
                recipient=recipient.id,
                release_id=release.release_id,
                event_type=release.event_type,
                tier=release.tier,
                text=text,
                parts=parts,
                reference=reference_of(str(release.event_id), recipient.phone),
                status=status,
                due_at=due,
                reason="quiet hours" if status is MessageStatus.DEFERRED else None,
            )
            if self.ledger.plan(message, now):
                planned.append(message)
                log.info(
                    "sms_planned" if status is MessageStatus.PENDING else "sms_deferred",
                    event_id=str(release.event_id),
                    release_id=str(release.release_id),
                    recipient=recipient.id,
                    phone=masked(recipient.phone),
                    parts=parts,
                    due_at=due.isoformat(),
                )
        return planned

    async def send_pending(self, event_id: UUID | None = None) -> None:
        """Send every pending message (of one event); :class:`SinkUnavailableError` when the gateway is down."""
        async with self._sending:
            for message in self.ledger.pending(event_id):
                await self._send(message)

    async def send_due(self) -> None:
        """Release the deferred messages whose quiet hours are over, and send them; :class:`SinkUnavailableError`
        when the gateway is down, and then they are tried again at the next call (released, they are no longer
        deferred, and the records that held them were committed long ago: nothing else would send them)."""
        if self.ledger.release_due(self.clock()):
            self._released_unsent = True
        if self._released_unsent:
            await self.send_pending()
            self._released_unsent = False

    async def _pump_deferred(self) -> None:
        failing_since: float | None = None  # one warning per gateway outage, one line when it is over
        while True:
            await asyncio.sleep(self.pump_interval_s)
            try:
                await self.send_due()
            except SinkUnavailableError as exc:
                if failing_since is None:
                    failing_since = time.monotonic()
                    log.warning("sms_deferred_waiting", error=str(exc))
                else:
                    log.debug("sms_deferred_retry", error=str(exc))
                continue
            if failing_since is not None:
                log.info("sms_deferred_sent_again", down_s=round(time.monotonic() - failing_since, 1))
                failing_since = None

    async def _send(self, message: Message) -> None:
        assert self._limiter is not None  # noqa: S101  (set by start)
        parts = segment(message.text)
        done = self.ledger.parts(message.event_id, message.phone)
        context = {
            "event_id": str(message.event_id),
            "release_id": str(message.release_id),
            "recipient": message.recipient,
            "phone": masked(message.phone),
        }
        for number, text in enumerate(parts, start=1):
            if number in done:
                continue
            udh = concatenation_udh(message.reference, len(parts), number) if len(parts) > 1 else None
            await self._limiter.acquire()
            self.ledger.claim(message.event_id, message.phone, number, self.clock())
            try:
                reply = await self.gateway.submit(to=message.phone, text=text, udh=udh)
            except GatewayUnavailableError as exc:
                self.ledger.unclaim(message.event_id, message.phone, number)
                raise SinkUnavailableError(str(exc)) from exc
            except GatewayUncertainError as exc:
                self.ledger.settle_part(
                    message.event_id,
                    message.phone,
                    number,
                    status=PartStatus.UNCERTAIN,
                    reply=str(exc),
                    now=self.clock(),
                )
                done[number] = PartStatus.UNCERTAIN
                metrics.SMS_PARTS.labels(outcome="uncertain").inc()
                log.error("sms_part_uncertain", part=number, parts=len(parts), error=str(exc), **context)
                continue
            except GatewayRejectedError as exc:
                self.ledger.unclaim(message.event_id, message.phone, number)
                self.ledger.settle(message.event_id, message.phone, MessageStatus.FAILED, self.clock(), str(exc))
                metrics.SMS_PARTS.labels(outcome="refused").inc()
                log.error("sms_failed", part=number, parts=len(parts), reason=str(exc), **context)
                return
            self.ledger.settle_part(
                message.event_id, message.phone, number, status=PartStatus.SENT, reply=reply, now=self.clock()
            )
            done[number] = PartStatus.SENT
            metrics.SMS_PARTS.labels(outcome="sent").inc()
        complete = all(done.get(number) is PartStatus.SENT for number in range(1, len(parts) + 1))
        status = MessageStatus.SENT if complete else MessageStatus.UNCERTAIN
        self.ledger.settle(message.event_id, message.phone, status, self.clock())
        log.info("sms_" + status.value, parts=len(parts), event_type=message.event_type.value, **context)
