"""Send a batch's records as Kafka record batches, one per topic partition, and wait until all are stored.

aiokafka's per-record ``send`` costs tens of microseconds each in Python; the processors emit several records per
event, so they append to record batches instead and send those. Partitions follow the default Kafka partitioner
(murmur2 of the key), as every client does, so keys stay co-partitioned with what other clients write.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from functools import lru_cache
from typing import Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import murmur2
from aiokafka.structs import RecordMetadata

from firebus.errors import BrokerError
from firebus.kafka import producer_options
from firebus.settings import Settings
from firebus.topics import Topic


class Record(Protocol):
    @property
    def topic(self) -> Topic: ...
    @property
    def key(self) -> bytes: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def partition(self) -> int | None: ...
    @property
    def headers(self) -> Sequence[tuple[str, bytes]]: ...


@lru_cache(maxsize=16384)  # murmur2 is pure Python, and one event's records mostly share its key
def partition_for(key: bytes, partitions: int) -> int:
    """The default Kafka partitioner's choice for a keyed record."""
    return int(murmur2(key) & 0x7FFFFFFF) % partitions


class BatchSender:
    """Wraps a started producer; :meth:`send_all` returns once the broker has acknowledged every record."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self._producer = producer
        self._partitions: dict[str, int] = {}

    async def _partition_count(self, topic: str) -> int:
        count = self._partitions.get(topic)
        if count is None:
            found = await self._producer.partitions_for(topic)
            if not found:
                raise BrokerError(f"topic {topic} has no partitions; run `firebus topics create`")
            count = self._partitions[topic] = len(found)
        return count

    async def send_all(self, records: Sequence[Record]) -> list[RecordMetadata]:
        """Send ``records``; returns the broker's acknowledgement of each record batch (topic, partition, offset)."""
        grouped: dict[tuple[str, int], list[Record]] = defaultdict(list)
        for record in records:
            name = record.topic.name
            partition = record.partition
            if partition is None:
                partition = partition_for(record.key, await self._partition_count(name))
            grouped[(name, partition)].append(record)
        acknowledgements = []
        for (topic, partition), batch_records in grouped.items():
            batch = self._producer.create_batch()
            for record in batch_records:
                headers = list(record.headers)  # aiokafka's batch builder takes a list only
                if batch.append(key=record.key, value=record.value, timestamp=None, headers=headers) is None:
                    acknowledgements.append(await self._producer.send_batch(batch, topic, partition=partition))
                    batch = self._producer.create_batch()
                    batch.append(key=record.key, value=record.value, timestamp=None, headers=headers)
            acknowledgements.append(await self._producer.send_batch(batch, topic, partition=partition))
        return list(await asyncio.gather(*acknowledgements))


class SharedSender:
    """The worker's one producer, started on first use and shared by the intake gate and the review stage."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._sender: BatchSender | None = None
        self._starting = asyncio.Lock()

    async def send(self, records: Sequence[Record]) -> list[RecordMetadata]:
        """Send and wait for the broker's acknowledgements (returned): outputs are stored before their inputs'
        offsets commit."""
        if not records:
            return []
        async with self._starting:  # the gate and the review stage may both be first to send
            if self._sender is None:
                self._sender = BatchSender(await self._start_producer())
        return await self._sender.send_all(records)

    async def _start_producer(self) -> AIOKafkaProducer:
        settings = self.settings
        producer = AIOKafkaProducer(
            **producer_options(
                settings,
                client_id=f"{settings.client_id}-processors",
                linger_ms=settings.processors_linger_ms,
                max_batch_size=1024 * 1024,
            )
        )
        await producer.start()
        return producer
