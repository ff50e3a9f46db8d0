"""Which review items a worker may change: only those of the partitions it is active for."""

from __future__ import annotations

from pathlib import Path
from uuid import uuid4

from faust.types import TP

from firebus.county import County
from firebus.events import EventType
from firebus.records import ReviewItem, ReviewStatus
from firebus.settings import Settings
from firebus.topics import INTAKE, REVIEW_DECISIONS, REVIEW_PARTITIONS
from processors import Processors
from processors._sender import partition_for
from tests.samples import review_item


def test_a_worker_escalates_only_items_of_its_active_partitions(county: County, keys_dir: Path, tmp_path: Path) -> None:
    """The store also holds standby copies of other workers' partitions; changing those items (an escalation) is
    their owner's job, or two workers would write one item's state from different pasts."""
    processors = Processors(settings=Settings(home=tmp_path, keys_dir=keys_dir), county=county)
    by_partition: dict[int, ReviewItem] = {}
    while len(by_partition) < REVIEW_PARTITIONS:
        item = review_item(partition_key=f"YC-{uuid4().hex[:8]}")
        by_partition.setdefault(partition_for(item.partition_key.encode(), REVIEW_PARTITIONS), item)
    actives = {TP(INTAKE[EventType.FIRE_REPORT].name, 0), TP(REVIEW_DECISIONS.name, 0), TP("elsewhere", 1)}
    processors.app.assignor.assigned_actives = lambda: actives  # type: ignore[method-assign]

    assert processors._owned([*by_partition.values(), None]) == [by_partition[0]]
    actives.add(TP(INTAKE[EventType.WORK_UPDATE].name, 2))
    owned = processors._owned(by_partition.values())
    assert {item.event_id for item in owned} == {by_partition[0].event_id, by_partition[2].event_id}


def test_settled_items_are_not_kept_decoded_but_are_still_found(county: County, keys_dir: Path, tmp_path: Path) -> None:
    """A worker keeps open items decoded; released, rejected and withdrawn ones only in the table's store, where a
    lookup (an update's original, say) still finds them. A rebalance drops everything decoded."""
    processors = Processors(settings=Settings(home=tmp_path, keys_dir=keys_dir), county=county)
    pending, releasing = review_item(), review_item(ReviewStatus.RELEASING)
    settled = [review_item(status) for status in (ReviewStatus.RELEASED, ReviewStatus.REJECTED, ReviewStatus.WITHDRAWN)]
    processors._persist(0, [pending, releasing, *settled])

    assert set(processors._items) == {pending.event_id, releasing.event_id}
    for item in settled:
        assert processors._lookup(item.event_id) == item
    assert set(processors._items) == {pending.event_id, releasing.event_id}

    processors._forget()
    assert processors._items == {}
    assert processors._lookup(pending.event_id) == pending
    assert processors._lookup(uuid4()) is None
