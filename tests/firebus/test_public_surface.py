"""The public surface: what ``producers`` exports, that every package imports cleanly, and that the packages
import each other in one direction only."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

import producers

ROOT = Path(__file__).resolve().parents[2]

EXPECTED_PRODUCERS_ALL = [
    "Audience",
    "BlockingFirebusClient",
    "CaseKind",
    "CaseStatus",
    "CaseUpdate",
    "Classification",
    "Consultation",
    "ConsultationPeriod",
    "Deployment",
    "Directive",
    "Draft",
    "FirePlace",
    "FireReport",
    "FireStatus",
    "FirebusClient",
    "IssuingLevel",
    "MessageKind",
    "Receipt",
    "Resource",
    "ResourceKind",
    "ResourceStatus",
    "ReviewDesk",
    "RiskWarning",
    "SeasonSimulator",
    "Severity",
    "SignalColour",
    "SimulationReport",
    "Suspect",
    "TrafficControl",
    "TrafficMeasure",
    "Urgency",
    "WorkCategory",
    "WorkUpdate",
    "draft_from_mapping",
    "fold_items",
    "load_draft",
    "publish_season",
    "simulated_events",
]


def test_producers_all_is_sorted():
    """producers.__all__ is kept in sorted order."""
    assert producers.__all__ == sorted(producers.__all__)


def test_producers_all_is_the_expected_list():
    """producers.__all__ is exactly the agreed public names, without duplicates."""
    assert producers.__all__ == EXPECTED_PRODUCERS_ALL
    assert len(set(producers.__all__)) == len(producers.__all__)


@pytest.mark.parametrize("name", EXPECTED_PRODUCERS_ALL)
def test_every_exported_name_is_importable(name: str):
    """Each name in producers.__all__ can be imported from the producers package."""
    namespace: dict[str, object] = {}
    exec(f"from producers import {name}", namespace)  # noqa: S102  (the import statement itself is under test)
    assert namespace[name] is getattr(producers, name)


def test_star_import_gives_exactly_all():
    """``from producers import *`` binds exactly the names in __all__."""
    namespace: dict[str, object] = {}
    exec("from producers import *", namespace)  # noqa: S102
    assert sorted(name for name in namespace if name != "__builtins__") == sorted(EXPECTED_PRODUCERS_ALL)


@pytest.mark.parametrize("name", ["FireReport", "Resource", "WorkUpdate", "CaseUpdate"])
def test_body_classes_are_the_event_models(name: str):
    """The body classes exported by producers are the very classes of firebus.events."""
    events = importlib.import_module("firebus.events")
    assert getattr(producers, name) is getattr(events, name)


@pytest.mark.parametrize("package", ["producers", "processors", "consumers", "firebus", "schemas"])
def test_package_imports(package: str):
    """Each top-level package imports without error."""
    assert importlib.import_module(package).__name__ == package


@pytest.mark.parametrize(
    "module",
    sorted(info.name for info in pkgutil.iter_modules(importlib.import_module("firebus").__path__, "firebus.")),
)
def test_every_firebus_module_imports(module: str):
    """Every module of the firebus core package imports without error."""
    assert importlib.import_module(module).__name__ == module


def _imported_packages(path: Path) -> set[str]:
    """The top-level package of every module ``path`` imports (relative imports stay inside its own package)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name.partition(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.partition(".")[0])
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) in (
            "import_module",
            "__import__",
        ):
            found.update(
                arg.value.partition(".")[0]
                for arg in node.args[:1]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str)
            )
    return found


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [("producers", {"processors", "consumers"}), ("processors", {"consumers"})],
)
def test_data_flows_one_way(package: str, forbidden: set[str]):
    """Data flows one way — producers → topics → processors → topics → consumers — and so do imports: no module
    of ``producers`` imports ``processors`` or ``consumers``, and no module of ``processors`` imports ``consumers``.
    What two of them share belongs in ``firebus``."""
    sources = sorted((ROOT / package).rglob("*.py"))
    assert sources, f"no modules found under {package}/"
    offending = {
        f"{path.relative_to(ROOT)} imports {name}" for path in sources for name in _imported_packages(path) & forbidden
    }
    assert not offending, sorted(offending)


def test_moved_names_are_not_re_exported():
    """``reviewer_may_decide`` lives in :mod:`firebus.county` and ``SAMPLE_POLICY`` in :mod:`firebus.settings` only."""
    policy = importlib.import_module("processors.policy")
    assert not hasattr(policy, "reviewer_may_decide")
    assert not hasattr(policy, "SAMPLE_POLICY")
    assert not hasattr(importlib.import_module("processors.redaction"), "field_paths")
