"""Fixtures of the archive tests: a broker of the module's own, a throwaway PostgreSQL schema, a signing client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest

from consumers.archive import apply_migrations
from firebus.broker import EmbeddedBroker, free_port
from firebus.county import County
from firebus.kafka import create_topics
from firebus.settings import Settings
from producers import FirebusClient
from tests.consumers.archiving import create_schema, drop_schema, dsn_for


@pytest.fixture(scope="module")
async def kafka(keys_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Settings]:
    """Settings pointing at this module's own embedded broker, every topic created."""
    log_path = tmp_path_factory.mktemp("archive-broker") / "broker.log"
    async with EmbeddedBroker(port=free_port(), log_path=log_path) as broker:
        configured = Settings(
            bootstrap=broker.bootstrap_servers,
            home=tmp_path_factory.mktemp("archive-home"),
            keys_dir=keys_dir,
            connect_timeout_s=10,
            fetch_max_wait_ms=50,
            group_session_timeout_s=4,
        )
        await create_topics(configured)
        yield configured


@pytest.fixture(scope="module")
async def pg_schema() -> AsyncIterator[str]:
    """A fresh PostgreSQL schema for this module, migrated, dropped with everything in it at the end."""
    name = await create_schema()
    async with await psycopg.AsyncConnection.connect(dsn_for(name), autocommit=True) as connection:
        await apply_migrations(connection)
    yield name
    await drop_schema(name)


@pytest.fixture(scope="module")
def dsn(pg_schema: str) -> str:
    return dsn_for(pg_schema)


@pytest.fixture(scope="module")
def client(kafka: Settings, county: County) -> FirebusClient:
    """The forestry unit's client, used to build real signed events (and to publish them)."""
    return FirebusClient(settings=kafka, unit="forestry", county=county)
