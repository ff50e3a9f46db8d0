"""The public surface: each room's ``__init__`` exports a deliberate list of names, every one of them the room's own
(or the core's), and nothing leaks past it. Which package may import which is tests/test_layers.py."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import types

import pytest

import producers

EXPECTED_ALL: dict[str, list[str]] = {
    "producers": [
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
        "UnitClients",
        "Urgency",
        "WorkCategory",
        "WorkUpdate",
        "draft_from_mapping",
        "draft_json_schemas",
        "fold_items",
        "load_draft",
        "publish_season",
        "simulated_events",
    ],
    "processors": [
        "APP_ID",
        "BenchLoad",
        "Bridge",
        "BridgeConfig",
        "Processors",
        "ReportingPolicy",
        "Stage",
        "bench_processors",
        "bridge_from_settings",
        "check_settings",
        "load_bridge_config",
        "load_reporting_policy",
        "run_bridge",
        "run_worker",
    ],
    "consumers": [
        "Delivery",
        "Outage",
        "Sink",
        "SinkRunner",
        "SinkState",
        "SinkStats",
        "SinkSupervisor",
        "restart_delay",
    ],
    "consumers.archive": [
        "ARCHIVED_TOPICS",
        "MIGRATIONS",
        "ArchiveSink",
        "AuditRow",
        "AvroArchive",
        "Migration",
        "ReleaseRow",
        "ReplayReport",
        "apply_migrations",
        "archive_files",
        "archived_records",
        "audit_row",
        "file_name",
        "migrate_archive",
        "read_blocks",
        "release_row",
        "replay_files",
        "replay_topics",
    ],
    "consumers.sms": [
        "Addressed",
        "Directory",
        "Gateway",
        "KannelGateway",
        "Ledger",
        "Message",
        "MessageStatus",
        "PartStatus",
        "QuietHours",
        "RateLimiter",
        "Recipient",
        "SmsSink",
        "Texts",
        "TokenBucket",
        "concatenation_udh",
        "fit",
        "is_urgent",
        "load_directory",
        "masked",
        "receives",
        "segment",
        "units",
    ],
    "consumers.portal": [
        "Account",
        "Api",
        "ApiStore",
        "Area",
        "Board",
        "ConsoleLoad",
        "Credential",
        "DecisionDesk",
        "Directory",
        "MemoryDirectory",
        "Notice",
        "Portal",
        "PortalState",
        "PostgresDirectory",
        "RequestBudget",
        "Role",
        "Session",
        "SessionCodec",
        "Thread",
        "UnitPublisher",
        "add_account",
        "atom_feed",
        "bench_console",
        "bench_console_latency",
        "cap_alert",
        "change_password",
        "create_app",
        "hash_password",
        "load_accounts",
        "openapi_document",
        "openapi_json",
        "revoke_sessions",
        "seed_demo_accounts",
        "serve",
        "set_disabled",
        "tier_of",
    ],
    "consumers.analytics": [
        "CHARTS",
        "AuditFact",
        "Facts",
        "MonthlyReport",
        "ReleaseFact",
        "ReplayBench",
        "Statistics",
        "audit_fact",
        "bench_replay",
        "compute",
        "event_time",
        "from_archive",
        "from_files",
        "from_topics",
        "merged",
        "month_window",
        "monthly_report",
        "release_fact",
        "render_tables",
        "replay_topics",
        "within",
        "write_charts",
        "write_csv",
        "write_report",
    ],
    "cli": ["build_parser", "main"],
    "schemas": ["AVRO_DIR"],
}
"""Every public package and the names it exports: changing a room's surface is a deliberate edit here."""

CORE = "firebus"
PUBLIC_PACKAGES = sorted(EXPECTED_ALL)


def _all_modules() -> list[str]:
    names = []
    for package in ("firebus", "schemas", "producers", "processors", "consumers", "cli"):
        root = importlib.import_module(package)
        names.append(package)
        names += [
            info.name for info in pkgutil.walk_packages(root.__path__, f"{package}.") if info.name != "cli.__main__"
        ]
    return sorted(names)


@pytest.mark.parametrize("package", PUBLIC_PACKAGES)
def test_all_is_the_expected_list(package: str) -> None:
    """Each public package exports exactly the agreed names, once each."""
    exported = importlib.import_module(package).__all__
    assert sorted(exported) == sorted(EXPECTED_ALL[package])
    assert len(set(exported)) == len(exported)


@pytest.mark.parametrize("package", PUBLIC_PACKAGES)
def test_star_import_binds_exactly_all(package: str) -> None:
    """``from package import *`` binds every name in __all__ (so each exists) and nothing else."""
    namespace: dict[str, object] = {}
    exec(f"from {package} import *", namespace)  # noqa: S102  (the import statement itself is under test)
    assert sorted(name for name in namespace if name != "__builtins__") == sorted(EXPECTED_ALL[package])


@pytest.mark.parametrize("package", PUBLIC_PACKAGES)
def test_exports_are_the_rooms_own_or_the_cores(package: str) -> None:
    """Every exported class and function is defined in the package's own room or in the core: a room never
    re-exports another room's names, and no export is a module."""
    module = importlib.import_module(package)
    room = package.partition(".")[0]
    foreign = []
    for name in module.__all__:
        value = getattr(module, name)
        assert not isinstance(value, types.ModuleType), f"{package}.{name} is a module"
        if inspect.isclass(value) or inspect.isfunction(value):
            home = value.__module__.partition(".")[0]
            if home not in (room, CORE):
                foreign.append(f"{package}.{name} comes from {value.__module__}")
    assert foreign == []


@pytest.mark.parametrize("package", PUBLIC_PACKAGES)
def test_nothing_public_leaks_past_all(package: str) -> None:
    """The package namespace holds __all__, submodules and private names only: a helper imported into an
    ``__init__`` for its own use must not look like part of the surface."""
    module = importlib.import_module(package)
    leaked = sorted(
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType) and name not in module.__all__
    )
    assert leaked == []


@pytest.mark.parametrize("name", ["FireReport", "Resource", "WorkUpdate", "CaseUpdate"])
def test_body_classes_are_the_event_models(name: str) -> None:
    """The body classes exported by producers are the very classes of firebus.events."""
    events = importlib.import_module("firebus.events")
    assert getattr(producers, name) is getattr(events, name)


@pytest.mark.parametrize("module", _all_modules())
def test_every_module_imports(module: str) -> None:
    """Every module of every package imports without error (``cli.__main__`` runs the command, so not that one)."""
    assert importlib.import_module(module).__name__ == module


def test_moved_names_are_not_re_exported() -> None:
    """Names that moved live in one place only: ``reviewer_may_decide`` in :mod:`firebus.county`, ``SAMPLE_POLICY``
    in :mod:`firebus.settings`, dead letters and audit ids in :mod:`firebus.deadletters`, sink errors in
    :mod:`firebus.errors`."""
    policy = importlib.import_module("processors.policy")
    assert not hasattr(policy, "reviewer_may_decide")
    assert not hasattr(policy, "SAMPLE_POLICY")
    assert not hasattr(importlib.import_module("processors.redaction"), "field_paths")
    consumers = importlib.import_module("consumers")
    assert not hasattr(consumers, "SinkUnavailableError")
    assert not hasattr(consumers, "PoisonRecordError")
    assert not hasattr(importlib.import_module("consumers.sms"), "GatewayError")
