"""Every Prometheus metric firebus exports, defined once (the standard ``prometheus_client`` default registry).

Other code only counts: ``metrics.EVENTS_IN.labels(stage=..., topic=...).inc(n)``. Each process serves what it
counted on ``/metrics`` of its health port (:mod:`firebus.health`), the portal on its own port; the
``process_*`` and ``python_*`` metrics of the client library come with it. Label values are bounded: stages,
registered topic names, partitions, enum values, sink names and route templates — never ids or raw paths.

Labels used below:

    stage       who counts: ``processors.gate``, ``processors.review``, ``consumers.<sink>``; for dead letters the
                ``stage`` field the dead letter carries (``processors.intake`` for what the intake checks refuse);
                for :data:`STAGE_RESTARTS` the stage ``firebus up`` supervises (``processors``, ``sinks``,
                ``portal``, ``broker``)
    topic       a registered topic name (firebus/topics.py)
    reason      a dead letter's ``reason_code`` (:class:`~firebus.records.DeadLetterReason`)
    group       a Kafka consumer group (``firebus-intake``, ``firebus-processors``, ``firebus-sink-<name>``)
    partition   a partition number, as text
    sink        a sink's name (``archive``, ``archive-files``, ``sms``)
    step        what a sink retried: ``deliver`` (one record) or ``flush`` (the batch)
    outcome     what became of one SMS part: ``sent``, ``refused`` (for good, by the gateway), ``uncertain`` (sent,
                no answer: never sent again)
    route       the route template that answered (``/notices/{thread_id}``), ``unmatched`` for none
    method      the HTTP method
    status      the HTTP status code, as text
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterable

from prometheus_client import Counter, Gauge, Histogram

EVENTS_IN = Counter(
    "firebus_events_in_total",
    "Records a stage consumed, by stage and source topic.",
    ["stage", "topic"],
)
EVENTS_OUT = Counter(
    "firebus_events_out_total",
    "Records a stage produced, by stage and destination topic (dead letters and audit records included).",
    ["stage", "topic"],
)
DEAD_LETTERS = Counter(
    "firebus_dead_letters_total",
    "Records a stage dead-lettered, by stage and reason code.",
    ["stage", "reason"],
)
REVIEW_QUEUE_DEPTH = Gauge(
    "firebus_review_queue_depth",
    "Open review items of the partitions this processors worker owns, by status (pending, releasing); set at each "
    "deadline tick (review_tick_s). Sum over workers for the county's queue.",
    ["status"],
)
REVIEW_OLDEST_PENDING_AGE = Gauge(
    "firebus_review_oldest_pending_age_seconds",
    "Age of the oldest pending review item of this worker's partitions (0 when none is pending); set at each tick.",
)
REVIEW_OVERDUE = Gauge(
    "firebus_review_overdue",
    "Pending review items of this worker's partitions past their deadline; set at each deadline tick.",
)
CONSUMER_LAG = Gauge(
    "firebus_consumer_lag",
    "Records not yet handled on a partition: its high-water mark minus the group's next offset to handle.",
    ["group", "topic", "partition"],
)
SINK_DELIVERIES = Counter(
    "firebus_sink_deliveries_total",
    "Records a sink applied.",
    ["sink"],
)
SINK_RETRIES = Counter(
    "firebus_sink_retries_total",
    "Retries of a sink whose outside system was unavailable, by step (deliver or flush).",
    ["sink", "step"],
)
SMS_PARTS = Counter(
    "firebus_sms_parts_total",
    "SMS parts handed to the gateway, by outcome: sent, refused (for good) or uncertain (no answer; never resent).",
    ["outcome"],
)
HTTP_REQUEST_DURATION = Histogram(
    "firebus_http_request_duration_seconds",
    "Time from a portal request's arrival to its response's start (streams: until the stream opens), by route "
    "template, method and status.",
    ["route", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
STAGE_READY = Gauge(
    "firebus_stage_ready",
    "1 when the stage is ready (its /readyz answers 200), else 0.",
    ["stage"],
)
STAGE_RESTARTS = Counter(
    "firebus_stage_restarts_total",
    "Restarts of a stage by the supervisor of `firebus up`.",
    ["stage"],
)


def count_by_topic(counter: Counter, stage: str, topics: Iterable[str]) -> None:
    """Count a batch's records per topic with one increment each (a label lookup per record would cost more than
    the rest of the bookkeeping on the processors' hot path)."""
    for topic, count in Tally(topics).items():
        counter.labels(stage=stage, topic=topic).inc(count)


__all__ = [
    "CONSUMER_LAG",
    "DEAD_LETTERS",
    "EVENTS_IN",
    "EVENTS_OUT",
    "HTTP_REQUEST_DURATION",
    "REVIEW_OLDEST_PENDING_AGE",
    "REVIEW_OVERDUE",
    "REVIEW_QUEUE_DEPTH",
    "SINK_DELIVERIES",
    "SINK_RETRIES",
    "SMS_PARTS",
    "STAGE_READY",
    "STAGE_RESTARTS",
    "count_by_topic",
]
