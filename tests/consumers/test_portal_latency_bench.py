"""``firebus bench console``: the publish → HQ console latency benchmark runs end to end and prints its figures
(no timing is asserted: benchmarks print, tests check that they run)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from consumers.portal.latency import Latencies, percentile

ROOT = Path(__file__).resolve().parents[2]
FIGURES = re.compile(
    r"^  (HQ live topic \(publish → record\)|portal SSE \(publish → sent\)|HQ console \(publish → on screen\))"
    r"\s+p50 +[\d.]+ ms  p95 +[\d.]+ ms  "
    r"p99 +[\d.]+ ms  max +[\d.]+ ms  \(n=(\d+), missing (\d+)\)$",
    re.MULTILINE,
)


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([1.0], 99, 1.0),
        ([1.0, 2.0], 50, 1.0),
        ([float(n) for n in range(1, 101)], 99, 99.0),
        ([1.0, 2.0, 3.0], 95, 3.0),
    ],
)
def test_percentile_is_nearest_rank(values: list[float], q: float, expected: float) -> None:
    assert percentile(values, q) == expected


def test_a_line_counts_what_never_arrived() -> None:
    assert Latencies("x").line(3).endswith("no event seen (n=0, missing 3)")


def test_bench_console_prints_the_latency_lines(tmp_path: Path) -> None:
    """A few seconds at a low rate on a fresh embedded broker, with the processors, the portal, Chromium and the
    demo season: the command succeeds and prints the topic's, the portal stream's and the screen's percentile lines."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("FIREBUS_")}
    env["FIREBUS_HOME"] = str(tmp_path)
    env["FIREBUS_LOG_LEVEL"] = "warning"
    done = subprocess.run(
        [sys.executable, "-m", "cli", "bench", "console", "--rate", "2", "--seconds", "3"],
        check=False,
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "console latency: 6 fire reports at 2/s" in done.stdout
    lines = FIGURES.findall(done.stdout)
    assert [name for name, _, _ in lines] == [
        "HQ live topic (publish → record)",
        "portal SSE (publish → sent)",
        "HQ console (publish → on screen)",
    ]
    assert all(int(n) + int(missing) == 6 for _, n, missing in lines)
