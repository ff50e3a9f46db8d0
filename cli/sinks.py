"""``firebus sinks``, ``firebus archive migrate|replay`` and ``firebus sms run|ledger``: the sinks under the one
runner, and their tools. Which sinks run is decided here."""

from __future__ import annotations

import argparse
import asyncio
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cli.commands import Commands, json_option, say, say_json
from firebus.county import load_county
from firebus.health import HealthServer
from firebus.settings import Settings

if TYPE_CHECKING:
    from consumers import Sink, SinkRunner
    from consumers.sms import Message


def chosen_sinks(settings: Settings) -> list[Sink]:
    """Both archive sinks always; the SMS sink when a gateway password is configured."""
    from consumers.archive import ArchiveSink, AvroArchive

    sinks: list[Sink] = [ArchiveSink(settings=settings), AvroArchive(settings=settings)]
    if settings.sms_password is not None:
        from consumers.sms import SmsSink  # the SMS stack only when SMS runs

        sinks.append(SmsSink(settings=settings, county=load_county(settings.config)))
    return sinks


async def run_until_stopped(runners: list[SinkRunner]) -> None:
    """Run every runner until Ctrl-C or SIGTERM, each restarted should it crash (the others go on); a sink that
    cannot be configured stops them all, and the error names it."""
    from consumers import SinkSupervisor

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await SinkSupervisor(runners).run(stop)


async def cmd_sinks(args: argparse.Namespace, settings: Settings) -> int:
    from consumers import SinkRunner

    # The port first: a taken one is a one-line error before anything reaches Kafka or a database.
    health = HealthServer(host=settings.health_host, port=settings.sinks_health_port, setting="sinks_health_port")
    health.bind()
    runners = [SinkRunner(sink, settings=settings) for sink in chosen_sinks(settings)]
    health.stages += [runner.readiness for runner in runners]
    say(f"sinks running against {settings.bootstrap_servers}: " + ", ".join(r.sink.name for r in runners))
    say(f"health: {health.url}/healthz, /readyz, /metrics")
    say("Ctrl-C stops them (each commits what it has applied).")
    await health.start()
    try:
        await run_until_stopped(runners)
    finally:
        await health.close()
    return 0


async def cmd_sms_run(args: argparse.Namespace, settings: Settings) -> int:
    from consumers import SinkRunner
    from consumers.sms import SmsSink

    runner = SinkRunner(SmsSink(settings=settings, county=load_county(settings.config)), settings=settings)
    say(f"SMS sink: {settings.bootstrap_servers} -> {settings.sms_gateway_url} (ledger {settings.sms_ledger_path})")
    await run_until_stopped([runner])
    return 0


async def cmd_archive_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from consumers.archive import migrate_archive

    applied = await migrate_archive(settings)
    say(f"archive database: applied migration(s) {applied}" if applied else "archive database: up to date")
    return 0


async def cmd_archive_replay(args: argparse.Namespace, settings: Settings) -> int:
    from consumers.archive import replay_files, replay_topics

    report = await replay_files(
        settings,
        args.from_files,
        topics=replay_topics(args.topic or ()),
        progress=lambda topic, count: say(f"  {topic:<24} {count:>8} record(s) re-published"),
    )
    for path in report.damaged_files:
        say(f"  warning: {path} has a damaged tail; its whole blocks were replayed")
    say(f"replayed {report.total} record(s) from {args.from_files} to {settings.bootstrap_servers}")
    return 0


def message_json(message: Message) -> dict[str, Any]:
    """One ledger entry as ``sms ledger --json`` shows it (the phone number masked, as in the table)."""
    from consumers.sms import masked

    return {
        "event_id": str(message.event_id),
        "release_id": str(message.release_id),
        "event_type": message.event_type.value,
        "tier": message.tier.value,
        "recipient": message.recipient,
        "phone": masked(message.phone),
        "parts": message.parts,
        "status": message.status.value,
        "due_at": message.due_at.isoformat(),
        "reason": message.reason,
    }


async def cmd_sms_ledger(args: argparse.Namespace, settings: Settings) -> int:
    from consumers.sms import Ledger, masked

    ledger = Ledger(settings.sms_ledger_path)
    try:
        messages = ledger.messages()[-args.last :]
    finally:
        ledger.close()
    if args.json:
        say_json({"messages": [message_json(message) for message in messages]})
        return 0
    for message in messages:
        reason = f"  ({message.reason})" if message.reason else ""
        say(
            f"{message.status.value:<9} {message.event_type.value:<15} {message.event_id}  {message.recipient:<20} "
            f"{masked(message.phone)}  {message.parts} part(s){reason}"
        )
    return 0


def register(commands: Commands) -> None:
    commands.command(
        "sinks", cmd_sinks, "run the sinks (archive to PostgreSQL and to Avro files) until Ctrl-C", long_running=True
    )

    archive = commands.group("archive", "the archive: PostgreSQL and Avro cold-storage files")
    archive.command("migrate", cmd_archive_migrate, "apply the archive database's pending migrations")
    replay = archive.command(
        "replay", cmd_archive_replay, "re-publish archived records from Avro files to their topics"
    )
    replay.add_argument("--from-files", type=Path, required=True, metavar="DIR", help="archive directory")
    replay.add_argument("--topic", action="append", help="only this topic (repeatable; default: every archived one)")

    sms = commands.group("sms", "the SMS sink: run it, or read its ledger")
    sms.command(
        "run", cmd_sms_run, "run the SMS sink (members and HQ tiers -> Kannel sendsms) until Ctrl-C", long_running=True
    )
    ledger = sms.command("ledger", cmd_sms_ledger, "the latest SMS planned, held, sent or failed (phones masked)")
    ledger.add_argument("--last", type=int, default=50, help="how many (default 50)")
    json_option(ledger)
