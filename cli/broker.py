"""``firebus broker`` (the embedded broker alone) and ``firebus up`` (it, and every long-running stage)."""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Sequence
from pathlib import Path

from cli.commands import Commands, firebus_command, say
from cli.publishing import ensure_dev_keys
from firebus.broker import EmbeddedBroker, die_with_parent
from firebus.county import County, load_county
from firebus.kafka import create_topics
from firebus.settings import Settings
from firebus.topics import ALL_TOPICS

STAGES = ("processors", "sinks", "portal")
"""The stages ``firebus up`` runs, each as its own ``firebus STAGE`` process."""

DEMO_EVENTS = 600


def broker_log(settings: Settings) -> Path:
    settings.home_dir.mkdir(parents=True, exist_ok=True)
    return settings.home_dir / "broker.log"


async def serve_forever() -> None:
    await asyncio.Event().wait()


async def cmd_broker(args: argparse.Namespace, settings: Settings) -> int:
    port = args.port or settings.broker_port
    settings = settings.model_copy(update={"broker_port": port, "bootstrap": None})
    async with EmbeddedBroker(port=port, log_path=broker_log(settings)) as broker:
        created = await create_topics(settings)
        say(
            f"firebus broker (Tansu, memory storage) ready on {broker.bootstrap_servers}; {len(created)} topics created"
        )
        say("Ctrl-C stops it.")
        await serve_forever()
    return 0


async def start_stage(stage: str, settings: Settings) -> asyncio.subprocess.Process:
    """``firebus STAGE`` as a child process against the same Kafka and configuration, logging to its own file."""
    env = {**os.environ, "FIREBUS_BOOTSTRAP": settings.bootstrap_servers, "FIREBUS_CONFIG": str(settings.config)}
    settings.home_dir.mkdir(parents=True, exist_ok=True)
    log_path = settings.home_dir / f"{stage}.log"
    with log_path.open("ab") as output:
        process = await asyncio.create_subprocess_exec(
            *firebus_command(stage),
            env=env,
            stdout=output,
            stderr=asyncio.subprocess.STDOUT,
            stdin=asyncio.subprocess.DEVNULL,
            preexec_fn=die_with_parent,
        )
    say(f"  {stage + ':':<11} running (pid {process.pid}), log {log_path}")
    return process


async def stop_stages(processes: Sequence[asyncio.subprocess.Process]) -> None:
    for process in processes:
        if process.returncode is None:
            process.terminate()
    for process in processes:
        try:
            await asyncio.wait_for(process.wait(), timeout=15)
        except TimeoutError:
            process.kill()
            await process.wait()


async def feed_demo(settings: Settings, county: County) -> None:
    """A realistic stream for newcomers: a fire season's events at a pace the eye can follow."""
    from producers import publish_season

    say("  demo:       publishing a simulated fire season, 2 events/s (approve them on the HQ console)")
    report = await publish_season(settings, county, count=DEMO_EVENTS, seed=int(time.time()), rate=2.0)
    say(f"  demo:       published {report.published} events")


async def cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    county = load_county(settings.config)
    broker = EmbeddedBroker(port=settings.broker_port, log_path=broker_log(settings)) if settings.embedded else None
    if broker is not None:
        await broker.start()
    stages: list[asyncio.subprocess.Process] = []
    try:
        created = await create_topics(settings)
        keys = ensure_dev_keys(settings, county) if settings.embedded else []
        say(f"firebus is up for {county.county.name} ({county.county.id})")
        say(f"  Kafka:      {settings.bootstrap_servers}{' (embedded Tansu, memory storage)' if broker else ''}")
        say(f"  topics:     {len(ALL_TOPICS)} registered, {len(created)} created now (firebus topics list)")
        say(f"  unit keys:  {settings.key_directory}{f' ({len(keys)} development keys generated)' if keys else ''}")
        say("  publish:    firebus publish --unit forestry examples/events/fire_report.json")
        say("  HQ live:    firebus tail firebus.hq.live")
        say("  review:     firebus review list; firebus review approve EVENT_ID --reviewer hq-wang")
        say("  released:   firebus tail firebus.tier.public --from-beginning")
        if broker is not None:
            say(f"  (other shells reach this broker with FIREBUS_BROKER_PORT={settings.broker_port}, the default)")
        for stage in STAGES:
            stages.append(await start_stage(stage, settings))
        portal = f"http://{settings.portal_host}:{settings.portal_port}/"
        say(f"  portal:     {portal}  (HQ console: {portal}hq, member area: {portal}members)")
        say("Ctrl-C stops everything.")
        if args.demo:
            await feed_demo(settings, county)
        await serve_forever()
    finally:
        await stop_stages(stages)
        if broker is not None:
            await broker.stop()
    return 0


def register(commands: Commands) -> None:
    broker = commands.command(
        "broker", cmd_broker, "run the embedded broker (Tansu) on loopback and create the topics", long_running=True
    )
    broker.add_argument("--port", type=int, help="port on 127.0.0.1 (default: FIREBUS_BROKER_PORT or 9092)")
    up = commands.command(
        "up", cmd_up, "start the embedded broker and every firebus stage; print where to look", long_running=True
    )
    up.add_argument("--demo", action="store_true", help="also feed a realistic stream of sample events")
