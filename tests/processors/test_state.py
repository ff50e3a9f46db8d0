"""The review state a worker holds (processors._state.ReviewState), over a plain dict standing in for faust's store:
which items a worker may change, what it keeps decoded, and the changelog records that make states durable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from firebus.codec import Codec
from firebus.records import ReviewItem, ReviewStatus
from firebus.topics import REVIEW_ITEMS, REVIEW_PARTITIONS
from processors._sender import partition_for
from processors._state import ReviewState, settled_at
from tests.samples import review_item

CODEC = Codec()


def new_state() -> tuple[ReviewState, dict[bytes, bytes]]:
    store: dict[bytes, bytes] = {}
    return ReviewState(lambda: store, CODEC, partitions=REVIEW_PARTITIONS), store


def one_item_per_partition() -> dict[int, ReviewItem]:
    by_partition: dict[int, ReviewItem] = {}
    while len(by_partition) < REVIEW_PARTITIONS:
        item = review_item(partition_key=f"YC-{uuid4().hex[:8]}")
        by_partition.setdefault(partition_for(item.partition_key.encode(), REVIEW_PARTITIONS), item)
    return by_partition


def test_a_worker_escalates_only_items_of_its_active_partitions() -> None:
    """The store also holds standby copies of other workers' partitions; changing those items (an escalation) is
    their owner's job, or two workers would write one item's state from different pasts."""
    state, _store = new_state()
    by_partition = one_item_per_partition()
    for partition, item in by_partition.items():
        state.persist(partition, [item])
    settled = review_item(ReviewStatus.RELEASED, partition_key=by_partition[0].partition_key)
    state.persist(0, [settled])

    assert [item.event_id for item in state.unsettled({0})] == [by_partition[0].event_id]
    assert {item.event_id for item in state.unsettled({0, 2})} == {by_partition[0].event_id, by_partition[2].event_id}
    assert state.unsettled(set()) == []


def test_persisted_states_are_stored_and_become_changelog_records_on_their_partition() -> None:
    state, store = new_state()
    item = review_item()
    [record] = state.persist(2, [item])
    assert (record.topic, record.key, record.partition) == (REVIEW_ITEMS, str(item.event_id).encode(), 2)
    assert CODEC.decode(record.value) == item
    assert store[str(item.event_id).encode()] == record.value
    assert state.partition_of(item) == partition_for(item.partition_key.encode(), REVIEW_PARTITIONS)


def test_settled_items_are_not_kept_decoded_but_are_still_found() -> None:
    """A worker keeps open items decoded; released, rejected and withdrawn ones only in the table's store, where a
    lookup (an update's original, say) still finds them. A rebalance drops everything decoded."""
    state, _store = new_state()
    pending, releasing = review_item(), review_item(ReviewStatus.RELEASING)
    settled = [review_item(status) for status in (ReviewStatus.RELEASED, ReviewStatus.REJECTED, ReviewStatus.WITHDRAWN)]
    state.persist(0, [pending, releasing, *settled])

    assert set(state._open) == {pending.event_id, releasing.event_id}
    for item in settled:
        assert state.lookup(item.event_id) == item
    assert set(state._open) == {pending.event_id, releasing.event_id}

    state.forget()
    assert state._open == {}
    assert state.lookup(pending.event_id) == pending
    assert state.lookup(uuid4()) is None


def test_a_noted_state_is_seen_by_later_records_of_the_batch_before_it_is_persisted() -> None:
    state, store = new_state()
    item = review_item()
    state.note([item])
    assert state.lookup(item.event_id) == item
    assert store == {}


RECEIVED = datetime(2026, 3, 12, 6, 0, tzinfo=UTC)


@pytest.mark.parametrize("status", [ReviewStatus.RELEASED, ReviewStatus.REJECTED, ReviewStatus.WITHDRAWN])
def test_a_settled_item_past_retention_leaves_the_store_as_a_tombstone(status: ReviewStatus) -> None:
    """Settled items older than the retention go: out of the store and the decoded view, with a tombstone (value
    None) on their changelog partition, so no restore brings them back; younger ones stay."""
    state, store = new_state()
    old = review_item(status)
    young = review_item(status, received_at=RECEIVED + timedelta(days=2), deadline=RECEIVED + timedelta(days=2))
    partition = state.partition_of(old)
    state.persist(partition, [old, young])
    state.unsettled({partition})  # the tick's scan: what it learns of settled items, expiry uses

    expired = state.expired({partition}, before=RECEIVED + timedelta(days=1))
    assert [item.event_id for item in expired] == [old.event_id]
    [tombstone] = state.purge(expired)
    assert (tombstone.topic, tombstone.key, tombstone.value) == (REVIEW_ITEMS, str(old.event_id).encode(), None)
    assert tombstone.partition == partition
    assert str(old.event_id).encode() not in store
    assert state.lookup(old.event_id) is None
    assert state.lookup(young.event_id) == young
    assert state.expired({partition}, before=RECEIVED + timedelta(days=1)) == []


@pytest.mark.parametrize("status", [ReviewStatus.PENDING, ReviewStatus.RELEASING])
def test_an_open_item_never_expires_however_old(status: ReviewStatus) -> None:
    """A pending (or releasing) item is work not done: it stays, whatever its age."""
    state, store = new_state()
    item = review_item(status)
    partition = state.partition_of(item)
    state.persist(partition, [item])
    state.unsettled({partition})
    assert state.expired({partition}, before=RECEIVED + timedelta(days=3650)) == []
    assert str(item.event_id).encode() in store


def test_only_the_active_partitions_items_expire() -> None:
    """Standby copies of another worker's partitions are that worker's to tombstone."""
    state, _store = new_state()
    item = review_item(ReviewStatus.RELEASED)
    partition = state.partition_of(item)
    state.persist(partition, [item])
    state.unsettled({partition})
    others = set(range(REVIEW_PARTITIONS)) - {partition}
    assert state.expired(others, before=RECEIVED + timedelta(days=1)) == []


def test_a_release_settles_when_it_began_not_when_it_was_received() -> None:
    """Retention counts from when the item settled as far as it records it (its release, its decision)."""
    releasing_since = RECEIVED + timedelta(days=5)
    item = review_item(ReviewStatus.RELEASED, releasing_since=releasing_since)
    assert settled_at(item) == releasing_since
    assert settled_at(review_item(ReviewStatus.WITHDRAWN)) == RECEIVED
