"""``firebus processors``: the processors workers — the intake gate and the review stage — against the configured
Kafka, both in one process or (``--stage``) each in its own.

``--workers N`` (default: the machine's cores, capped by the co-partitioned topics' partition count, beyond which a
worker would hold no review partition) runs N worker processes in one consumer group and supervises them with
``firebus up``'s supervisor: one that exits is started again with backoff, and Ctrl-C or SIGTERM stops them all. One
worker runs in this process itself. Worker 0 answers on the configured health port; the others each pick a free one.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Sequence
from typing import Any

from cli.commands import EXIT_FAILURE, Commands, exit_at_once, say
from cli.supervision import RestartPolicy, StageBook
from cli.supervisor import StageSpec, SupervisedStage, now, probe_host, stop_signals
from firebus.settings import Settings

COMMAND = "processors"


def default_workers(cores: int | None, partitions: int) -> int:
    """One worker per core, no more than there are review partitions to share out, at least one."""
    return max(1, min(cores or 1, partitions))


def worker_specs(settings: Settings, workers: int, stage: str) -> list[StageSpec]:
    """The command line, environment, log and readiness probe of each of ``workers`` single-worker processes."""
    specs = []
    base = settings.processors_health_port
    for index in range(workers):
        port = base if index == 0 else 0  # the next fixed ports belong to other stages (the sinks': 9102)
        env = {**os.environ, "FIREBUS_PROCESSORS_HEALTH_PORT": str(port)}
        probes = (f"http://{probe_host(settings.health_host)}:{port}/readyz",) if port else ()
        specs.append(
            StageSpec(
                f"{COMMAND}-{index}",
                env,
                settings.home_dir / f"{COMMAND}-{index}.log",
                probes,
                args=("--workers", "1", "--stage", stage),
                command=COMMAND,
                # A worker is restart-safe; if this command dies, its successor needs worker 0's health port now.
                killed_with_supervisor=True,
            )
        )
    return specs


async def supervise(settings: Settings, specs: Sequence[StageSpec]) -> int:
    """Run every spec's process until Ctrl-C or SIGTERM (0), or until every one of them was given up (1)."""
    settings.home_dir.mkdir(parents=True, exist_ok=True)
    policy = RestartPolicy.of(settings)
    workers = [SupervisedStage(spec, StageBook(spec.name, policy, now=now())) for spec in specs]
    stop = asyncio.Event()
    stop_signals(stop)
    say(f"firebus processors: {len(workers)} workers, supervised (one that exits is started again); Ctrl-C stops them")
    running = [asyncio.create_task(worker.run(), name=worker.spec.name) for worker in workers]
    asked = asyncio.create_task(stop.wait())
    try:
        waiting: set[asyncio.Task[Any]] = {asked, *running}
        while not stop.is_set() and not all(task.done() for task in running):  # a given-up worker's task ends
            _done, waiting = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
    finally:
        await asyncio.gather(*(worker.stop() for worker in workers))
        asked.cancel()
        await asyncio.gather(*running, return_exceptions=True)
    return 0 if stop.is_set() else EXIT_FAILURE


async def _cores_worth(settings: Settings) -> int:
    """The default worker count; a taken health port is found first, before anything reaches Kafka (worker 0 needs
    it, and the error line is the same as a single worker's)."""
    from firebus.health import HealthServer
    from firebus.kafka import co_partitioned_count

    port = settings.processors_health_port
    await HealthServer(host=settings.health_host, port=port, setting="processors_health_port").bind().close()
    return default_workers(os.cpu_count(), await co_partitioned_count(settings))


def cmd_processors(args: argparse.Namespace, settings: Settings) -> int:
    from processors import Stage, check_settings, run_worker

    workers = args.workers if args.workers is not None else asyncio.run(_cores_worth(settings))
    if workers == 1:
        run_worker(settings, Stage(args.stage), on_broker_lost=exit_at_once)
        return 0
    check_settings(settings)
    return asyncio.run(supervise(settings, worker_specs(settings, workers, args.stage)))


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def register(commands: Commands) -> None:
    command = commands.command(
        COMMAND,
        cmd_processors,
        "run the processors workers (intake gate and review stage) against Kafka",
        long_running=True,
    )
    command.add_argument(
        "--stage",
        choices=("all", "intake", "review"),
        default="all",
        help="run both stages (default), or only the intake gate or only the review stage (one core each)",
    )
    command.add_argument(
        "--workers",
        type=_positive,
        default=None,
        help="worker processes, supervised (default: the cores, at most the review partitions; 1: this process)",
    )
