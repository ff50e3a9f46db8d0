"""Raw record batches written straight to the broker, as no well-behaved client would: the hostile producer.

A client library refuses to write a corrupt compressed batch; a broken or hostile one can, and some brokers (the
embedded one among them) store it as sent. These helpers build Kafka v2 record batches by hand — any codec, any
attributes, payload bytes damaged after compression with a CRC that still matches — and send them with a bare
ProduceRequest.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from aiokafka import TopicPartition
from aiokafka.client import AIOKafkaClient
from aiokafka.protocol.produce import ProduceRequest
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.record.util import calc_crc32c

CODECS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
_CRC_OFFSET = 17
_ATTRIBUTES_OFFSET = 21
_RECORDS_OFFSET = 61


def record_batch(
    values: Sequence[bytes],
    *,
    codec: str = "none",
    keys: Sequence[bytes | None] | None = None,
    damage_payload: bool = False,
    bad_crc: bool = False,
) -> bytes:
    """A v2 record batch of ``values``; ``damage_payload`` garbles the (compressed) records but keeps the CRC
    right, ``bad_crc`` leaves the records intact and breaks the CRC."""
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=CODECS[codec],
        is_transactional=0,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=1 << 22,
    )
    for index, value in enumerate(values):
        key = keys[index] if keys is not None else None
        builder.append(index, timestamp=None, key=key, value=value, headers=[])
    batch = bytearray(builder.build())
    if damage_payload:
        for position in range(_RECORDS_OFFSET + 4, min(len(batch), _RECORDS_OFFSET + 40)):
            batch[position] ^= 0x5A
    crc = calc_crc32c(bytes(batch[_ATTRIBUTES_OFFSET:]))
    struct.pack_into(">I", batch, _CRC_OFFSET, crc ^ 0xFFFF if bad_crc else crc)
    return bytes(batch)


async def produce_raw(bootstrap_servers: str, tp: TopicPartition, batch: bytes) -> int:
    """Send one record batch to ``tp`` as is; returns the broker's error code (0: stored)."""
    client = AIOKafkaClient(bootstrap_servers=bootstrap_servers)
    await client.bootstrap()
    try:
        node = client.cluster.leader_for_partition(tp)
        response = await client.send(node, ProduceRequest(None, -1, 10_000, [(tp.topic, [(tp.partition, batch)])]))
        for _topic, partitions in response.topics:
            for partition, error_code, *_rest in partitions:
                if partition == tp.partition:
                    return int(error_code)
        raise AssertionError(f"no answer for {tp}")
    finally:
        await client.close()
