"""The topic registry's rules that need no broker."""

from __future__ import annotations

from firebus.topics import AUDIT, CO_PARTITIONED, INTAKE, REVIEW_DECISIONS, REVIEW_ITEMS, co_partitioning_problem


def test_the_co_partitioned_topics_are_intake_decisions_and_review_items() -> None:
    assert set(CO_PARTITIONED) == {*INTAKE.values(), REVIEW_DECISIONS, REVIEW_ITEMS}
    assert len({topic.partitions for topic in CO_PARTITIONED}) == 1


def test_co_partitioning_is_one_count_among_the_co_partitioned_topics_only() -> None:
    """Equal counts (any count) pass; one differing topic is named with every count; other topics do not matter."""
    equal = {topic.name: 12 for topic in CO_PARTITIONED}
    assert co_partitioning_problem({**equal, AUDIT.name: 3}) is None
    assert co_partitioning_problem({}) is None
    widened = next(iter(INTAKE.values()))
    problem = co_partitioning_problem({**equal, widened.name: 13})
    assert problem is not None
    assert f"{widened.name}=13" in problem
    assert f"{REVIEW_ITEMS.name}=12" in problem
    assert AUDIT.name not in problem
