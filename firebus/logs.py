"""structlog set-up: JSON lines when not on a terminal, readable lines on one; secrets never printed.

Log an event name plus key/values: ``log.info("event_published", **event.log_context(), topic=...)`` — every line
about an event carries its ``event_id`` and ``trace_id``.

The Kafka client library (aiokafka) logs an error for every connection attempt, metadata refresh and fetch that fails:
about 5,000 lines in 40 seconds of a broker outage, per process. Its lines never reach a one-shot command's output
(:attr:`KafkaNoise.QUIET`: the command's own ``firebus: error:`` line says what failed), and a long-running process
(:attr:`KafkaNoise.RATE_LIMITED`) logs one warning when they start and one, with their count, when they stop.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, MutableMapping
from enum import StrEnum
from typing import Any, TextIO

import structlog

from firebus.settings import LogFormat

KAFKA_LIBRARY_LOGGER = "aiokafka"

_SECRET_MARKERS = ("password", "secret", "private_key", "token")


def _mask_secrets(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event_dict):
        if any(marker in key.lower() for marker in _SECRET_MARKERS):
            event_dict[key] = "***"
    return event_dict


class _CurrentStderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a line is written, not when logging was configured: test runners and
    tools replace (and close) it, and a handler holding the old one fails on every line after that."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def _current_stderr_logger(*_args: Any) -> structlog.PrintLogger:
    return structlog.PrintLogger(sys.stderr)


class KafkaNoise(StrEnum):
    """What becomes of the Kafka client library's log lines."""

    QUIET = "quiet"
    """Kept out (shown only at log level debug): a one-shot command reports its own failure in one line."""
    RATE_LIMITED = "rate_limited"
    """One warning when they start, one with their count when they stop: long-running processes."""


class KafkaErrorBursts(logging.Filter):
    """Turns each burst of Kafka client library lines into two: one when it starts, one when it stops.

    A burst is what a broker outage produces: the library's warnings and errors, one after another. Its first line
    is logged as ``kafka_client_errors`` (with the library's message); the rest are counted, not logged; once none
    has come for ``quiet_s`` seconds, ``kafka_client_errors_stopped`` says how many there were, for how long, and
    which. :meth:`settle` notices the quiet: a long-running process calls it every second (:meth:`watch`).
    """

    def __init__(self, *, quiet_s: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.quiet_s = quiet_s
        self._clock = clock
        self._lock = threading.Lock()
        self._started: float | None = None
        self._last = 0.0
        self._counts: Counter[str] = Counter()
        self._log = structlog.get_logger(__name__)

    def filter(self, record: logging.LogRecord) -> bool:
        if not _from_kafka_library(record):
            return True
        now = self._clock()
        with self._lock:
            starting = self._started is None
            if starting:
                self._started = now
            else:
                self._counts[str(record.msg)] += 1
            self._last = now
        if starting:
            self._log.warning(
                "kafka_client_errors",
                first=record.getMessage(),
                library_logger=record.name,
                until="logged again, with a count, once they stop",
            )
        return False

    def settle(self) -> None:
        """Say the burst is over if it has been quiet for ``quiet_s``."""
        with self._lock:
            started = self._started
            if started is None or self._clock() - self._last < self.quiet_s:
                return
            counts, self._counts, self._started = self._counts, Counter(), None
            lasted = self._last - started
        self._log.warning(
            "kafka_client_errors_stopped",
            suppressed=sum(counts.values()),
            lasted_s=round(lasted, 1),
            most_common=dict(counts.most_common(3)),
        )

    def watch(self, interval_s: float = 1.0) -> None:
        """Call :meth:`settle` every ``interval_s`` from a daemon thread, for as long as the process runs."""

        def settle_forever() -> None:
            while True:
                time.sleep(interval_s)
                self.settle()

        threading.Thread(target=settle_forever, name="kafka-error-bursts", daemon=True).start()


def _from_kafka_library(record: logging.LogRecord) -> bool:
    return record.name == KAFKA_LIBRARY_LOGGER or record.name.startswith(KAFKA_LIBRARY_LOGGER + ".")


def configure_logging(
    *,
    log_format: LogFormat = LogFormat.AUTO,
    level: str = "info",
    stream: TextIO | None = None,
    kafka_noise: KafkaNoise = KafkaNoise.QUIET,
) -> KafkaErrorBursts | None:
    """Configure structlog, and route stdlib logging (aiokafka, faust) through the same renderer at warning or above.

    Returns the filter that rate-limits the Kafka library's lines when ``kafka_noise`` asks for it; the caller
    starts its :meth:`~KafkaErrorBursts.watch`."""
    output = stream or sys.stderr
    numeric_level = logging.getLevelName(level.upper())
    if not isinstance(numeric_level, int):
        numeric_level = logging.INFO
    as_json = log_format is LogFormat.JSON or (log_format is LogFormat.AUTO and not output.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer(ensure_ascii=False) if as_json else structlog.dev.ConsoleRenderer()
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _mask_secrets,
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=structlog.PrintLoggerFactory(stream) if stream is not None else _current_stderr_logger,
        cache_logger_on_first_use=False,
    )
    # aiokafka and faust log through the standard library: render their lines the same way.
    handler = logging.StreamHandler(stream) if stream is not None else _CurrentStderrHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared, structlog.processors.format_exc_info],
        )
    )
    bursts = None
    if kafka_noise is KafkaNoise.RATE_LIMITED:
        bursts = KafkaErrorBursts()
        handler.addFilter(bursts)
    quiet = kafka_noise is KafkaNoise.QUIET and numeric_level > logging.DEBUG
    logging.getLogger(KAFKA_LIBRARY_LOGGER).setLevel(logging.CRITICAL + 1 if quiet else logging.NOTSET)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(max(numeric_level, logging.WARNING))
    return bursts
