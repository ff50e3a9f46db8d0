"""The public surface: what ``producers`` exports, and that every package imports cleanly."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import producers

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
    "RiskWarning",
    "Severity",
    "SignalColour",
    "Suspect",
    "TrafficControl",
    "TrafficMeasure",
    "Urgency",
    "WorkCategory",
    "WorkUpdate",
    "draft_from_mapping",
    "load_draft",
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
