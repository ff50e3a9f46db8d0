"""Analytics: statistics over the cleared tier topics and the audit topic, or over the archive.

Pure statistics over normalised facts (:func:`compute` → :class:`Statistics`, a dataclass of pandas data frames),
the monthly report to the level above (:func:`monthly_report`, :func:`write_report`: ``.xlsx`` and CSV),
three sources that yield the same facts (:func:`from_topics`, :func:`from_archive`, :func:`from_files`), the
outputs (terminal tables, CSV files, PNG charts), and :func:`bench_replay`, which measures a replay. For a notebook::

    facts = await from_topics(settings, start=datetime(2026, 3, 1, tzinfo=UTC))
    stats = compute(facts, zone=county.zone)
    stats.review_latency_by_type
"""

from consumers.analytics._bench import ReplayBench, bench_replay
from consumers.analytics._facts import (
    AuditFact,
    Facts,
    ReleaseFact,
    audit_fact,
    event_time,
    merged,
    release_fact,
    within,
)
from consumers.analytics._monthly import MonthlyReport, month_window, monthly_report, write_report
from consumers.analytics._output import CHARTS, render_tables, write_charts, write_csv
from consumers.analytics._sources import from_archive, from_files, from_topics, replay_topics
from consumers.analytics._statistics import Statistics, compute

__all__ = [
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
]
