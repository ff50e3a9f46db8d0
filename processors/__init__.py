"""Stream processors (faust): intake validation, HQ live feed, review gating, redaction and routing per tier.

The decisions are plain Python (:mod:`processors.intake`, :mod:`processors.review`, :mod:`processors.policy`,
:mod:`processors.redaction`, :mod:`processors.enrichment`); :class:`Processors` wires them into one faust app.
:func:`bench_processors` measures them against a raw relay, on load the caller composes (:class:`BenchLoad`).
"""

from processors._app import APP_ID, Processors, Stage, check_settings, run_worker
from processors._bench import BenchLoad, bench_processors
from processors._bridge import Bridge, BridgeConfig, bridge_from_settings, load_bridge_config, run_bridge
from processors.reporting import ReportingPolicy, load_reporting_policy

__all__ = [
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
]
