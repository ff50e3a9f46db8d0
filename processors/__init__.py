"""Stream processors (faust): intake validation, HQ live feed, review gating, redaction and routing per tier.

The decisions are plain Python (:mod:`processors.intake`, :mod:`processors.review`, :mod:`processors.policy`,
:mod:`processors.redaction`, :mod:`processors.enrichment`); :class:`Processors` wires them into one faust app.
:func:`bench_processors` measures them against a raw relay, on load the caller composes (:class:`BenchLoad`).
"""

from processors._app import APP_ID, Processors, Stage, check_settings, run_worker
from processors._bench import BenchLoad, bench_processors

__all__ = ["APP_ID", "BenchLoad", "Processors", "Stage", "bench_processors", "check_settings", "run_worker"]
