"""Review gating, release, lifecycle, enrichment and escalation, pure: the Reviewer driven without Kafka.

Events are the ``examples/events`` drafts prepared and signed by the client library (no broker) and passed through
the :class:`~processors.intake.IntakeValidator`; decisions are :class:`~firebus.records.ReviewDecision` models on
the decisions topic. The item store is a dict (``lookup = store.get``); after every step its ``before`` and then its
``after`` items are written to it, as the processors do. What a step would send is decoded with the codec and
grouped by topic.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest

from firebus.codec import Codec
from firebus.county import County
from firebus.county import Reviewer as RegisteredReviewer
from firebus.deadletters import SourceRecord, audit_id
from firebus.events import (
    Audience,
    Classification,
    Event,
    EventType,
    FireReport,
    FireStatus,
    MessageKind,
    Resource,
    ResourceKind,
    ResourceStatus,
    Severity,
)
from firebus.records import (
    AuditAction,
    AuditEvent,
    DeadLetter,
    DeadLetterReason,
    Release,
    ReviewDecision,
    ReviewerKind,
    ReviewItem,
    ReviewStatus,
    Verdict,
)
from firebus.settings import SAMPLE_CONFIG, Settings
from firebus.signing import check_signature, registered_public_keys
from firebus.topics import (
    AUDIT,
    DEAD_LETTER,
    HQ_LIVE,
    HQ_NOTICES,
    INTAKE,
    RESOURCES_STATE,
    REVIEW_DECISIONS,
    REVIEW_INBOX,
    TIERS,
    Topic,
)
from processors.enrichment import haversine_km
from processors.gate import IntakeGate
from processors.intake import Accepted, IntakeValidator
from processors.policy import ReviewPolicy, load_policy
from processors.review import Reviewer, Step, allowed_tiers, release_id
from producers import Draft, FirebusClient, load_draft

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "events"
POLICY_FILE = SAMPLE_CONFIG.parent / "review_policy.toml"
NOW = datetime(2026, 3, 12, 6, 0, tzinfo=UTC)
CODEC = Codec()
TIER_TOPICS = frozenset(TIERS.values())

# Fields of the sample fire report each tier below HQ loses by its schema tags.
FIRE_REDACTED = {
    Audience.PUBLIC: [
        "body.place.lat",
        "body.place.lon",
        "body.reporter_name",
        "body.reporter_phone",
        "header.publisher.contact",
    ],
    Audience.MEMBERS: ["body.reporter_name", "body.reporter_phone"],
    Audience.HQ: [],
}


def draft(event_type: EventType, **changes: Any) -> Draft:
    """The example draft of ``event_type`` with ``changes`` applied."""
    loaded = load_draft(EXAMPLES / f"{event_type.value}.json")
    return loaded.model_copy(update=changes)


def public_fire_draft(**changes: Any) -> Draft:
    """The sample fire report, cleared for the public (classification and audience ``public``)."""
    return draft(EventType.FIRE_REPORT, classification=Classification.PUBLIC, audience=Audience.PUBLIC, **changes)


def follow_up(original: Event[Any], kind: MessageKind, **changes: Any) -> Draft:
    """An update or cancel of the sample fire report ``original`` (same incident, referencing it)."""
    body = original.body
    assert isinstance(body, FireReport)
    return draft(
        EventType.FIRE_REPORT,
        kind=kind,
        references=[original.header.event_id],
        body=body.model_copy(update={"status": FireStatus.SUPPRESSING}),
        **changes,
    )


def sent(step: Step) -> dict[Topic, list[Any]]:
    """What ``step`` would send, decoded, by topic."""
    grouped: dict[Topic, list[Any]] = defaultdict(list)
    for record in step.outgoing:
        grouped[record.topic].append(CODEC.decode(record.value))
    return dict(grouped)


def raw_sent(step: Step, topic: Topic) -> list[bytes]:
    return [record.value for record in step.outgoing if record.topic is topic]


def releases(step: Step) -> dict[Audience, Release]:
    """The releases ``step`` would send, by tier (each tier at most once)."""
    found: dict[Audience, Release] = {}
    for record in step.outgoing:
        if record.topic in TIER_TOPICS:
            release = CODEC.decode(record.value)
            assert isinstance(release, Release)
            assert TIERS[release.tier] is record.topic
            assert release.tier not in found
            found[release.tier] = release
    return found


def audits(step: Step, action: AuditAction | None = None) -> list[AuditEvent]:
    found = [record for record in sent(step).get(AUDIT, []) if isinstance(record, AuditEvent)]
    return [audit for audit in found if action is None or audit.action is action]


def released_event(release: Release) -> Event[Any]:
    event = CODEC.decode(release.event)
    assert isinstance(event, Event)
    return event


class Desk:
    """The review stage in memory: validator in front, reviewer, item store, the units' clients."""

    def __init__(
        self,
        county: County,
        keys_dir: Path,
        policy: ReviewPolicy,
        *,
        resources: list[Resource] | None = None,
    ) -> None:
        self.county = county
        self.policy = policy
        self.settings = Settings(keys_dir=keys_dir, home=keys_dir)
        self.public_keys = registered_public_keys(county, keys_dir)
        self.validator = IntakeValidator(codec=CODEC, county=county, public_keys=self.public_keys)
        self.gate = IntakeGate(validator=self.validator, codec=CODEC)
        self.resources: list[Resource] = resources if resources is not None else []
        self.reviewer = Reviewer(codec=CODEC, county=county, policy=policy, resources=lambda: list(self.resources))
        self.store: dict[UUID, ReviewItem] = {}
        self.raw: dict[UUID, bytes] = {}
        self._offsets = itertools.count(100)
        self._clients: dict[str, FirebusClient] = {}

    def apply(self, step: Step) -> Step:
        for item in step.before:
            self.store[item.event_id] = item
        for item in step.after:
            self.store[item.event_id] = item
        return step

    def publish(self, unit: str, what: Draft, *, now: datetime = NOW) -> Event[Any]:
        """``what`` prepared and signed by ``unit`` (the client library's own checks apply)."""
        if unit not in self._clients:
            self._clients[unit] = FirebusClient(settings=self.settings, unit=unit, county=self.county)
        event = self._clients[unit].prepare(what, now=now)
        self.raw[event.header.event_id] = CODEC.encode(event)
        return event

    def intake_record(self, event: Event[Any]) -> SourceRecord:
        return SourceRecord(
            topic=INTAKE[event.header.event_type].name,
            partition=1,
            offset=next(self._offsets),
            key=event.partition_key().encode(),
            value=self.raw[event.header.event_id],
        )

    def accept(self, event: Event[Any], *, now: datetime = NOW) -> Step:
        """``event`` read from its intake topic: validated, then handed to the reviewer."""
        source = self.intake_record(event)
        gated = self.gate.route([source], now=now)
        assert [record.topic for record in gated].count(REVIEW_INBOX) == 1, gated
        verdict = self.validator.check(source, now=now)
        assert isinstance(verdict, Accepted), verdict
        step = Step(outgoing=[record for record in gated if record.topic is not REVIEW_INBOX])
        step.extend(self.apply(self.reviewer.on_accepted(verdict, source, self.store.get, now=now)))
        return step

    def decision_record(self, decision: ReviewDecision) -> SourceRecord:
        return SourceRecord(
            topic=REVIEW_DECISIONS.name,
            partition=1,
            offset=next(self._offsets),
            key=str(decision.event_id).encode(),
            value=CODEC.encode(decision),
        )

    def decide(self, decision: ReviewDecision, *, now: datetime = NOW) -> Step:
        """``decision`` read from the decisions topic."""
        source = self.decision_record(decision)
        return self.apply(self.reviewer.on_decision(decision, source, self.store.get, now=now))

    def tick(self, now: datetime) -> Step:
        return self.apply(self.reviewer.on_tick(list(self.store.values()), now=now))


def decision(
    event: Event[Any],
    *,
    verdict: Verdict = Verdict.APPROVE,
    reviewer: str = "hq-wang",
    reviewer_kind: ReviewerKind = ReviewerKind.HUMAN,
    tiers: tuple[Audience, ...] = (),
    redactions: tuple[str, ...] = (),
    reason: str | None = None,
    decision_id: UUID | None = None,
    policy_version: str | None = None,
) -> ReviewDecision:
    """A review decision on ``event``."""
    return ReviewDecision(
        decision_id=decision_id or uuid4(),
        event_id=event.header.event_id,
        event_type=event.header.event_type,
        verdict=verdict,
        reviewer=reviewer,
        reviewer_kind=reviewer_kind,
        policy_version=policy_version,
        tiers=list(tiers),
        redactions=list(redactions),
        reason=reason,
        decided_at=NOW,
        trace_id=event.header.trace_id,
    )


@pytest.fixture(scope="module")
def policy(county: County) -> ReviewPolicy:
    return load_policy(POLICY_FILE, county)


@pytest.fixture
def desk(county: County, keys_dir: Path, policy: ReviewPolicy) -> Desk:
    return Desk(county, keys_dir, policy)


def assert_refused(desk: Desk, step: Step, source_value: bytes, *needles: str) -> DeadLetter:
    """``step`` is a dead letter (bad_reference) of ``source_value`` with its audit, and changes nothing else."""
    by_topic = sent(step)
    assert set(by_topic) == {DEAD_LETTER, AUDIT}
    [letter] = by_topic[DEAD_LETTER]
    assert isinstance(letter, DeadLetter)
    assert letter.reason_code is DeadLetterReason.BAD_REFERENCE
    assert letter.stage == "processors.review"
    assert letter.value == source_value
    for needle in needles:
        assert needle in letter.reason, f"{needle!r} not in {letter.reason!r}"
    [rejected] = audits(step)
    assert rejected.action is AuditAction.REJECTED
    assert step.before == []
    assert step.after == []
    return letter


def late_decision(step: Step) -> ReviewDecision:
    """The decision whose dead letter ``step`` sends."""
    [letter] = sent(step)[DEAD_LETTER]
    found = CODEC.decode(letter.value)
    assert isinstance(found, ReviewDecision)
    return found


# --- intake into review ------------------------------------------------------------------------------------


def test_a_fire_report_goes_to_hq_live_at_once_and_waits_for_review(desk: Desk) -> None:
    """A fire report is sent to HQ_LIVE as its original signed bytes, audited, and held PENDING, not released."""
    event = desk.publish("forestry", draft(EventType.FIRE_REPORT))

    step = desk.accept(event)

    raw = desk.raw[event.header.event_id]
    assert raw_sent(step, HQ_LIVE) == [raw]
    [live] = [record for record in step.outgoing if record.topic is HQ_LIVE]
    assert live.key == b"YC-2026-0312-01"
    assert check_signature(CODEC, live.value, desk.public_keys) == "forestry"
    [accepted] = audits(step, AuditAction.ACCEPTED)
    assert accepted.audit_id == audit_id("accepted", event.header.event_id)
    assert not TIER_TOPICS & set(sent(step))
    [item] = step.before
    assert item.status is ReviewStatus.PENDING
    assert item.event_id == event.header.event_id
    assert item.event == raw
    assert item.thread_id == event.header.event_id
    assert item.kind is MessageKind.ALERT
    assert item.partition_key == "YC-2026-0312-01"
    assert (item.publisher_unit, item.publisher_person) == ("forestry", "赵林")
    assert item.audience is Audience.MEMBERS
    assert item.deadline == NOW + timedelta(minutes=10)
    assert item.decision is None
    assert step.after == []


@pytest.mark.parametrize(
    ("unit", "event_type", "changes"),
    [
        ("police", EventType.TRAFFIC_CONTROL, {}),
        ("police", EventType.CASE_UPDATE, {}),
        ("emergency", EventType.RISK_WARNING, {}),
    ],
    ids=["traffic_control", "case_update", "risk_warning"],
)
def test_every_fire_related_type_is_reported_live(
    desk: Desk, unit: str, event_type: EventType, changes: dict[str, Any]
) -> None:
    """Traffic control, case updates and risk warnings are fire-related: HQ sees them live, and they wait for review."""
    event = desk.publish(unit, draft(event_type, **changes))

    step = desk.accept(event)

    assert raw_sent(step, HQ_LIVE) == [desk.raw[event.header.event_id]]
    assert [item.status for item in step.before] == [ReviewStatus.PENDING]
    assert not TIER_TOPICS & set(sent(step))


def test_a_township_work_update_is_not_reported_live_and_waits_for_a_human(desk: Desk) -> None:
    """A township's work update is not fire-related (no HQ_LIVE record) and no rule covers it: it stays PENDING."""
    event = desk.publish("twp_manghe", draft(EventType.WORK_UPDATE, townships=["manghe"]))

    step = desk.accept(event)

    assert set(sent(step)) == {AUDIT}
    assert [audit.action for audit in audits(step)] == [AuditAction.ACCEPTED]
    [item] = step.before
    assert item.status is ReviewStatus.PENDING
    assert item.deadline == NOW + timedelta(minutes=1440)


def test_a_redelivered_event_is_reported_again_but_makes_no_second_item(desk: Desk) -> None:
    """Redelivery repeats the HQ_LIVE record and the audit (same audit id) but leaves the one review item alone."""
    event = desk.publish("forestry", draft(EventType.FIRE_REPORT))
    first = desk.accept(event)

    again = desk.accept(event, now=NOW + timedelta(minutes=1))

    assert raw_sent(again, HQ_LIVE) == raw_sent(first, HQ_LIVE)
    assert [a.audit_id for a in audits(again)] == [a.audit_id for a in audits(first)]
    assert again.before == []
    assert again.after == []
    assert list(desk.store) == [event.header.event_id]
    assert desk.store[event.header.event_id] == first.before[0]


def test_a_redelivered_event_after_its_release_does_not_reopen_it(desk: Desk) -> None:
    """An event redelivered after release is reported to HQ again but stays RELEASED, with no new release."""
    event = desk.publish("forestry", draft(EventType.FIRE_REPORT))
    desk.accept(event)
    desk.decide(decision(event))

    again = desk.accept(event)

    assert raw_sent(again, HQ_LIVE) == [desk.raw[event.header.event_id]]
    assert again.before == []
    assert releases(again) == {}
    assert desk.store[event.header.event_id].status is ReviewStatus.RELEASED


# --- approval and release ----------------------------------------------------------------------------------


def check_release(desk: Desk, release: Release, event: Event[Any], approval: ReviewDecision) -> Event[Any]:
    """The envelope fields every release of ``event`` by ``approval`` carries; returns the released event."""
    assert release.release_id == release_id(approval.decision_id, release.tier)
    assert release.event_id == event.header.event_id
    assert release.event_type is event.header.event_type
    assert release.kind is event.header.kind
    assert release.incident_id == event.header.incident_id
    assert release.publisher_unit == event.header.publisher.unit
    assert release.decision == approval
    assert release.released_at == NOW
    shown = released_event(release)
    assert shown.header.event_id == event.header.event_id
    if release.tier is Audience.HQ:
        assert release.event == desk.raw[event.header.event_id]
        assert check_signature(CODEC, release.event, desk.public_keys) == event.header.publisher.unit
    return shown


@pytest.mark.parametrize(
    ("audience", "tiers"),
    [
        (Audience.MEMBERS, [Audience.MEMBERS, Audience.HQ]),
        (Audience.PUBLIC, [Audience.PUBLIC, Audience.MEMBERS, Audience.HQ]),
    ],
    ids=["members-audience", "public-audience"],
)
def test_an_approval_releases_the_event_to_every_tier_its_audience_allows(
    desk: Desk, audience: Audience, tiers: list[Audience]
) -> None:
    """An HQ reviewer's approval: RELEASING then RELEASED, one Release per allowed tier, redacted per tier, audited."""
    what = public_fire_draft() if audience is Audience.PUBLIC else draft(EventType.FIRE_REPORT)
    event = desk.publish("forestry", what)
    desk.accept(event)
    approval = decision(event, reason="核实无误")

    step = desk.decide(approval)

    ids = [release_id(approval.decision_id, tier) for tier in tiers]
    [releasing] = step.before
    assert releasing.status is ReviewStatus.RELEASING
    assert releasing.decision == approval
    assert releasing.release_ids == ids
    assert releasing.releasing_since == NOW
    assert step.after == [releasing.model_copy(update={"status": ReviewStatus.RELEASED})]
    assert desk.store[event.header.event_id].status is ReviewStatus.RELEASED

    by_tier = releases(step)
    assert list(by_tier) == tiers == list(allowed_tiers(audience))
    original = event.model_dump()
    for tier, release in by_tier.items():
        shown = check_release(desk, release, event, approval)
        assert release.redacted_fields == FIRE_REDACTED[tier]
        if tier is Audience.HQ:
            assert shown == event
            continue
        assert shown.header.signature == b""
        expected = original | {
            "header": original["header"] | {"signature": b""},
            "body": original["body"] | {"reporter_name": None, "reporter_phone": None},
        }
        if tier is Audience.PUBLIC:
            expected["header"]["publisher"] = original["header"]["publisher"] | {"contact": None}
            expected["body"]["place"] = original["body"]["place"] | {"lat": None, "lon": None}
        assert shown.model_dump() == expected

    [decided] = audits(step, AuditAction.DECIDED)
    assert decided.actor == "hq-wang"
    assert decided.reason == "核实无误"
    assert decided.details["verdict"] == "approve"
    assert decided.details["decision_id"] == str(approval.decision_id)
    released = audits(step, AuditAction.RELEASED)
    assert [(a.tier, a.details["release_id"]) for a in released] == [
        (tier, str(rid)) for tier, rid in zip(tiers, ids, strict=True)
    ]
    redacted = audits(step, AuditAction.REDACTED)
    assert [(a.tier, a.reason) for a in redacted] == [
        (tier, ", ".join(FIRE_REDACTED[tier])) for tier in tiers if FIRE_REDACTED[tier]
    ]
    every_id = [a.audit_id for a in audits(step)]
    assert len(set(every_id)) == len(every_id)
    assert HQ_LIVE not in sent(step)


def test_the_same_decision_delivered_again_changes_and_sends_nothing(desk: Desk) -> None:
    """A decision seen again (same decision id) after it was applied produces an empty step."""
    event = desk.publish("forestry", draft(EventType.FIRE_REPORT))
    desk.accept(event)
    approval = decision(event)
    desk.decide(approval)
    settled = dict(desk.store)

    again = desk.decide(approval)

    assert (again.before, again.outgoing, again.after) == ([], [], [])
    assert desk.store == settled


def test_release_ids_are_deterministic_per_decision_and_tier(desk: Desk, county: County, keys_dir: Path) -> None:
    """The same decision applied on a fresh worker gives the same release ids and identical release records."""
    event = desk.publish("forestry", draft(EventType.FIRE_REPORT))
    desk.accept(event)
    approval = decision(event)
    first = desk.decide(approval)

    replica = Desk(county, keys_dir, desk.policy)
    replica.raw = desk.raw
    replica.accept(event)
    second = replica.decide(approval)

    assert {t: r.release_id for t, r in releases(first).items()} == {
        t: release_id(approval.decision_id, t) for t in (Audience.MEMBERS, Audience.HQ)
    }
    assert raw_sent(first, TIERS[Audience.MEMBERS]) == raw_sent(second, TIERS[Audience.MEMBERS])
    assert raw_sent(first, TIERS[Audience.HQ]) == raw_sent(second, TIERS[Audience.HQ])
    assert [a.audit_id for a in audits(first)] == [a.audit_id for a in audits(second)]


@pytest.mark.parametrize(
    ("audience", "chosen"),
    [
        (Audience.MEMBERS, (Audience.HQ,)),
        (Audience.PUBLIC, (Audience.MEMBERS,)),
        (Audience.PUBLIC, (Audience.HQ, Audience.MEMBERS)),
    ],
    ids=["members-to-hq-only", "public-to-members-only", "public-to-members-and-hq"],
)
def test_a_decision_naming_fewer_tiers_releases_only_those(
    desk: Desk, audience: Audience, chosen: tuple[Audience, ...]
) -> None:
    """Tiers narrower than the audience allows: one Release per chosen tier, no other."""
    what = public_fire_draft() if audience is Audience.PUBLIC else draft(EventType.FIRE_REPORT)
    event = desk.publish("forestry", what)
    desk.accept(event)
    approval = decision(event, tiers=chosen)

    step = desk.decide(approval)

    assert set(releases(step)) == set(chosen)
    assert set(step.before[0].release_ids) == {release_id(approval.decision_id, tier) for tier in chosen}
    assert {a.tier for a in audits(step, AuditAction.RELEASED)} == set(chosen)
    assert desk.store[event.header.event_id].status is ReviewStatus.RELEASED


def _with_forestry_reviewer(desk: Desk) -> Desk:
    """``desk`` whose county also registers a reviewer of the forestry bureau (not the HQ office)."""
    outsider = RegisteredReviewer(id="fo-zhang", name="张林", unit="forestry")
    county = desk.county.model_copy(update={"reviewers": (*desk.county.reviewers, outsider)})
    desk.reviewer = Reviewer(codec=CODEC, county=county, policy=desk.policy, resources=lambda: [])
    return desk


@pytest.mark.parametrize(
    ("case", "needles"),
    [
        ("tiers wider than the audience", ("members tier at most", "public")),
        ("reviewer not registered", ("hq-nobody", "not registered")),
        ("reviewer not of the HQ office", ("fo-zhang", "not the HQ office")),
        ("reviewer is the publisher", ("王建国", "publisher")),
        ("reviewer is the publisher, by id", ("hq-li", "publisher")),
        ("a policy-rule decision published", ("policy rules",)),
        ("decision about an unknown event", ("not awaiting review",)),
    ],
)
def test_a_decision_that_may_not_be_applied_is_dead_lettered_and_the_item_stays_pending(
    desk: Desk, case: str, needles: tuple[str, ...]
) -> None:
    """A refused decision goes to the dead letters (bad_reference) with the reason; the item stays PENDING."""
    person = {"reviewer is the publisher": "王建国", "reviewer is the publisher, by id": "hq-li"}.get(case, "赵林")
    event = desk.publish("forestry", draft(EventType.FIRE_REPORT, person=person))
    desk.accept(event)
    choices: dict[str, ReviewDecision] = {
        "tiers wider than the audience": decision(event, tiers=(Audience.PUBLIC, Audience.MEMBERS)),
        "reviewer not registered": decision(event, reviewer="hq-nobody"),
        "reviewer not of the HQ office": decision(event, reviewer="fo-zhang"),
        "reviewer is the publisher": decision(event, reviewer="hq-wang"),
        "reviewer is the publisher, by id": decision(event, reviewer="hq-li"),
        "a policy-rule decision published": decision(
            event, reviewer="resource-by-owner", reviewer_kind=ReviewerKind.POLICY_RULE, policy_version="2026.03-1"
        ),
        "decision about an unknown event": decision(event).model_copy(update={"event_id": uuid4()}),
    }
    refused = choices[case]
    if case == "reviewer not of the HQ office":
        _with_forestry_reviewer(desk)
    source = desk.decision_record(refused)

    step = desk.apply(desk.reviewer.on_decision(refused, source, desk.store.get, now=NOW))

    letter = assert_refused(desk, step, source.value or b"", *needles)
    assert (letter.source_topic, letter.source_offset) == (REVIEW_DECISIONS.name, source.offset)
    assert letter.event_id == str(refused.event_id)
    assert desk.store[event.header.event_id].status is ReviewStatus.PENDING
    assert desk.store[event.header.event_id].decision is None


def test_a_rejection_settles_the_item_and_nothing_is_ever_released(desk: Desk) -> None:
    """A reject with a reason: REJECTED, a decided audit, no Release; a later approval is dead-lettered."""
    event = desk.publish("forestry", draft(EventType.FIRE_REPORT))
    desk.accept(event)
    refusal = decision(event, verdict=Verdict.REJECT, reviewer="hq-li", reason="位置与实际不符，请核实后重报")

    step = desk.decide(refusal)

    [rejected] = step.before
    assert rejected.status is ReviewStatus.REJECTED
    assert rejected.decision == refusal
    assert step.after == []
    assert releases(step) == {}
    assert set(sent(step)) == {AUDIT}
    [decided] = audits(step)
    assert decided.action is AuditAction.DECIDED
    assert decided.actor == "hq-li"
    assert decided.reason == "位置与实际不符，请核实后重报"
    assert decided.details["verdict"] == "reject"

    redelivered = desk.decide(refusal)
    assert (redelivered.before, redelivered.outgoing, redelivered.after) == ([], [], [])

    late = desk.decide(decision(event, reviewer="hq-wang"))
    assert_refused(desk, late, CODEC.encode(late_decision(late)), "already rejected")
    assert desk.store[event.header.event_id].status is ReviewStatus.REJECTED

    assert desk.tick(NOW + timedelta(days=3)).outgoing == []


def test_reviewer_redactions_apply_below_hq_only(desk: Desk) -> None:
    """Extra reviewer redactions (``body.place.village``) empty the field for public and members, never for HQ."""
    event = desk.publish("forestry", public_fire_draft())
    desk.accept(event)
    approval = decision(event, redactions=("body.place.village",))

    step = desk.decide(approval)

    by_tier = releases(step)
    assert set(by_tier) == {Audience.PUBLIC, Audience.MEMBERS, Audience.HQ}
    for tier in (Audience.PUBLIC, Audience.MEMBERS):
        shown = released_event(by_tier[tier])
        assert isinstance(shown.body, FireReport)
        assert shown.body.place.village is None
        assert shown.body.place.description == "蟒河景区东侧山坡"
        assert by_tier[tier].redacted_fields == sorted([*FIRE_REDACTED[tier], "body.place.village"])
    hq = by_tier[Audience.HQ]
    assert hq.redacted_fields == []
    assert hq.event == desk.raw[event.header.event_id]
    [decided] = audits(step, AuditAction.DECIDED)
    assert decided.details["redactions"] == "body.place.village"
    assert {a.tier: a.reason for a in audits(step, AuditAction.REDACTED)} == {
        tier: ", ".join(sorted([*FIRE_REDACTED[tier], "body.place.village"]))
        for tier in (Audience.PUBLIC, Audience.MEMBERS)
    }


@pytest.mark.parametrize("path", ["body.no_such_field", "body.place.township"])
def test_a_decision_with_an_impossible_redaction_is_dead_lettered(desk: Desk, path: str) -> None:
    """A redaction path that is not a field (or has no default to empty to) is a refused decision, not a crash."""
    event = desk.publish("forestry", draft(EventType.FIRE_REPORT))
    desk.accept(event)
    bad = decision(event, redactions=(path,))

    step = desk.decide(bad)

    assert DEAD_LETTER in sent(step)
    assert releases(step) == {}
    assert desk.store[event.header.event_id].status is ReviewStatus.PENDING


# --- the office's policy -----------------------------------------------------------------------------------


def test_a_rule_releases_a_forestry_resource_to_members_at_once(desk: Desk, policy: ReviewPolicy) -> None:
    """A forestry water point (severity unknown, for members) is released by rule resource-by-owner, no human."""
    event = desk.publish("forestry", draft(EventType.RESOURCE))

    step = desk.accept(event)

    raw = desk.raw[event.header.event_id]
    [releasing] = step.before
    assert releasing.status is ReviewStatus.RELEASING
    assert step.after == [releasing.model_copy(update={"status": ReviewStatus.RELEASED})]
    rule_decision = releasing.decision
    assert rule_decision is not None
    assert rule_decision.reviewer == "resource-by-owner"
    assert rule_decision.reviewer_kind is ReviewerKind.POLICY_RULE
    assert rule_decision.policy_version == policy.version == "2026.03-1"
    assert rule_decision.tiers == [Audience.MEMBERS, Audience.HQ]
    assert rule_decision.verdict is Verdict.APPROVE

    by_tier = releases(step)
    assert list(by_tier) == [Audience.MEMBERS, Audience.HQ]
    for release in by_tier.values():
        check_release(desk, release, event, rule_decision)
        assert release.event == raw  # nothing in a resource is tagged above members
        assert release.redacted_fields == []
    [state] = [record for record in step.outgoing if record.topic is RESOURCES_STATE]
    assert (state.key, state.value) == (b"wp-manghe-003", raw)
    assert HQ_LIVE not in sent(step)
    [decided] = audits(step, AuditAction.DECIDED)
    assert decided.actor == "resource-by-owner"
    assert decided.details["reviewer_kind"] == "policy_rule"
    assert decided.details["policy_version"] == "2026.03-1"
    assert audits(step)[0].action is AuditAction.ACCEPTED


@pytest.mark.parametrize(
    ("unit", "event_type", "changes"),
    [
        ("forestry", EventType.WORK_UPDATE, {}),
        ("meteorology", EventType.RISK_WARNING, {"severity": Severity.MINOR}),
        (
            "forestry",
            EventType.RESOURCE,
            {"classification": Classification.PUBLIC, "audience": Audience.PUBLIC},
        ),
    ],
    ids=["work_update", "risk_warning", "resource"],
)
def test_a_public_event_a_rule_would_cover_still_needs_a_human(
    desk: Desk, unit: str, event_type: EventType, changes: dict[str, Any]
) -> None:
    """An event for the public matching a rule's unit, type and severity stays PENDING: public needs a human."""
    event = desk.publish(unit, draft(event_type, **changes))
    assert event.header.audience is Audience.PUBLIC

    step = desk.accept(event)

    assert [item.status for item in step.before] == [ReviewStatus.PENDING]
    assert releases(step) == {}
    assert audits(step, AuditAction.DECIDED) == []

    approval = decision(event, reviewer="hq-li")
    released = desk.decide(approval)
    assert list(releases(released)) == [Audience.PUBLIC, Audience.MEMBERS, Audience.HQ]


def test_the_same_work_update_for_members_is_released_by_its_rule(desk: Desk) -> None:
    """The forestry work update addressed to members (not the public) is covered by work-update-by-member-units."""
    what = draft(EventType.WORK_UPDATE, classification=Classification.INTERNAL, audience=Audience.MEMBERS)
    event = desk.publish("forestry", what)

    step = desk.accept(event)

    assert list(releases(step)) == [Audience.MEMBERS, Audience.HQ]
    assert desk.store[event.header.event_id].status is ReviewStatus.RELEASED
    decided = desk.store[event.header.event_id].decision
    assert decided is not None
    assert decided.reviewer == "work-update-by-member-units"


# --- lifecycle ---------------------------------------------------------------------------------------------


def test_a_cancel_of_a_pending_event_withdraws_both_and_releases_nothing(desk: Desk) -> None:
    """Cancelling what is still pending: the original WITHDRAWN (audited), the cancel settled WITHDRAWN, no release."""
    original = desk.publish("forestry", draft(EventType.FIRE_REPORT))
    desk.accept(original)
    cancel = desk.publish("forestry", follow_up(original, MessageKind.CANCEL))

    step = desk.accept(cancel)

    by_id = {item.event_id: item for item in step.before}
    assert set(by_id) == {original.header.event_id, cancel.header.event_id}
    assert by_id[original.header.event_id].status is ReviewStatus.WITHDRAWN
    assert by_id[original.header.event_id].note == f"cancelled by {cancel.header.event_id}"
    assert by_id[cancel.header.event_id].status is ReviewStatus.WITHDRAWN
    assert by_id[cancel.header.event_id].kind is MessageKind.CANCEL
    [withdrawn] = audits(step, AuditAction.WITHDRAWN)
    assert withdrawn.event_id == original.header.event_id
    assert releases(step) == {}
    assert step.after == []
    assert raw_sent(step, HQ_LIVE) == [desk.raw[cancel.header.event_id]]

    late = desk.decide(decision(original))
    assert_refused(desk, late, CODEC.encode(late_decision(late)), "withdrawn")
    assert desk.tick(NOW + timedelta(days=1)).outgoing == []


def test_an_update_of_a_pending_event_supersedes_it(desk: Desk) -> None:
    """Updating a pending event: the original WITHDRAWN (superseded, audited), the update PENDING in its thread."""
    original = desk.publish("forestry", draft(EventType.FIRE_REPORT))
    desk.accept(original)
    update = desk.publish("forestry", follow_up(original, MessageKind.UPDATE))

    step = desk.accept(update)

    by_id = {item.event_id: item for item in step.before}
    assert by_id[original.header.event_id].status is ReviewStatus.WITHDRAWN
    assert by_id[original.header.event_id].note == f"superseded by {update.header.event_id}"
    assert by_id[update.header.event_id].status is ReviewStatus.PENDING
    assert by_id[update.header.event_id].thread_id == original.header.event_id
    assert [a.event_id for a in audits(step, AuditAction.WITHDRAWN)] == [original.header.event_id]
    assert releases(step) == {}


@pytest.mark.parametrize("kind", [MessageKind.UPDATE, MessageKind.CANCEL], ids=lambda k: k.value)
def test_an_update_or_cancel_of_a_released_event_is_reviewed_and_released_in_its_thread(
    desk: Desk, kind: MessageKind
) -> None:
    """After release, an update or cancel waits for review; its Release has its kind and the original's thread id."""
    original = desk.publish("forestry", draft(EventType.FIRE_REPORT))
    desk.accept(original)
    desk.decide(decision(original))
    follow = desk.publish("forestry", follow_up(original, kind))

    step = desk.accept(follow)

    [item] = step.before
    assert (item.event_id, item.status, item.kind) == (follow.header.event_id, ReviewStatus.PENDING, kind)
    assert item.thread_id == original.header.event_id
    assert audits(step, AuditAction.WITHDRAWN) == []
    assert releases(step) == {}
    assert desk.store[original.header.event_id].status is ReviewStatus.RELEASED

    approval = decision(follow)
    released = desk.decide(approval)

    by_tier = releases(released)
    assert list(by_tier) == [Audience.MEMBERS, Audience.HQ]
    for release in by_tier.values():
        check_release(desk, release, follow, approval)
        assert release.kind is kind
        assert release.thread_id == original.header.event_id
        assert release.event_id == follow.header.event_id
    assert desk.store[follow.header.event_id].status is ReviewStatus.RELEASED


def test_an_update_of_an_unknown_event_is_dead_lettered(desk: Desk) -> None:
    """An update referencing an event unknown here goes to the dead letters (bad_reference); no item is made."""
    stranger = uuid4()
    what = draft(EventType.FIRE_REPORT, kind=MessageKind.UPDATE, references=[stranger])
    update = desk.publish("forestry", what)

    step = desk.accept(update)

    [letter] = sent(step)[DEAD_LETTER]
    assert isinstance(letter, DeadLetter)
    assert letter.reason_code is DeadLetterReason.BAD_REFERENCE
    assert str(stranger) in letter.reason
    assert letter.value == desk.raw[update.header.event_id]
    assert letter.source_topic == INTAKE[EventType.FIRE_REPORT].name
    assert letter.event_id == str(update.header.event_id)
    assert AuditAction.REJECTED in [a.action for a in audits(step)]
    assert step.before == []
    assert step.after == []
    assert desk.store == {}
    assert releases(step) == {}


def test_a_cancel_of_another_type_does_not_withdraw_an_event(desk: Desk) -> None:
    """A work update that claims to cancel a fire report is a bad reference: the fire report stays pending."""
    fire = desk.publish("forestry", draft(EventType.FIRE_REPORT))
    desk.accept(fire)
    what = draft(
        EventType.WORK_UPDATE, townships=["manghe"], kind=MessageKind.CANCEL, references=[fire.header.event_id]
    )
    stray = desk.publish("twp_manghe", what)

    step = desk.accept(stray)

    assert desk.store[fire.header.event_id].status is ReviewStatus.PENDING
    [letter] = sent(step)[DEAD_LETTER]
    assert letter.reason_code is DeadLetterReason.BAD_REFERENCE


# --- enrichment --------------------------------------------------------------------------------------------


def _resource(resource_id: str, kind: ResourceKind, lat: float, lon: float, phone: str | None) -> Resource:
    return Resource(
        resource_id=resource_id,
        resource_kind=kind,
        name=f"资源 {resource_id}",
        township="manghe",
        lat=lat,
        lon=lon,
        status=ResourceStatus.AVAILABLE,
        contact_phone=phone,
    )


RESOURCES = [
    _resource("wp-near", ResourceKind.WATER_POINT, 35.2491, 112.3805, "13800002222"),
    _resource("wp-far", ResourceKind.WATER_POINT, 35.40, 112.60, "13800003333"),
    _resource("tower-1", ResourceKind.WATCHTOWER, 35.27, 112.35, "13800004444"),
    _resource("team-1", ResourceKind.PROFESSIONAL_TEAM, 35.30, 112.40, "13800005555"),
]
FIRE = (35.2583, 112.3671)
NEAREST = {"wp-near", "tower-1", "team-1"}


def test_a_released_fire_report_carries_the_nearest_resource_of_each_kind(desk: Desk) -> None:
    """Each Release lists the nearest water point, watchtower and team with distances; public loses their positions."""
    desk.resources = list(RESOURCES)
    event = desk.publish("forestry", public_fire_draft())
    desk.accept(event)

    step = desk.decide(decision(event))

    by_tier = releases(step)
    expected = {
        r.resource_id: round(haversine_km(*FIRE, r.lat, r.lon), 2)
        for r in RESOURCES
        if r.resource_id in NEAREST and r.lat is not None and r.lon is not None
    }
    by_id = {r.resource_id: r for r in RESOURCES}
    for tier, release in by_tier.items():
        nearby = {n.resource_id: n for n in release.nearby_resources}
        assert set(nearby) == NEAREST, tier
        assert {rid: n.distance_km for rid, n in nearby.items()} == expected
        distances = [n.distance_km for n in release.nearby_resources]
        assert distances == sorted(distances)
        for rid, shown in nearby.items():
            assert (shown.resource_kind, shown.name, shown.township) == (
                by_id[rid].resource_kind,
                by_id[rid].name,
                "manghe",
            )
            if tier is Audience.PUBLIC:
                assert (shown.lat, shown.lon, shown.contact_phone) == (None, None, None)
            else:
                assert (shown.lat, shown.lon, shown.contact_phone) == (
                    by_id[rid].lat,
                    by_id[rid].lon,
                    by_id[rid].contact_phone,
                )
    assert by_tier[Audience.PUBLIC].redacted_fields == sorted(
        [
            *FIRE_REDACTED[Audience.PUBLIC],
            "nearby_resources[].contact_phone",
            "nearby_resources[].lat",
            "nearby_resources[].lon",
        ]
    )
    assert by_tier[Audience.MEMBERS].redacted_fields == FIRE_REDACTED[Audience.MEMBERS]
    assert by_tier[Audience.HQ].redacted_fields == []
    assert by_tier[Audience.HQ].event == desk.raw[event.header.event_id]


def test_a_released_non_fire_event_carries_no_resources(desk: Desk) -> None:
    """Only fire reports are enriched: an approved work update lists no nearby resources."""
    desk.resources = list(RESOURCES)
    event = desk.publish("twp_manghe", draft(EventType.WORK_UPDATE, townships=["manghe"]))
    desk.accept(event)

    step = desk.decide(decision(event))

    released = releases(step).values()
    assert released
    assert all(release.nearby_resources == [] for release in released)


# --- deadlines ---------------------------------------------------------------------------------------------


def test_a_pending_item_past_its_deadline_is_escalated_once(desk: Desk) -> None:
    """At its deadline a pending item escalates: audit on AUDIT and HQ_NOTICES, marked, and never again."""
    event = desk.publish("forestry", draft(EventType.FIRE_REPORT))
    desk.accept(event)

    early = desk.tick(NOW + timedelta(minutes=9, seconds=59))
    assert (early.before, early.outgoing) == ([], [])

    step = desk.tick(NOW + timedelta(minutes=25))

    [escalated] = step.before
    assert escalated.event_id == event.header.event_id
    assert escalated.escalated is True
    assert escalated.status is ReviewStatus.PENDING
    by_topic = sent(step)
    assert set(by_topic) == {AUDIT, HQ_NOTICES}
    assert by_topic[AUDIT] == by_topic[HQ_NOTICES]
    [audit] = by_topic[AUDIT]
    assert audit.action is AuditAction.ESCALATED
    assert audit.event_id == event.header.event_id
    assert audit.reason is not None
    assert "15 min past its deadline" in audit.reason
    assert audit.details["deadline"] == (NOW + timedelta(minutes=10)).isoformat()

    again = desk.tick(NOW + timedelta(minutes=40))
    assert (again.before, again.outgoing, again.after) == ([], [], [])

    still = desk.decide(decision(event))
    assert list(releases(still)) == [Audience.MEMBERS, Audience.HQ]


def test_released_and_rule_released_items_never_escalate(desk: Desk) -> None:
    """Items released by a reviewer or by a rule are not escalated, however late the tick."""
    fire = desk.publish("forestry", draft(EventType.FIRE_REPORT))
    desk.accept(fire)
    desk.decide(decision(fire))
    desk.accept(desk.publish("forestry", draft(EventType.RESOURCE)))
    assert {item.status for item in desk.store.values()} == {ReviewStatus.RELEASED}

    step = desk.tick(NOW + timedelta(days=30))

    assert (step.before, step.outgoing, step.after) == ([], [], [])


def test_only_the_overdue_item_escalates(desk: Desk) -> None:
    """Of a fire report (10 min) and a work update (1440 min) both waiting 1 h, only the fire report escalates."""
    fire = desk.publish("forestry", draft(EventType.FIRE_REPORT))
    desk.accept(fire)
    work = desk.publish("twp_manghe", draft(EventType.WORK_UPDATE, townships=["manghe"]))
    desk.accept(work)

    step = desk.tick(NOW + timedelta(hours=1))

    assert [item.event_id for item in step.before] == [fire.header.event_id]
    assert desk.store[work.header.event_id].escalated is False
