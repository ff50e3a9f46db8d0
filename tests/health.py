"""Reading a firebus process's health endpoints in tests: the JSON answers, and /metrics parsed with
``prometheus_client``'s own text parser (never regexes)."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
"""Every sample of one scrape: (sample name, its labels) -> value."""


async def get(url: str) -> tuple[int, bytes]:
    """Status and body of a GET; status 0 when nothing answers."""

    def fetch() -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310  (loopback)
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()
        except OSError:
            return 0, b""

    return await asyncio.to_thread(fetch)


async def get_json(url: str) -> tuple[int, Any]:
    status, body = await get(url)
    return status, json.loads(body) if status else None


def parse_metrics(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def scrape(base_url: str) -> Samples:
    status, body = await get(f"{base_url}/metrics")
    assert status == 200, status
    return parse_metrics(body.decode())


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sample's value; 0 when the process has not counted it yet (a labelled series appears on first use)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of every sample named ``name`` that has ``labels`` among its own (a counter over its other labels)."""
    wanted = set(labels.items())
    return sum(found for (sample, have), found in samples.items() if sample == name and wanted <= have)


def series(samples: Samples, name: str, **labels: str) -> list[dict[str, str]]:
    """The label sets of every sample named ``name`` that has ``labels`` among its own."""
    wanted = set(labels.items())
    return [dict(found) for sample, found in samples if sample == name and wanted <= found]


def logged(log_path: Path, event: str) -> list[dict[str, Any]]:
    """The JSON log lines of ``event`` (lines may carry a terminal control prefix, faust's)."""
    found = []
    for line in log_path.read_text(errors="replace").splitlines():
        start = line.find("{")
        if start < 0 or f'"{event}"' not in line:
            continue
        try:
            record = json.loads(line[start:])
        except ValueError:
            continue
        if record.get("event") == event:
            found.append(record)
    return found


async def until(check: Callable[[], Awaitable[Any]], what: object, *, within_s: float = 90.0) -> Any:
    """The first truthy result of ``check``, polled; fails naming ``what`` (read at the failure) after ``within_s``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while True:
        result = await check()
        if result:
            return result
        assert loop.time() < deadline, f"never: {what}"
        await asyncio.sleep(0.3)


async def until_ready(base_url: str, what: str) -> None:
    """Wait until ``/readyz`` answers ``200 {"ready": true}``."""

    async def ready() -> bool:
        return (await get_json(f"{base_url}/readyz")) == (200, {"ready": True})

    await until(ready, what)


Growth = tuple[str, float, dict[str, str]]
"""A metric (summed over the series with these labels) and how much it must have grown."""


async def until_grown(
    base_url: str,
    before: Samples,
    wanted: Mapping[str, Growth],
    also: Callable[[Samples], dict[str, bool]] = lambda _now: {},
) -> Samples:
    """The first scrape in which every ``wanted`` metric has grown by its amount since ``before`` and every ``also``
    condition holds; fails naming those that never did."""
    unmet: list[str] = []

    async def grown() -> Samples | None:
        now = await scrape(base_url)
        checks = {
            name: total(now, metric, **labels) - total(before, metric, **labels) >= by
            for name, (metric, by, labels) in wanted.items()
        } | also(now)
        unmet[:] = [name for name, met in checks.items() if not met]
        return None if unmet else now

    samples: Samples = await until(grown, unmet)  # the failure names what is still unmet
    return samples


async def health_url(log_path: Path, process: asyncio.subprocess.Process) -> str:
    """Where the process's health server listens (port 0 binds a free one: the process logs it)."""

    async def served() -> str | None:
        assert process.returncode is None, f"the process exited; its log: {log_path}"
        found = logged(log_path, "health_serving")
        return str(found[0]["url"]) if found else None

    return str(await until(served, f"a health server in {log_path}"))
