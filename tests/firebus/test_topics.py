"""The topic registry's rules that need no broker."""

from __future__ import annotations

from firebus.topics import (
    ALL_TOPICS,
    AUDIT,
    CO_PARTITIONED,
    INTAKE,
    REVIEW_INBOX,
    REVIEW_ITEMS,
    co_partitioning_problem,
)


def test_the_co_partitioned_topics_are_the_review_inbox_and_the_review_items() -> None:
    """Only firebus-owned topics are co-partitioned: what outside producers write (intake) may have any count."""
    assert set(CO_PARTITIONED) == {REVIEW_INBOX, REVIEW_ITEMS}
    assert len({topic.partitions for topic in CO_PARTITIONED}) == 1
    assert not set(INTAKE.values()) & set(CO_PARTITIONED)


def test_every_topic_name_is_registered_once() -> None:
    names = [topic.name for topic in ALL_TOPICS]
    assert len(names) == len(set(names))
    assert REVIEW_INBOX in ALL_TOPICS


def test_co_partitioning_is_one_count_among_the_co_partitioned_topics_only() -> None:
    """Equal counts (any count) pass; one differing topic is named with every count; other topics do not matter."""
    equal = {topic.name: 12 for topic in CO_PARTITIONED}
    assert co_partitioning_problem({**equal, AUDIT.name: 3}) is None
    assert co_partitioning_problem({}) is None
    problem = co_partitioning_problem({**equal, REVIEW_INBOX.name: 13})
    assert problem is not None
    assert f"{REVIEW_INBOX.name}=13" in problem
    assert f"{REVIEW_ITEMS.name}=12" in problem
    assert AUDIT.name not in problem
    assert co_partitioning_problem({**equal, next(iter(INTAKE.values())).name: 7}) is None
