"""faust's aiokafka driver with a configurable consumer fetch wait and broker-proof changelog end offsets, and
faust's table recovery without its hand-over race.

faust hard-codes ``fetch_max_wait_ms=1500`` for its worker consumer. On a broker that answers a fetch only when the
wait expires (Tansu), that wait *is* the latency of every stage, so firebus sets it from
``Settings.fetch_max_wait_ms``. On Apache Kafka a lower wait only costs a few more fetch requests when idle.

When a worker has changelog records to restore (any restart after the first), faust starts its fetcher to read them
and leaves it running while it hands over to the streams: it resumes the stream partitions, seeks them to the
committed offsets and then clears the streams' queues. Records the running fetcher delivers in between are dropped
by the clearing, yet the consumer's position is already past them: nobody reads them again and nobody acks them, so
the committed offset stops at the first of them for good (faust commits only contiguous acks). The worker goes
quiet with work left, and only another restart (a seek to that committed offset) gets it going again. See
:class:`_Recovery`. This is a faust race, not a broker quirk: it only needs the fetcher to be running at hand-over.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from time import monotonic
from typing import Any, cast

import aiokafka
import faust
from aiokafka import TopicPartition
from faust.tables.manager import TableManager
from faust.tables.recovery import Recovery, ServiceStopped
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

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

    async def _fetch_records(
        self,
        consumer: aiokafka.AIOKafkaConsumer,
        active_partitions: set[TP] | None,
        timeout: float | None = None,  # noqa: ASYNC109  (faust's signature)
        max_records: int | None = None,
    ) -> Mapping[TopicPartition, list[Any]]:
        # faust hands over its live set of active partitions, which its own thread changes while this one waits;
        # aiokafka reads an empty set as "every assigned partition" and would return (and move past) records of
        # partitions faust has paused, which faust then drops. Fetch for the partitions active now, or for none.
        if active_partitions is not None:
            active_partitions = set(active_partitions)
            if not active_partitions:
                return {}
        return cast(
            "Mapping[TopicPartition, list[Any]]",
            await super()._fetch_records(
                consumer, cast("set[TP]", active_partitions), timeout=timeout, max_records=max_records
            ),
        )


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> _ConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class _Transport(faust_aiokafka.Transport):
    Consumer = _Consumer


class _Recovery(Recovery):
    async def _build_highwaters(self, consumer: Any, tps: set[TP], destination: Counter[TP], title: str) -> None:
        await super()._build_highwaters(consumer, tps, destination, title)
        # faust itself compares what it read of a changelog with these (last offsets) only to raise a ConsistencyError
        # whose hint is about RocksDB files: the app decides what a changelog that ends before a record it read means
        # (a wiped or replaced broker, see processors/_brokerloss.py), before anything is sought or restored.
        ends = {tp: destination[tp] + 1 for tp in tps}
        offsets = {**self.standby_offsets, **self.active_offsets}
        read = {tp: offset for tp, offset in offsets.items() if tp in ends and offset is not None and offset >= 0}
        for check in cast("FirebusFaustApp", self.app).firebus_on_changelog_ends:
            if not await check(ends, read):
                raise ServiceStopped  # recovery ends here (faust's own way out); the app stops the worker

    async def on_recovery_completed(self, generation_id: int = 0) -> None:
        # faust resumes the stream partitions, seeks them to their committed offsets and clears the streams' queues
        # (flow_control.resume) while the fetcher it started to read the changelogs may still be delivering records:
        # those it delivers before the clearing are lost with the consumer already past them. Stop the flow first:
        # no record reaches a stream until faust's own resume_flow(), which comes after the seek and the clearing
        # (a fetch that returns while the flow is stopped is discarded and followed by a seek to the committed
        # offsets, faust's own handling of that case).
        self.app.consumer.stop_flow()
        # The tables hold the new assignment's state now and no stream runs: what was derived from the old one goes.
        for recovered in cast("FirebusFaustApp", self.app).firebus_on_recovered:
            recovered()
        await super().on_recovery_completed(generation_id)


class _TableManager(TableManager):
    @property
    def recovery(self) -> Recovery:
        if self._recovery is None:
            self._recovery = _Recovery(self.app, self, beacon=self.beacon, loop=self.loop)
        return self._recovery


ChangelogCheck = Callable[[Mapping[TP, int], Mapping[TP, int]], Awaitable[bool]]
"""Given a recovery's changelog end offsets (one past the last record) and the offsets read of them before: whether
the recovery may go on."""


class FirebusFaustApp(faust.App):
    """A faust app whose worker consumer honours ``firebus_fetch_max_wait_ms`` and whose table recovery hands over
    to the streams without losing records."""

    def __init__(self, *args: Any, fetch_max_wait_ms: int, client_options: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(*args, TableManager=_TableManager, **kwargs)
        self.conf.firebus_fetch_max_wait_ms = fetch_max_wait_ms
        self.conf.firebus_client_options = client_options
        self.firebus_on_recovered: list[Callable[[], None]] = []
        """Called after every rebalance's table recovery, before the streams resume."""
        self.firebus_on_changelog_ends: list[ChangelogCheck] = []
        """Called at every table recovery with the changelog partitions' end offsets and the offsets read of them
        before, ahead of faust's own use of either."""

    def on_init_dependencies(self) -> Any:
        dependencies = super().on_init_dependencies()
        # The default Monitor sensor records statistics on every event for faust's web view, which firebus does not
        # run; it is the most expensive part of faust's per-event path. A sensor that records nothing takes its
        # place: with none at all, faust warns "Missing sensor state" twice per rebalance.
        self.sensors.remove(self.monitor)
        self.sensors.add(faust.Sensor())
        return dependencies

    def firebus_streams_took(self, tps: Iterable[TP]) -> None:
        """A stream took records of ``tps``: called once per batch.

        faust's stall check logs "Stream has not started processing" (and then "stopped processing") for every
        assigned partition with records waiting whose stream has taken none for ``stream_processing_timeout``. It
        reads when a stream last took a record from the Monitor sensor, which this app does not run
        (:meth:`on_init_dependencies`): without this, every partition with a backlog counts as stalled.
        """
        now = monotonic()
        taken = self.monitor.stream_inbound_time
        for tp in tps:
            taken[tp] = now

    def _new_transport(self) -> _Transport:
        return _Transport(self.conf.broker_consumer, self)
