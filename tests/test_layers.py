"""Imports follow the one-way flow, in every module of every package, the core and the CLI included.

    core (firebus, schemas)          imports no room and not the CLI
    rooms (producers, processors,    import the core and themselves only: never each other, never the CLI
           consumers)
    cli                              the composition root: the only code that imports the rooms, and only
                                     the names their ``__init__`` exports

Every import counts: module level, inside functions (the CLI imports heavy rooms lazily), under ``TYPE_CHECKING``,
and ``importlib.import_module("...")`` with a literal name.
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE = frozenset({"firebus", "schemas"})
ROOMS = frozenset({"producers", "processors", "consumers"})
CLI = "cli"
PACKAGES = CORE | ROOMS | {CLI}


@dataclass(frozen=True)
class Import:
    """One import in one module: the module it names and the names it takes from it (empty for ``import x``)."""

    where: str
    module: str
    names: tuple[str, ...] = ()

    @property
    def package(self) -> str:
        return self.module.partition(".")[0]


def _module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolved(node: ast.ImportFrom, path: Path, root: Path) -> str:
    """The absolute module a ``from`` import names (relative imports resolved against ``path``'s package)."""
    if node.level == 0:
        return node.module or ""
    package = _module_name(path, root).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def imports_of(path: Path, root: Path = ROOT) -> Iterator[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        where = f"{path.relative_to(root)}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import):
            yield from (Import(where, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            yield Import(where, _resolved(node, path, root), tuple(alias.name for alias in node.names))
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) in (
            "import_module",
            "__import__",
        ):
            for arg in node.args[:1]:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    yield Import(where, arg.value)


def modules_of(package: str) -> list[Path]:
    found = sorted((ROOT / package).rglob("*.py"))
    assert found, f"no modules under {package}/"
    return found


def allowed_packages(package: str) -> frozenset[str]:
    """The first-party packages ``package`` may import."""
    if package in CORE:
        return CORE
    if package in ROOMS:
        return CORE | {package}
    return PACKAGES


def test_every_top_level_package_has_a_layer() -> None:
    """A new top-level package must be placed in a layer here (and shipped by pyproject) before it can be used."""
    on_disk = {path.parent.name for path in ROOT.glob("*/__init__.py")} - {"tests"}
    assert on_disk == PACKAGES


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_imports_flow_one_way(package: str) -> None:
    """The core imports no room and not the CLI; a room imports only the core and itself; only the CLI imports the
    rooms. What two rooms share belongs in the core."""
    allowed = allowed_packages(package)
    offending = [
        f"{found.where} imports {found.module}"
        for path in modules_of(package)
        for found in imports_of(path)
        if found.package in PACKAGES and found.package not in allowed
    ]
    assert offending == []


def test_the_cli_uses_only_what_the_rooms_export() -> None:
    """The CLI imports a room only through a package's ``__init__`` and only names in its ``__all__``: no private
    module (``producers._simulate``), no implementation module (``consumers.portal.app``)."""
    offending = []
    for path in modules_of(CLI):
        for found in imports_of(path):
            if found.package not in ROOMS:
                continue
            if not (ROOT / found.module.replace(".", "/") / "__init__.py").exists():
                offending.append(f"{found.where} imports the module {found.module}, not a package")
                continue
            exported = set(importlib.import_module(found.module).__all__)
            offending += [
                f"{found.where} imports {found.module}.{name}, which is not in its __all__"
                for name in found.names
                if name not in exported
            ]
    assert offending == []


def test_the_rule_sees_imports_inside_functions_and_relative_imports(tmp_path: Path) -> None:
    """The scan is not fooled by an import hidden in a function, under TYPE_CHECKING or spelled relative."""
    package = tmp_path / "consumers"
    package.mkdir()
    (package / "__init__.py").write_text("", encoding="utf-8")
    probe = package / "_probe.py"
    probe.write_text(
        "from typing import TYPE_CHECKING\n"
        "from . import _runner\n"
        "if TYPE_CHECKING:\n    from processors import Processors\n"
        "def f():\n    from producers import ReviewDesk\n    import importlib\n"
        "    return importlib.import_module('cli.main')\n",
        encoding="utf-8",
    )
    found = {(item.module, item.names) for item in imports_of(probe, tmp_path)}
    assert ("consumers", ("_runner",)) in found
    assert ("processors", ("Processors",)) in found
    assert ("producers", ("ReviewDesk",)) in found
    assert ("cli.main", ()) in found
