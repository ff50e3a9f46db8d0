"""``firebus processors``: the processors worker — the intake gate and the review stage — against the configured
Kafka, both in one process or (``--stage``) each in its own."""

from __future__ import annotations

import argparse

from cli.commands import Commands, exit_at_once
from firebus.settings import Settings


def cmd_processors(args: argparse.Namespace, settings: Settings) -> int:
    from processors import Stage, run_worker

    run_worker(settings, Stage(args.stage), on_broker_lost=exit_at_once)
    return 0


def register(commands: Commands) -> None:
    command = commands.command(
        "processors",
        cmd_processors,
        "run the processors worker (intake gate and review stage) against Kafka",
        long_running=True,
    )
    command.add_argument(
        "--stage",
        choices=("all", "intake", "review"),
        default="all",
        help="run both stages (default), or only the intake gate or only the review stage (one core each)",
    )
