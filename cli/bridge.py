"""``firebus bridge``: this level's bus joined to the bus of the level above (the config file's ``[bridge]``)."""

from __future__ import annotations

import argparse

from cli.commands import Commands
from firebus.settings import Settings


async def cmd_bridge(args: argparse.Namespace, settings: Settings) -> int:
    from processors import run_bridge

    await run_bridge(settings)
    return 0


def register(commands: Commands) -> None:
    commands.command(
        "bridge",
        cmd_bridge,
        "report released fires up to the level above and bring its releases down (the config's [bridge])",
        long_running=True,
    )
