"""Stream processors (faust): intake validation, HQ live feed, review gating, redaction and routing per tier.

The decisions are plain Python (:mod:`processors.intake`, :mod:`processors.review`, :mod:`processors.policy`,
:mod:`processors.redaction`, :mod:`processors.enrichment`); :class:`Processors` wires them into one faust app.
"""

from processors._app import APP_ID, Processors, run_worker

__all__ = ["APP_ID", "Processors", "run_worker"]
