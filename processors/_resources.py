"""Every worker's view of the county's resources, for enriching fire reports.

Resource events are keyed by resource id on a compacted topic; each worker reads all of its partitions (no consumer
group) and keeps the latest state of each resource. faust's GlobalTable would do the same, but its assignment
never completes on the embedded broker, so this is the plain equivalent.
"""

from __future__ import annotations

import structlog

from firebus.codec import Codec
from firebus.errors import DecodeError, InvalidEventError
from firebus.events import Event, Resource
from firebus.kafka import TopicScan
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
        async with TopicScan(self.settings, [RESOURCES_STATE], purpose="resources", follow=True) as scan:
            async for step in scan:
                for record in step.records:
                    self.apply(record.value, record.key)
