"""``firebus processors``: the processors worker (faust) against the configured Kafka."""

from __future__ import annotations

import argparse

from cli.commands import Commands, exit_at_once
from firebus.settings import Settings


def cmd_processors(args: argparse.Namespace, settings: Settings) -> int:
    from processors import run_worker

    run_worker(settings, on_broker_lost=exit_at_once)
    return 0


def register(commands: Commands) -> None:
    commands.command(
        "processors",
        cmd_processors,
        "run the processors worker (faust) against the configured Kafka",
        long_running=True,
    )
