"""``firebus bench replay``: statistics over a replay of N releases against a raw aiokafka consume of the same
topics, in the same run, on the same broker. Prints the figures and the ratio; asserts nothing.

The releases are synthetic but valid: variations of the sample events the caller gives (unsigned is fine — the
statistics never check signatures), wrapped in policy-approved releases, each with its own event id.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, TextIO
from uuid import uuid4

from aiokafka import AIOKafkaProducer

from consumers.analytics._sources import REPLAY_FETCH, from_topics
from consumers.analytics._statistics import compute
from firebus.broker import EmbeddedBroker, free_port
from firebus.codec import Codec
from firebus.county import County
from firebus.events import Audience, Event
from firebus.kafka import TopicScan, client_options, create_topics
from firebus.records import Release, ReviewDecision, ReviewerKind, Verdict
from firebus.settings import Settings
from firebus.topics import AUDIT, TIERS


@dataclass(frozen=True)
class ReplayBench:
    events: int
    raw_seconds: float
    stats_seconds: float
    peak_rss: int = 0
    """The process's peak resident memory during the statistics, in bytes (0: not known)."""
    start_rss: int = 0
    """Its resident memory when the statistics started, in bytes."""

    @property
    def raw_rate(self) -> float:
        return self.events / self.raw_seconds if self.raw_seconds else 0.0

    @property
    def stats_rate(self) -> float:
        return self.events / self.stats_seconds if self.stats_seconds else 0.0

    @property
    def ratio(self) -> float:
        return self.stats_rate / self.raw_rate if self.raw_rate else 0.0


def templates(samples: Sequence[Event[Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """``(event, release)`` record dicts of the sample events, each released by a policy rule."""
    made = []
    for event in samples:
        header = event.header
        decision = ReviewDecision(
            decision_id=uuid4(),
            event_id=header.event_id,
            event_type=header.event_type,
            verdict=Verdict.APPROVE,
            reviewer="policy:bench",
            reviewer_kind=ReviewerKind.POLICY_RULE,
            decided_at=header.published_at + timedelta(seconds=1),
            trace_id=header.trace_id,
        )
        release = Release(
            release_id=uuid4(),
            tier=Audience.HQ,
            event_id=header.event_id,
            event_type=header.event_type,
            kind=header.kind,
            thread_id=header.event_id,
            incident_id=header.incident_id,
            publisher_unit=header.publisher.unit,
            decision=decision,
            released_at=decision.decided_at + timedelta(milliseconds=50),
            event=b"",
        )
        made.append((event.model_dump(), release.model_dump()))
    return made


def generated_releases(
    samples: Sequence[Event[Any]], count: int, *, seed: int = 2026
) -> Iterator[tuple[str, bytes, bytes]]:
    """``(topic, key, value)`` of ``count`` releases, variations of ``samples``, round-robin over the tier topics."""
    codec = Codec()
    pool = templates(samples)
    release_contract = codec.contracts.current("release")
    tiers = list(Audience)
    rng = random.Random(seed)  # noqa: S311  (reproducible load, not a secret)
    for number in range(count):
        event, release = pool[number % len(pool)]
        event_id = uuid4()
        header = {**event["header"], "event_id": event_id}
        decided = header["published_at"] + timedelta(seconds=rng.randint(1, 3_600))
        tier = tiers[number % len(tiers)]
        body = codec.encode_data(codec.contracts.for_event_type(header["event_type"]), {**event, "header": header})
        record = {
            **release,
            "release_id": uuid4(),
            "tier": tier.value,
            "event_id": event_id,
            "thread_id": event_id,
            "decision": {**release["decision"], "event_id": event_id, "decided_at": decided},
            "released_at": decided + timedelta(milliseconds=rng.randint(5, 500)),
            "event": body,
        }
        yield TIERS[tier].name, str(event_id).encode(), codec.encode_data(release_contract, record)


async def publish_releases(settings: Settings, samples: Sequence[Event[Any]], count: int, *, seed: int = 2026) -> None:
    """Publish ``count`` generated releases, round-robin over the tier topics."""
    producer = AIOKafkaProducer(
        **client_options(settings, client_id=f"{settings.client_id}-bench"),
        acks=1,
        linger_ms=20,
        max_batch_size=1024 * 1024,
    )
    await producer.start()
    try:
        pending: list[asyncio.Future[Any]] = []
        for topic, key, value in generated_releases(samples, count, seed=seed):
            pending.append(await producer.send(topic, value, key=key))
            if len(pending) >= 10_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def raw_consume(settings: Settings) -> int:
    """Count every record of the tier and audit topics with the same group-less scan the statistics use, without
    decoding anything: the floor a replay is measured against."""
    counted = 0
    async with TopicScan(
        settings, [*TIERS.values(), AUDIT], purpose="bench-raw", consumer_options=REPLAY_FETCH
    ) as scan:
        async for step in scan:
            counted += len(step.records)
    return counted


async def measure(settings: Settings, county: County) -> ReplayBench:
    """Time the raw consume, then the statistics over a replay, of what the tier and audit topics hold now."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    counted = await raw_consume(settings)
    raw_seconds = loop.time() - started
    start_rss = reset_peak_rss()
    started = loop.time()
    compute(await from_topics(settings, progress=False), zone=county.zone)
    stats_seconds = loop.time() - started
    return ReplayBench(
        events=counted,
        raw_seconds=raw_seconds,
        stats_seconds=stats_seconds,
        peak_rss=_status_bytes("VmHWM"),
        start_rss=start_rss,
    )


def reset_peak_rss() -> int:
    """Reset the process's peak resident memory (Linux: ``5`` to ``/proc/self/clear_refs``) so that the next
    reading is the peak of what follows; returns the resident memory now, in bytes (0: not known)."""
    with suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
    return _status_bytes("VmRSS")


def _status_bytes(name: str) -> int:
    """A memory figure of ``/proc/self/status`` in bytes (0 where there is none)."""
    with suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{name}:"):
                return int(line.split()[1]) * 1024
    return 0


async def bench_replay(
    settings: Settings, county: County, *, samples: Sequence[Event[Any]], events: int, out: TextIO
) -> ReplayBench:
    """Publish ``events`` releases of variations of ``samples`` (to a fresh embedded broker unless a bootstrap is
    configured), then measure."""
    broker: EmbeddedBroker | None = None
    if settings.embedded:
        broker = EmbeddedBroker(port=free_port(), log_path=_log_path(settings))
        await broker.start()
        settings = settings.model_copy(update={"bootstrap": broker.bootstrap_servers})
    try:
        await create_topics(settings, [*TIERS.values(), AUDIT])
        loop = asyncio.get_running_loop()
        started = loop.time()
        await publish_releases(settings, samples, events)
        _write(out, [f"published {events} generated releases in {loop.time() - started:.1f}s"])
        result = await measure(settings, county)
        _write(
            out,
            [
                f"raw aiokafka consume: {result.events} records in {result.raw_seconds:.2f}s = "
                f"{result.raw_rate:,.0f} events/s",
                f"stats over replay:    {result.events} records in {result.stats_seconds:.2f}s = "
                f"{result.stats_rate:,.0f} events/s",
                f"ratio: {result.ratio:.2f}",
                f"peak memory (RSS) during the stats: {result.peak_rss / 2**20:,.0f} MiB "
                f"(at their start: {result.start_rss / 2**20:,.0f} MiB)",
            ],
        )
        return result
    finally:
        if broker is not None:
            await broker.stop()


def _log_path(settings: Settings) -> Path:
    settings.home_dir.mkdir(parents=True, exist_ok=True)
    return settings.home_dir / "bench-replay-broker.log"


def _write(out: TextIO, lines: Sequence[str]) -> None:
    for line in lines:
        out.write(line + "\n")
    out.flush()
