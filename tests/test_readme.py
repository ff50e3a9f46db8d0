"""The README stays the configuration reference and keeps its two set-up commands."""

from __future__ import annotations

from pathlib import Path

import pytest

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
