"""``firebus schemas check|freeze`` (the Avro contracts' versions, frozen and mutually readable) and ``firebus
asyncapi`` (the contracts and the topics as one AsyncAPI document, for teams outside firebus)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cli.commands import Commands, say
from firebus import compatibility
from firebus.asyncapi import asyncapi_yaml
from firebus.errors import ConfigurationError
from firebus.settings import Settings
from schemas import AVRO_DIR


async def cmd_schemas_check(args: argparse.Namespace, settings: Settings) -> int:
    problems = compatibility.check_directory(args.dir)
    if problems:
        raise ConfigurationError(f"{len(problems)} schema problem(s): " + "; ".join(problems))
    say(f"schemas in {args.dir}: every version frozen, every current version reads every earlier one")
    return 0


async def cmd_schemas_freeze(args: argparse.Namespace, settings: Settings) -> int:
    written = compatibility.freeze(args.dir)
    for path in written:
        say(f"froze {path}")
    if not written:
        say("nothing to freeze: every current version is already in history")
    return 0


def cmd_asyncapi(args: argparse.Namespace, settings: Settings) -> int:
    sys.stdout.write(asyncapi_yaml())
    return 0


def register(commands: Commands) -> None:
    schemas = commands.group("schemas", "check or freeze the Avro contracts")
    check = schemas.command(
        "check", cmd_schemas_check, "every version frozen; the current version reads data of every earlier one"
    )
    freeze = schemas.command("freeze", cmd_schemas_freeze, "record new schema versions in schemas/avro/history")
    for action in (check, freeze):
        action.add_argument("--dir", type=Path, default=AVRO_DIR, help="schema directory")
    commands.command("asyncapi", cmd_asyncapi, "print the AsyncAPI 3.0 document of every topic (docs/asyncapi.yaml)")
