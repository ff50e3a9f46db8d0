"""docs/asyncapi.yaml: generated from the topic registry and the schemas, committed up to date, valid for the AsyncAPI
project's own parser (npm, installed by tests/setup.d/40-asyncapi.sh), and true to who really reads each topic."""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from cli import main
from consumers.archive import ArchiveSink, AvroArchive
from consumers.portal.follow import FOLLOWED
from consumers.sms import SmsSink
from firebus.asyncapi import AVRO_SCHEMA_FORMAT, asyncapi_document, asyncapi_yaml
from firebus.contracts import default_contracts
from firebus.events import EventType
from firebus.topics import ALL_TOPICS, INTAKE, Actor, Topic
from tests.docs.generated import ASYNCAPI, REGENERATE

VALIDATOR = Path(__file__).resolve().parent / "asyncapi"
NODE_TIMEOUT_S = 120


def validate(path: Path) -> subprocess.CompletedProcess[str]:
    """Run the AsyncAPI parser (with the Avro schema parser) over ``path``."""
    node = shutil.which("node")
    assert node is not None, "node is missing: run `sh tests/setup.sh`"
    assert (VALIDATOR / "node_modules" / "@asyncapi" / "parser").is_dir(), "the parser is missing: sh tests/setup.sh"
    return subprocess.run(
        [node, "validate.mjs", str(path)],
        cwd=VALIDATOR,
        capture_output=True,
        text=True,
        timeout=NODE_TIMEOUT_S,
        check=False,
    )


def written(tmp_path: Path, document: dict[str, Any]) -> Path:
    path = tmp_path / "asyncapi.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


# --- committed and valid ---------------------------------------------------------------------------------------


def test_the_committed_document_is_what_the_registry_and_schemas_make_now() -> None:
    """docs/asyncapi.yaml equals the generated document: a topic or schema change means regenerating it."""
    assert ASYNCAPI.read_text(encoding="utf-8") == asyncapi_yaml(), f"docs/asyncapi.yaml is stale: run `{REGENERATE}`"


def test_firebus_asyncapi_prints_the_document(capsys: pytest.CaptureFixture[str]) -> None:
    """`firebus asyncapi` prints exactly the generated document."""
    assert main(["asyncapi"]) == 0
    assert capsys.readouterr().out == asyncapi_yaml()


def test_the_committed_document_is_valid_asyncapi_with_valid_avro_payloads() -> None:
    """The AsyncAPI parser reports no error or warning, and every Avro payload passes the Avro schema parser."""
    result = validate(ASYNCAPI)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(ALL_TOPICS)} channels" in result.stdout


def test_the_validator_refuses_a_wrong_payload_and_a_missing_channel(tmp_path: Path) -> None:
    """The check can fail: an Avro payload naming an undefined type, a record without fields and a channel that
    operations still refer to are each reported, with the parser's diagnostics."""
    good = asyncapi_document()

    undefined_type = copy.deepcopy(good)
    schema = undefined_type["components"]["schemas"]["Release"]["schema"]
    next(f for f in schema["fields"] if f["name"] == "tier")["type"] = "firebus.NoSuchType"

    no_fields = copy.deepcopy(good)
    del no_fields["components"]["schemas"]["DeadLetter"]["schema"]["fields"]

    missing_channel = copy.deepcopy(good)
    del missing_channel["channels"]["firebus.audit"]

    for broken, expected in (
        (undefined_type, "firebus.NoSuchType"),
        (no_fields, "DeadLetter"),
        (missing_channel, "#/channels/firebus.audit"),
    ):
        result = validate(written(tmp_path, broken))
        assert result.returncode == 1, result.stdout
        assert expected in result.stdout


# --- what it says ----------------------------------------------------------------------------------------------


def test_every_registered_topic_is_a_channel_with_its_schemas_and_key() -> None:
    """One channel per topic at its address, one message per value schema whose payload is that schema's current
    standalone Avro schema, and the registry's key description."""
    document = asyncapi_document()
    assert list(document["channels"]) == [topic.name for topic in ALL_TOPICS]
    schemas = document["components"]["schemas"]
    for topic in ALL_TOPICS:
        channel = document["channels"][topic.name]
        assert channel["address"] == topic.name
        assert channel["bindings"]["kafka"]["partitions"] == topic.partitions
        assert len(channel["messages"]) == len(topic.value_schemas)
        for stem, message in zip(topic.value_schemas, channel["messages"].values(), strict=True):
            contract = default_contracts().current(stem)
            payload = schemas[message["payload"]["$ref"].rpartition("/")[2]]
            assert payload == {"schemaFormat": AVRO_SCHEMA_FORMAT, "schema": contract.schema}
            assert message["bindings"]["kafka"]["key"]["description"] == topic.key


def test_every_writer_sends_and_every_reader_receives() -> None:
    """The operations are exactly the registry's writers (send) and readers (receive) of each topic."""
    document = asyncapi_document()
    declared = {
        (action, actor.value, topic.name)
        for topic in ALL_TOPICS
        for action, actors in (("send", topic.writers), ("receive", topic.readers))
        for actor in actors
    }
    found = {
        (operation["action"], operation["tags"][0]["name"], operation["channel"]["$ref"].removeprefix("#/channels/"))
        for operation in document["operations"].values()
    }
    assert found == declared


# --- the registry's declarations -----------------------------------------------------------------------------


def test_every_topic_has_a_writer_a_reader_and_current_schemas() -> None:
    """Each registered topic names who writes it, who reads it, and value schemas that exist."""
    stems = {contract.stem for contract in default_contracts()}
    for topic in ALL_TOPICS:
        assert topic.writers, topic.name
        assert topic.readers, topic.name
        assert topic.value_schemas, topic.name
        assert set(topic.value_schemas) <= stems, topic.name


def test_department_systems_write_only_the_intake_topics_of_their_type() -> None:
    """Outside systems write the intake topics and nothing else; each carries its own type's schema."""
    written_by_outsiders = [topic for topic in ALL_TOPICS if Actor.DEPARTMENT_SYSTEMS in topic.writers]
    assert written_by_outsiders == list(INTAKE.values())
    for event_type, topic in INTAKE.items():
        assert topic.value_schemas == (event_type.value,)
        assert default_contracts().current(event_type.value).event_type is EventType(event_type)


@pytest.mark.parametrize(
    ("actor", "topics"),
    [
        (Actor.SMS, SmsSink.topics),
        (Actor.ARCHIVE, ArchiveSink.topics),
        (Actor.ARCHIVE, AvroArchive.topics),
        (Actor.PORTAL, FOLLOWED),
    ],
    ids=["sms", "archive", "archive-files", "portal"],
)
def test_the_sinks_read_only_topics_that_declare_them_as_readers(actor: Actor, topics: tuple[Topic, ...]) -> None:
    """What a sink subscribes to in code is declared in the registry (so the AsyncAPI document does not lie)."""
    for topic in topics:
        assert actor in topic.readers, topic.name
