"""``firebus status [--json]``: is the bus working — its stages, how far behind each consumer group is, the review
queue, the last hour's dead letters and when each topic last got a record."""

from __future__ import annotations

import argparse
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cli.commands import Commands, json_option, say, say_json
from firebus.broker import LOOPBACK
from firebus.codec import Codec
from firebus.errors import BrokerUnavailableError
from firebus.kafka import read_to_end
from firebus.observe import consumer_lag, dead_letters_since, firebus_groups, last_record_times
from firebus.records import ReviewItem, ReviewStatus
from firebus.settings import Settings
from firebus.stages import StagesSeen, kafka_problem, observe_stages
from firebus.topics import ALL_TOPICS, REVIEW_ITEMS

DEAD_LETTER_WINDOW = timedelta(hours=1)


@dataclass(frozen=True)
class Status:
    """Everything ``firebus status`` shows, gathered once."""

    kafka: str
    stages: StagesSeen
    lag: dict[str, dict[str, int]]
    pending: int
    overdue: int
    dead_letters: Counter[str]
    last_record: dict[str, datetime | None]

    def as_json(self) -> dict[str, Any]:
        return {
            "kafka": self.kafka,
            "stages": [report.as_json() for report in self.stages.reports],
            "stages_source": self.stages.source,
            "stages_problem": self.stages.problem,
            "consumer_lag": {
                group: {"total": sum(topics.values()), "topics": topics} for group, topics in self.lag.items()
            },
            "review": {"pending": self.pending, "overdue": self.overdue},
            "dead_letters_last_hour": {
                "total": sum(self.dead_letters.values()),
                "by_reason": dict(sorted(self.dead_letters.items())),
            },
            "last_record": {
                topic: moment.isoformat().replace("+00:00", "Z") if moment else None
                for topic, moment in self.last_record.items()
            },
        }


def review_counts(items: dict[Any, ReviewItem], now: datetime) -> tuple[int, int]:
    """Items awaiting review, and those of them past their deadline."""
    pending = [item for item in items.values() if item.status is ReviewStatus.PENDING]
    return len(pending), sum(1 for item in pending if item.deadline < now)


def where_stages_are(settings: Settings) -> Settings:
    """With no ``stages_url`` set, the local supervisor of ``firebus up`` is asked (then ``readiness_urls``)."""
    if settings.stages_url or not settings.supervisor_port:
        return settings
    return settings.model_copy(update={"stages_url": f"http://{LOOPBACK}:{settings.supervisor_port}/stages"})


async def gather_status(settings: Settings) -> Status:
    from producers import fold_items

    problem = await kafka_problem(settings)
    if problem is not None:
        raise BrokerUnavailableError(problem)
    codec = Codec()
    now = datetime.now(UTC)
    stages = await observe_stages(where_stages_are(settings))
    lag = await consumer_lag(settings, await firebus_groups(settings), ALL_TOPICS)
    items = await read_to_end(settings, REVIEW_ITEMS)
    dead_letters = await dead_letters_since(settings, now - DEAD_LETTER_WINDOW, codec)
    last_record = await last_record_times(settings, ALL_TOPICS)
    pending, overdue = review_counts(fold_items(codec, items), now)
    return Status(settings.bootstrap_servers, stages, lag, pending, overdue, dead_letters, last_record)


def _ago(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "-"
    seconds = max(int((now - moment).total_seconds()), 0)
    spent = f"{seconds} s" if seconds < 120 else f"{seconds // 60} min" if seconds < 7200 else f"{seconds // 3600} h"
    return f"{moment:%Y-%m-%d %H:%M:%S}Z ({spent} ago)"


def status_lines(status: Status, now: datetime) -> list[str]:
    """The table a person reads."""
    lines = [f"Kafka: {status.kafka}"]
    seen = status.stages
    if seen.reports:
        lines.append(f"stages ({seen.source}):")
        for report in seen.reports:
            pid = f"pid {report.pid}" if report.pid else ""
            cause = "; ".join(part for part in (report.last_exit, report.last_error) if part)
            lines.append(
                f"  {report.stage:<11} {report.state.value:<10} {pid:<10} restarts {report.restarts:<3} "
                f"since {report.since:%H:%M:%S}Z{f'  ({cause})' if cause else ''}"
            )
    else:
        lines.append(f"stages: unknown ({seen.problem or 'no supervisor and no readiness_urls configured'})")
    lines.append("consumer lag:" if status.lag else "consumer lag: no firebus consumer group has committed yet")
    for group, topics in status.lag.items():
        behind = ", ".join(f"{topic} {count}" for topic, count in topics.items() if count)
        lines.append(f"  {group:<28} {sum(topics.values()):>8}{f'  ({behind})' if behind else ''}")
    lines.append(f"review queue: {status.pending} pending, {status.overdue} overdue")
    reasons = ", ".join(f"{reason} {count}" for reason, count in sorted(status.dead_letters.items()))
    lines.append(
        f"dead letters in the last hour: {sum(status.dead_letters.values())}{f' ({reasons})' if reasons else ''}"
    )
    lines.append("last record per topic:")
    width = max(len(topic) for topic in status.last_record)
    lines += [f"  {topic:<{width}}  {_ago(moment, now)}" for topic, moment in status.last_record.items()]
    return lines


async def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    status = await gather_status(settings)
    if args.json:
        say_json(status.as_json())
    else:
        for line in status_lines(status, datetime.now(UTC)):
            say(line)
    return 0


def register(commands: Commands) -> None:
    status = commands.command(
        "status",
        cmd_status,
        "is the bus working: stages, consumer lag per group, review queue, dead letters, last record per topic",
    )
    json_option(status)
