"""Every worker's view of the county's resources, for enriching fire reports.

Resource events are keyed by resource id on a compacted topic; each worker reads all of its partitions (no consumer
group) and keeps the latest state of each resource. faust's GlobalTable would do the same, but its assignment
never completes on the embedded broker, so this is the plain equivalent.
"""

from __future__ import annotations

import asyncio

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition

from firebus.codec import Codec
from firebus.errors import DecodeError, InvalidEventError
from firebus.events import Event, Resource
from firebus.kafka import client_options
from firebus.settings import Settings
from firebus.topics import RESOURCES_STATE

log = structlog.get_logger(__name__)


class ResourceDirectory:
    """The latest :class:`~firebus.events.Resource` per resource id, kept current by :meth:`follow`."""

    def __init__(self, *, settings: Settings, codec: Codec) -> None:
        self.settings = settings
        self.codec = codec
        self._resources: dict[str, Resource] = {}

    def current(self) -> list[Resource]:
        return list(self._resources.values())

    def apply(self, raw: bytes | None, key: bytes | None = None) -> None:
        """Take one record of the resources topic (a tombstone removes the resource)."""
        if raw is None:
            if key is not None:
                self._resources.pop(key.decode(), None)
            return
        try:
            event = self.codec.decode(raw)
        except (DecodeError, InvalidEventError) as exc:
            log.warning("resource_record_unreadable", error=str(exc))
            return
        if isinstance(event, Event) and isinstance(event.body, Resource):
            self._resources[event.body.resource_id] = event.body

    async def follow(self) -> None:
        """Read the resources topic from the beginning and keep following it until cancelled."""
        consumer = AIOKafkaConsumer(
            **client_options(self.settings, client_id=f"{self.settings.client_id}-resources"),
            group_id=None,
            enable_auto_commit=False,
            fetch_max_wait_ms=self.settings.fetch_max_wait_ms,
        )
        await consumer.start()
        try:
            await consumer.topics()
            partitions = [
                TopicPartition(RESOURCES_STATE.name, p)
                for p in sorted(consumer.partitions_for_topic(RESOURCES_STATE.name) or ())
            ]
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            while True:
                batches = await consumer.getmany(timeout_ms=1_000)
                for messages in batches.values():
                    for message in messages:
                        self.apply(message.value, message.key)
        except asyncio.CancelledError:
            raise
        finally:
            await consumer.stop()
