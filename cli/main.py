"""The ``firebus`` parser and entry point. Every failure prints one line ``firebus: error: ...`` and exits 1."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from pydantic import ValidationError

from cli import (
    accounts,
    api_keys,
    bench,
    bridge,
    broker,
    portal,
    processors,
    publishing,
    review,
    schemas,
    simulate,
    sinks,
    stats,
    status,
    topics,
)
from cli.commands import EXIT_FAILURE, EXIT_INTERRUPTED, Commands, Handler
from firebus.errors import ConfigurationError, FirebusError
from firebus.logs import KafkaNoise, configure_logging
from firebus.settings import Settings

GROUPS: tuple[Callable[[Commands], None], ...] = (
    broker.register,
    status.register,
    topics.register,
    publishing.register,
    simulate.register,
    review.register,
    processors.register,
    bridge.register,
    sinks.register,
    portal.register,
    accounts.register,
    api_keys.register,
    stats.register,
    bench.register,
    schemas.register,
)
"""The command groups, in the order ``firebus --help`` lists them: running it, publishing, reviewing, the stages,
then the analysts' and maintainers' tools."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="firebus", description="County fire-prevention information-sharing bus.")
    parser.add_argument("--config", type=Path, help="TOML config file (default: $FIREBUS_CONFIG or the sample county)")
    commands = Commands(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    for register in GROUPS:
        register(commands)
    return parser


def load_settings(args: argparse.Namespace) -> Settings:
    try:
        return Settings(config=args.config) if args.config else Settings()
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ConfigurationError(f"settings: {where}: {first['msg']}") from exc


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(args)
        long_running: bool = args.long_running
        kafka_noise = KafkaNoise.RATE_LIMITED if long_running else KafkaNoise.QUIET
        bursts = configure_logging(log_format=settings.log_format, level=settings.log_level, kafka_noise=kafka_noise)
        if bursts is not None:
            bursts.watch()
        handler: Handler = args.handler
        outcome = handler(args, settings)
        return outcome if isinstance(outcome, int) else asyncio.run(outcome)
    except FirebusError as exc:
        sys.stderr.write(f"firebus: error: {exc}\n")
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
