"""``firebus keys generate``, ``firebus publish`` and ``firebus tail``: a unit's keys, one event out, records in."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from cli.commands import EXIT_FAILURE, Commands, say, say_json
from firebus.codec import Codec
from firebus.county import County, load_county
from firebus.errors import ConfigurationError, DecodeError, InvalidEventError, SignatureError
from firebus.events import Event
from firebus.kafka import UnreadableBatch
from firebus.settings import Settings
from firebus.signing import (
    check_signature,
    generate_unit_key,
    private_key_path,
    public_key_text,
    registered_public_keys,
)
from firebus.tail import tail
from firebus.topics import by_name


async def cmd_keys_generate(args: argparse.Namespace, settings: Settings) -> int:
    county = load_county(settings.config)
    unit = county.unit(args.unit)
    public_key = generate_unit_key(settings.key_directory, unit.id, overwrite=args.force)
    say(
        f"private key for {unit.id} ({unit.name}): {private_key_path(settings.key_directory, unit.id)} (keep it secret)"
    )
    say(f"public key (put it in the units registry as public_key): {public_key_text(public_key)}")
    return 0


async def cmd_publish(args: argparse.Namespace, settings: Settings) -> int:
    from producers import FirebusClient, load_draft

    draft = load_draft("-", sys.stdin.read()) if args.file == "-" else load_draft(args.file)
    async with FirebusClient(settings=settings, unit=args.unit, person=args.person) as client:
        receipt = await client.publish(draft)
    say_json(
        {
            "event_id": str(receipt.event_id),
            "trace_id": receipt.trace_id,
            "topic": receipt.topic,
            "partition": receipt.partition,
            "offset": receipt.offset,
        }
    )
    return 0


def describe_record(codec: Codec, public_keys: Mapping[str, Ed25519PublicKey], value: bytes | None) -> dict[str, Any]:
    """What one record value holds, as JSON-ready data; never raises for bad bytes."""
    if value is None:
        return {"error": "empty record (tombstone)"}
    try:
        record = codec.decode(value)
    except (DecodeError, InvalidEventError) as exc:
        return {"error": str(exc), "bytes": len(value)}
    described: dict[str, Any] = {"schema": codec.contract_of(record).name, "record": record.model_dump(mode="json")}
    if isinstance(record, Event):
        try:
            check_signature(codec, value, public_keys)
        except SignatureError as exc:
            described["signature"] = f"BAD: {exc}"
        else:
            described["signature"] = "verified"
    return described


async def cmd_tail(args: argparse.Namespace, settings: Settings) -> int:
    topic = by_name(args.topic)
    if topic is None:
        raise ConfigurationError(f"unknown topic {args.topic!r}; `firebus topics list` shows the registered ones")
    codec = Codec()
    public_keys = registered_public_keys(load_county(settings.config), settings.key_directory)
    records = tail(
        settings, topic, from_beginning=args.from_beginning, limit=args.max, idle_timeout_s=args.idle_timeout
    )
    unreadable = 0
    events_shown: set[str] = set()
    async for record in records:
        if isinstance(record, UnreadableBatch):
            # What no client can read is reported as it is met; the records after it still follow.
            sys.stderr.write(f"firebus: error: {record}\n")
            unreadable += 1
            continue
        line = {
            "topic": topic.name,
            "partition": record.partition,
            "offset": record.offset,
            "key": record.key.decode("utf-8", "replace") if record.key else None,
            **describe_record(codec, public_keys, record.value),
        }
        # Topics are at least once (firebus.hq.live says so): an event shown before is marked, by its event id.
        event_id = line.get("record", {}).get("header", {}).get("event_id")
        if event_id is not None:
            if event_id in events_shown:
                line["repeat"] = True
            events_shown.add(event_id)
        say_json(line, pretty=args.pretty)
    return EXIT_FAILURE if unreadable else 0


def register(commands: Commands) -> None:
    keys = commands.group("keys", "manage units' signing keys")
    generate = keys.command("generate", cmd_keys_generate, "create a unit's Ed25519 key pair")
    generate.add_argument("--unit", required=True)
    generate.add_argument("--force", action="store_true", help="replace an existing key")

    publish = commands.command("publish", cmd_publish, "validate, sign and publish one event from a JSON or YAML file")
    publish.add_argument("--unit", required=True, help="publishing unit (its key signs the event)")
    publish.add_argument("--person", help="responsible person (default: the unit's name)")
    publish.add_argument("file", help="JSON or YAML draft, - for stdin")

    follow = commands.command(
        "tail", cmd_tail, "print decoded records of a topic as they arrive (one JSON object each)", long_running=True
    )
    follow.add_argument("topic")
    follow.add_argument("--from-beginning", action="store_true")
    follow.add_argument("--max", type=int, help="stop after this many records")
    follow.add_argument("--idle-timeout", type=float, help="stop after this many seconds without a record")
    follow.add_argument("--pretty", action="store_true", help="indent the JSON")


def ensure_dev_keys(settings: Settings, county: County) -> list[str]:
    """On the embedded broker, give every unit without a key one, so a newcomer can publish at once."""
    created = []
    for unit in county.units:
        if unit.public_key is None and not private_key_path(settings.key_directory, unit.id).exists():
            generate_unit_key(settings.key_directory, unit.id)
            created.append(unit.id)
    return created
