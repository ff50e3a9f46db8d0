"""The ``firebus`` command as an operator runs it: real processes against the session broker."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import pytest
from aiokafka import AIOKafkaProducer

from firebus.broker import free_port
from firebus.codec import Codec
from firebus.events import Audience, Event, EventType
from firebus.kafka import client_options, read_to_end
from firebus.records import ReviewItem, ReviewStatus
from firebus.settings import Settings
from firebus.topics import ALL_TOPICS, HQ_LIVE, REVIEW_ITEMS
from tests.conftest import cli_env_for
from tests.processors.conftest import Worker, wait_for_records
from tests.samples import review_item

ROOT = Path(__file__).resolve().parents[1]
FIRE_REPORT = ROOT / "examples" / "events" / "fire_report.json"
COMMAND_TIMEOUT_S = 180
"""A guard against a hung command, not a speed check: a one-shot command takes seconds when the machine is idle and
was seen taking over 60 s with two cores shared by several test sessions."""


async def firebus(*args: str, env: dict[str, str], stdin: bytes | None = None) -> tuple[int, str, str]:
    """Run the firebus command; return its exit code, stdout and stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli",
        *args,
        env=env,
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(stdin), timeout=COMMAND_TIMEOUT_S)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def error_lines(stderr: str) -> list[str]:
    """The lines an operator sees as the failure (log lines are JSON objects)."""
    return [line for line in stderr.splitlines() if line and not line.startswith("{")]


async def test_published_sample_is_shown_decoded_and_verified_by_tail(cli_env: dict[str, str]) -> None:
    """`firebus publish` lands the sample fire report and `firebus tail` prints it decoded with a verified signature."""
    code, out, err = await firebus("publish", "--unit", "forestry", str(FIRE_REPORT), env=cli_env)
    assert code == 0, err
    receipt = json.loads(out)
    assert receipt["topic"] == "firebus.intake.fire_report"

    code, out, err = await firebus(
        "tail", "firebus.intake.fire_report", "--from-beginning", "--idle-timeout", "3", env=cli_env
    )
    assert code == 0, err
    shown = [json.loads(line) for line in out.splitlines()]
    # Other tests put undecodable records on the same topic; they show as lines with an "error".
    mine = [line for line in shown if line.get("record", {}).get("header", {}).get("event_id") == receipt["event_id"]]
    assert len(mine) == 1
    assert mine[0]["signature"] == "verified"
    assert mine[0]["key"] == "YC-2026-0312-01"
    assert mine[0]["record"]["body"]["place"]["village"] == "桑林村"
    assert mine[0]["offset"] == receipt["offset"]


async def test_tail_marks_an_event_it_has_shown_before(
    cli_env: dict[str, str], settings: Settings, worker: Worker
) -> None:
    """firebus.hq.live is at least once: `firebus tail` shows each record as stored, and marks an event whose event id
    it has already shown as a repeat."""
    code, out, err = await firebus("publish", "--unit", "forestry", str(FIRE_REPORT), env=cli_env)
    assert code == 0, err
    event_id = json.loads(out)["event_id"]
    await wait_for_records(
        settings, HQ_LIVE, lambda record: isinstance(record, Event) and str(record.header.event_id) == event_id
    )
    [(key, value)] = [(k, v) for k, v in await read_to_end(settings, HQ_LIVE) if v and event_id.encode() in v]
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers)
    await producer.start()
    try:
        await producer.send_and_wait(HQ_LIVE.name, value, key=key)  # as a restarted processors worker may
    finally:
        await producer.stop()

    code, out, err = await firebus("tail", HQ_LIVE.name, "--from-beginning", "--idle-timeout", "3", env=cli_env)
    assert code == 0, err
    shown = [json.loads(line) for line in out.splitlines()]
    mine = [line for line in shown if line.get("record", {}).get("header", {}).get("event_id") == event_id]
    assert [line.get("repeat", False) for line in mine] == [False, True]


async def test_publish_reads_yaml_from_stdin(cli_env: dict[str, str]) -> None:
    """A YAML draft piped on stdin (`-`) is published like a file."""
    draft = (
        "type: work_update\nclassification: public\naudience: public\nseverity: minor\nurgency: past\n"
        "body:\n  category: meeting\n  title: 防火工作调度会\n  text: 部署清明期间防火工作。\n"
    )
    code, out, err = await firebus("publish", "--unit", "transport", "-", env=cli_env, stdin=draft.encode())
    assert code == 0, err
    assert json.loads(out)["topic"] == "firebus.intake.work_update"


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["publish", "--unit", "police", str(FIRE_REPORT)], None, "may not publish fire_report"),
        (["publish", "--unit", "nobody", str(FIRE_REPORT)], None, "'nobody' is not in the units registry"),
        (
            ["publish", "--unit", "forestry", "-"],
            b'{"type": "fire_report", "classification": "secret"',
            "not valid JSON",
        ),
        (
            ["publish", "--unit", "forestry", "-"],
            FIRE_REPORT.read_bytes().replace(b'"internal"', b'"secret"'),
            "use phone or official letter",
        ),
        (
            ["publish", "--unit", "forestry", "-"],
            FIRE_REPORT.read_bytes().replace(b'"reported"', b'"smouldering"').replace(b'"severe"', b'"huge"'),
            "body.status",
        ),
        (
            ["publish", "--unit", "forestry", "-"],
            FIRE_REPORT.read_bytes().replace("东侧".encode(), b"\\u0000\\u202e\\r"),
            "body.place.description: control character U+0000 at index 4 (and 2 more forbidden)",
        ),
        (["publish", "--unit", "forestry", "no/such/file.json"], None, "cannot read no/such/file.json"),
        (["tail", "firebus.no.such.topic"], None, "unknown topic 'firebus.no.such.topic'"),
    ],
    ids=[
        "outside-duties",
        "unknown-unit",
        "bad-json",
        "secret",
        "schema-violation",
        "hostile-text",
        "missing-file",
        "unknown-topic",
    ],
)
async def test_bad_input_exits_non_zero_with_one_line(
    args: list[str], stdin: bytes | None, message: str, cli_env: dict[str, str]
) -> None:
    """Every bad input ends the command with exit code 1 and exactly one line saying why."""
    code, _out, err = await firebus(*args, env=cli_env, stdin=stdin)
    assert code == 1
    lines = error_lines(err)
    assert len(lines) == 1, err
    assert lines[0].startswith("firebus: error: ")
    assert message in lines[0]


async def test_schema_violation_lists_every_bad_field(cli_env: dict[str, str]) -> None:
    """A draft with several bad fields names all of them in its one error line."""
    broken = FIRE_REPORT.read_bytes().replace(b'"reported"', b'"smouldering"').replace(b'"severe"', b'"huge"')
    code, _out, err = await firebus("publish", "--unit", "forestry", "-", env=cli_env, stdin=broken)
    assert code == 1
    assert "body.status" in err
    assert "severity" in err


async def test_unreachable_broker_exits_non_zero_with_one_line(cli_env: dict[str, str]) -> None:
    """Publishing with no broker at the configured address fails in one line naming that address."""
    env = {**cli_env, "FIREBUS_BOOTSTRAP": f"127.0.0.1:{free_port()}", "FIREBUS_CONNECT_TIMEOUT_S": "2"}
    code, _out, err = await firebus("publish", "--unit", "forestry", str(FIRE_REPORT), env=env)
    assert code == 1
    lines = error_lines(err)
    assert len(lines) == 1, err
    assert f"cannot reach Kafka at {env['FIREBUS_BOOTSTRAP']}" in lines[0]
    assert err.splitlines() == lines, "the Kafka library's own lines stay out of a one-shot command's output"


async def test_topics_create_is_idempotent_and_check_passes(cli_env: dict[str, str]) -> None:
    """`topics create` on a broker that has them creates none, and `topics check` confirms the registry."""
    code, out, err = await firebus("topics", "create", env=cli_env)
    assert code == 0, err
    assert out.startswith("created 0 topic(s)")
    code, out, err = await firebus("topics", "check", env=cli_env)
    assert code == 0, err
    assert "all 19 topics present" in out


async def test_topics_check_fails_on_a_bare_broker(tmp_path: Path, settings: Settings) -> None:
    """`topics check` against a broker without the topics exits 1 naming what is missing."""
    from firebus.broker import EmbeddedBroker  # noqa: PLC0415

    async with EmbeddedBroker(port=free_port(), log_path=tmp_path / "broker.log") as bare:
        env = {"FIREBUS_BOOTSTRAP": bare.bootstrap_servers, "FIREBUS_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
        code, _out, err = await firebus("topics", "check", env=env)
        json_code, json_out, _err = await firebus("topics", "check", "--json", env=env)
    assert code == 1
    assert "firebus.intake.fire_report: missing" in err
    assert json_code == 1
    report = json.loads(json_out)
    assert report == {"ok": False, "bootstrap": env["FIREBUS_BOOTSTRAP"], "problems": report["problems"]}
    assert len(report["problems"]) == len(ALL_TOPICS)
    assert "firebus.intake.fire_report: missing" in report["problems"]


async def test_co_partitioned_topics_scale_out_together_and_a_mismatch_stops_the_processors(tmp_path: Path) -> None:
    """FIREBUS_REVIEW_PARTITIONS gives the co-partitioned topics (review inbox, review items) that count and the others
    the registry's; a broker where they differ fails `topics check` and the processors refuse to start, both naming
    the topics and counts, instead of writing review state to partitions its events do not arrive on. Intake topics
    may have any count."""
    from aiokafka.admin import NewTopic  # noqa: PLC0415

    from firebus.broker import EmbeddedBroker  # noqa: PLC0415
    from firebus.kafka import describe_topics, start_admin  # noqa: PLC0415
    from firebus.topics import CO_PARTITIONED, HQ_LIVE, INTAKE, REVIEW_INBOX  # noqa: PLC0415

    async with EmbeddedBroker(port=free_port(), log_path=tmp_path / "broker.log") as bare:
        env = {
            "FIREBUS_BOOTSTRAP": bare.bootstrap_servers,
            "FIREBUS_HOME": str(tmp_path),
            "PATH": "/usr/bin:/bin",
            "FIREBUS_REVIEW_PARTITIONS": "6",
            "FIREBUS_PROCESSORS_HEALTH_PORT": "0",  # 9101 may be another process's on a shared machine
        }
        code, _out, err = await firebus("topics", "create", env=env)
        assert code == 0, err
        code, _out, err = await firebus("topics", "check", env=env)
        assert code == 0, err
        scoped = Settings(bootstrap=bare.bootstrap_servers, home=tmp_path)
        counts = {state.topic.name: state.partitions for state in await describe_topics(scoped)}
        assert {counts[topic.name] for topic in CO_PARTITIONED} == {6}
        assert counts[HQ_LIVE.name] == HQ_LIVE.partitions
        assert {counts[topic.name] for topic in INTAKE.values()} == {3}

    async with EmbeddedBroker(port=free_port(), log_path=tmp_path / "broker2.log") as mismatched:
        env = {**env, "FIREBUS_BOOTSTRAP": mismatched.bootstrap_servers}
        del env["FIREBUS_REVIEW_PARTITIONS"]
        scoped = Settings(bootstrap=mismatched.bootstrap_servers, home=tmp_path)
        admin = await start_admin(scoped)
        try:  # an operator widened the inbox by hand (and an intake topic, which is fine)
            fire = INTAKE[next(iter(INTAKE))]
            await admin.create_topics(
                [
                    NewTopic(REVIEW_INBOX.name, 4, 1, topic_configs=REVIEW_INBOX.configs()),
                    NewTopic(fire.name, 5, 1, topic_configs=fire.configs()),
                ]
            )
        finally:
            await admin.close()
        code, _out, err = await firebus("topics", "create", env=env)
        assert code == 0, err
        code, _out, err = await firebus("topics", "check", env=env)
        assert code == 1
        assert f"{REVIEW_INBOX.name}=4" in err
        assert fire.name not in err
        assert "co-partitioned topics differ" in err
        code, out, err = await firebus("topics", "check", "--json", env=env)
        assert code == 1, err
        problems = json.loads(out)["problems"]
        assert any(problem.startswith("co-partitioned topics differ") for problem in problems)
        code, out, err = await firebus("topics", "list", "--json", "--broker", env=env)
        assert code == 0, err
        listed = {entry["name"]: entry for entry in json.loads(out)["topics"]}
        inbox, intake = listed[REVIEW_INBOX.name], listed[fire.name]
        assert (inbox["partitions"], inbox["broker"]["partitions"]) == (REVIEW_INBOX.partitions, 4)
        assert (intake["broker"]["partitions"], intake["broker"]["problems"]) == (5, [])
        code, _out, err = await firebus("processors", env=env)
        assert code == 1
        lines = error_lines(err)
        assert len(lines) == 1, err
        assert "co-partitioned topics differ" in lines[0]


async def test_keys_generate_writes_a_private_key_and_prints_the_public_one(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    """`keys generate` writes a 0600 private key, prints the public key, and refuses to overwrite without --force."""
    env = {**cli_env, "FIREBUS_KEYS_DIR": str(tmp_path)}
    code, out, err = await firebus("keys", "generate", "--unit", "police", env=env)
    assert code == 0, err
    key_file = tmp_path / "police.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "police.pub").read_text().strip() in out
    code, _out, err = await firebus("keys", "generate", "--unit", "police", env=env)
    assert code == 1
    assert "already exists" in err


async def test_schemas_check_passes_on_the_shipped_contracts(cli_env: dict[str, str]) -> None:
    """`schemas check` accepts the shipped contracts and their history."""
    code, out, err = await firebus("schemas", "check", env=cli_env)
    assert code == 0, err
    assert "every version frozen" in out


# --- machine-readable output ---------------------------------------------------------------------------------------

TOPIC_KEYS = {
    "name",
    "partitions",
    "retention_ms",
    "cleanup_policy",
    "key",
    "value",
    "value_schemas",
    "writers",
    "readers",
}
BROKER_KEYS = {"exists", "partitions", "configs", "problems"}


async def test_topics_list_json_is_the_registry(cli_env: dict[str, str]) -> None:
    """`topics list --json` gives every registered topic, in registry order, with exactly its declared fields (who
    writes and reads it included)."""
    code, out, err = await firebus("topics", "list", "--json", env=cli_env)
    assert code == 0, err
    shown = json.loads(out)
    assert set(shown) == {"topics"}
    assert [set(entry) for entry in shown["topics"]] == [TOPIC_KEYS] * len(ALL_TOPICS)
    assert shown["topics"] == [
        {
            "name": topic.name,
            "partitions": topic.partitions,
            "retention_ms": topic.retention_ms,
            "cleanup_policy": topic.cleanup_policy.value,
            "key": topic.key,
            "value": topic.value,
            "value_schemas": list(topic.value_schemas),
            "writers": [actor.value for actor in topic.writers],
            "readers": [actor.value for actor in topic.readers],
        }
        for topic in ALL_TOPICS
    ]


async def test_topics_list_json_with_broker_adds_what_the_broker_has(cli_env: dict[str, str]) -> None:
    """With `--broker` each topic also carries the broker's state: present, as registered, no problems."""
    code, out, err = await firebus("topics", "list", "--json", "--broker", env=cli_env)
    assert code == 0, err
    topics = json.loads(out)["topics"]
    assert [set(entry) for entry in topics] == [TOPIC_KEYS | {"broker"}] * len(ALL_TOPICS)
    for entry in topics:
        assert set(entry["broker"]) == BROKER_KEYS
        assert entry["broker"]["exists"] is True
        assert entry["broker"]["partitions"] >= entry["partitions"]
        assert entry["broker"]["problems"] == []


async def test_topics_check_json_reports_ok(cli_env: dict[str, str]) -> None:
    """`topics check --json` on a broker that matches the registry: ok, no problems, exit 0."""
    code, out, err = await firebus("topics", "check", "--json", env=cli_env)
    assert code == 0, err
    assert json.loads(out) == {"ok": True, "bootstrap": cli_env["FIREBUS_BOOTSTRAP"], "problems": []}


async def test_review_list_json_gives_the_items_without_their_event_bytes(
    cli_env: dict[str, str], settings: Settings
) -> None:
    """`review list --json` lists pending items with every review-item field but the event bytes; `--all` adds the
    settled ones."""
    pending = review_item(townships=["manghe"])
    released = review_item(ReviewStatus.RELEASED)
    producer = AIOKafkaProducer(**client_options(settings), acks="all")
    await producer.start()
    try:
        for item in (pending, released):
            await producer.send_and_wait(REVIEW_ITEMS.name, Codec().encode(item), key=str(item.event_id).encode())
    finally:
        await producer.stop()

    code, out, err = await firebus("review", "list", "--json", env=cli_env)
    assert code == 0, err
    shown = json.loads(out)
    assert set(shown) == {"items"}
    mine = {entry["event_id"]: entry for entry in shown["items"]}
    assert str(released.event_id) not in mine
    entry = mine[str(pending.event_id)]
    assert set(entry) == set(ReviewItem.model_fields) - {"event"}
    assert (entry["status"], entry["event_type"], entry["townships"]) == ("pending", "fire_report", ["manghe"])
    assert entry["audience"] == Audience.MEMBERS.value

    code, out, err = await firebus("review", "list", "--json", "--all", env=cli_env)
    assert code == 0, err
    statuses = {entry["event_id"]: entry["status"] for entry in json.loads(out)["items"]}
    assert statuses[str(pending.event_id)] == "pending"
    assert statuses[str(released.event_id)] == "released"


async def test_sms_ledger_json_masks_phones(cli_env: dict[str, str], tmp_path: Path) -> None:
    """`sms ledger --json` gives the latest messages with exactly the table's facts, phone numbers masked."""
    from consumers.sms import Ledger, Message, MessageStatus  # noqa: PLC0415

    path = tmp_path / "sms.sqlite3"
    ledger = Ledger(path)
    when = datetime(2026, 3, 12, 6, 0, tzinfo=UTC)
    message = Message(
        event_id=uuid4(),
        phone="13800000101",
        recipient="manghe-duty",
        release_id=uuid4(),
        event_type=EventType.FIRE_REPORT,
        tier=Audience.MEMBERS,
        text="【阳城森防】蟒河镇火情",
        parts=1,
        reference=7,
        status=MessageStatus.DEFERRED,
        due_at=when,
        reason="quiet hours",
    )
    try:
        assert ledger.plan(message, when)
    finally:
        ledger.close()
    code, out, err = await firebus("sms", "ledger", "--json", env={**cli_env, "FIREBUS_SMS_LEDGER": str(path)})
    assert code == 0, err
    assert json.loads(out) == {
        "messages": [
            {
                "event_id": str(message.event_id),
                "release_id": str(message.release_id),
                "event_type": "fire_report",
                "tier": "members",
                "recipient": "manghe-duty",
                "phone": "138****0101",
                "parts": 1,
                "status": "deferred",
                "due_at": "2026-03-12T06:00:00+00:00",
                "reason": "quiet hours",
            }
        ]
    }


async def test_tail_reports_a_batch_it_cannot_read_in_one_line_and_goes_on(tmp_path: Path, settings: Settings) -> None:
    """A record batch no client can read (here a snappy batch with damaged data) is one `firebus: error:` line naming
    the offsets; the records on either side of it are printed; the exit code says something was unreadable."""
    from aiokafka import TopicPartition  # noqa: PLC0415

    from firebus.broker import EmbeddedBroker  # noqa: PLC0415
    from firebus.kafka import create_topics  # noqa: PLC0415
    from firebus.topics import HQ_NOTICES  # noqa: PLC0415
    from tests.rawkafka import produce_raw, record_batch  # noqa: PLC0415

    async with EmbeddedBroker(port=free_port(), log_path=tmp_path / "broker.log") as own:
        scoped = settings.model_copy(update={"bootstrap": own.bootstrap_servers, "home": tmp_path})
        await create_topics(scoped)
        notices = TopicPartition(HQ_NOTICES.name, 0)
        for batch in (
            record_batch([b"before"]),
            record_batch([b"x" * 300] * 3, codec="snappy", damage_payload=True),
            record_batch([b"after"]),
        ):
            assert await produce_raw(own.bootstrap_servers, notices, batch) == 0
        env = {**cli_env_for(scoped), "FIREBUS_HOME": str(tmp_path)}
        code, out, err = await firebus("tail", HQ_NOTICES.name, "--from-beginning", "--idle-timeout", "2", env=env)

    assert code == 1
    lines = error_lines(err)
    assert len(lines) == 1, err
    assert lines[0].startswith(f"firebus: error: unreadable record batch at {HQ_NOTICES.name}/0/1..3: snappy")
    assert [json.loads(line)["offset"] for line in out.splitlines()] == [0, 4]
