"""The HTTP API's pure parts: the release log's cursor paging, cursors, request budgets, request digests, tiers."""

from __future__ import annotations

import random
from typing import Any
from uuid import uuid4

import pytest

from consumers.portal import RequestBudget, tier_of
from consumers.portal.api import request_digest
from consumers.portal.board import Notice
from consumers.portal.released import ReleaseLog, decode_cursor, encode_cursor
from firebus.county import County
from firebus.events import Audience, EventType


class _Release:
    def __init__(self) -> None:
        self.event_id = uuid4()


def _notice() -> Any:
    # The log reads only the event id of a notice; the rest of a real Notice does not matter here.
    return Notice(release=_Release(), event=None)  # type: ignore[arg-type]


def _page_all(log: ReleaseLog, cursor: dict[int, int], limit: int) -> tuple[list[Any], dict[int, int]]:
    seen: list[Any] = []
    for _ in range(len(log) + 1):  # bounded: a cursor that stops moving must fail the test, not hang it
        page, cursor = log.page(cursor, limit)
        if not page:
            return seen, cursor
        seen += page
    raise AssertionError("paging never came to an end")


@pytest.mark.parametrize("seed", range(20))
def test_paging_in_any_interleaving_never_skips_or_repeats_also_while_records_arrive(seed: int) -> None:
    """Records arriving on three partitions in random interleaving, paged with random page sizes while more arrive,
    come out each exactly once."""
    rng = random.Random(seed)  # noqa: S311  (a reproducible interleaving, not a secret)
    log = ReleaseLog()
    offsets = {0: 0, 1: 0, 2: 0}
    added: list[Any] = []
    cursor: dict[int, int] = {}
    seen: list[Any] = []
    for _round in range(6):
        for _ in range(rng.randint(0, 15)):
            partition = rng.randrange(3)
            offsets[partition] += rng.randint(1, 3)  # compacted or other records leave offset gaps
            notice = _notice()
            assert log.add(partition, offsets[partition], notice)
            added.append(notice)
        for _ in range(rng.randint(0, 3)):
            page, cursor = log.page(cursor, rng.randint(1, 7))
            seen += page
    rest, cursor = _page_all(log, cursor, 4)
    seen += rest
    assert [id(n) for n in seen] == [id(n) for n in added]


def test_a_restarted_portal_reading_partitions_in_another_order_continues_an_old_cursor_exactly() -> None:
    """A cursor taken from one portal continues on a portal that read the same partitions interleaved differently."""
    records = {p: [(p, offset, _notice()) for offset in range(10)] for p in range(3)}
    first, second = ReleaseLog(), ReleaseLog()
    for offset in range(10):
        for p in range(3):
            first.add(*records[p][offset])
    for p in (2, 0, 1):
        for entry in records[p]:
            second.add(*entry)
    page, cursor = first.page({}, 13)
    rest, _ = _page_all(second, cursor, 5)
    assert sorted(id(n) for n in page + rest) == sorted(id(e[2]) for p in records.values() for e in p)
    assert len({id(n) for n in page + rest}) == 30


def test_the_same_event_read_twice_or_a_position_read_again_is_kept_once() -> None:
    log = ReleaseLog()
    notice = _notice()
    assert log.add(0, 5, notice)
    assert not log.add(1, 9, notice)  # the tier topic is at least once
    assert not log.add(0, 5, _notice())
    assert len(log) == 1


def test_cursors_are_opaque_round_trips_and_refuse_other_tiers_and_garbage() -> None:
    text = encode_cursor(Audience.MEMBERS, {0: 4, 2: 17})
    assert decode_cursor(Audience.MEMBERS, text) == {0: 4, 2: 17}
    with pytest.raises(ValueError, match="another tier"):
        decode_cursor(Audience.HQ, text)
    for garbage in ("", "!!!", "bm90IGpzb24", encode_cursor(Audience.MEMBERS, {0: -1}), "eyJ0IjoibWVtYmVycyJ9"):
        with pytest.raises(ValueError, match="not a cursor"):
            decode_cursor(Audience.MEMBERS, garbage)


def test_a_budget_allows_its_burst_then_refuses_with_the_wait_and_refills_at_its_rate() -> None:
    now = [100.0]
    budget = RequestBudget(rate_per_minute=60, burst=3, clock=lambda: now[0])
    assert [budget.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert budget.take("a") == pytest.approx(1.0)
    assert budget.take("a") == pytest.approx(1.0)  # a refusal spends nothing
    assert budget.take("b") == 0.0  # each credential has its own
    now[0] += 1.0
    assert budget.take("a") == 0.0
    assert budget.take("a") > 0


def test_two_requests_are_the_same_request_whatever_their_key_order_and_spacing() -> None:
    one = request_digest(EventType.FIRE_REPORT, {"a": 1, "b": {"c": [1, 2]}})
    assert one == request_digest(EventType.FIRE_REPORT, {"b": {"c": [1, 2]}, "a": 1})
    assert one != request_digest(EventType.FIRE_REPORT, {"a": 1, "b": {"c": [2, 1]}})
    assert one != request_digest(EventType.WORK_UPDATE, {"a": 1, "b": {"c": [1, 2]}})


def test_only_the_hq_office_reads_the_hq_tier(county: County) -> None:
    tiers = {unit.id: tier_of(unit) for unit in county.units}
    assert tiers.pop("hq_office") is Audience.HQ
    assert set(tiers.values()) == {Audience.MEMBERS}
