"""docs/architecture.md stays true: every registered topic and every top-level package is in it, and each topic's
row names exactly the rooms whose code uses that topic."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from firebus import topics as registry
from firebus.topics import ALL_TOPICS, Topic

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "architecture.md"
ROOMS = ("producers", "processors", "consumers")


def topic_constants() -> dict[str, list[Topic]]:
    """Each registry constant that names topics one by one (``HQ_LIVE``, ``INTAKE`` …) and the topics it holds;
    collections of every topic, such as ``ALL_TOPICS``, say nothing about one topic and are left out."""
    constants: dict[str, list[Topic]] = {}
    for constant, value in vars(registry).items():
        if isinstance(value, Topic):
            constants[constant] = [value]
        elif isinstance(value, dict) and value and all(isinstance(topic, Topic) for topic in value.values()):
            constants[constant] = list(value.values())
    return constants


def registered_topics() -> dict[str, Topic]:
    """Every topic the registry declares, deployment and benchmark alike."""
    return {topic.name: topic for held in topic_constants().values() for topic in held}


def topics_table(text: str) -> dict[str, set[str]]:
    """Topic name → the rooms named in its row's "written by" and "read by" cells."""
    section = text.split("\n## Topics\n", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, set[str]] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 4 or not cells[0].startswith("`"):
            continue
        rooms = {room for room in ROOMS if re.search(rf"\b{room}\b", cells[1] + " " + cells[2])}
        for name in re.findall(r"`([^`]+)`", cells[0]):
            rows[name] = rooms
    return rows


def rooms_using_each_topic() -> dict[str, set[str]]:
    """Topic name → the rooms whose modules use a registry constant holding it."""
    constants = topic_constants()
    using: dict[str, set[str]] = {name: set() for name in registered_topics()}
    for room in ROOMS:
        for path in (ROOT / room).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            imported = {
                alias.asname or alias.name: alias.name
                for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom) and node.module == "firebus.topics"
                for alias in node.names
            }
            used = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and node.id in imported}
            for local in used:
                for topic in constants.get(imported[local], []):
                    using[topic.name].add(room)
    return using


TEXT = DOC.read_text(encoding="utf-8")


def test_every_registered_topic_has_one_row_and_no_row_names_a_topic_the_registry_lacks() -> None:
    """The topics table names exactly the registry's topics: one added or dropped there must be added or dropped
    here."""
    assert sorted(topics_table(TEXT)) == sorted(registered_topics())


@pytest.mark.parametrize("name", sorted(registered_topics()))
def test_each_topic_row_names_the_rooms_that_use_it(name: str) -> None:
    """A topic's row names exactly the rooms whose code writes or reads it."""
    assert topics_table(TEXT)[name] == rooms_using_each_topic()[name]


@pytest.mark.parametrize("package", sorted(path.parent.name for path in ROOT.glob("*/__init__.py")))
def test_every_top_level_package_is_described(package: str) -> None:
    """Each top-level package (tests aside) has its row among the rooms."""
    if package == "tests":
        return
    assert f"| `{package}` |" in TEXT


def test_the_diagram_shows_every_deployed_topic() -> None:
    """The one diagram names each deployed topic, or its family (``firebus.intake.<type>``, ``firebus.tier.{…}``)."""
    [diagram] = re.findall(r"```mermaid\n(.*?)```", TEXT, re.DOTALL)
    for topic in ALL_TOPICS:
        family = topic.name.rsplit(".", 1)[0]
        assert topic.name in diagram or f"{family}.&lt;" in diagram or f"{family}.{{" in diagram, topic.name
