"""One error tree: every exception class firebus defines is in firebus.errors, drawn in its docstring as it is."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

from firebus import errors
from firebus.errors import (
    FirebusError,
    GatewayRejectedError,
    GatewayUnavailableError,
    GatewayUncertainError,
    PoisonRecordError,
    SinkError,
    SinkUnavailableError,
)

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("firebus", "producers", "processors", "consumers", "cli")
TREE_LINE = re.compile(r"^(?P<indent>[ │├└─]*)(?P<name>[A-Z]\w+)\b(?P<rest>.*)$")


def _error_classes() -> dict[str, type[FirebusError]]:
    return {
        name: value
        for name, value in vars(errors).items()
        if inspect.isclass(value) and issubclass(value, FirebusError) and value.__module__ == errors.__name__
    }


def _drawn_tree() -> dict[str, tuple[str | None, bool]]:
    """Each class drawn in the docstring: its parent in the drawing and whether it is marked ``(retriable)``."""
    drawn: dict[str, tuple[str | None, bool]] = {}
    stack: list[tuple[int, str]] = []
    doc = errors.__doc__ or ""
    for line in doc.splitlines():
        if not line.startswith("    "):
            continue
        match = TREE_LINE.match(line[4:])
        if match is None:
            continue
        depth = len(match["indent"])
        while stack and stack[-1][0] >= depth:
            stack.pop()
        drawn[match["name"]] = (stack[-1][1] if stack else None, "(retriable)" in match["rest"])
        stack.append((depth, match["name"]))
    return drawn


def test_the_docstring_draws_every_error_under_its_real_parent_with_its_retriability() -> None:
    """The drawing is the tree: same classes, same parents, ``(retriable)`` where a class sets ``retriable``."""
    classes = _error_classes()
    drawn = _drawn_tree()
    assert set(drawn) == set(classes)
    for name, (parent, marked_retriable) in drawn.items():
        cls = classes[name]
        expected_parent = None if cls is FirebusError else cls.__bases__[0].__name__
        assert parent == expected_parent, name
        assert marked_retriable == cls.__dict__.get("retriable", False), name


def _exception_classes_outside_the_tree() -> list[str]:
    """Classes deriving from an exception, defined in any module other than firebus/errors.py."""
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if path == ROOT / "firebus" / "errors.py":
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.ClassDef):
                    bases = [ast.unparse(base) for base in node.bases]
                    if any(re.search(r"(Error|Exception|Warning)$", base) for base in bases):
                        found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}({', '.join(bases)})")
    return found


def test_no_module_defines_an_error_of_its_own() -> None:
    """Every error firebus raises on purpose is in the one tree, not in the module that raises it."""
    assert _exception_classes_outside_the_tree() == []


@pytest.mark.parametrize(
    ("error", "retriable"),
    [
        (SinkUnavailableError, True),
        (PoisonRecordError, False),
        (GatewayUnavailableError, True),
        (GatewayRejectedError, False),
        # Re-sending a part that may have been taken could put it on a phone twice.
        (GatewayUncertainError, False),
    ],
)
def test_retriable_is_set_where_the_caller_decides(error: type[FirebusError], retriable: bool) -> None:
    """The sink runner and the SMS sink branch on these: retry, or settle for good."""
    assert error("x").retriable is retriable


def test_sink_errors_share_one_branch() -> None:
    """The sink runner catches SinkError and lets ``retriable`` decide between retrying and dead-lettering."""
    assert issubclass(SinkUnavailableError, SinkError)
    assert issubclass(PoisonRecordError, SinkError)
