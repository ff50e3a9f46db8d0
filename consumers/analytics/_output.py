"""Statistics out: terminal tables, one CSV file per data frame, and PNG charts (matplotlib, Agg: no display)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from consumers.analytics._statistics import Statistics

TABLES = (
    ("Events by type", "counts_by_type"),
    ("Events by township", "counts_by_township"),
    ("Events by day ({zone}, event time)", "counts_by_day"),
    ("Fire lifecycle, minutes from first report", "lifecycle_summary"),
    ("Review latency by type, seconds (published → decided)", "review_latency_by_type"),
    ("Review latency by reviewer kind, seconds", "review_latency_by_reviewer_kind"),
    ("Delivery latency by sink, seconds (released → delivered)", "delivery_latency_by_sink"),
    ("Rejections and quarantines by reason", "rejections"),
)
"""The summary tables printed to the terminal, in order (per-event frames go to CSV only); ``{zone}`` is the days'."""

CHARTS = (
    "counts_by_type.png",
    "counts_by_day.png",
    "lifecycle.png",
    "review_latency.png",
    "delivery_latency.png",
)


def render_tables(statistics: Statistics) -> str:
    """The summary tables as plain text."""
    parts = []
    for heading, name in TABLES:
        title = heading.format(zone=statistics.zone.key)
        frame: pd.DataFrame = getattr(statistics, name)
        body = "  (none)" if frame.empty else frame.to_string(index=False, na_rep="-")
        parts.append(f"{title}\n{'-' * len(title)}\n{body}\n")
    return "\n".join(parts)


def write_csv(statistics: Statistics, directory: Path) -> list[Path]:
    """One ``<name>.csv`` per data frame; returns the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, frame in statistics.frames().items():
        path = directory / f"{name}.csv"
        frame.to_csv(path, index=False)
        written.append(path)
    return written


def write_charts(statistics: Statistics, directory: Path) -> list[Path]:
    """The PNG charts of :data:`CHARTS`; returns the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    plots = (
        (CHARTS[0], statistics.counts_by_type, "event_type", ["events"], "Events by type", "events"),
        (CHARTS[1], statistics.counts_by_day, "day", ["events"], f"Events by day ({statistics.zone.key})", "events"),
        (CHARTS[2], statistics.lifecycle_summary, "stage", ["p50", "p90"], "Fire lifecycle", "minutes"),
        (CHARTS[3], statistics.review_latency_by_type, "event_type", ["p50", "p90"], "Review latency", "seconds"),
        (CHARTS[4], statistics.delivery_latency_by_sink, "sink", ["p50", "p90"], "Delivery latency", "seconds"),
    )
    written = []
    for file_name, frame, x, ys, title, unit in plots:
        figure = Figure(figsize=(9, 4.5))
        FigureCanvasAgg(figure)  # Agg: no display needed
        axes = figure.subplots()
        if frame.empty:
            axes.text(0.5, 0.5, "no data", ha="center", va="center", transform=axes.transAxes)
        else:
            positions = np.arange(len(frame))
            width = 0.8 / len(ys)
            for index, column in enumerate(ys):
                offset = (index - (len(ys) - 1) / 2) * width
                axes.bar(positions + offset, frame[column].astype(float).fillna(0), width, label=column)
            axes.set_xticks(positions, [str(label) for label in frame[x]], rotation=45 if len(frame) > 6 else 0)
            if len(ys) > 1:
                axes.legend()
        axes.set_title(title)
        axes.set_ylabel(unit)
        figure.tight_layout()
        path = directory / file_name
        figure.savefig(path, dpi=100)
        written.append(path)
    return written
