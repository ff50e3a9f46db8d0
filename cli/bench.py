"""``firebus bench processors|replay``: benchmarks that print figures. The load is composed here: events signed
with the client library for the processors, a simulated season's events for the replay."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from uuid import UUID

from cli.broker import DEMO_EVENTS
from cli.commands import Commands, firebus_command
from cli.processors import default_workers
from cli.publishing import ensure_dev_keys
from firebus.county import load_county
from firebus.errors import ConfigurationError
from firebus.events import Audience, Classification, Severity
from firebus.settings import Settings
from firebus.signing import generate_unit_key, private_key_path, registered_public_keys
from firebus.topics import REVIEW_PARTITIONS

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "events"
BENCH_UNIT = "forestry"
"""The unit that signs the processors benchmark's events (its duties include fire reports and work updates)."""
DEMO_RATE = 2.0
"""The demo season's pace (as ``firebus up --demo`` feeds it), published alongside the measured fire reports."""
REPLAY_SAMPLES = 400
"""Distinct simulated events the replay benchmark's releases are variations of."""


async def cmd_bench_processors(args: argparse.Namespace, settings: Settings) -> int:
    from processors import BenchLoad, bench_processors
    from producers import FirebusClient, load_draft

    if not private_key_path(settings.key_directory, BENCH_UNIT).exists():
        generate_unit_key(settings.key_directory, BENCH_UNIT)
    county = load_county(settings.config)
    client = FirebusClient(settings=settings, unit=BENCH_UNIT, county=county)
    routine = load_draft(EXAMPLES / "work_update.json").model_copy(
        update={"audience": Audience.MEMBERS, "classification": Classification.INTERNAL, "severity": Severity.MINOR}
    )
    fire = load_draft(EXAMPLES / "fire_report.json")
    stages = ("intake", "review") if args.split else ("all",)
    load = BenchLoad(
        routine=lambda incident: client.prepare(routine.model_copy(update={"incident_id": incident})),
        fire=lambda incident: client.prepare(fire.model_copy(update={"incident_id": incident})),
        worker_commands=lambda workers: [
            firebus_command("processors", "--workers", str(workers), "--stage", stage) for stage in stages
        ],
        public_keys=registered_public_keys(county, settings.key_directory),
        split=args.split,
    )
    partitions = settings.review_partitions or REVIEW_PARTITIONS
    workers = args.workers or default_workers(os.cpu_count(), partitions)
    await bench_processors(
        settings, load, events=args.events, rate=args.rate, seconds=args.seconds, workers=workers, out=sys.stdout
    )
    return 0


async def cmd_bench_replay(args: argparse.Namespace, settings: Settings) -> int:
    from consumers.analytics import bench_replay
    from producers import simulated_events

    county = load_county(settings.config)
    samples = simulated_events(county, REPLAY_SAMPLES, seed=2026)
    await bench_replay(settings, county, samples=samples, events=args.events, out=sys.stdout)
    return 0


async def cmd_bench_console(args: argparse.Namespace, settings: Settings) -> int:
    from consumers.portal import bench_console
    from producers import FirebusClient, load_draft

    if not private_key_path(settings.key_directory, BENCH_UNIT).exists():
        generate_unit_key(settings.key_directory, BENCH_UNIT)
    county = load_county(settings.config)
    client = FirebusClient(settings=settings, unit=BENCH_UNIT, county=county)
    event = client.codec.encode(client.prepare(load_draft(EXAMPLES / "fire_report.json")))
    sizes = [int(size) for size in args.sizes.split(",")]
    await bench_console(
        settings,
        county,
        event=event,
        portal_command=firebus_command("portal"),
        sizes=sizes,
        pending=args.pending,
        out=sys.stdout,
    )
    return 0


async def cmd_bench_console_latency(args: argparse.Namespace, settings: Settings) -> int:
    from consumers.portal import ConsoleLoad, bench_console_latency
    from producers import FirebusClient, load_draft, publish_season

    if args.rate <= 0 or args.seconds <= 0:
        raise ConfigurationError("--rate and --seconds must be positive")
    county = load_county(settings.config)
    if settings.embedded:
        ensure_dev_keys(settings, county)  # the demo season publishes as every unit, as `firebus up --demo` does
    if not private_key_path(settings.key_directory, BENCH_UNIT).exists():
        generate_unit_key(settings.key_directory, BENCH_UNIT)
    fire = load_draft(EXAMPLES / "fire_report.json")

    @asynccontextmanager
    async def publisher(scoped: Settings) -> AsyncIterator[Callable[[int], Awaitable[UUID]]]:
        async with FirebusClient(settings=scoped, unit=BENCH_UNIT, county=county) as client:

            async def publish(n: int) -> UUID:
                return (await client.publish(fire.model_copy(update={"incident_id": f"BENCH-C-{n}"}))).event_id

            yield publish

    async def season(scoped: Settings) -> object:
        return await publish_season(
            scoped, county, count=max(DEMO_EVENTS, int(DEMO_RATE * (args.seconds + 300))), seed=2026, rate=DEMO_RATE
        )

    load = ConsoleLoad(
        publisher=publisher,
        season=season,
        processors_command=firebus_command("processors"),
        portal_command=firebus_command("portal"),
    )
    await bench_console_latency(
        settings, load, rate=args.rate, seconds=args.seconds, sound=not args.sound_off, out=sys.stdout
    )
    return 0


def register(commands: Commands) -> None:
    bench = commands.group("bench", "benchmarks that print figures", metavar="WHAT")
    processors = bench.command(
        "processors", cmd_bench_processors, "processors vs a raw relay and a same-work floor: throughput, latency, RSS"
    )
    processors.add_argument("--events", type=int, default=20_000, help="events drained for throughput")
    processors.add_argument("--rate", type=int, default=1_000, help="steady publish rate for latency")
    processors.add_argument("--seconds", type=float, default=10.0, help="how long the steady rate lasts")
    processors.add_argument(
        "--workers",
        type=int,
        default=None,
        help="measure 1, 2, … up to this many workers (default: the cores, at most the review partitions)",
    )
    processors.add_argument(
        "--split", action="store_true", help="each worker as two processes: the intake gate and the review stage"
    )
    replay = bench.command(
        "replay", cmd_bench_replay, "statistics over a replay vs a raw aiokafka consume: events/s, ratio"
    )
    replay.add_argument("--events", type=int, default=1_000_000, help="generated releases to publish and replay")
    latency = bench.command(
        "console",
        cmd_bench_console_latency,
        "publish → HQ console in Chromium at a steady rate, the demo season alongside: p50/p95/p99/max",
    )
    latency.add_argument("--rate", type=float, default=10.0, help="fire reports published per second")
    latency.add_argument("--seconds", type=float, default=60.0, help="how long the steady rate lasts")
    latency.add_argument("--sound-off", action="store_true", help="the console's new-fire tone switched off")
    console = bench.command(
        "console-pages", cmd_bench_console, "HQ console, approval and audit search latency as history grows"
    )
    console.add_argument("--sizes", default="10,10000,100000", help="history sizes (review items), comma-separated")
    console.add_argument("--pending", type=int, default=460, help="items awaiting review at every size")
