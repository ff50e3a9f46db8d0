"""``firebus simulate``: a reproducible, realistic fire season of signed events, through the client library."""

from __future__ import annotations

import argparse
import sys

from cli.commands import Commands, say
from cli.publishing import ensure_dev_keys
from firebus.county import load_county
from firebus.settings import Settings


async def cmd_simulate(args: argparse.Namespace, settings: Settings) -> int:
    from producers import publish_season

    county = load_county(settings.config)
    if settings.embedded:
        ensure_dev_keys(settings, county)
    step = max(1, args.events // 20)

    def progress(done: int) -> None:
        if done % step == 0 or done == args.events:
            sys.stderr.write(f"\rsimulated {done}/{args.events} events")
            sys.stderr.flush()

    report = await publish_season(
        settings, county, count=args.events, seed=args.seed, rate=args.rate, days=args.days, progress=progress
    )
    sys.stderr.write("\n")
    by_type = ", ".join(f"{name} {count}" for name, count in sorted(report.by_type.items()))
    say(f"published {report.published} events (seed {args.seed}): {by_type}")
    return 0


def register(commands: Commands) -> None:
    simulate = commands.command(
        "simulate", cmd_simulate, "publish a realistic fire season of signed events (reproducible)"
    )
    simulate.add_argument("--events", type=int, default=1_000, help="how many events")
    simulate.add_argument("--rate", type=float, help="events per second (default: as fast as possible)")
    simulate.add_argument("--seed", type=int, default=2026, help="the same seed gives the same season")
    simulate.add_argument("--days", type=int, default=60, help="the season's length, ending now")
