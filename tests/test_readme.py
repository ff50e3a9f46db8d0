"""The README stays the configuration and command reference and keeps its two set-up commands."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from cli import build_parser
from firebus.settings import Settings

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted(Settings.model_fields), ids=str)
def test_every_setting_is_documented(name: str) -> None:
    """Each setting appears in the README's configuration table with its environment variable."""
    assert f"| `{name}` | `FIREBUS_{name.upper()}` |" in README


def test_the_two_set_up_commands_are_there() -> None:
    """The run command and the test command (which .ci/run calls) are spelled in the README."""
    assert "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/firebus up" in README
    assert "sh tests/run.sh" in README
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text(encoding="utf-8")
    assert "sh tests/run.sh" in ci


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def test_the_command_table_lists_every_command_and_action() -> None:
    """Each `firebus` command has a row in the README's command table, and each action of a command group (`topics
    list`, `review approve` …) and each ``--json`` option is named in one of that command's rows."""
    rows = [line for line in README.splitlines() if line.startswith("| `firebus ")]
    for name, command in _subcommands(build_parser()).items():
        own = " ".join(
            row.split(" | ")[0] for row in rows if row.startswith((f"| `firebus {name} ", f"| `firebus {name}`"))
        )
        assert own, f"no row for firebus {name}"
        for action, sub in _subcommands(command).items():
            assert re.search(rf"\b{action}\b", own), f"firebus {name} {action}"
            if "--json" in sub._option_string_actions:
                assert "--json" in own, f"firebus {name} {action} --json"
