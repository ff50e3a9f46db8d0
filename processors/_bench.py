"""``firebus bench processors``: the processors against a raw aiokafka relay on the same broker, in one run.

Throughput: N pre-authorised events (released by policy to the member and HQ tiers) drained by the workers, timed
from their first release to their last, once every worker has joined (a warm-up event per partition goes through
first); the same N payloads, pre-loaded on a topic of the benchmark's own, drained by a plain consume → decode →
encode → produce relay. Latency: fire reports published at a steady rate; each one's time from send to its arrival
on the HQ live topic, and through the relay, read by the same kind of consumer with the same fetch settings. The
relay never reads the processors' intake topics, so the workers sit idle while it is measured.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from firebus.broker import EmbeddedBroker, die_with_parent, free_port
from firebus.codec import Codec
from firebus.events import Audience, Event
from firebus.kafka import client_options, co_partitioned_count, create_topics, producer_options
from firebus.settings import Settings
from firebus.topics import ALL_TOPICS, BENCH_RELAY, BENCH_SOURCE, HQ_LIVE, INTAKE, TIERS, Topic
from processors._sender import partition_for


@dataclass(frozen=True)
class Throughput:
    events: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else float("inf")


@dataclass(frozen=True)
class Latency:
    samples_ms: Sequence[float]

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.samples_ms)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")

    def line(self) -> str:
        return (
            f"p50 {self.percentile(0.5):7.1f} ms  p95 {self.percentile(0.95):7.1f} ms  "
            f"p99 {self.percentile(0.99):7.1f} ms  max {max(self.samples_ms, default=float('nan')):7.1f} ms  "
            f"(n={len(self.samples_ms)}, mean {statistics.fmean(self.samples_ms) if self.samples_ms else 0:.1f} ms)"
        )


def _producer(settings: Settings) -> AIOKafkaProducer:
    return AIOKafkaProducer(**producer_options(settings, client_id="firebus-bench", linger_ms=5))


def _consumer(settings: Settings) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        **client_options(settings, client_id="firebus-bench-reader"),
        group_id=None,
        enable_auto_commit=False,
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )


async def _assign_all(consumer: AIOKafkaConsumer, topic: Topic, *, from_end: bool) -> None:
    await consumer.topics()
    partitions = [TopicPartition(topic.name, p) for p in sorted(consumer.partitions_for_topic(topic.name) or ())]
    consumer.assign(partitions)
    if from_end:
        await consumer.seek_to_end(*partitions)
    else:
        await consumer.seek_to_beginning(*partitions)


EventMaker = Callable[[str | None], Event[Any]]
"""A new signed event on each call, for this incident id (None: none)."""


@dataclass(frozen=True)
class BenchLoad:
    """What the benchmark publishes, and how it starts a processors worker: composed by the caller (the CLI), which
    signs with the client library."""

    routine: EventMaker
    """Events the review policy releases to the member and HQ tiers at once (throughput)."""
    fire: EventMaker
    """Fire reports, which reach the HQ live topic before review (latency)."""
    worker_commands: Sequence[Sequence[str]]
    """The command lines of the processes that make one processors worker: one (both stages), or the intake gate's
    and the review stage's."""


def covering_events(make: EventMaker, partitions: int) -> list[Event[Any]]:
    """Events whose keys land on every one of ``partitions`` partitions."""
    by_partition: dict[int, Event[Any]] = {}
    while len(by_partition) < partitions:
        event = make(None)
        by_partition.setdefault(partition_for(event.partition_key().encode(), partitions), event)
    return list(by_partition.values())


def _destination(event: Event[Any], to: Topic | None) -> str:
    """``to``, or the event's intake topic."""
    return (to or INTAKE[event.header.event_type]).name


async def preload(settings: Settings, codec: Codec, events: Sequence[Event[Any]], *, to: Topic | None = None) -> None:
    producer = _producer(settings)
    await producer.start()
    try:
        for event in events:
            await producer.send(_destination(event, to), codec.encode(event), key=event.partition_key().encode())
        await producer.flush()
    finally:
        await producer.stop()


async def relay(settings: Settings, codec: Codec, source: Topic, *, stop: asyncio.Event, from_end: bool) -> int:
    """The baseline: consume, decode, encode, produce — nothing else."""
    consumer, producer = _consumer(settings), _producer(settings)
    await consumer.start()
    await producer.start()
    relayed = 0
    try:
        await _assign_all(consumer, source, from_end=from_end)
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=200, max_records=2000)
            for messages in batches.values():
                for message in messages:
                    event = codec.decode(message.value)
                    await producer.send(BENCH_RELAY.name, codec.encode(event), key=message.key)
                    relayed += 1
        await producer.flush()
        return relayed
    finally:
        await consumer.stop()
        await producer.stop()


async def drain_time(
    settings: Settings, topic: Topic, expected: int, *, ignored: frozenset[bytes] = frozenset()
) -> Throughput:
    """Seconds from the first to the last of ``expected`` distinct keys (not ``ignored``) arriving on ``topic``.

    Every benchmark event has a key of its own, so counting keys needs no decoding on the measuring side.
    """
    consumer = _consumer(settings)
    await consumer.start()
    seen: set[bytes] = set()
    first = last = 0.0
    try:
        await _assign_all(consumer, topic, from_end=False)
        deadline = time.monotonic() + 600
        while len(seen) < expected and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500, max_records=5000)
            now = time.monotonic()
            for messages in batches.values():
                for message in messages:
                    if message.key not in seen and message.key not in ignored:
                        seen.add(message.key)
                        first = first or now
                        last = now
        return Throughput(len(seen), last - first)
    finally:
        await consumer.stop()


async def arrival_latency(
    settings: Settings,
    codec: Codec,
    destination: Topic,
    events: Sequence[Event[Any]],
    *,
    rate: int,
    to: Topic | None = None,
) -> Latency:
    """Publish ``events`` at ``rate``/s (to ``to``, else their intake topics) and measure each one's send → arrival
    time on ``destination``."""
    consumer, producer = _consumer(settings), _producer(settings)
    await consumer.start()
    await producer.start()
    sent: dict[bytes, float] = {}
    arrived: dict[bytes, float] = {}
    try:
        await _assign_all(consumer, destination, from_end=True)

        async def receive() -> None:
            while len(arrived) < len(events):
                batches = await consumer.getmany(timeout_ms=200)
                now = time.monotonic()
                for messages in batches.values():
                    for message in messages:
                        if message.key in sent and message.key not in arrived:
                            arrived[message.key] = now

        receiving = asyncio.create_task(receive())
        await asyncio.sleep(0.5)  # the receiver is positioned before anything is sent
        tick = 0.01
        per_tick = max(1, int(rate * tick))
        start = time.monotonic()
        for index in range(0, len(events), per_tick):
            for event in events[index : index + per_tick]:
                sent[event.partition_key().encode()] = time.monotonic()
                await producer.send(_destination(event, to), codec.encode(event), key=event.partition_key().encode())
            next_tick = start + (index // per_tick + 1) * tick
            await asyncio.sleep(max(0.0, next_tick - time.monotonic()))
        await producer.flush()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(receiving, timeout=60)
        return Latency([(arrived[key] - sent[key]) * 1000 for key in arrived])
    finally:
        await consumer.stop()
        await producer.stop()


async def _start_worker(settings: Settings, command: Sequence[str]) -> asyncio.subprocess.Process:
    env = {
        **os.environ,
        "FIREBUS_BOOTSTRAP": settings.bootstrap_servers,
        "FIREBUS_HOME": str(settings.home),
        "FIREBUS_KEYS_DIR": str(settings.key_directory),
        "FIREBUS_FETCH_MAX_WAIT_MS": str(settings.fetch_max_wait_ms),
        "FIREBUS_GROUP_SESSION_TIMEOUT_S": str(settings.group_session_timeout_s),
        "FIREBUS_LOG_FORMAT": "json",
        "FIREBUS_PROCESSORS_HEALTH_PORT": "0",  # several bench workers on one machine, each its own health port
    }
    log = (settings.home_dir / "bench-processors.log").open("ab")
    return await asyncio.create_subprocess_exec(*command, env=env, stdout=log, stderr=log, preexec_fn=die_with_parent)


async def run_benchmark(
    settings: Settings, load: BenchLoad, *, events: int, rate: int, seconds: float, workers: int, out: TextIO
) -> None:
    codec = Codec()
    settings.home_dir.mkdir(parents=True, exist_ok=True)

    def say(line: str) -> None:
        out.write(line + "\n")
        out.flush()

    say(
        f"broker {settings.bootstrap_servers}; fetch_max_wait_ms={settings.fetch_max_wait_ms} (workers and readers "
        f"alike); batch {settings.processors_batch_size} records / {settings.processors_batch_within_s * 1000:.0f} ms; "
        f"linger {settings.processors_linger_ms} ms"
    )
    started = time.monotonic()
    throughput_events = [load.routine(None) for _ in range(events)]
    latency_events = [load.fire(f"BENCH-{n}") for n in range(int(rate * seconds))]
    say(f"prepared {len(throughput_events) + len(latency_events)} signed events in {time.monotonic() - started:.1f} s")

    await preload(settings, codec, throughput_events, to=BENCH_SOURCE)
    stop = asyncio.Event()
    relaying = asyncio.create_task(relay(settings, codec, BENCH_SOURCE, stop=stop, from_end=False))
    raw = await drain_time(settings, BENCH_RELAY, events)
    stop.set()
    await relaying
    say(f"raw relay    throughput: {raw.per_second:9.0f} events/s  ({raw.events} in {raw.seconds:.2f} s)")

    # The same payloads for the processors, on their intake topic; the workers join before the timed part (so a
    # late joiner's rebalance does not pause it): one warm-up event per partition goes through first.
    partitions = await co_partitioned_count(settings)
    warm_up = covering_events(load.routine, partitions)
    started_workers = [
        await _start_worker(settings, command) for _ in range(workers) for command in load.worker_commands
    ]
    shape = "both stages" if len(load.worker_commands) == 1 else "gate and review stage as processes of their own"
    try:
        await preload(settings, codec, warm_up)
        await drain_time(settings, TIERS[Audience.MEMBERS], len(warm_up))
        await asyncio.sleep(settings.group_session_timeout_s)  # any member still joining has joined
        warmed = frozenset(event.partition_key().encode() for event in warm_up)
        await preload(settings, codec, throughput_events)
        processed = await drain_time(settings, TIERS[Audience.MEMBERS], events, ignored=warmed)
        say(
            f"processors   throughput: {processed.per_second:9.0f} events/s  ({processed.events} in "
            f"{processed.seconds:.2f} s with {workers} worker(s), {shape}: validate, verify, policy review, redact, "
            "2 tier releases, audits)"
        )
        say(f"ratio: {processed.per_second / raw.per_second:.2f}")

        stop = asyncio.Event()
        relaying = asyncio.create_task(relay(settings, codec, BENCH_SOURCE, stop=stop, from_end=True))
        await asyncio.sleep(1.0)
        raw_latency = await arrival_latency(settings, codec, BENCH_RELAY, latency_events, rate=rate, to=BENCH_SOURCE)
        stop.set()
        await relaying
        say(f"raw relay    latency at {rate}/s: {raw_latency.line()}")
        fresh = [load.fire(f"BENCH-L-{n}") for n in range(int(rate * seconds))]
        live_latency = await arrival_latency(settings, codec, HQ_LIVE, fresh, rate=rate)
        say(f"intake → HQ live latency at {rate}/s: {live_latency.line()}")
        say(f"p99 ratio (HQ live / raw relay): {live_latency.percentile(0.99) / raw_latency.percentile(0.99):.2f}")
    finally:
        for worker in started_workers:
            worker.terminate()
            await worker.wait()


async def bench_processors(
    settings: Settings, load: BenchLoad, *, events: int, rate: int, seconds: float, workers: int = 1, out: TextIO
) -> None:
    """Run the benchmark on the configured Kafka, or on a fresh embedded broker when none is configured."""
    topics = [*ALL_TOPICS, BENCH_SOURCE, BENCH_RELAY]
    if not settings.embedded:
        await create_topics(settings, topics)
        await run_benchmark(settings, load, events=events, rate=rate, seconds=seconds, workers=workers, out=out)
        return
    settings.home_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    async with EmbeddedBroker(port=port, log_path=settings.home_dir / "bench-broker.log"):
        scoped = settings.model_copy(update={"bootstrap": f"127.0.0.1:{port}"})
        await create_topics(scoped, topics)
        await run_benchmark(scoped, load, events=events, rate=rate, seconds=seconds, workers=workers, out=out)
