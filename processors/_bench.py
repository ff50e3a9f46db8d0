"""``firebus bench processors``: the processors against a raw aiokafka relay and a same-work floor on the same
broker, in one run.

Throughput: N pre-authorised events (released by policy to the member and HQ tiers) drained by 1, 2, … workers
(fresh events each round), timed from their first release to their last, once every worker has joined (a warm-up
event per partition goes through first), with each worker's RSS after; the same N payloads, pre-loaded on a topic of
the benchmark's own, drained by a plain consume → decode → encode → produce relay, and by the same-work floor
(:mod:`processors._floor`). Latency: fire reports published at a steady rate; each one's time from send to its arrival
on the HQ live topic, and through the relay, read by the same kind of consumer with the same fetch settings. The
relay never reads the processors' intake topics, so the workers sit idle while it is measured.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import time
from collections.abc import Callable, Mapping, Sequence, Set
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from firebus.broker import EmbeddedBroker, die_with_parent, free_port
from firebus.codec import Codec
from firebus.events import Audience, Event
from firebus.kafka import client_options, co_partitioned_count, create_topics, producer_options
from firebus.settings import Settings
from firebus.topics import ALL_TOPICS, BENCH_RELAY, BENCH_SOURCE, HQ_LIVE, INTAKE, TIERS, Topic
from processors._floor import AUX_KEY, RECORDS_PER_EVENT, SameWork, floor_pipeline
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


@dataclass
class BenchLoad:
    """What the benchmark publishes, and how it starts a processors worker: composed by the caller (the CLI), which
    signs with the client library."""

    routine: EventMaker
    """Events the review policy releases to the member and HQ tiers at once (throughput)."""
    fire: EventMaker
    """Fire reports, which reach the HQ live topic before review (latency)."""
    worker_commands: Callable[[int], Sequence[Sequence[str]]]
    """The command lines that run this many processors workers: one (both stages), or the intake gates' and the
    review stages'."""
    public_keys: Mapping[str, Ed25519PublicKey]
    """The units' keys, for the same-work floor's signature checks."""
    split: bool = False
    """Whether each worker is two processes (gate, review stage)."""
    released: set[bytes] = field(default_factory=set)
    """Keys of every event released so far in this run (each round of workers counts only its own)."""


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
    settings: Settings, topic: Topic, expected: int, *, ignored: Set[bytes] = frozenset()
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


def tree_rss_mb(pid: int) -> list[float]:
    """Resident memory (MB) of each process in the tree under ``pid`` that is not the parent of another: the workers
    themselves, not a supervising ``firebus processors``."""
    children = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):
            children += [int(child) for child in task.read_text().split()]
    if children:
        return [rss for child in children for rss in tree_rss_mb(child)]
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return [int(line.split()[1]) / 1024]
    return []


async def _stop_all(processes: Sequence[asyncio.subprocess.Process]) -> None:
    for process in processes:
        if process.returncode is None:
            process.terminate()
    for process in processes:
        await process.wait()


async def _measure_workers(
    settings: Settings, load: BenchLoad, workers: int, events: Sequence[Event[Any]]
) -> tuple[Throughput, list[asyncio.subprocess.Process]]:
    """Start ``workers`` workers, warm them up, time their drain of ``events``; the started processes (running)."""
    codec = Codec()
    partitions = await co_partitioned_count(settings)
    warm_up = covering_events(load.routine, partitions)
    started = [await _start_worker(settings, command) for command in load.worker_commands(workers)]
    try:
        # The workers join before the timed part (so a late joiner's rebalance does not pause it): one warm-up
        # event per partition goes through first.
        await preload(settings, codec, warm_up)
        await drain_time(settings, TIERS[Audience.MEMBERS], len(warm_up), ignored=load.released)
        await asyncio.sleep(settings.group_session_timeout_s)  # any member still joining has joined
        warmed = frozenset(event.partition_key().encode() for event in warm_up)
        load.released |= warmed
        await preload(settings, codec, events)
        processed = await drain_time(settings, TIERS[Audience.MEMBERS], len(events), ignored=load.released)
        load.released |= {event.partition_key().encode() for event in events}
    except BaseException:
        await _stop_all(started)
        raise
    return processed, started


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

    relayed = frozenset(event.partition_key().encode() for event in throughput_events)
    stop = asyncio.Event()
    work = SameWork(codec, load.public_keys)
    flooring = asyncio.create_task(
        floor_pipeline(settings, work, BENCH_SOURCE, stop=stop, batch_size=settings.processors_batch_size)
    )
    floor = await drain_time(settings, BENCH_RELAY, events, ignored=relayed | {AUX_KEY})
    stop.set()
    await flooring
    say(
        f"same-work floor throughput: {floor.per_second:9.0f} events/s  ({floor.events} in {floor.seconds:.2f} s: "
        f"decode, validate, verify, {RECORDS_PER_EVENT} records encoded and sent; no framework, no review logic)"
    )

    shape = "both stages" if load.split is False else "gate and review stage as processes of their own"
    for count in range(1, workers + 1):
        batch = throughput_events if count == 1 else [load.routine(None) for _ in range(events)]
        processed, running = await _measure_workers(settings, load, count, batch)
        try:
            rss = tree_rss_mb(running[0].pid) if len(running) == 1 else [m for p in running for m in tree_rss_mb(p.pid)]
            say(
                f"processors   throughput: {processed.per_second:9.0f} events/s  ({processed.events} in "
                f"{processed.seconds:.2f} s with {count} worker(s), {shape}: validate, verify, policy review, redact, "
                "2 tier releases, audits)"
            )
            say(
                f"  ratio to the relay: {processed.per_second / raw.per_second:.2f}; "
                f"to the same-work floor: {processed.per_second / floor.per_second:.2f}; "
                f"worker RSS after {len(load.released)} events: " + ", ".join(f"{mb:.0f} MB" for mb in rss)
            )
            if count == 1:
                await _latency(settings, load, codec, latency_events, rate=rate, seconds=seconds, say=say)
        finally:
            await _stop_all(running)


async def _latency(
    settings: Settings,
    load: BenchLoad,
    codec: Codec,
    latency_events: Sequence[Event[Any]],
    *,
    rate: int,
    seconds: float,
    say: Callable[[str], None],
) -> None:
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
