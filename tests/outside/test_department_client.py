"""The outside department client is built from the document alone: it imports nothing of firebus, and it reproduces
the document's signed test vector byte for byte from the document's own key and event."""

from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path

import pytest

from tests.outside import department_client
from tests.outside.department_client import EventWriter, load_schemas

CLIENT = Path(department_client.__file__)
WIRE_FORMAT = Path(__file__).resolve().parents[2] / "docs" / "wire-format.md"

THIRD_PARTY = {"confluent_kafka", "cryptography", "fastavro", "nacl"}
"""What an outside team uses besides the standard library: a Kafka client, an Avro library, an Ed25519 library."""


def imported_modules(source: str) -> set[str]:
    """Every module ``source`` imports, by its full dotted name (relative imports keep their dots)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            found.add("." * node.level + (node.module or ""))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name | ast.Attribute):
            name = node.func.id if isinstance(node.func, ast.Name) else node.func.attr
            if name in {"__import__", "import_module"}:
                found.add(f"<dynamic import: {ast.unparse(node)}>")
    return found


def foreign_imports(source: str) -> list[str]:
    """The imports that are neither the standard library nor the outside team's own third-party libraries."""
    return sorted(
        name for name in imported_modules(source) if name.split(".")[0] not in sys.stdlib_module_names | THIRD_PARTY
    )


def test_the_department_client_imports_nothing_of_firebus() -> None:
    """No firebus package (firebus, producers, processors, consumers, cli), no test helper, no dynamic import."""
    assert foreign_imports(CLIENT.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(
    "line",
    [
        "from firebus.codec import Codec",
        "import producers",
        "from processors.gate import IntakeGate",
        "import consumers.portal.app as portal",
        "from cli import main",
        "from tests.rawkafka import record_batch",
        "from . import helper",
        "importlib.import_module('firebus.signing')",
        "__import__('firebus')",
    ],
)
def test_the_import_check_finds_each_way_in(line: str) -> None:
    """The check above cannot pass on a client that reaches into firebus by any import form."""
    assert foreign_imports(f"import json\n{line}\n") != []


def generated_block(document: str, name: str) -> str:
    found = re.search(rf"<!-- BEGIN GENERATED {name} -->\n(.*?)<!-- END GENERATED {name} -->", document, re.DOTALL)
    assert found is not None, f"docs/wire-format.md has no {name} block"
    return found.group(1)


def fenced(block: str, language: str) -> str:
    found = re.search(rf"```{language}\n(.*?)```", block, re.DOTALL)
    assert found is not None
    return found.group(1)


def hex_dump(block: str) -> bytes:
    lines = fenced(block, "text").strip().splitlines()
    return bytes.fromhex("".join(line.split(":", 1)[1] for line in lines))


def test_the_client_reproduces_the_documented_test_vector(tmp_path: Path) -> None:
    """From the document's PEM key and event alone, the client's unsigned bytes, signature and record are the
    document's, and its fingerprints are the document's table."""
    document = WIRE_FORMAT.read_text(encoding="utf-8")
    key_block = generated_block(document, "vector-key")
    pem = re.search(r"-----BEGIN PRIVATE KEY-----.*?-----END PRIVATE KEY-----\n", key_block, re.DOTALL)
    assert pem is not None
    key_file = tmp_path / "forestry.key"
    key_file.write_text(pem.group(0), encoding="ascii")
    event = json.loads(fenced(generated_block(document, "vector-event"), "json"))
    event["header"]["signature"] = b""

    schemas = load_schemas()
    writer = EventWriter(unit="forestry", signing_key=key_file, schemas=schemas)
    unsigned = schemas["fire_report"].encode(event)
    assert unsigned == hex_dump(generated_block(document, "vector-unsigned"))
    assert writer.sign(event) == hex_dump(generated_block(document, "vector-record"))

    table = generated_block(document, "fingerprints")
    for schema in schemas.values():
        row = re.search(rf"\| `{schema.name}` \|.*?\| `([0-9a-f ]{{23}})` \| current \|", table)
        assert row is not None, schema.name
        assert schema.prefix[2:] == bytes.fromhex(row.group(1)), schema.name
