"""How the command groups declare their commands, print, and start ``firebus`` itself as a child process."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Coroutine
from typing import Any, NoReturn

from firebus.errors import FirebusError
from firebus.settings import Settings

EXIT_FAILURE = 1
"""Exit code of a command that failed: bad input, an unreachable broker, a record no client can read."""
EXIT_INTERRUPTED = 130

Handler = Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int] | int]
"""What runs a command: its parsed arguments and the settings in, the exit code out (async or not)."""


class Commands:
    """The sub-commands at one level of the command line: commands with their handlers, and groups of actions."""

    def __init__(self, subparsers: argparse._SubParsersAction[argparse.ArgumentParser], *, prefix: str = "") -> None:
        self._subparsers = subparsers
        self._prefix = prefix

    def command(
        self, name: str, handler: Handler, help_text: str, *, long_running: bool = False
    ) -> argparse.ArgumentParser:
        """Add ``name``, run by ``handler``; returns its parser for the command's own arguments.

        ``long_running``: a process that runs until stopped (a stage, a broker, a tail), whose log rate-limits the
        Kafka library's lines; a one-shot command keeps them out of its output (see firebus.logs.KafkaNoise)."""
        parser = self._subparsers.add_parser(name, help=help_text, description=help_text)
        parser.set_defaults(handler=handler, long_running=long_running)
        return parser

    def group(self, name: str, help_text: str, *, metavar: str = "ACTION") -> Commands:
        """Add ``name`` as a group whose actions (``firebus NAME ACTION``) are added to the returned level."""
        parser = self._subparsers.add_parser(name, help=help_text, description=help_text)
        dest = f"{self._prefix}{name}_command"
        return Commands(parser.add_subparsers(dest=dest, required=True, metavar=metavar), prefix=f"{name}_")


def exit_at_once(error: FirebusError) -> NoReturn:
    """Print the one error line and end the process now: no shutdown handler runs. For a stage whose connections,
    positions and offsets describe a broker that is gone, where a clean shutdown would commit them to the new one."""
    sys.stderr.write(f"firebus: error: {error}\n")
    sys.stderr.flush()
    sys.stdout.flush()
    os._exit(EXIT_FAILURE)


def say(line: str = "") -> None:
    """One line on standard output, at once (an operator or a script may be waiting for it)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def say_json(data: Any, *, pretty: bool = False) -> None:
    """``data`` as one JSON document on standard output (Chinese text as is)."""
    say(json.dumps(data, ensure_ascii=False, indent=2 if pretty else None))


def json_option(parser: argparse.ArgumentParser) -> None:
    """``--json``: print one JSON document for a script instead of the table for a person."""
    parser.add_argument("--json", action="store_true", help="print JSON for scripts instead of a table")


def firebus_command(*args: str) -> list[str]:
    """The command line that runs ``firebus ARGS`` as a child process, with this interpreter."""
    return [sys.executable, "-m", "cli", *args]
