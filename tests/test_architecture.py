"""docs/architecture.md stays true: every registered topic has its row with exactly the registry's writers and
readers, every actor and every top-level package is placed, and the rooms whose code uses a topic are exactly the
rooms of its writers and readers."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from firebus import topics as registry
from firebus.topics import ALL_TOPICS, Actor, Topic

ROOT = Path(__file__).resolve().parents[1]
TEXT = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
ROOMS = ("producers", "processors", "consumers")


def section(title: str) -> str:
    return TEXT.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def table_rows(title: str) -> list[list[str]]:
    """The body rows of the section's table, as cells."""
    rows = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in section(title).splitlines()]
    return [cells for cells in rows if len(cells) > 2 and cells[0].startswith("`")]


def ticked(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


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


REGISTERED = {topic.name: topic for held in topic_constants().values() for topic in held}
"""Every topic the registry declares, deployment and benchmark alike."""


def actors_in(cell: str) -> set[str]:
    """The actor-like names (``review_desk``) ticked in a cell; ticked commands in its remarks are not actors."""
    return {name for name in ticked(cell) if re.fullmatch(r"[a-z_]+", name)}


def documented_topics() -> dict[str, tuple[set[str], set[str]]]:
    """Topic name → the actors its row names as writers and as readers."""
    return {
        name: (actors_in(cells[1]), actors_in(cells[2])) for cells in table_rows("Topics") for name in ticked(cells[0])
    }


def actor_rooms() -> dict[str, str]:
    """Actor → the package its code lives in, from the actors table."""
    return {ticked(cells[0])[0]: cells[1] for cells in table_rows("Actors")}


def rooms_using_each_topic() -> dict[str, set[str]]:
    """Topic name → the rooms whose modules use a registry constant holding it."""
    constants = topic_constants()
    using: dict[str, set[str]] = {name: set() for name in REGISTERED}
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


def test_every_registered_topic_has_one_row_and_no_row_names_a_topic_the_registry_lacks() -> None:
    """The topics table names exactly the registry's topics: one added or dropped there must be added or dropped
    here."""
    assert sorted(documented_topics()) == sorted(REGISTERED)


@pytest.mark.parametrize("name", sorted(REGISTERED))
def test_each_row_names_the_registrys_writers_and_readers(name: str) -> None:
    """A topic's row names exactly the actors the registry declares as its writers and its readers."""
    topic = REGISTERED[name]
    assert documented_topics()[name] == ({actor.value for actor in topic.writers}, {a.value for a in topic.readers})


def test_every_actor_is_placed_in_one_package() -> None:
    """The actors table places every actor of the registry, once, in a top-level package."""
    rows = table_rows("Actors")
    assert sorted(ticked(cells[0])[0] for cells in rows) == sorted(actor.value for actor in Actor)
    assert set(actor_rooms().values()) <= {*ROOMS, "cli"}


@pytest.mark.parametrize("topic", ALL_TOPICS, ids=lambda topic: topic.name)
def test_the_rooms_using_a_topic_are_the_rooms_of_its_writers_and_readers(topic: Topic) -> None:
    """Whose code uses a deployed topic is who the registry says writes or reads it, room by room: a room that
    starts reading a topic without being declared (or stops while still declared) fails here. Operators work
    through the CLI, which reads topics by name, so they count for no room."""
    rooms = actor_rooms()
    declared = {rooms[actor.value] for actor in (*topic.writers, *topic.readers)} - {"cli"}
    assert rooms_using_each_topic()[topic.name] == declared


@pytest.mark.parametrize("package", sorted(path.parent.name for path in ROOT.glob("*/__init__.py")))
def test_every_top_level_package_is_described(package: str) -> None:
    """Each top-level package (tests aside) has its row among the rooms."""
    if package != "tests":
        assert f"| `{package}` |" in section("Rooms")


def test_the_diagram_shows_every_deployed_topic() -> None:
    """The one diagram names each deployed topic, or its family (``firebus.intake.<type>``, ``firebus.tier.{…}``)."""
    [diagram] = re.findall(r"```mermaid\n(.*?)```", TEXT, re.DOTALL)
    for topic in ALL_TOPICS:
        family = topic.name.rsplit(".", 1)[0]
        assert topic.name in diagram or f"{family}.&lt;" in diagram or f"{family}.{{" in diagram, topic.name
