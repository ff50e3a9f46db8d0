"""The sample Grafana dashboard (deploy/grafana/firebus-dashboard.json) queries only metrics firebus defines, and
shows every one of them."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prometheus_client.metrics import MetricWrapperBase

from firebus import metrics

DASHBOARD = Path(__file__).resolve().parents[1] / "deploy" / "grafana" / "firebus-dashboard.json"
SAMPLE_SUFFIXES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_count", "_sum")}
"""The series names a query may use, per metric type (the exposition's sample names)."""


def queries(node: Any) -> Iterator[str]:
    """Every PromQL expression of the dashboard, in panels and rows at any depth."""
    if isinstance(node, dict):
        if isinstance(node.get("expr"), str):
            yield node["expr"]
        for child in node.values():
            yield from queries(child)
    elif isinstance(node, list):
        for child in node:
            yield from queries(child)


def series_of(metric: MetricWrapperBase) -> set[str]:
    return {metric._name + suffix for suffix in SAMPLE_SUFFIXES[str(metric._type)]}


def test_the_dashboard_uses_only_defined_metrics_and_shows_them_all() -> None:
    """Each series a panel queries is a sample of a metric in firebus/metrics.py, and each metric there is on a panel:
    renaming a metric without the dashboard (or the other way round) fails here."""
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    expressions = list(queries(dashboard["panels"]))
    assert expressions
    used = {name for expression in expressions for name in re.findall(r"\bfirebus_[a-z0-9_]+", expression)}
    defined = {
        name: series_of(metric) for name, metric in vars(metrics).items() if isinstance(metric, MetricWrapperBase)
    }
    known = set().union(*defined.values())
    assert used - known == set(), "queried but not defined in firebus/metrics.py"
    assert {name for name, names in defined.items() if not names & used} == set(), "defined but on no panel"


def test_every_panel_reads_the_dashboard_prometheus_input() -> None:
    """Importing the dashboard asks for one Prometheus data source, and every panel and query reads that one."""
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert [entry["name"] for entry in dashboard["__inputs"]] == ["DS_PROMETHEUS"]
    panels = [panel for panel in dashboard["panels"] if panel["type"] != "row"]
    assert panels
    for panel in panels:
        assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
        assert all(target["datasource"]["uid"] == "${DS_PROMETHEUS}" for target in panel["targets"]), panel["title"]
