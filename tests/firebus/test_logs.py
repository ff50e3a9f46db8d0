"""The Kafka client library's log lines: kept out of one-shot commands, two lines per burst in long-running ones."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from firebus.logs import KafkaErrorBursts, KafkaNoise, configure_logging
from firebus.settings import LogFormat


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    """A stream the logs go to for one test; the global configuration is restored afterwards."""
    stream = io.StringIO()
    root = logging.getLogger()
    handlers = list(root.handlers)
    yield stream
    structlog.reset_defaults()
    root.handlers = handlers
    logging.getLogger("aiokafka").setLevel(logging.NOTSET)


def events(output: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in output.getvalue().splitlines()]


def outage(count: int) -> None:
    """What aiokafka logs while no broker answers, ``count`` times over."""
    for attempt in range(count):
        logging.getLogger("aiokafka.conn").error("Unable connect to node with id %s: %s", 111, f"refused {attempt}")
        logging.getLogger("aiokafka.client").error("Unable to update metadata from %s", [111])


def test_a_burst_of_library_errors_is_one_line_when_it_starts_and_one_with_its_count_when_it_stops(
    log_output: io.StringIO,
) -> None:
    """1,000 aiokafka errors in an outage become one `kafka_client_errors` warning quoting the first, and, once none
    has come for the quiet period, one `kafka_client_errors_stopped` counting the other 999; firebus's own lines and
    other libraries' lines pass untouched throughout, and the next outage is reported again."""
    configure_logging(stream=log_output, log_format=LogFormat.JSON, kafka_noise=KafkaNoise.RATE_LIMITED)
    clock = Clock()
    bursts = KafkaErrorBursts(quiet_s=5.0, clock=clock)
    logging.getLogger().handlers[0].filters = [bursts]

    outage(500)
    structlog.get_logger().warning("review_decided")
    logging.getLogger("faust").warning("faust_line")
    clock.now += 4.9
    bursts.settle()  # not quiet for long enough yet
    outage(1)
    clock.now += 5.0
    bursts.settle()
    bursts.settle()  # said once
    outage(1)

    logged = events(log_output)
    assert [line["event"] for line in logged] == [
        "kafka_client_errors",
        "review_decided",
        "faust_line",
        "kafka_client_errors_stopped",
        "kafka_client_errors",
    ]
    started, stopped = logged[0], logged[3]
    assert started["first"] == "Unable connect to node with id 111: refused 0"
    assert started["level"] == "warning"
    assert stopped["suppressed"] == 1_001
    assert stopped["lasted_s"] == 4.9
    assert stopped["most_common"] == {
        "Unable to update metadata from %s": 501,
        "Unable connect to node with id %s: %s": 500,
    }


def test_a_one_shot_command_keeps_the_library_lines_out(log_output: io.StringIO) -> None:
    """Quiet (the default, for one-shot commands): no aiokafka line at all, while firebus's own lines still show;
    at log level debug the library speaks again."""
    configure_logging(stream=log_output, log_format=LogFormat.JSON)
    outage(3)
    structlog.get_logger().warning("firebus_line")
    assert [line["event"] for line in events(log_output)] == ["firebus_line"]

    debug_output = io.StringIO()
    configure_logging(stream=debug_output, log_format=LogFormat.JSON, level="debug")
    outage(1)
    assert [line["event"] for line in events(debug_output)] == [
        "Unable connect to node with id 111: refused 0",
        "Unable to update metadata from [111]",
    ]
