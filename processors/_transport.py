"""faust's aiokafka driver with a configurable consumer fetch wait and broker-proof changelog end offsets.

faust hard-codes ``fetch_max_wait_ms=1500`` for its worker consumer. On a broker that answers a fetch only when the
wait expires (Tansu), that wait *is* the latency of every stage, so firebus sets it from
``Settings.fetch_max_wait_ms``. On Apache Kafka a lower wait only costs a few more fetch requests when idle.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import aiokafka
import faust
from aiokafka import TopicPartition
from faust.transport.drivers import aiokafka as faust_aiokafka

from firebus.kafka import fetched_end_offsets


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # faust passes 1500 to the constructor and offers no setting; aiokafka reads this attribute at start().
        consumer._fetch_max_wait_ms = self.app.conf.firebus_fetch_max_wait_ms
        return consumer

    async def _highwaters(self, partitions: list[TopicPartition]) -> Mapping[TopicPartition, int]:
        # Table recovery reads each changelog up to these offsets: take them from fetch responses, which every
        # broker reports right (see firebus.kafka.fetched_end_offsets).
        if self.consumer.in_transaction:
            return cast("Mapping[TopicPartition, int]", await super()._highwaters(partitions))
        return await fetched_end_offsets(self.app.conf.firebus_client_options, partitions)


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> _ConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class _Transport(faust_aiokafka.Transport):
    Consumer = _Consumer


class FirebusFaustApp(faust.App):
    """A faust app whose worker consumer honours ``firebus_fetch_max_wait_ms``."""

    def __init__(self, *args: Any, fetch_max_wait_ms: int, client_options: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.conf.firebus_fetch_max_wait_ms = fetch_max_wait_ms
        self.conf.firebus_client_options = client_options

    def on_init_dependencies(self) -> Any:
        dependencies = super().on_init_dependencies()
        # The default Monitor sensor records statistics on every event for faust's web view, which firebus does not
        # run; it is the most expensive part of faust's per-event path.
        self.sensors.remove(self.monitor)
        return dependencies

    def _new_transport(self) -> _Transport:
        return _Transport(self.conf.broker_consumer, self)
