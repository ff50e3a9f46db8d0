"""`firebus sinks` through faults, with real processes: a database outage longer than every group timeout, a
rebalance in the middle of one, and SIGKILL and SIGTERM under load. Nothing lost, nothing archived twice.

The outages stop a PostgreSQL cluster of the test's own (tests/pgcluster.py); the shared one on 5432 is never
touched. This module runs its own broker (tests/consumers/conftest.py).
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any
from uuid import uuid4

import psycopg
from structlog.testing import capture_logs

from consumers import SinkRunner
from consumers.archive import ArchiveSink, AvroArchive, apply_migrations
from firebus.records import AuditEvent, Release
from firebus.settings import Settings
from producers import FirebusClient
from tests.conftest import cli_env_for
from tests.consumers.archiving import ROOT, archived_ids, fence, fetch, many, outgoing, produce, record_id, rows_present
from tests.pgcluster import own_cluster

SESSION_TIMEOUT_S = 3
POLL_INTERVAL_S = 5
OUTAGE_S = 3 * (2 * SESSION_TIMEOUT_S + POLL_INTERVAL_S)
"""Longer than the group's session, rebalance and poll timeouts together, three times over."""
BACK_WITHIN_S = 10
"""Generous: the runner retries every 2 s at most, and before it did every 30 s."""

Archived = list[Release | AuditEvent]


class Sinks:
    """`firebus sinks` as a child process, started (again) and signalled by the test, its JSON log in a file."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "cli", "sinks", env=self.env, cwd=ROOT, stdout=log, stderr=log
            )

    async def end(self, signum: int = signal.SIGTERM) -> int:
        """Send ``signum`` and wait for the exit code."""
        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(signum)
        return await asyncio.wait_for(self.process.wait(), timeout=60)

    def assert_running(self) -> None:
        assert self.process is not None
        assert self.process.returncode is None, f"firebus sinks exited {self.process.returncode}:\n{self.log_text()}"

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    async def started(self, runs: int) -> bool:
        """Whether both archive sinks have started ``runs`` times (the command's signal handlers are set by then)."""
        return all(len(self.lines("sink_started", sink=name)) >= runs for name in ("archive", "archive-files"))

    async def logged(self, event: str, **fields: Any) -> bool:
        return bool(self.lines(event, **fields))

    def lines(self, event: str, **fields: Any) -> list[dict[str, Any]]:
        """The JSON log lines of ``event`` whose fields include ``fields``."""
        found = []
        for text in self.log_text().splitlines():
            try:
                line = json.loads(text)
            except ValueError:
                continue  # the command's own stdout lines
            if line.get("event") == event and all(line.get(key) == value for key, value in fields.items()):
                found.append(line)
        return found


@asynccontextmanager
async def running_sinks(env: dict[str, str], log_path: Path) -> AsyncIterator[Sinks]:
    sinks = Sinks(env, log_path)
    await sinks.start()
    try:
        yield sinks
    finally:
        if sinks.process is not None and sinks.process.returncode is None:
            await sinks.end(signal.SIGKILL)


def sinks_env(kafka: Settings, dsn: str, files: Path) -> dict[str, str]:
    return {
        **cli_env_for(kafka),
        "FIREBUS_ARCHIVE_DSN": dsn,
        "FIREBUS_ARCHIVE_DIR": str(files),
        "FIREBUS_GROUP_SESSION_TIMEOUT_S": str(SESSION_TIMEOUT_S),
        "FIREBUS_GROUP_POLL_INTERVAL_S": str(POLL_INTERVAL_S),
    }


async def migrate(dsn: str) -> None:
    """The archive's tables, there before any sink connects: the test reads them from the start."""
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as connection:
        await apply_migrations(connection)


def ids_in_files(files: Path) -> Counter[str]:
    """How often each id is in the archive files now; a file just created and not yet whole reads as nothing."""
    try:
        return archived_ids(files) if files.is_dir() else Counter()
    except (EOFError, ValueError):
        return Counter()


async def in_files(files: Path, records: Iterable[Release | AuditEvent]) -> bool:
    return {record_id(r) for r in records} <= set(await asyncio.to_thread(ids_in_files, files))


async def eventually(done: Callable[[], Awaitable[bool]], sinks: Sinks | None = None, within_s: float = 120) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while not await done():
        if sinks is not None:
            sinks.assert_running()
        assert loop.time() < deadline, "not done in time" + (f":\n{sinks.log_text()}" if sinks else "")
        await asyncio.sleep(0.3)


async def assert_archived_exactly_once(dsn: str, files: Path, records: Archived) -> None:
    """Every record in PostgreSQL and in the files, and no id twice in the files (PostgreSQL keys forbid it)."""
    markers = sorted({r.incident_id or "" for r in records if isinstance(r, Release)})
    releases = await fetch(dsn, "SELECT release_id FROM releases WHERE incident_id = ANY(%s)", [markers])
    assert sorted(row[0] for row in releases) == sorted(r.release_id for r in records if isinstance(r, Release))
    audit_markers = sorted({r.details["marker"] for r in records if isinstance(r, AuditEvent)})
    audits = await fetch(dsn, "SELECT audit_id FROM audit_events WHERE details->>'marker' = ANY(%s)", [audit_markers])
    assert sorted(row[0] for row in audits) == sorted(r.audit_id for r in records if isinstance(r, AuditEvent))
    ids = await asyncio.to_thread(archived_ids, files)
    assert {record_id(r) for r in records} <= set(ids)
    assert max(ids.values()) == 1, [key for key, count in ids.items() if count > 1]


async def test_a_database_outage_longer_than_the_group_timeouts_crashes_nothing_and_loses_nothing(
    kafka: Settings, client: FirebusClient, tmp_path: Path
) -> None:
    """PostgreSQL stopped for longer than the group's session, rebalance and poll timeouts while records keep coming:
    `firebus sinks` stays up, the files sink archives on through the outage, one warning says the database is
    unavailable and one line that it is back, the first write comes within seconds of its return, and both archives
    then hold every record exactly once."""
    files = tmp_path / "files"
    marker = f"outage-{uuid4().hex[:8]}"
    async with own_cluster("outage") as database:
        await migrate(database.dsn)
        env = sinks_env(kafka, database.dsn, files)
        async with running_sinks(env, tmp_path / "sinks.log") as sinks:
            sent: Archived = many(client, marker, releases=6, audits=3)
            await produce(kafka, outgoing(sent))
            await eventually(lambda: rows_present(database.dsn, sent), sinks)

            await database.stop()
            loop = asyncio.get_running_loop()
            up_again = loop.time() + OUTAGE_S
            wave = many(client, marker, releases=6, audits=3)
            await produce(kafka, outgoing(wave))
            sent += wave
            await eventually(lambda: in_files(files, wave), sinks)  # the files never waited on PostgreSQL
            await eventually(lambda: sinks.logged("sink_unavailable", sink="archive"), sinks)
            while loop.time() < up_again:  # records keep coming for the whole outage
                wave = many(client, marker, releases=2, audits=1)
                await produce(kafka, outgoing(wave))
                sent += wave
                await asyncio.sleep(1)
            await eventually(lambda: in_files(files, sent), sinks)
            sinks.assert_running()

            await database.start()
            database_back = datetime.now(UTC)
            fenced = await fence(kafka, client)
            await eventually(lambda: rows_present(database.dsn, [*sent, *fenced]), sinks)
            await eventually(lambda: in_files(files, fenced), sinks)
            sinks.assert_running()
            assert await sinks.end(signal.SIGTERM) == 0, sinks.log_text()

        await assert_archived_exactly_once(database.dsn, files, sent)
    assert len(sinks.lines("sink_unavailable", sink="archive")) == 1, "one warning per outage, not one per retry"
    assert sinks.lines("sink_unavailable", sink="archive-files") == []
    [back] = sinks.lines("sink_back", sink="archive")
    assert back["down_s"] >= OUTAGE_S
    assert back["failed_attempts"] >= 3
    assert back["records_waited"] >= 1
    assert (datetime.fromisoformat(back["timestamp"]) - database_back).total_seconds() < BACK_WITHIN_S
    # It kept its place in its group throughout: no partition was taken from it, no commit refused, no crash.
    for trouble in ("sink_partitions_moved", "sink_commit_failed", "sink_crashed"):
        assert sinks.lines(trouble) == [], sinks.log_text()
    assert "CommitFailedError" not in sinks.log_text()


async def test_a_rebalance_during_a_database_outage_loses_nothing(kafka: Settings, client: FirebusClient) -> None:
    """A second instance of the PostgreSQL sink joins its group while the database is down, so the partitions of the
    batch the first one holds move: neither crashes, the first leaves those offsets to their new owner, and once
    the database is back every record is archived, once."""
    fast = kafka.model_copy(
        update={"group_session_timeout_s": SESSION_TIMEOUT_S, "group_poll_interval_s": POLL_INTERVAL_S}
    )
    group = f"t-{uuid4()}"
    marker = f"rebalance-{uuid4().hex[:8]}"
    async with own_cluster("rebalance") as database:
        await migrate(database.dsn)

        def runner() -> SinkRunner:
            made = SinkRunner(ArchiveSink(settings=fast, dsn=database.dsn), settings=fast)
            made.group_id = group
            return made

        stop = asyncio.Event()
        first, second = runner(), runner()
        with capture_logs() as logs:
            tasks = [asyncio.create_task(first.run(stop))]

            async def until(condition: Callable[[], bool | Awaitable[bool]]) -> None:
                async def done() -> bool:
                    for task in tasks:
                        assert not task.done(), task.exception() if task.done() else ""
                    outcome = condition()
                    return await outcome if not isinstance(outcome, bool) else outcome

                await eventually(done)

            sent: Archived = many(client, marker, releases=6, audits=3)
            await produce(kafka, outgoing(sent))
            await until(lambda: rows_present(database.dsn, sent))
            await database.stop()
            sent += await fence(kafka, client)  # on every partition: whoever owns one has a batch waiting
            await until(lambda: first.outage is not None)
            tasks.append(asyncio.create_task(second.run(stop)))
            sent += await fence(kafka, client)
            await until(lambda: second.outage is not None and first.outage is not None)
            await database.start()
            fenced = await fence(kafka, client)
            await until(lambda: rows_present(database.dsn, [*sent, *fenced]))
            await until(lambda: first.outage is None and second.outage is None)
            stop.set()
            await asyncio.wait_for(asyncio.gather(*tasks), timeout=60)

        releases = [r.release_id for r in sent if isinstance(r, Release)]
        rows = await fetch(database.dsn, "SELECT release_id FROM releases WHERE release_id = ANY(%s)", [releases])
        assert sorted(row[0] for row in rows) == sorted(releases)
    moved = [line for line in logs if line["event"] == "sink_partitions_moved"]
    assert moved, "the rebalance came during a batch"
    assert [line for line in logs if line["event"] in ("sink_commit_failed", "sink_crashed")] == []


async def test_sinks_killed_and_terminated_under_load_archive_every_record_once(
    kafka: Settings, client: FirebusClient, dsn: str, tmp_path: Path
) -> None:
    """Records arrive all along while `firebus sinks` is SIGKILLed, SIGTERMed (a clean exit) and SIGKILLed again,
    each time started anew: in the end PostgreSQL and the files hold every record exactly once."""
    files = tmp_path / "files"
    marker = f"kills-{uuid4().hex[:8]}"
    sent: Archived = []
    loading = asyncio.Event()

    async def load() -> None:
        while not loading.is_set():
            wave = many(client, marker, releases=4, audits=2)
            await produce(kafka, outgoing(wave))
            sent.extend(wave)
            await asyncio.sleep(0.3)

    sent += many(client, marker, releases=4, audits=2)
    await produce(kafka, outgoing(sent))
    producer = asyncio.create_task(load())
    async with running_sinks(sinks_env(kafka, dsn, files), tmp_path / "sinks.log") as sinks:
        try:
            for run, signum in enumerate((signal.SIGKILL, signal.SIGTERM, signal.SIGKILL), start=1):
                await eventually(partial(sinks.started, run), sinks)
                # Everything sent so far, some of it while no sinks ran: this run has caught up, and more is coming.
                so_far = list(sent)
                await eventually(partial(rows_present, dsn, so_far), sinks)
                await eventually(partial(in_files, files, so_far), sinks)
                code = await sinks.end(signum)
                assert code == (0 if signum == signal.SIGTERM else -signal.SIGKILL), sinks.log_text()
                await sinks.start()
        finally:
            loading.set()
            await producer
        fenced = await fence(kafka, client)
        await eventually(lambda: rows_present(dsn, [*sent, *fenced]), sinks)
        await eventually(lambda: in_files(files, [*sent, *fenced]), sinks)
        assert await sinks.end(signal.SIGTERM) == 0, sinks.log_text()
    await assert_archived_exactly_once(dsn, files, sent)
    assert sinks.lines("sink_crashed") == []


async def test_a_sink_that_cannot_be_configured_ends_firebus_sinks_with_one_line_naming_it(
    kafka: Settings, dsn: str, tmp_path: Path
) -> None:
    """An archive directory another files sink is writing to is no crash to restart: `firebus sinks` stops every
    sink and exits 1 with one line naming the sink, for `firebus up` to report."""
    files = tmp_path / "files"
    holder = AvroArchive(settings=kafka, directory=files)
    await holder.start()
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "cli",
            "sinks",
            env=sinks_env(kafka, dsn, files),
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    finally:
        await holder.close()
    assert process.returncode == 1
    errors = [line for line in err.decode().splitlines() if line.startswith("firebus: error: ")]
    assert errors == [
        f"firebus: error: sink archive-files: another archive-files sink is writing to {files}; "
        "run one per archive directory"
    ]
