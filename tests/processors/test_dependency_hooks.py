"""firebus reaches into faust and aiokafka in a few places (processors/_transport.py: the consumer's fetch wait, the
changelog end offsets, the recovery hand-over and its changelog check; firebus/kafka.py: the Reader, which relies on
how a fetch result is drained). Those hooks were written against the exact versions pinned in pyproject.toml. This
test fails loudly, naming the hook, when the installed version or the source of a hooked method differs: re-read the
method, check the hook still holds, then update the pin and the fingerprint here."""

from __future__ import annotations

import hashlib
import importlib
import inspect
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PINNED = {"faust-streaming": "0.15.3", "aiokafka": "0.14.0"}

HOOKED_SOURCES = {
    # processors/_transport.py
    "faust.transport.drivers.aiokafka:AIOKafkaConsumerThread._create_worker_consumer": "c2701bfc3e6f6cad",
    "faust.transport.drivers.aiokafka:AIOKafkaConsumerThread._highwaters": "a7f4f97d9f32aca2",
    "faust.transport.drivers.aiokafka:AIOKafkaConsumerThread._fetch_records": "39a2c6c79fc1455a",
    "faust.transport.drivers.aiokafka:Consumer._new_consumer_thread": "0870ec53dea75083",
    "faust.tables.recovery:Recovery.on_recovery_completed": "6ef567acf072e46d",
    # ... and the changelog check at each recovery (a wiped or replaced broker, processors/_brokerloss.py)
    "faust.tables.recovery:Recovery._build_highwaters": "91b4cc0d3724ae7b",
    "faust.tables.manager:TableManager.recovery": "f0bf5de78b4c3d23",
    "faust.app.base:App._new_transport": "42db531312dd776f",
    "faust.app.base:App.on_init_dependencies": "7621a70a9b01f93f",
    # firebus/kafka.py Reader: a failing batch raises from getmany, and what was drained before it is dropped
    "aiokafka.consumer.fetcher:FetchResult.getall": "3e717e30de5068d5",
    "aiokafka.consumer.fetcher:Fetcher.fetched_records": "be4348896b9b66af",
    "aiokafka.consumer.consumer:AIOKafkaConsumer.getmany": "bc6d248e42a4e9d9",
}


def source_fingerprint(target: str) -> str:
    module_name, path = target.split(":")
    found: object = importlib.import_module(module_name)
    for part in path.split("."):
        found = inspect.getattr_static(found, part) if isinstance(found, type) else getattr(found, part)
    if isinstance(found, property):
        found = found.fget
    return hashlib.sha256(inspect.getsource(found).encode()).hexdigest()[:16]  # type: ignore[arg-type]


@pytest.mark.parametrize(("distribution", "pinned"), PINNED.items())
def test_the_hooked_libraries_are_the_pinned_versions(distribution: str, pinned: str) -> None:
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert any(dep.startswith(distribution) and f"=={pinned}" in dep for dep in dependencies), (
        f"pyproject.toml must pin {distribution}=={pinned}: firebus hooks its private methods"
    )
    assert version(distribution) == pinned


@pytest.mark.parametrize(("target", "fingerprint"), HOOKED_SOURCES.items())
def test_a_hooked_method_is_the_one_the_hook_was_written_for(target: str, fingerprint: str) -> None:
    assert source_fingerprint(target) == fingerprint, (
        f"{target} changed: re-read it and check the firebus hook that depends on it before updating this test"
    )
