"""Shared fixtures: a real embedded broker for the whole session, settings pointing at it, units' keys."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser

from firebus.broker import EmbeddedBroker, free_port
from firebus.county import County, load_county
from firebus.kafka import create_topics
from firebus.settings import SAMPLE_CONFIG, Settings
from firebus.signing import generate_unit_key
from tests.browser import chromium
from tests.processors.conftest import Worker

# The developer's own FIREBUS_* environment must not leak into what the tests check.
for _name in [name for name in os.environ if name.startswith("FIREBUS_")]:
    del os.environ[_name]


@pytest.fixture(scope="session")
def county() -> County:
    return load_county(SAMPLE_CONFIG)


@pytest.fixture(scope="session")
def keys_dir(tmp_path_factory: pytest.TempPathFactory, county: County) -> Path:
    """Every sample unit's key pair, generated once for the session."""
    directory = tmp_path_factory.mktemp("keys")
    for unit in county.units:
        generate_unit_key(directory, unit.id)
    return directory


@pytest.fixture(scope="session")
async def broker(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[EmbeddedBroker]:
    """The real embedded broker (Tansu), on a free port, with every registered topic created."""
    log_path = tmp_path_factory.mktemp("broker") / "broker.log"
    async with EmbeddedBroker(port=free_port(), log_path=log_path) as running:
        yield running


@pytest.fixture(scope="session")
async def settings(broker: EmbeddedBroker, keys_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings for a firebus process talking to the session broker."""
    configured = Settings(
        bootstrap=broker.bootstrap_servers,
        home=tmp_path_factory.mktemp("home"),
        keys_dir=keys_dir,
        connect_timeout_s=10,
    )
    await create_topics(configured)
    return configured


def cli_env_for(settings: Settings) -> dict[str, str]:
    """Environment for running the ``firebus`` command against ``settings``' broker."""
    return {
        **os.environ,
        "FIREBUS_BOOTSTRAP": settings.bootstrap_servers,
        "FIREBUS_HOME": str(settings.home),
        "FIREBUS_KEYS_DIR": str(settings.key_directory),
        "FIREBUS_LOG_FORMAT": "json",
        # Several test sessions share this machine: no fixed health port.
        "FIREBUS_PROCESSORS_HEALTH_PORT": "0",
        "FIREBUS_SINKS_HEALTH_PORT": "0",
    }


@pytest.fixture
def cli_env(settings: Settings) -> dict[str, str]:
    """Environment for running the ``firebus`` command against the session broker."""
    return cli_env_for(settings)


@pytest.fixture(scope="session")
async def worker(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Worker]:
    """The processors worker on the session broker, running for the whole session: one for
    every directory's tests (tests/processors, tests/outside), so no two compete for the partitions."""
    running = Worker(settings, tmp_path_factory.mktemp("worker") / "processors.log")
    await running.start()
    yield running
    await running.stop()


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    """Debian's Chromium, headless, driven by Playwright; one per test module."""
    async with chromium() as launched:
        yield launched
