"""The HQ office's review desk: read the review queue, decide, publish the decision (每发必审).

``firebus review`` uses it, and so will the HQ console. A decision is published to the decisions topic with the
event's partition key, so it meets the event and its review state in the same processors worker.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from uuid import UUID, uuid4

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, KafkaError

from firebus.codec import Codec
from firebus.county import County, reviewer_may_decide
from firebus.errors import BrokerError, DecodeError, InvalidEventError, Problem
from firebus.events import Audience
from firebus.kafka import producer_options, read_to_end, unreachable
from firebus.records import ReviewDecision, ReviewerKind, ReviewItem, ReviewStatus, Verdict
from firebus.settings import Settings
from firebus.text import nfc, text_problems
from firebus.topics import REVIEW_DECISIONS, REVIEW_ITEMS


def fold_items(codec: Codec, records: Sequence[tuple[bytes | None, bytes | None]]) -> dict[UUID, ReviewItem]:
    """The latest state of each item from the compacted items topic (later records win; tombstones delete)."""
    items: dict[UUID, ReviewItem] = {}
    for key, value in records:
        if value is None:
            if key:
                items.pop(UUID(key.decode()), None)
            continue
        try:
            item = codec.decode(value)
        except (DecodeError, InvalidEventError):
            continue
        if isinstance(item, ReviewItem):
            items[item.event_id] = item
    return items


class ReviewDesk:
    """What an HQ reviewer does: list and read review items, approve or reject them."""

    def __init__(self, *, settings: Settings, county: County, codec: Codec | None = None) -> None:
        self.settings = settings
        self.county = county
        self.codec = codec or Codec()

    async def items(self) -> dict[UUID, ReviewItem]:
        return fold_items(self.codec, await read_to_end(self.settings, REVIEW_ITEMS))

    async def item(self, event_id: UUID) -> ReviewItem:
        found = (await self.items()).get(event_id)
        if found is None:
            raise InvalidEventError([Problem("event_id", f"{event_id} is not in the review queue")], subject="review")
        return found

    def decision(
        self,
        item: ReviewItem,
        *,
        reviewer: str,
        verdict: Verdict,
        reason: str | None = None,
        tiers: Sequence[Audience] = (),
        redactions: Sequence[str] = (),
        now: datetime | None = None,
    ) -> ReviewDecision:
        """A checked decision on ``item``; refusals are :class:`InvalidEventError` naming the problem."""
        problems = []
        if item.status is not ReviewStatus.PENDING:
            problems.append(Problem("event_id", f"{item.event_id} is {item.status.value}, not pending"))
        refusal = reviewer_may_decide(self.county, reviewer, item.publisher_person, item.publisher_unit)
        if refusal is not None:
            problems.append(Problem("reviewer", refusal))
        if verdict is Verdict.REJECT and not reason:
            problems.append(Problem("reason", "a rejection needs a reason"))
        known = self.codec.contracts.for_event_type(item.event_type).redactable_paths
        problems += [
            Problem("redact", f"{path} is not a field of {item.event_type.value}")
            for path in redactions
            if path not in known
        ]
        decision = ReviewDecision(
            decision_id=uuid4(),
            event_id=item.event_id,
            event_type=item.event_type,
            verdict=verdict,
            reviewer=reviewer,
            reviewer_kind=ReviewerKind.HUMAN,
            tiers=list(tiers),
            redactions=list(redactions),
            reason=nfc(reason),
            decided_at=now or datetime.now(UTC),
            trace_id=uuid4().hex,
        )
        problems += text_problems(self.codec.contract_of(decision), decision.model_dump())
        if problems:
            raise InvalidEventError(problems, subject="decision")
        return decision

    async def publish(self, item: ReviewItem, decision: ReviewDecision) -> None:
        """Send the decision, keyed like its event, and wait until the broker has it."""
        producer = AIOKafkaProducer(**producer_options(self.settings, client_id=f"{self.settings.client_id}-review"))
        try:
            await producer.start()
        except (KafkaConnectionError, OSError) as exc:
            await producer.stop()
            raise unreachable(self.settings, exc) from exc
        try:
            await producer.send_and_wait(
                REVIEW_DECISIONS.name, self.codec.encode(decision), key=item.partition_key.encode()
            )
        except KafkaError as exc:
            raise BrokerError(f"publishing decision {decision.decision_id} failed: {exc!r}") from exc
        finally:
            await producer.stop()
