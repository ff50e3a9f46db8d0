"""The health core: readiness, the backlog a consumer must catch up with, the health server on a real port, and the
metrics module's naming rules."""

from __future__ import annotations

import ast
import inspect
import socket
from pathlib import Path

import pytest
from aiohttp import web
from aiokafka import TopicPartition
from prometheus_client import REGISTRY
from prometheus_client.metrics import MetricWrapperBase

from firebus import metrics
from firebus.errors import ConfigurationError
from firebus.health import Backlog, HealthServer, Readiness, measure_consumer, readiness_of
from tests.health import get, get_json, scrape, value

ROOT = Path(__file__).resolve().parents[2]
A, B = ("firebus.intake.fire_report", 0), ("firebus.intake.fire_report", 1)


# --- readiness ---------------------------------------------------------------------------------------------------


def test_readiness_starts_not_ready_and_says_why_in_one_short_line() -> None:
    """A stage is not ready until it says so; its reason is one line of at most 200 characters; the gauge follows."""
    stage = Readiness("test.readiness")
    assert (stage.is_ready, stage.reason) == (False, "starting")
    assert REGISTRY.get_sample_value("firebus_stage_ready", {"stage": "test.readiness"}) == 0
    stage.ready()
    assert (stage.is_ready, stage.reason) == (True, None)
    assert REGISTRY.get_sample_value("firebus_stage_ready", {"stage": "test.readiness"}) == 1
    stage.not_ready("database\nunavailable:   " + "x" * 500)
    assert stage.reason is not None
    assert stage.reason.startswith("database unavailable: x")
    assert "\n" not in stage.reason
    assert len(stage.reason) == 200
    assert REGISTRY.get_sample_value("firebus_stage_ready", {"stage": "test.readiness"}) == 0


def test_a_process_is_ready_when_every_stage_is() -> None:
    """The first stage not ready gives the reason, with how many more are waiting."""
    gate, review, other = Readiness("gate"), Readiness("review"), Readiness("other")
    gate.ready()
    review.not_ready("catching up")
    assert readiness_of([gate, review, other]) == (False, "review: catching up (and 1 more)")
    other.ready()
    assert readiness_of([gate, review, other]) == (False, "review: catching up")
    review.ready()
    assert readiness_of([gate, review, other]) == (True, None)


# --- backlog -------------------------------------------------------------------------------------------------------


def test_no_partitions_is_not_caught_up() -> None:
    """Before the group gives it partitions (or with none to give), a consumer is not ready."""
    backlog = Backlog()
    backlog.assigned([])
    assert not backlog.caught_up
    assert "no partitions assigned" in backlog.why_not({})


def test_the_backlog_is_what_the_partitions_held_at_assignment() -> None:
    """The target is the first high-water mark seen after the assignment; records published later do not move it,
    so a stage under a steady stream is caught up without ever reaching lag 0."""
    backlog = Backlog()
    backlog.assigned([A, B])
    backlog.observe(A, 0, None)  # not fetched yet: nothing known
    assert not backlog.caught_up
    backlog.observe(A, 0, 10)
    backlog.observe(B, 5, 5)
    assert not backlog.caught_up
    assert backlog.remaining({A: 4, B: 5}) == 6
    assert "6 records to go" in backlog.why_not({A: 4, B: 5})
    backlog.observe(A, 10, 25)  # the target stays 10: 15 new records since do not count
    assert backlog.caught_up
    backlog.observe(A, 11, 40)
    assert backlog.caught_up


def test_a_new_assignment_starts_the_catch_up_again_and_the_same_one_does_not() -> None:
    backlog = Backlog()
    backlog.assigned([A])
    backlog.observe(A, 3, 3)
    assert backlog.caught_up
    backlog.assigned([A])
    assert backlog.caught_up
    assert backlog.assigned([A, B]) == set()
    assert not backlog.caught_up
    backlog.observe(A, 3, 3)
    backlog.observe(B, 0, 0)
    assert backlog.caught_up
    assert backlog.assigned([B]) == {A}


async def test_the_lag_of_a_partition_gone_to_another_consumer_is_no_longer_reported() -> None:
    """After a rebalance takes a partition away, its lag series goes: its new owner reports it, and a stale figure
    would be added to the owner's in every sum over the group."""

    class Consumer:
        def __init__(self, assignment: set[TopicPartition]) -> None:
            self.assigned = assignment

        def assignment(self) -> set[TopicPartition]:
            return self.assigned

        async def position(self, tp: TopicPartition) -> int:
            return 7

        def highwater(self, tp: TopicPartition) -> int:
            return 10

    group, stage = "test-lag-group", Readiness("test.lag")
    consumer, backlog = Consumer({TopicPartition(*A), TopicPartition(*B)}), Backlog()
    await measure_consumer(consumer, group=group, backlog=backlog, readiness=stage)
    lag = {"group": group, "topic": A[0]}
    assert REGISTRY.get_sample_value("firebus_consumer_lag", {**lag, "partition": "0"}) == 3
    assert REGISTRY.get_sample_value("firebus_consumer_lag", {**lag, "partition": "1"}) == 3
    assert stage.reason == "catching up with the backlog at assignment (6 records to go)"
    consumer.assigned = {TopicPartition(*B)}
    await measure_consumer(consumer, group=group, backlog=backlog, readiness=stage)
    assert REGISTRY.get_sample_value("firebus_consumer_lag", {**lag, "partition": "0"}) is None
    assert REGISTRY.get_sample_value("firebus_consumer_lag", {**lag, "partition": "1"}) == 3


# --- the server ----------------------------------------------------------------------------------------------------


async def test_the_health_server_answers_liveness_readiness_and_metrics() -> None:
    """/healthz is up and nothing else; /readyz 503 with the reason until ready, then 200; /metrics is Prometheus text
    with the stage's readiness gauge."""
    stage = Readiness("test.server")
    server = HealthServer(host="127.0.0.1", port=0, setting="sinks_health_port", stages=[stage])
    await server.start()
    try:
        assert await get_json(f"{server.url}/healthz") == (200, {"status": "up"})
        assert await get_json(f"{server.url}/readyz") == (503, {"ready": False, "reason": "test.server: starting"})
        assert value(await scrape(server.url), "firebus_stage_ready", stage="test.server") == 0
        stage.ready()
        assert await get_json(f"{server.url}/readyz") == (200, {"ready": True})
        assert value(await scrape(server.url), "firebus_stage_ready", stage="test.server") == 1
        assert (await get(f"{server.url}/stats"))[0] == 404
    finally:
        await server.close()
    assert (await get(f"{server.url}/healthz"))[0] == 0


async def test_a_process_may_serve_more_paths_on_its_health_port() -> None:
    """The supervisor of `firebus up` serves /stages beside /healthz on its port: extra GET routes are served."""

    async def stages(request: web.Request) -> web.Response:
        return web.json_response([{"stage": "processors", "state": "running"}])

    server = HealthServer(host="127.0.0.1", port=0, setting="supervisor_port", routes={"/stages": stages})
    await server.start()
    try:
        assert await get_json(f"{server.url}/stages") == (200, [{"stage": "processors", "state": "running"}])
        assert await get_json(f"{server.url}/healthz") == (200, {"status": "up"})
    finally:
        await server.close()


async def test_a_port_in_use_is_one_configuration_error_line_and_a_closed_server_frees_it() -> None:
    """Binding a port another socket listens on fails at once, naming the port and the setting to change; after
    close, the port can be bound again."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        taken = HealthServer(host="127.0.0.1", port=port, setting="processors_health_port")
        with pytest.raises(ConfigurationError) as raised:
            taken.bind()
    message = str(raised.value)
    assert "\n" not in message
    assert f"127.0.0.1:{port} is already in use" in message
    assert "FIREBUS_PROCESSORS_HEALTH_PORT" in message
    server = HealthServer(host="127.0.0.1", port=0, setting="processors_health_port")
    await server.start()
    port = server.port
    await server.close()
    again = HealthServer(host="127.0.0.1", port=port, setting="processors_health_port").bind()
    await again.close()


# --- the metrics module --------------------------------------------------------------------------------------------


def defined_metrics() -> dict[str, MetricWrapperBase]:
    return {name: found for name, found in vars(metrics).items() if isinstance(found, MetricWrapperBase)}


def test_every_metric_is_a_firebus_one_exported_and_its_labels_documented() -> None:
    """Each metric is named firebus_…, listed in __all__, and each of its labels is described in the module's
    docstring (label values must stay bounded: the docstring says what they are)."""
    documented = inspect.getdoc(metrics) or ""
    labels_section = documented.split("Labels used below:", 1)[1]
    described = {line.split()[0] for line in labels_section.splitlines() if line.startswith("    ") and line.strip()}
    found = defined_metrics()
    assert found
    for name, metric in found.items():
        assert metric._name.startswith("firebus_"), name
        assert name in metrics.__all__
        for label in metric._labelnames:
            assert label in described, f"{metric._name}: label {label} is not described"


def test_metrics_are_defined_only_in_the_metrics_module() -> None:
    """No other module creates a Prometheus metric: they all count through firebus.metrics."""
    kinds = {"Counter", "Gauge", "Histogram", "Summary", "Info", "Enum"}
    for package in ("firebus", "producers", "processors", "consumers", "cli"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if path == ROOT / "firebus" / "metrics.py":
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("prometheus_client"):
                    imported = {alias.name for alias in node.names}
                    assert not imported & kinds, f"{path.relative_to(ROOT)} defines metrics: {imported & kinds}"
