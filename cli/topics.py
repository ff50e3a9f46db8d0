"""``firebus topics create|list|check``: the topic registry applied to, shown for and verified on any Kafka."""

from __future__ import annotations

import argparse

from cli.commands import Commands, say
from firebus.errors import ConfigurationError
from firebus.kafka import create_topics, describe_topics
from firebus.settings import Settings
from firebus.topics import ALL_TOPICS, co_partitioning_problem


def register(commands: Commands) -> None:
    topics = commands.group("topics", "manage the registered topics")
    topics.command("create", cmd_topics_create, "create the missing registered topics (idempotent)")
    listing = topics.command("list", cmd_topics_list, "list the registered topics")
    listing.add_argument("--broker", action="store_true", help="also show what the broker has")
    topics.command("check", cmd_topics_check, "verify every registered topic exists as declared")


async def cmd_topics_create(args: argparse.Namespace, settings: Settings) -> int:
    created = await create_topics(settings)
    say(f"created {len(created)} topic(s); {len(ALL_TOPICS) - len(created)} already existed")
    for name in created:
        say(f"  + {name}")
    return 0


async def cmd_topics_list(args: argparse.Namespace, settings: Settings) -> int:
    states = await describe_topics(settings) if args.broker else None
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
    states = await describe_topics(settings)
    problems = [problem for state in states for problem in state.problems()]
    co_partitioning = co_partitioning_problem({s.topic.name: s.partitions for s in states if s.partitions is not None})
    if co_partitioning is not None:
        problems.append(co_partitioning)
    if problems:
        raise ConfigurationError(f"{len(problems)} topic problem(s): " + "; ".join(problems))
    say(f"all {len(ALL_TOPICS)} topics present and configured as registered on {settings.bootstrap_servers}")
    return 0
