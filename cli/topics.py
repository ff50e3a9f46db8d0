"""``firebus topics create|list|check``: the topic registry applied to, shown for and verified on any Kafka."""

from __future__ import annotations

import argparse
from typing import Any

from cli.commands import Commands, json_option, say, say_json
from firebus.errors import ConfigurationError
from firebus.kafka import TopicState, create_topics, describe_topics
from firebus.settings import Settings
from firebus.topics import ALL_TOPICS, Topic, co_partitioning_problem


async def cmd_topics_create(args: argparse.Namespace, settings: Settings) -> int:
    created = await create_topics(settings)
    say(f"created {len(created)} topic(s); {len(ALL_TOPICS) - len(created)} already existed")
    for name in created:
        say(f"  + {name}")
    return 0


def topic_json(topic: Topic) -> dict[str, Any]:
    """A registered topic as ``topics list --json`` shows it (retention -1: kept forever)."""
    return {
        "name": topic.name,
        "partitions": topic.partitions,
        "retention_ms": topic.retention_ms,
        "cleanup_policy": topic.cleanup_policy.value,
        "key": topic.key,
        "value": topic.value,
        "value_schemas": list(topic.value_schemas),
        "writers": [actor.value for actor in topic.writers],
        "readers": [actor.value for actor in topic.readers],
    }


def state_json(state: TopicState) -> dict[str, Any]:
    """What the broker has of a registered topic, and how that differs from the registry."""
    return {
        "exists": state.exists,
        "partitions": state.partitions,
        "configs": state.configs,
        "problems": state.problems(),
    }


async def cmd_topics_list(args: argparse.Namespace, settings: Settings) -> int:
    states = await describe_topics(settings) if args.broker else None
    if args.json:
        shown = [topic_json(topic) for topic in ALL_TOPICS]
        if states is not None:
            for entry, state in zip(shown, states, strict=True):
                entry["broker"] = state_json(state)
        say_json({"topics": shown})
        return 0
    say(f"{'topic':<32} {'parts':>5} {'retention':>10} {'cleanup':<8} key")
    for index, topic in enumerate(ALL_TOPICS):
        retention = "forever" if topic.retention_ms < 0 else f"{topic.retention_ms // 86_400_000}d"
        status = ""
        if states is not None:
            status = "  [ok]" if not states[index].problems() else f"  [{'; '.join(states[index].problems())}]"
        cleanup = topic.cleanup_policy.value
        say(f"{topic.name:<32} {topic.partitions:>5} {retention:>10} {cleanup:<8} {topic.key}{status}")
    return 0


async def cmd_topics_check(args: argparse.Namespace, settings: Settings) -> int:
    """Exit 1 when the broker differs from the registry: one error line, or (``--json``) the report with every
    problem."""
    states = await describe_topics(settings)
    problems = [problem for state in states for problem in state.problems()]
    co_partitioning = co_partitioning_problem({s.topic.name: s.partitions for s in states if s.partitions is not None})
    if co_partitioning is not None:
        problems.append(co_partitioning)
    if args.json:
        say_json({"ok": not problems, "bootstrap": settings.bootstrap_servers, "problems": problems})
        return 1 if problems else 0
    if problems:
        raise ConfigurationError(f"{len(problems)} topic problem(s): " + "; ".join(problems))
    say(f"all {len(ALL_TOPICS)} topics present and configured as registered on {settings.bootstrap_servers}")
    return 0


def register(commands: Commands) -> None:
    topics = commands.group("topics", "manage the registered topics")
    topics.command("create", cmd_topics_create, "create the missing registered topics (idempotent)")
    listing = topics.command("list", cmd_topics_list, "list the registered topics")
    listing.add_argument("--broker", action="store_true", help="also show what the broker has")
    json_option(listing)
    check = topics.command("check", cmd_topics_check, "verify every registered topic exists as declared")
    json_option(check)
