"""The ``firebus`` command. Every failure prints one line ``firebus: error: ...`` and exits non-zero."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

import structlog
from pydantic import ValidationError

from firebus import compatibility
from firebus.asyncapi import asyncapi_yaml
from firebus.broker import EmbeddedBroker, die_with_parent
from firebus.codec import Codec
from firebus.county import County, load_county
from firebus.errors import ConfigurationError, FirebusError
from firebus.events import Audience
from firebus.kafka import UnreadableBatch, create_topics, describe_topics
from firebus.logs import configure_logging
from firebus.records import ReviewStatus, Verdict
from firebus.settings import Settings
from firebus.signing import generate_unit_key, private_key_path, public_key_text, registered_public_keys
from firebus.tail import describe_record, tail
from firebus.topics import ALL_TOPICS, by_name, co_partitioning_problem
from schemas import AVRO_DIR

if TYPE_CHECKING:
    from producers import ReviewDesk

log = structlog.get_logger(__name__)

EXIT_FAILURE = 1
EXIT_INTERRUPTED = 130

Command = Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int] | int]


def _print(line: str = "") -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


# --- broker and up ---------------------------------------------------------------------------------------------


def ensure_dev_keys(settings: Settings, county: County) -> list[str]:
    """On the embedded broker, give every unit without a key one, so a newcomer can publish at once."""
    created = []
    for unit in county.units:
        if unit.public_key is None and not private_key_path(settings.key_directory, unit.id).exists():
            generate_unit_key(settings.key_directory, unit.id)
            created.append(unit.id)
    return created


async def _serve_forever() -> None:
    await asyncio.Event().wait()


async def cmd_broker(args: argparse.Namespace, settings: Settings) -> int:
    port = args.port or settings.broker_port
    settings = settings.model_copy(update={"broker_port": port, "bootstrap": None})
    async with EmbeddedBroker(port=port, log_path=_broker_log(settings)) as broker:
        created = await create_topics(settings)
        _print(
            f"firebus broker (Tansu, memory storage) ready on {broker.bootstrap_servers}; {len(created)} topics created"
        )
        _print("Ctrl-C stops it.")
        await _serve_forever()
    return 0


def _broker_log(settings: Settings) -> Path:
    settings.home_dir.mkdir(parents=True, exist_ok=True)
    return settings.home_dir / "broker.log"


STAGES = (("processors", ("processors",)), ("sinks", ("sinks",)), ("portal", ("portal",)))
"""The stages `firebus up` runs, each as its own `firebus` process."""


async def _start_stage(name: str, command: Sequence[str], settings: Settings) -> asyncio.subprocess.Process:
    env = {**os.environ, "FIREBUS_BOOTSTRAP": settings.bootstrap_servers, "FIREBUS_CONFIG": str(settings.config)}
    settings.home_dir.mkdir(parents=True, exist_ok=True)
    log_path = settings.home_dir / f"{name}.log"
    with log_path.open("ab") as output:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "firebus.cli",
            *command,
            env=env,
            stdout=output,
            stderr=asyncio.subprocess.STDOUT,
            stdin=asyncio.subprocess.DEVNULL,
            preexec_fn=die_with_parent,
        )
    _print(f"  {name + ':':<11} running (pid {process.pid}), log {log_path}")
    return process


async def _stop_stages(processes: Sequence[asyncio.subprocess.Process]) -> None:
    for process in processes:
        if process.returncode is None:
            process.terminate()
    for process in processes:
        try:
            await asyncio.wait_for(process.wait(), timeout=15)
        except TimeoutError:
            process.kill()
            await process.wait()


async def _feed_demo(settings: Settings, county: County) -> None:
    """A realistic stream for newcomers: a fire season's events at a pace the eye can follow."""
    from producers._simulate import publish_season  # noqa: PLC0415

    _print("  demo:       publishing a simulated fire season, 2 events/s (approve them on the HQ console)")
    report = await publish_season(settings, county, count=DEMO_EVENTS, seed=int(time.time()), rate=2.0)
    _print(f"  demo:       published {report.published} events")


DEMO_EVENTS = 600


async def cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    county = load_county(settings.config)
    broker = EmbeddedBroker(port=settings.broker_port, log_path=_broker_log(settings)) if settings.embedded else None
    if broker is not None:
        await broker.start()
    stages: list[asyncio.subprocess.Process] = []
    try:
        created = await create_topics(settings)
        keys = ensure_dev_keys(settings, county) if settings.embedded else []
        _print(f"firebus is up for {county.county.name} ({county.county.id})")
        _print(f"  Kafka:      {settings.bootstrap_servers}{' (embedded Tansu, memory storage)' if broker else ''}")
        _print(f"  topics:     {len(ALL_TOPICS)} registered, {len(created)} created now (firebus topics list)")
        _print(f"  unit keys:  {settings.key_directory}{f' ({len(keys)} development keys generated)' if keys else ''}")
        _print("  publish:    firebus publish --unit forestry examples/events/fire_report.json")
        _print("  HQ live:    firebus tail firebus.hq.live")
        _print("  review:     firebus review list; firebus review approve EVENT_ID --reviewer hq-wang")
        _print("  released:   firebus tail firebus.tier.public --from-beginning")
        if broker is not None:
            _print(f"  (other shells reach this broker with FIREBUS_BROKER_PORT={settings.broker_port}, the default)")
        for name, command in STAGES:
            stages.append(await _start_stage(name, command, settings))
        portal = f"http://{settings.portal_host}:{settings.portal_port}/"
        _print(f"  portal:     {portal}  (HQ console: {portal}hq, member area: {portal}members)")
        _print("Ctrl-C stops everything.")
        if args.demo:
            await _feed_demo(settings, county)
        await _serve_forever()
    finally:
        await _stop_stages(stages)
        if broker is not None:
            await broker.stop()
    return 0


# --- topics ----------------------------------------------------------------------------------------------------


async def cmd_topics_create(args: argparse.Namespace, settings: Settings) -> int:
    created = await create_topics(settings)
    _print(f"created {len(created)} topic(s); {len(ALL_TOPICS) - len(created)} already existed")
    for name in created:
        _print(f"  + {name}")
    return 0


async def cmd_topics_list(args: argparse.Namespace, settings: Settings) -> int:
    states = await describe_topics(settings) if args.broker else None
    _print(f"{'topic':<32} {'parts':>5} {'retention':>10} {'cleanup':<8} key")
    for index, topic in enumerate(ALL_TOPICS):
        retention = "forever" if topic.retention_ms < 0 else f"{topic.retention_ms // 86_400_000}d"
        status = ""
        if states is not None:
            status = "  [ok]" if not states[index].problems() else f"  [{'; '.join(states[index].problems())}]"
        cleanup = topic.cleanup_policy.value
        _print(f"{topic.name:<32} {topic.partitions:>5} {retention:>10} {cleanup:<8} {topic.key}{status}")
    return 0


async def cmd_topics_check(args: argparse.Namespace, settings: Settings) -> int:
    states = await describe_topics(settings)
    problems = [problem for state in states for problem in state.problems()]
    co_partitioning = co_partitioning_problem({s.topic.name: s.partitions for s in states if s.partitions is not None})
    if co_partitioning is not None:
        problems.append(co_partitioning)
    if problems:
        raise ConfigurationError(f"{len(problems)} topic problem(s): " + "; ".join(problems))
    _print(f"all {len(ALL_TOPICS)} topics present and configured as registered on {settings.bootstrap_servers}")
    return 0


# --- keys, publish, tail ---------------------------------------------------------------------------------------


async def cmd_keys_generate(args: argparse.Namespace, settings: Settings) -> int:
    county = load_county(settings.config)
    unit = county.unit(args.unit)
    public_key = generate_unit_key(settings.key_directory, unit.id, overwrite=args.force)
    _print(
        f"private key for {unit.id} ({unit.name}): {private_key_path(settings.key_directory, unit.id)} (keep it secret)"
    )
    _print(f"public key (put it in the units registry as public_key): {public_key_text(public_key)}")
    return 0


async def cmd_publish(args: argparse.Namespace, settings: Settings) -> int:
    from producers import FirebusClient, load_draft  # noqa: PLC0415  (the CLI is a producer here, nowhere else)

    draft = load_draft("-", sys.stdin.read()) if args.file == "-" else load_draft(args.file)
    async with FirebusClient(settings=settings, unit=args.unit, person=args.person) as client:
        receipt = await client.publish(draft)
    _print(
        json.dumps(
            {
                "event_id": str(receipt.event_id),
                "trace_id": receipt.trace_id,
                "topic": receipt.topic,
                "partition": receipt.partition,
                "offset": receipt.offset,
            },
            ensure_ascii=False,
        )
    )
    return 0


async def cmd_tail(args: argparse.Namespace, settings: Settings) -> int:
    topic = by_name(args.topic)
    if topic is None:
        raise ConfigurationError(f"unknown topic {args.topic!r}; `firebus topics list` shows the registered ones")
    codec = Codec()
    public_keys = registered_public_keys(load_county(settings.config), settings.key_directory)
    records = tail(
        settings, topic, from_beginning=args.from_beginning, limit=args.max, idle_timeout_s=args.idle_timeout
    )
    unreadable = 0
    async for record in records:
        if isinstance(record, UnreadableBatch):
            # What no client can read is reported as it is met; the records after it still follow.
            sys.stderr.write(f"firebus: error: {record}\n")
            unreadable += 1
            continue
        line = {
            "topic": topic.name,
            "partition": record.partition,
            "offset": record.offset,
            "key": record.key.decode("utf-8", "replace") if record.key else None,
            **describe_record(codec, public_keys, record.value),
        }
        _print(json.dumps(line, ensure_ascii=False, indent=2 if args.pretty else None))
    return EXIT_FAILURE if unreadable else 0


# --- processors and review ---------------------------------------------------------------------------------------


def cmd_processors(args: argparse.Namespace, settings: Settings) -> int:
    from processors import run_worker  # noqa: PLC0415  (faust is heavy; only this command needs it)

    run_worker(settings)
    return 0


def _review_desk(settings: Settings) -> ReviewDesk:
    from producers import ReviewDesk  # noqa: PLC0415

    return ReviewDesk(settings=settings, county=load_county(settings.config))


async def cmd_review_list(args: argparse.Namespace, settings: Settings) -> int:
    items = sorted((await _review_desk(settings).items()).values(), key=lambda item: item.received_at)
    shown = [item for item in items if args.all or item.status is ReviewStatus.PENDING]
    _print(f"{'event id':<36}  {'type':<15} {'status':<9} {'publisher':<12} {'audience':<8} {'severity':<8} deadline")
    for item in shown:
        late = "  ESCALATED" if item.escalated else ""
        _print(
            f"{item.event_id!s:<36}  {item.event_type.value:<15} {item.status.value:<9} {item.publisher_unit:<12} "
            f"{item.audience.value:<8} {item.severity.value:<8} {item.deadline:%Y-%m-%d %H:%M}Z{late}"
        )
    _print(f"{len(shown)} item(s){'' if args.all else ' pending'}")
    return 0


async def cmd_review_show(args: argparse.Namespace, settings: Settings) -> int:
    desk = _review_desk(settings)
    item = await desk.item(_event_id(args.event_id))
    shown = item.model_dump(mode="json", exclude={"event"})
    shown["event"] = desk.codec.decode(item.event).model_dump(mode="json")
    _print(json.dumps(shown, ensure_ascii=False, indent=2))
    return 0


async def cmd_review_decide(args: argparse.Namespace, settings: Settings) -> int:
    desk = _review_desk(settings)
    item = await desk.item(_event_id(args.event_id))
    verdict = Verdict.APPROVE if args.review_command == "approve" else Verdict.REJECT
    decision = desk.decision(
        item,
        reviewer=args.reviewer,
        verdict=verdict,
        reason=args.reason,
        tiers=[Audience(tier) for tier in (args.tiers.split(",") if getattr(args, "tiers", None) else [])],
        redactions=getattr(args, "redact", None) or [],
    )
    await desk.publish(item, decision)
    _print(f"{verdict.value}d {item.event_id} as {args.reviewer}: decision {decision.decision_id}")
    return 0


def _event_id(text: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise ConfigurationError(f"{text!r} is not an event id (a UUID)") from None


# --- simulate ------------------------------------------------------------------------------------------------


async def cmd_simulate(args: argparse.Namespace, settings: Settings) -> int:
    from producers._simulate import publish_season  # noqa: PLC0415

    county = load_county(settings.config)
    if settings.embedded:
        ensure_dev_keys(settings, county)
    step = max(1, args.events // 20)

    def progress(done: int) -> None:
        if done % step == 0 or done == args.events:
            sys.stderr.write(f"\rsimulated {done}/{args.events} events")
            sys.stderr.flush()

    report = await publish_season(
        settings, county, count=args.events, seed=args.seed, rate=args.rate, days=args.days, progress=progress
    )
    sys.stderr.write("\n")
    by_type = ", ".join(f"{name} {count}" for name, count in sorted(report.by_type.items()))
    _print(f"published {report.published} events (seed {args.seed}): {by_type}")
    return 0


# --- portal ----------------------------------------------------------------------------------------------------


async def cmd_portal(args: argparse.Namespace, settings: Settings) -> int:
    if args.hash_password:
        from consumers.portal import hash_password  # noqa: PLC0415  (web stack only for this command)

        password = sys.stdin.readline().rstrip("\n")
        if not password:
            raise ConfigurationError("give the password on standard input")
        _print(hash_password(password))
        return 0
    from consumers.portal import serve  # noqa: PLC0415

    if args.port:
        settings = settings.model_copy(update={"portal_port": args.port})
    _print(f"firebus portal on http://{settings.portal_host}:{settings.portal_port}/")
    await serve(settings, load_county(settings.config))
    return 0


def add_portal_parser(add: Callable[..., argparse.ArgumentParser]) -> None:
    portal = add("portal", cmd_portal, "run the portal web app: public board, member area, HQ console")
    portal.add_argument("--port", type=int, help="port (default: FIREBUS_PORTAL_PORT or 8080)")
    portal.add_argument("--hash-password", action="store_true", help="print a password hash for the accounts file")


# --- portal end ------------------------------------------------------------------------------------------------


# --- benchmarks ------------------------------------------------------------------------------------------------


async def cmd_bench_processors(args: argparse.Namespace, settings: Settings) -> int:
    from processors._bench import bench_processors  # noqa: PLC0415

    await bench_processors(
        settings, events=args.events, rate=args.rate, seconds=args.seconds, workers=args.workers, out=sys.stdout
    )
    return 0


# --- schemas ---------------------------------------------------------------------------------------------------


async def cmd_schemas_check(args: argparse.Namespace, settings: Settings) -> int:
    problems = compatibility.check_directory(args.dir)
    if problems:
        raise ConfigurationError(f"{len(problems)} schema problem(s): " + "; ".join(problems))
    _print(f"schemas in {args.dir}: every version frozen, every current version reads every earlier one")
    return 0


async def cmd_schemas_freeze(args: argparse.Namespace, settings: Settings) -> int:
    written = compatibility.freeze(args.dir)
    for path in written:
        _print(f"froze {path}")
    if not written:
        _print("nothing to freeze: every current version is already in history")
    return 0


def cmd_asyncapi(args: argparse.Namespace, settings: Settings) -> int:
    sys.stdout.write(asyncapi_yaml())
    return 0


# --- archive ---------------------------------------------------------------------------------------------------


async def cmd_sinks(args: argparse.Namespace, settings: Settings) -> int:
    import signal  # noqa: PLC0415  (kept inside the archive block of this module)

    from consumers import SinkRunner  # noqa: PLC0415  (the CLI runs the sinks here, nowhere else)
    from consumers.archive import archive_sinks  # noqa: PLC0415

    runners = [SinkRunner(sink, settings=settings) for sink in (*archive_sinks(settings), *sms_sinks(settings))]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    _print(f"sinks running against {settings.bootstrap_servers}: " + ", ".join(r.sink.name for r in runners))
    _print("Ctrl-C stops them (each commits what it has applied).")
    tasks = [asyncio.create_task(runner.run(stop), name=runner.sink.name) for runner in runners]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop.set()  # one sink failing (or Ctrl-C) stops the others cleanly
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    failures = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
    if failures:
        raise failures[0]
    return 0


async def cmd_archive_replay(args: argparse.Namespace, settings: Settings) -> int:
    from consumers.archive import replay_files, replay_topics  # noqa: PLC0415

    report = await replay_files(
        settings,
        args.from_files,
        topics=replay_topics(args.topic or ()),
        progress=lambda topic, count: _print(f"  {topic:<24} {count:>8} record(s) re-published"),
    )
    for path in report.damaged_files:
        _print(f"  warning: {path} has a damaged tail; its whole blocks were replayed")
    _print(f"replayed {report.total} record(s) from {args.from_files} to {settings.bootstrap_servers}")
    return 0


async def cmd_archive_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from consumers.archive import migrate_archive  # noqa: PLC0415

    applied = await migrate_archive(settings)
    _print(f"archive database: applied migration(s) {applied}" if applied else "archive database: up to date")
    return 0


def add_archive_commands(add: Callable[..., argparse.ArgumentParser]) -> None:
    """The archive's commands: ``firebus sinks``, ``firebus archive migrate|replay``."""
    add("sinks", cmd_sinks, "run the sinks (archive to PostgreSQL and to Avro files) until Ctrl-C")
    archive = add("archive", cmd_archive_migrate, "the archive: PostgreSQL and Avro cold-storage files").add_subparsers(
        dest="archive_command", required=True, metavar="ACTION"
    )
    add("migrate", cmd_archive_migrate, "apply the archive database's pending migrations", archive)
    replay = add("replay", cmd_archive_replay, "re-publish archived records from Avro files to their topics", archive)
    replay.add_argument("--from-files", type=Path, required=True, metavar="DIR", help="archive directory")
    replay.add_argument("--topic", action="append", help="only this topic (repeatable; default: every archived one)")


# --- end archive -----------------------------------------------------------------------------------------------


# --- sms -------------------------------------------------------------------------------------------------------


def sms_sinks(settings: Settings) -> list[Any]:
    """The SMS sink when a gateway password is configured, else none (for ``firebus sinks`` to add to its list)."""
    if settings.sms_password is None:
        return []
    from consumers.sms import SmsSink  # noqa: PLC0415  (the SMS stack only when SMS runs)

    return [SmsSink(settings=settings, county=load_county(settings.config))]


async def cmd_sms_run(args: argparse.Namespace, settings: Settings) -> int:
    import signal  # noqa: PLC0415  (kept inside the sms block of this module)

    from consumers import SinkRunner  # noqa: PLC0415
    from consumers.sms import SmsSink  # noqa: PLC0415

    runner = SinkRunner(SmsSink(settings=settings, county=load_county(settings.config)), settings=settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    _print(f"SMS sink: {settings.bootstrap_servers} -> {settings.sms_gateway_url} (ledger {settings.sms_ledger_path})")
    await runner.run(stop)
    return 0


async def cmd_sms_ledger(args: argparse.Namespace, settings: Settings) -> int:
    from consumers.sms import Ledger  # noqa: PLC0415

    ledger = Ledger(settings.sms_ledger_path)
    try:
        messages = ledger.messages()[-args.last :]
    finally:
        ledger.close()
    for message in messages:
        phone = f"{message.phone[:3]}****{message.phone[-4:]}"
        reason = f"  ({message.reason})" if message.reason else ""
        _print(
            f"{message.status.value:<9} {message.event_type.value:<15} {message.event_id}  {message.recipient:<20} "
            f"{phone}  {message.parts} part(s){reason}"
        )
    return 0


def add_sms_commands(add: Callable[..., argparse.ArgumentParser]) -> None:
    """``firebus sms run`` (the SMS sink on its own) and ``firebus sms ledger`` (what went to whom)."""
    sms = add("sms", cmd_sms_ledger, "the SMS sink: run it, or read its ledger").add_subparsers(
        dest="sms_command", required=True, metavar="ACTION"
    )
    add("run", cmd_sms_run, "run the SMS sink (members and HQ tiers -> Kannel sendsms) until Ctrl-C", sms)
    ledger = add("ledger", cmd_sms_ledger, "the latest SMS planned, held, sent or failed (phones masked)", sms)
    ledger.add_argument("--last", type=int, default=50, help="how many (default 50)")


# --- end sms ---------------------------------------------------------------------------------------------------


# --- stats -----------------------------------------------------------------------------------------------------


async def cmd_stats(args: argparse.Namespace, settings: Settings) -> int:
    from consumers.analytics import (  # noqa: PLC0415  (pandas and matplotlib only for this command)
        compute,
        event_time,
        from_archive,
        from_files,
        from_topics,
        render_tables,
        write_charts,
        write_csv,
    )

    zone = load_county(settings.config).zone
    start, end = event_time(args.start, zone), event_time(args.end, zone)
    if args.source == "archive":
        facts = await from_archive(settings, start=start, end=end)
    elif args.source == "files":
        facts = from_files(args.files_dir or settings.archive_directory, start=start, end=end)
    else:
        facts = await from_topics(settings, start=start, end=end)
    statistics = compute(facts, zone=zone)
    window = f"{start.isoformat() if start else 'the beginning'} to {end.isoformat() if end else 'now'}"
    _print(
        f"statistics from {args.source}, event time {window}: {len(facts.releases)} release(s), "
        f"{len(facts.audits)} audit record(s)"
    )
    _print()
    _print(render_tables(statistics))
    if args.out is not None:
        written = write_csv(statistics, args.out) + write_charts(statistics, args.out)
        _print(f"wrote {len(written)} file(s) to {args.out}: " + ", ".join(path.name for path in written))
    return 0


async def cmd_bench_replay(args: argparse.Namespace, settings: Settings) -> int:
    from consumers.analytics._bench import bench_replay  # noqa: PLC0415

    await bench_replay(settings, load_county(settings.config), events=args.events, out=sys.stdout)
    return 0


def add_stats_commands(add: Callable[..., argparse.ArgumentParser], bench: Any) -> None:
    """``firebus stats`` and ``firebus bench replay`` (added to the existing ``bench`` command)."""
    stats = add("stats", cmd_stats, "statistics over the cleared and audit topics or the archive: tables, CSV, PNG")
    stats.add_argument(
        "--from",
        dest="source",
        choices=("topics", "archive", "files"),
        default="topics",
        help="replay the topics (default), read the PostgreSQL archive, or the archive's Avro files",
    )
    stats.add_argument("--start", help="event-time window start, ISO (no zone: the county's)")
    stats.add_argument("--end", help="event-time window end, exclusive, ISO (no zone: the county's)")
    stats.add_argument("--out", type=Path, metavar="DIR", help="also write CSV files and PNG charts here")
    stats.add_argument("--files-dir", type=Path, metavar="DIR", help="archive files directory (default: archive_dir)")
    replay = add(
        "replay", cmd_bench_replay, "statistics over a replay vs a raw aiokafka consume: events/s, ratio", bench
    )
    replay.add_argument("--events", type=int, default=1_000_000, help="generated releases to publish and replay")


# --- end stats -------------------------------------------------------------------------------------------------


# --- parsing ---------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="firebus", description="County fire-prevention information-sharing bus.")
    parser.add_argument("--config", type=Path, help="TOML config file (default: $FIREBUS_CONFIG or the sample county)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Command, help_text: str, parent: Any = commands) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = parent.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        return sub

    _add_running_commands(add)
    _add_review_commands(add)
    _add_publishing_commands(add)
    bench = _add_tool_commands(add)
    add_portal_parser(add)  # --- portal ---
    add_archive_commands(add)  # --- archive ---
    add_sms_commands(add)  # --- sms ---
    add_stats_commands(add, bench)  # --- stats ---
    return parser


AddCommand = Callable[..., argparse.ArgumentParser]


def _add_running_commands(add: AddCommand) -> None:
    broker = add("broker", cmd_broker, "run the embedded broker (Tansu) on loopback and create the topics")
    broker.add_argument("--port", type=int, help="port on 127.0.0.1 (default: FIREBUS_BROKER_PORT or 9092)")
    up = add("up", cmd_up, "start the embedded broker and every firebus stage; print where to look")
    up.add_argument("--demo", action="store_true", help="also feed a realistic stream of sample events")
    add("processors", cmd_processors, "run the processors worker (faust) against the configured Kafka")
    topics = add("topics", cmd_topics_list, "manage the registered topics").add_subparsers(
        dest="topics_command", required=True, metavar="ACTION"
    )
    add("create", cmd_topics_create, "create the missing registered topics (idempotent)", topics)
    listing = add("list", cmd_topics_list, "list the registered topics", topics)
    listing.add_argument("--broker", action="store_true", help="also show what the broker has")
    add("check", cmd_topics_check, "verify every registered topic exists as declared", topics)


def _add_review_commands(add: AddCommand) -> None:
    review = add("review", cmd_review_list, "the HQ office's review queue (每发必审)").add_subparsers(
        dest="review_command", required=True, metavar="ACTION"
    )
    listing_review = add("list", cmd_review_list, "items awaiting review", review)
    listing_review.add_argument("--all", action="store_true", help="also decided and withdrawn items")
    add("show", cmd_review_show, "one item with its event", review).add_argument("event_id")
    approve = add("approve", cmd_review_decide, "approve an item for release", review)
    reject = add("reject", cmd_review_decide, "reject an item", review)
    for sub in (approve, reject):
        sub.add_argument("event_id")
        sub.add_argument("--reviewer", required=True, help="your reviewer id from the county configuration")
    approve.add_argument("--tiers", help="comma-separated tiers to release to (default: all the audience allows)")
    approve.add_argument("--redact", action="append", metavar="FIELD", help="also hide this field below HQ")
    approve.add_argument("--reason")
    reject.add_argument("--reason", required=True)


def _add_publishing_commands(add: AddCommand) -> None:
    keys = add("keys", cmd_keys_generate, "manage units' signing keys").add_subparsers(
        dest="keys_command", required=True, metavar="ACTION"
    )
    generate = add("generate", cmd_keys_generate, "create a unit's Ed25519 key pair", keys)
    generate.add_argument("--unit", required=True)
    generate.add_argument("--force", action="store_true", help="replace an existing key")

    publish = add("publish", cmd_publish, "validate, sign and publish one event from a JSON or YAML file")
    publish.add_argument("--unit", required=True, help="publishing unit (its key signs the event)")
    publish.add_argument("--person", help="responsible person (default: the unit's name)")
    publish.add_argument("file", help="JSON or YAML draft, - for stdin")

    tail_parser = add("tail", cmd_tail, "print decoded records of a topic as they arrive (one JSON object each)")
    tail_parser.add_argument("topic")
    tail_parser.add_argument("--from-beginning", action="store_true")
    tail_parser.add_argument("--max", type=int, help="stop after this many records")
    tail_parser.add_argument("--idle-timeout", type=float, help="stop after this many seconds without a record")
    tail_parser.add_argument("--pretty", action="store_true", help="indent the JSON")

    simulate = add("simulate", cmd_simulate, "publish a realistic fire season of signed events (reproducible)")
    simulate.add_argument("--events", type=int, default=1_000, help="how many events")
    simulate.add_argument("--rate", type=float, help="events per second (default: as fast as possible)")
    simulate.add_argument("--seed", type=int, default=2026, help="the same seed gives the same season")
    simulate.add_argument("--days", type=int, default=60, help="the season's length, ending now")


def _add_tool_commands(add: AddCommand) -> Any:
    """The tools; returns the ``bench`` command's subcommands, which other blocks extend."""
    bench = add("bench", cmd_bench_processors, "benchmarks that print figures").add_subparsers(
        dest="bench_command", required=True, metavar="WHAT"
    )
    bench_processors = add(
        "processors", cmd_bench_processors, "processors vs a raw aiokafka relay: throughput, latency, ratio", bench
    )
    bench_processors.add_argument("--events", type=int, default=20_000, help="events drained for throughput")
    bench_processors.add_argument("--rate", type=int, default=1_000, help="steady publish rate for latency")
    bench_processors.add_argument("--seconds", type=float, default=10.0, help="how long the steady rate lasts")
    bench_processors.add_argument("--workers", type=int, default=1, help="processors worker processes (one group)")

    schemas = add("schemas", cmd_schemas_check, "check or freeze the Avro contracts").add_subparsers(
        dest="schemas_command", required=True, metavar="ACTION"
    )
    for name, handler, text in (
        ("check", cmd_schemas_check, "every version frozen; the current version reads data of every earlier one"),
        ("freeze", cmd_schemas_freeze, "record new schema versions in schemas/avro/history"),
    ):
        sub = add(name, handler, text, schemas)
        sub.add_argument("--dir", type=Path, default=AVRO_DIR, help="schema directory")
    add("asyncapi", cmd_asyncapi, "print the AsyncAPI 3.0 document of every topic (docs/asyncapi.yaml)")
    return bench


def _settings(args: argparse.Namespace) -> Settings:
    try:
        return Settings(config=args.config) if args.config else Settings()
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ConfigurationError(f"settings: {where}: {first['msg']}") from exc


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = _settings(args)
        configure_logging(log_format=settings.log_format, level=settings.log_level)
        handler: Command = args.handler
        outcome = handler(args, settings)
        return outcome if isinstance(outcome, int) else asyncio.run(outcome)
    except FirebusError as exc:
        sys.stderr.write(f"firebus: error: {exc}\n")
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
