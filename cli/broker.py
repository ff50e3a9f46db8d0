"""``firebus broker`` (the embedded broker alone) and ``firebus up`` (it, and every long-running stage)."""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

from cli.commands import Commands, say
from cli.publishing import ensure_dev_keys
from cli.supervision import RestartPolicy, StageBook, describe_exit
from cli.supervisor import (
    StageSpec,
    StagesServer,
    SupervisedBroker,
    SupervisedStage,
    now,
    probe_host,
    shout,
    stop_signals,
)
from firebus.broker import LOOPBACK, EmbeddedBroker, bound_socket, ensure_port_free
from firebus.county import County, load_county
from firebus.errors import BrokerError
from firebus.kafka import create_topics
from firebus.settings import Settings
from firebus.stages import EMBEDDED_BROKER
from firebus.topics import ALL_TOPICS

STAGES = ("processors", "sinks", "portal")
"""The stages ``firebus up`` runs, each as its own ``firebus STAGE`` process."""

DEMO_EVENTS = 600


def broker_log(settings: Settings) -> Path:
    settings.home_dir.mkdir(parents=True, exist_ok=True)
    return settings.home_dir / "broker.log"


async def cmd_broker(args: argparse.Namespace, settings: Settings) -> int:
    port = args.port or settings.broker_port
    settings = settings.model_copy(update={"broker_port": port, "bootstrap": None})
    log_path = broker_log(settings)
    async with EmbeddedBroker(port=port, log_path=log_path) as broker:
        created = await create_topics(settings)
        say(
            f"firebus broker (Tansu, memory storage) ready on {broker.bootstrap_servers}; {len(created)} topics created"
        )
        say("Ctrl-C stops it.")
        stop = asyncio.Event()
        stop_signals(stop)
        ended = asyncio.create_task(broker.wait())
        asked = asyncio.create_task(stop.wait())
        await asyncio.wait((ended, asked), return_when=asyncio.FIRST_COMPLETED)
        asked.cancel()
        if not stop.is_set():
            raise BrokerError(f"the embedded broker exited ({describe_exit(ended.result())}); see {log_path}")
        ended.cancel()
    return 0


def stage_specs(settings: Settings, *, stages_url: str, demo: bool = False) -> list[StageSpec]:
    """``firebus STAGE`` for each stage, against the same Kafka and configuration, each logging to its own file;
    the portal is told where the supervisor reports the stages (its HQ banner) and, with ``demo``, that it runs in
    demo mode (the demo accounts are seeded and may log in)."""
    env = {
        **os.environ,
        "FIREBUS_BOOTSTRAP": settings.bootstrap_servers,
        "FIREBUS_CONFIG": str(settings.config),
        "FIREBUS_STAGES_URL": stages_url,
    }
    if demo:
        env["FIREBUS_PORTAL_DEMO"] = "1"
    settings.home_dir.mkdir(parents=True, exist_ok=True)
    portal = f"http://{probe_host(settings.portal_host)}:{settings.portal_port}"
    probes: dict[str, tuple[str, ...]] = {"portal": (f"{portal}/readyz", f"{portal}/healthz")}
    health = probe_host(settings.health_host)
    for stage, port in (("processors", settings.processors_health_port), ("sinks", settings.sinks_health_port)):
        if port:  # 0: the stage picks a free port, which nobody here can know; it counts as running once it stays up
            probes[stage] = (f"http://{health}:{port}/readyz",)
    return [StageSpec(stage, env, settings.home_dir / f"{stage}.log", probes.get(stage, ())) for stage in STAGES]


async def feed_demo(settings: Settings, county: County) -> None:
    """A realistic stream for newcomers: a fire season's events at a pace the eye can follow."""
    from producers import publish_season

    say("  demo:       publishing a simulated fire season, 2 events/s (approve them on the HQ console)")
    report = await publish_season(settings, county, count=DEMO_EVENTS, seed=int(time.time()), rate=2.0)
    say(f"  demo:       published {report.published} events")


def check_ports(settings: Settings) -> socket.socket:
    """Every port ``firebus up`` serves on is free (one error line otherwise, before anything starts); the
    supervisor's own socket, bound."""
    if settings.embedded:
        ensure_port_free(
            LOOPBACK,
            settings.broker_port,
            what="the embedded broker",
            setting="FIREBUS_BROKER_PORT, or FIREBUS_BOOTSTRAP to use the broker there",
        )
    ensure_port_free(settings.portal_host, settings.portal_port, what="the portal", setting="FIREBUS_PORTAL_PORT")
    for stage, port in (("processors", settings.processors_health_port), ("sinks", settings.sinks_health_port)):
        if port:
            ensure_port_free(
                settings.health_host,
                port,
                what=f"the {stage}' health server",
                setting=f"FIREBUS_{stage.upper()}_HEALTH_PORT",
            )
    return bound_socket(LOOPBACK, settings.supervisor_port, what="the supervisor", setting="FIREBUS_SUPERVISOR_PORT")


def _stop_on_crash(stop: asyncio.Event) -> Callable[[asyncio.Task[None]], None]:
    def check(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            shout(f"firebus: error: the supervisor of {task.get_name()} failed: {task.exception()!r}; stopping")
            stop.set()

    return check


def _say_demo_failure(task: asyncio.Task[None]) -> None:
    """The demo feed is a convenience: its failure is said, and the stages run on."""
    if not task.cancelled() and task.exception() is not None:
        shout(f"firebus: error: the demo feed stopped: {task.exception()}")


async def cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    county = load_county(settings.config)
    server_socket = check_ports(settings)
    policy = RestartPolicy.of(settings)
    stop = asyncio.Event()
    stop_signals(stop)
    supervisor_url = f"http://{LOOPBACK}:{server_socket.getsockname()[1]}"
    stages = [
        SupervisedStage(spec, StageBook(spec.name, policy, now=now()))
        for spec in stage_specs(settings, stages_url=f"{supervisor_url}/stages", demo=args.demo)
    ]
    broker = (
        SupervisedBroker(
            EmbeddedBroker(port=settings.broker_port, log_path=broker_log(settings)),
            StageBook(EMBEDDED_BROKER, policy, now=now()),
            settings,
            broker_log(settings),
            stages=stages,
        )
        if settings.embedded
        else None
    )
    server = StagesServer([*([broker.book] if broker else []), *(stage.book for stage in stages)])
    tasks: list[asyncio.Task[None]] = []
    try:
        if broker is not None:
            await broker.start()
        created = await create_topics(settings)
        keys = ensure_dev_keys(settings, county) if settings.embedded else []
        await server.start(server_socket)
        say(f"firebus is up for {county.county.name} ({county.county.id})")
        say(f"  Kafka:      {settings.bootstrap_servers}{' (embedded Tansu, memory storage)' if broker else ''}")
        say(f"  topics:     {len(ALL_TOPICS)} registered, {len(created)} created now (firebus topics list)")
        say(f"  unit keys:  {settings.key_directory}{f' ({len(keys)} development keys generated)' if keys else ''}")
        say("  publish:    firebus publish --unit forestry examples/events/fire_report.json")
        say("  HQ live:    firebus tail firebus.hq.live")
        say("  review:     firebus review list; firebus review approve EVENT_ID --reviewer hq-wang")
        say("  released:   firebus tail firebus.tier.public --from-beginning")
        say(f"  stages:     {supervisor_url}/stages (firebus status); a stage that exits is restarted")
        if broker is not None:
            say(f"  (other shells reach this broker with FIREBUS_BROKER_PORT={settings.broker_port}, the default)")
            tasks.append(asyncio.create_task(broker.run(), name=EMBEDDED_BROKER))
        for stage in stages:
            tasks.append(asyncio.create_task(stage.run(), name=stage.spec.name))
        for task in tasks:
            task.add_done_callback(_stop_on_crash(stop))
        portal = f"http://{settings.portal_host}:{settings.portal_port}/"
        say(f"  portal:     {portal}  (HQ console: {portal}hq, member area: {portal}members)")
        say("Ctrl-C stops everything.")
        if args.demo:
            demo = asyncio.create_task(feed_demo(settings, county), name="demo")
            demo.add_done_callback(_say_demo_failure)
            tasks.append(demo)
        await stop.wait()
        say("firebus: stopping (portal, sinks, processors, then the broker)")
    finally:
        for stage in reversed(stages):
            await stage.stop()
        if broker is not None:
            await broker.stop(next((task for task in tasks if task.get_name() == EMBEDDED_BROKER), None))
        for task in tasks:
            if task.get_name() == "demo":
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.stop()
        server_socket.close()
    say("firebus: stopped")
    return 0


def register(commands: Commands) -> None:
    broker = commands.command(
        "broker", cmd_broker, "run the embedded broker (Tansu) on loopback and create the topics", long_running=True
    )
    broker.add_argument("--port", type=int, help="port on 127.0.0.1 (default: FIREBUS_BROKER_PORT or 9092)")
    up = commands.command(
        "up",
        cmd_up,
        "start the embedded broker and every firebus stage under supervision (restarted when they exit); "
        "print where to look",
        long_running=True,
    )
    up.add_argument(
        "--demo",
        action="store_true",
        help="demo mode: feed a realistic stream of sample events and let the demo portal accounts log in",
    )
