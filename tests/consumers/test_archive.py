"""The archive sinks against the real PostgreSQL and a real embedded broker: rows, files, restarts, outages, replay.

This module runs its own broker, so the releases it crafts (and the ones it replays) never reach other sinks'
tests; PostgreSQL gets a throwaway schema per session, dropped at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, date, timedelta
from pathlib import Path
from uuid import uuid4

import psycopg
import pytest
from fastavro import reader
from fastavro.schema import to_parsing_canonical_form
from psycopg import sql

from consumers import Delivery, SinkRunner
from consumers.archive import MIGRATIONS, ArchiveSink, AvroArchive, apply_migrations, archive_files, file_name
from firebus.broker import EmbeddedBroker, free_port
from firebus.contracts import fingerprint_of
from firebus.county import County
from firebus.errors import ConfigurationError
from firebus.events import Audience, Classification, Event, Severity
from firebus.kafka import create_topics, read_to_end
from firebus.records import AuditAction, AuditEvent, DeadLetter, Release, Verdict
from firebus.settings import Settings
from firebus.topics import AUDIT, DEAD_LETTER, TIERS
from producers import FirebusClient, ReviewDesk, load_draft
from tests.consumers.archiving import (
    CODEC,
    DAY_1,
    DAY_2,
    EXAMPLES,
    ROOT,
    archived,
    archived_ids,
    crafted_audit,
    crafted_release,
    create_schema,
    drop_schema,
    dsn_for,
    fence,
    fetch,
    many,
    outgoing,
    produce,
    record_id,
    rows_present,
    run_and_crash,
    run_until,
    sample,
)
from tests.processors.conftest import Worker, decoded, pending_item, wait_for_records
from tests.test_cli import firebus


@pytest.fixture(scope="module")
async def archive_worker(kafka: Settings, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Worker]:
    """A processors worker on this module's broker."""
    running = Worker(kafka, tmp_path_factory.mktemp("archive-worker") / "processors.log")
    await running.start()
    yield running
    await running.stop()


class TcpForwarder:
    """A loopback port that forwards to PostgreSQL once opened: the database 'coming back'."""

    def __init__(self, port: int, target_port: int = 5432) -> None:
        self.port = port
        self.target_port = target_port
        self.server: asyncio.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []

    async def open(self) -> None:
        self.server = await asyncio.start_server(self._forward, "127.0.0.1", self.port)

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            for writer in self.writers:
                writer.close()
            await self.server.wait_closed()

    async def _forward(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self.writers += [client_writer, server_writer]

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.close()

        await asyncio.gather(pipe(client_reader, server_writer), pipe(server_reader, client_writer))


# --- PostgreSQL ----------------------------------------------------------------------------------------------------


async def test_migrations_apply_once_and_are_idempotent() -> None:
    """Migrations run once into an empty schema, even when two sinks start together, and a second run is a no-op."""
    schema = await create_schema()
    try:
        async with (
            await psycopg.AsyncConnection.connect(dsn_for(schema), autocommit=True) as first,
            await psycopg.AsyncConnection.connect(dsn_for(schema), autocommit=True) as second,
        ):
            together = await asyncio.gather(apply_migrations(first), apply_migrations(second))
            assert sorted(together) == [[], [migration.version for migration in MIGRATIONS]]
            assert await apply_migrations(first) == []
        recorded = await fetch(dsn_for(schema), "SELECT version, name FROM schema_migrations ORDER BY version")
        assert recorded == [(migration.version, migration.name) for migration in MIGRATIONS]
        tables = await fetch(
            dsn_for(schema), "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", [schema]
        )
        assert {name for (name,) in tables} == {"schema_migrations", "releases", "audit_events"}
    finally:
        await drop_schema(schema)


async def test_approved_fire_report_lands_as_rows_with_typed_columns(
    kafka: Settings, county: County, dsn: str, archive_worker: Worker
) -> None:
    """A fire report published, approved by a reviewer and released lands as one row per tier with the right typed
    columns and JSONB, and its audit trail (including the sink's own delivery) lands in audit_events."""
    async with FirebusClient(settings=kafka, unit="forestry", county=county) as publisher:
        event_id = (await publisher.publish(sample("fire_report"))).event_id
    desk = ReviewDesk(settings=kafka, county=county)
    item = await pending_item(desk, event_id)
    decision = desk.decision(item, reviewer="hq-wang", verdict=Verdict.APPROVE, reason="核实")
    await desk.publish(item, decision)
    released = await wait_for_records(
        kafka, TIERS[Audience.MEMBERS], lambda r: isinstance(r, Release) and r.event_id == event_id
    )
    event = CODEC.decode(released[0].event)
    assert isinstance(event, Event)

    async def archived_with_trail() -> bool:
        rows = await fetch(dsn, "SELECT tier FROM releases WHERE event_id = %s", [event_id])
        actions = await fetch(dsn, "SELECT DISTINCT action FROM audit_events WHERE event_id = %s", [event_id])
        return len(rows) == 2 and {"accepted", "decided", "released", "delivered"} <= {a for (a,) in actions}

    await run_until(ArchiveSink(settings=kafka, dsn=dsn), kafka, archived_with_trail, group=f"t-{uuid4()}")

    columns = (
        "tier, release_id, event_type, kind, thread_id, incident_id, townships, publisher_unit, publisher_person, "
        "severity, occurred_at, published_at, reviewed_at, reviewer, reviewer_kind, released_at, event, release"
    )
    query = sql.SQL("SELECT {} FROM releases WHERE event_id = %s ORDER BY tier").format(sql.SQL(columns))
    rows = await fetch(dsn, query, [event_id])
    by_tier = {row[0]: row for row in rows}
    assert set(by_tier) == {"hq", "members"}
    members = by_tier["members"]
    assert members[1] == released[0].release_id
    assert members[2:10] == (
        "fire_report",
        "alert",
        event_id,
        "YC-2026-0312-01",
        ["manghe"],
        "forestry",
        "赵林",
        "severe",
    )
    assert members[10:16] == (
        event.header.occurred_at,
        event.header.published_at,
        decision.decided_at,
        "hq-wang",
        "human",
        released[0].released_at,
    )
    assert members[16]["header"]["event_id"] == str(event_id)
    assert members[16]["body"]["reporter_phone"] is None  # the members row holds the members' (redacted) copy
    assert by_tier["hq"][16]["body"]["reporter_phone"] == "13900001111"
    assert "event" not in members[17]
    assert members[17]["decision"]["reviewer"] == "hq-wang"
    audits = await fetch(
        dsn,
        "SELECT action, event_type, publisher_unit, actor, at FROM audit_events WHERE event_id = %s AND action = %s",
        [event_id, "decided"],
    )
    assert audits[0][:4] == ("decided", "fire_report", "forestry", "hq-wang")


async def test_restarting_the_sink_mid_stream_duplicates_no_archive_row(
    kafka: Settings, client: FirebusClient, dsn: str
) -> None:
    """Killed mid-stream (applied, not committed), restarted, then re-run from the beginning under a new group, the
    PostgreSQL sink leaves exactly one row per release and per audit event, never rewritten."""
    marker = f"restart-{uuid4().hex[:8]}"
    records = many(client, marker, releases=30, audits=15)
    await produce(kafka, outgoing(records))
    group = f"t-{uuid4()}"

    await run_and_crash(ArchiveSink(settings=kafka, dsn=dsn), kafka, group=group, after=10)
    fenced = await fence(kafka, client)
    await run_until(ArchiveSink(settings=kafka, dsn=dsn), kafka, lambda: rows_present(dsn, fenced), group=group)

    query_releases = "SELECT release_id, archived_at FROM releases WHERE incident_id = %s ORDER BY release_id"
    query_audits = "SELECT audit_id, archived_at FROM audit_events WHERE details->>'marker' = %s ORDER BY audit_id"
    releases = await fetch(dsn, query_releases, [marker])
    audits = await fetch(dsn, query_audits, [marker])
    assert {row[0] for row in releases} == {r.release_id for r in records if isinstance(r, Release)}
    assert {row[0] for row in audits} == {r.audit_id for r in records if isinstance(r, AuditEvent)}

    fenced = await fence(kafka, client)
    await run_until(
        ArchiveSink(settings=kafka, dsn=dsn), kafka, lambda: rows_present(dsn, fenced), group=f"t-{uuid4()}"
    )
    assert await fetch(dsn, query_releases, [marker]) == releases  # same rows, same archived_at: not rewritten
    assert await fetch(dsn, query_audits, [marker]) == audits


async def test_database_unreachable_then_back_loses_nothing(
    kafka: Settings, client: FirebusClient, pg_schema: str
) -> None:
    """With PostgreSQL unreachable the runner retries with backoff, and once the database answers every record is
    applied."""
    port = free_port()
    dsn = dsn_for(pg_schema, port)
    marker = f"outage-{uuid4().hex[:8]}"
    records = many(client, marker, releases=6, audits=3)
    await produce(kafka, outgoing(records))
    forwarder = TcpForwarder(port)
    runner = SinkRunner(ArchiveSink(settings=kafka, dsn=dsn), settings=kafka)
    runner.group_id = f"t-{uuid4()}"
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    try:
        for _ in range(300):
            if runner.stats.retries >= 2:
                break
            assert not task.done(), task.result()
            await asyncio.sleep(0.1)
        assert runner.stats.retries >= 2
        assert await fetch(dsn_for(pg_schema), "SELECT 1 FROM releases WHERE incident_id = %s", [marker]) == []
        await forwarder.open()
        wanted = {r.release_id for r in records if isinstance(r, Release)}
        for _ in range(300):
            rows = await fetch(dsn_for(pg_schema), "SELECT release_id FROM releases WHERE incident_id = %s", [marker])
            if {row[0] for row in rows} == wanted:
                break
            await asyncio.sleep(0.1)
        assert {row[0] for row in rows} == wanted
        audits = await fetch(
            dsn_for(pg_schema), "SELECT count(*) FROM audit_events WHERE details->>'marker' = %s", [marker]
        )
        assert audits == [(3,)]
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)
        await forwarder.close()


async def test_poison_records_go_to_dead_letter_and_the_sink_moves_on(
    kafka: Settings, client: FirebusClient, dsn: str
) -> None:
    """Undecodable bytes on a tier topic and a release whose event does not decode are dead-lettered with the
    reason, and the records after them are archived."""
    marker = f"poison-{uuid4().hex[:8]}"
    garbage = b"not an avro record " + marker.encode()
    broken = crafted_release(client, Audience.HQ, marker, DAY_2).model_copy(update={"event": b"\xc3\x01broken"})
    good = crafted_release(client, Audience.HQ, marker, DAY_2)
    await produce(kafka, [(TIERS[Audience.HQ], b"k", garbage, 0), *outgoing([broken, good], 0)])
    fenced = await fence(kafka, client)
    await run_until(
        ArchiveSink(settings=kafka, dsn=dsn), kafka, lambda: rows_present(dsn, fenced), group=f"t-{uuid4()}"
    )

    rows = await fetch(dsn, "SELECT event_id FROM releases WHERE incident_id = %s", [marker])
    assert rows == [(good.event_id,)]
    letters = [r for r in decoded(CODEC, await read_to_end(kafka, DEAD_LETTER)) if isinstance(r, DeadLetter)]
    by_value = {letter.value: letter for letter in letters if letter.stage == "consumers.archive"}
    assert by_value[garbage].source_topic == TIERS[Audience.HQ].name
    assert "undecodable" in by_value[garbage].reason
    assert "does not decode" in by_value[CODEC.encode(broken)].reason


@pytest.mark.parametrize("batches", ["one batch", "two batches"])
@pytest.mark.parametrize("order", ["older first", "newer first"])
async def test_the_newer_release_of_an_event_to_a_tier_wins_whichever_arrives_last(
    kafka: Settings, client: FirebusClient, dsn: str, order: str, batches: str
) -> None:
    """Two releases of one event to one tier (a later decision): its row holds the one released last, whether the
    older arrives first or last, in the same batch or in the next."""
    older = crafted_release(client, Audience.MEMBERS, f"newer-{uuid4().hex[:8]}", DAY_1)
    decision = older.decision.model_copy(
        update={"decision_id": uuid4(), "reviewer": "hq-wang", "decided_at": DAY_2 - timedelta(minutes=1)}
    )
    newer = older.model_copy(update={"release_id": uuid4(), "released_at": DAY_2, "decision": decision})
    sink = ArchiveSink(settings=kafka, dsn=dsn)
    await sink.start()
    try:
        arrivals = [older, newer] if order == "older first" else [newer, older]
        for offset, (topic, key, value, _partition) in enumerate(outgoing(arrivals)):
            await sink.deliver(Delivery(topic.name, 0, offset, key, value, CODEC.decode(value)))
            if batches == "two batches":
                await sink.flush()
        await sink.flush()
    finally:
        await sink.close()
    rows = await fetch(
        dsn, "SELECT release_id, released_at, reviewer FROM releases WHERE event_id = %s", [older.event_id]
    )
    assert rows == [(newer.release_id, DAY_2, "hq-wang")]


# --- Avro files ----------------------------------------------------------------------------------------------------


async def test_avro_files_hold_each_record_exactly_once_across_restarts(
    kafka: Settings, client: FirebusClient, tmp_path: Path
) -> None:
    """Killed mid-stream, restarted and re-run from the beginning, the Avro files hold every record exactly once, per
    topic and UTC day, rolled at the size cap, each file readable by fastavro with the full schema embedded."""
    marker = f"files-{uuid4().hex[:8]}"
    records = many(client, marker, releases=30, audits=15)
    await produce(kafka, outgoing(records))
    group = f"t-{uuid4()}"

    def files_sink() -> AvroArchive:
        return AvroArchive(settings=kafka, directory=tmp_path, max_file_bytes=12 * 1024)

    async def fenced_in_files(fenced: list[Release | AuditEvent]) -> bool:
        return {record_id(r) for r in fenced} <= set(await asyncio.to_thread(archived_ids, tmp_path))

    await run_and_crash(files_sink(), kafka, group=group, after=10)
    fenced = await fence(kafka, client)
    await run_until(files_sink(), kafka, lambda: fenced_in_files(fenced), group=group)
    fenced = await fence(kafka, client)
    await run_until(files_sink(), kafka, lambda: fenced_in_files(fenced), group=f"t-{uuid4()}")

    ids = archived_ids(tmp_path)
    assert max(ids.values()) == 1  # every record of every topic, ours or not, exactly once
    assert {record_id(r) for r in records} <= set(ids)
    files = archived(tmp_path)

    for path in files:
        with path.open("rb") as handle:
            avro = reader(handle)
            stem = "audit_event" if path.parent.name == AUDIT.name else "release"
            assert avro.codec == "deflate"
            assert fingerprint_of(to_parsing_canonical_form(avro.writer_schema)) == (
                CODEC.contracts.current(stem).fingerprint
            )
    hq = tmp_path / TIERS[Audience.HQ].name
    days = {path.name[:10] for path in hq.iterdir()}
    assert {DAY_1.date().isoformat(), DAY_2.date().isoformat()} <= days
    assert any(path.name.endswith("-001.avro") for path in files)  # rolled at the size cap
    for path, content in files.items():
        for record in content:
            moment = record.get("released_at") or record["at"]
            assert path.name.startswith(moment.astimezone(UTC).date().isoformat())
    original = next(r for r in records if isinstance(r, Release))
    stored = next(rec for content in files.values() for rec in content if rec.get("release_id") == original.release_id)
    assert Release.model_validate(stored) == original


# --- replay ----------------------------------------------------------------------------------------------------------


async def test_replay_refills_topics_from_the_files(
    kafka: Settings, client: FirebusClient, cli_env: dict[str, str], tmp_path: Path
) -> None:
    """`firebus archive replay --from-files DIR --topic ...` re-publishes each archived record of those topics to
    its topic, byte for byte and with the processors' key, and leaves the other topics alone."""
    marker = f"replay-{uuid4().hex[:8]}"
    records: list[Release | AuditEvent] = [
        crafted_release(client, Audience.MEMBERS, marker, DAY_1),
        crafted_release(client, Audience.MEMBERS, marker, DAY_2),
        crafted_release(client, Audience.HQ, marker, DAY_2),
        crafted_audit(marker, DAY_1),
    ]
    sink = AvroArchive(settings=kafka, directory=tmp_path)
    for offset, (topic, key, value, _partition) in enumerate(outgoing(records)):
        await sink.deliver(Delivery(topic.name, 0, offset, key, value, CODEC.decode(value)))
    await sink.flush()

    env = {**cli_env, "FIREBUS_BOOTSTRAP": kafka.bootstrap_servers}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli",
        "archive",
        "replay",
        "--from-files",
        str(tmp_path),
        "--topic",
        TIERS[Audience.MEMBERS].name,
        "--topic",
        AUDIT.name,
        env=env,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, stderr.decode()
    assert "replayed 3 record(s)" in stdout.decode()

    for topic, key, value, _partition in outgoing(records):
        on_topic = [(k, v) for k, v in await read_to_end(kafka, topic) if v == value]
        if topic is TIERS[Audience.HQ]:
            assert on_topic == []  # not asked for
        else:
            assert on_topic == [(key, value)]


async def ids_on_topics(settings: Settings) -> Counter[str]:
    """How many times each release id (per tier) and audit id is on the tier and audit topics."""
    found: Counter[str] = Counter()
    for topic in (*TIERS.values(), AUDIT):
        for record in decoded(CODEC, await read_to_end(settings, topic)):
            if isinstance(record, Release):
                found[f"{topic.name} {record.release_id}"] += 1
            elif isinstance(record, AuditEvent):
                found[f"{topic.name} {record.audit_id}"] += 1
    return found


async def cli(*args: str, env: dict[str, str]) -> str:
    """The standard output of a ``firebus`` command that must succeed."""
    code, out, err = await firebus(*args, env=env)
    assert code == 0, err
    return out


async def test_after_a_broker_restart_the_archive_files_bring_the_tiers_and_the_audit_trail_back(
    settings: Settings, county: County, cli_env: dict[str, str], tmp_path: Path
) -> None:
    """The operator's way back after the embedded broker lost everything (README, Reliability): events released by a
    real worker and archived by a real `firebus sinks` are gone when an empty broker takes the old one's port;
    `firebus archive replay --from-files DIR` puts every release and audit record back on its topic once, and
    `firebus stats --from topics` says what it said before the loss."""
    port, files = free_port(), tmp_path / "archive"
    schema = await create_schema()
    home = tmp_path / "home"
    env = {
        **cli_env,
        "FIREBUS_BOOTSTRAP": f"127.0.0.1:{port}",
        "FIREBUS_HOME": str(home),
        "FIREBUS_ARCHIVE_DSN": dsn_for(schema),
        "FIREBUS_ARCHIVE_DIR": str(files),
        "FIREBUS_GROUP_SESSION_TIMEOUT_S": "4",
        "FIREBUS_FETCH_MAX_WAIT_MS": "50",
    }
    routine = load_draft(EXAMPLES / "work_update.json").model_copy(
        update={"audience": Audience.MEMBERS, "classification": Classification.INTERNAL, "severity": Severity.MINOR}
    )
    try:
        async with await psycopg.AsyncConnection.connect(dsn_for(schema), autocommit=True) as connection:
            await apply_migrations(connection)
        async with EmbeddedBroker(port=port, log_path=tmp_path / "broker.log") as first:
            isolated = settings.model_copy(update={"bootstrap": first.bootstrap_servers, "home": home})
            await create_topics(isolated)
            worker = Worker(isolated, tmp_path / "processors.log")
            await worker.start()
            with (tmp_path / "sinks.log").open("wb") as log:
                sinks = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "cli", "sinks", env=env, cwd=ROOT, stdout=log, stderr=log
                )
            try:
                async with FirebusClient(settings=isolated, unit="forestry", county=county) as client:
                    released = [(await client.publish(routine)).event_id for _ in range(6)]

                async def all_archived() -> bool:
                    """Every event released, each release delivered by both archive sinks (their delivery audits
                    are the last records anything writes), and everything on the topics in the files."""
                    tier = decoded(CODEC, await read_to_end(isolated, TIERS[Audience.MEMBERS]))
                    releases = {record.release_id for record in tier if isinstance(record, Release)}
                    done = {record.event_id for record in tier if isinstance(record, Release)}
                    delivered = Counter(
                        record.details.get("release_id")
                        for record in decoded(CODEC, await read_to_end(isolated, AUDIT))
                        if isinstance(record, AuditEvent) and record.action is AuditAction.DELIVERED
                    )
                    if not set(released) <= done or any(delivered[str(r)] < 2 for r in releases):
                        return False
                    archived = {f"{topic} {key}" for topic, key in archived_keys(files)}
                    return set(await ids_on_topics(isolated)) <= archived

                await eventually(all_archived, "the releases and audit records never all reached the files")
            finally:
                sinks.terminate()
                await sinks.wait()
                await worker.stop()
            before = await ids_on_topics(isolated)
            stats_before = (await cli("stats", "--from", "topics", env=env)).splitlines()[0]
        assert before
        assert set(before.values()) == {1}

        async with EmbeddedBroker(port=port, log_path=tmp_path / "broker.log"):
            await create_topics(isolated)
            assert await ids_on_topics(isolated) == Counter()  # the new broker has nothing
            replayed = await cli("archive", "replay", "--from-files", str(files), env=env)
            assert f"replayed {sum(before.values())} record(s)" in replayed
            assert await ids_on_topics(isolated) == before
            assert (await cli("stats", "--from", "topics", env=env)).splitlines()[0] == stats_before
    finally:
        await drop_schema(schema)


def archived_keys(directory: Path) -> list[tuple[str, str]]:
    """(topic, id) of every record in the archive files under ``directory`` (one folder per topic)."""
    try:
        return [
            (path.parent.name, str(record.get("release_id") or record["audit_id"]))
            for path, records in archived(directory).items()
            for record in records
        ]
    except (EOFError, ValueError, FileNotFoundError):  # not yet created, or a file's header not yet written
        return []


async def eventually(check: Callable[[], Awaitable[bool]], what: str, within_s: float = 120) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while not await check():
        assert loop.time() < deadline, what
        await asyncio.sleep(0.5)


def test_archive_file_names_roll_by_day_and_index(tmp_path: Path) -> None:
    """The first file of a day is `<day>.avro`, the next ones `<day>-001.avro` …, and they are listed in order."""
    day = date(2026, 3, 12)
    names = [file_name(day, index) for index in (0, 1, 2, 10)]
    assert names == ["2026-03-12.avro", "2026-03-12-001.avro", "2026-03-12-002.avro", "2026-03-12-010.avro"]
    for name in [*reversed(names), "2026-03-11-001.avro", "notes.txt"]:
        (tmp_path / name).touch()
    assert [path.name for _day, _index, path in archive_files(tmp_path)] == ["2026-03-11-001.avro", *names]


async def test_one_files_sink_per_archive_directory(kafka: Settings, tmp_path: Path) -> None:
    """A second files sink on a directory another one is writing to refuses to start, and starts once it is free."""
    first, second = AvroArchive(settings=kafka, directory=tmp_path), AvroArchive(settings=kafka, directory=tmp_path)
    await first.start()
    with pytest.raises(ConfigurationError, match="one per archive directory"):
        await second.start()
    await first.close()
    await second.start()
    await second.close()


async def test_firebus_sinks_command_archives_until_stopped(
    kafka: Settings, client: FirebusClient, cli_env: dict[str, str], dsn: str, tmp_path: Path
) -> None:
    """`firebus sinks` runs both archive sinks: a release lands in PostgreSQL and in the files, and SIGTERM stops it
    cleanly."""
    release = crafted_release(client, Audience.MEMBERS, f"cli-{uuid4().hex[:8]}", DAY_2)
    await produce(kafka, outgoing([release]))
    env = {
        **cli_env,
        "FIREBUS_BOOTSTRAP": kafka.bootstrap_servers,
        "FIREBUS_ARCHIVE_DSN": dsn,
        "FIREBUS_ARCHIVE_DIR": str(tmp_path),
        "FIREBUS_GROUP_SESSION_TIMEOUT_S": "4",
    }
    log_path = tmp_path / "sinks.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "cli", "sinks", env=env, cwd=ROOT, stdout=log, stderr=log
        )
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while True:
            in_db = await fetch(dsn, "SELECT 1 FROM releases WHERE release_id = %s", [release.release_id])
            try:
                in_files = str(release.release_id) in await asyncio.to_thread(archived_ids, tmp_path)
            except (EOFError, ValueError):  # a file the sink has just created, its header not yet written
                in_files = False
            if in_db and in_files:
                break
            assert process.returncode is None, log_path.read_text()
            assert loop.time() < deadline, log_path.read_text()
            await asyncio.sleep(0.3)
    finally:
        if process.returncode is None:
            process.terminate()
        returncode = await asyncio.wait_for(process.wait(), timeout=30)
    assert returncode == 0, log_path.read_text()
    assert "sinks running" in log_path.read_text()
