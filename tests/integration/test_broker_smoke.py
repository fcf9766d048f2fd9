"""Smoke tests against a real broker: keyed produce, group consume, commit, committed offsets,
with confluent-kafka and with aiokafka."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition as AioTopicPartition
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from tests.integration.kafka_fixtures import TopicFactory
from tests.support.waiting import async_wait_for, wait_for

pytestmark = pytest.mark.integration

RECORDS = 100
PARTITIONS = 3
DEADLINE = 60.0

# (partition, offset, key, value)
Row = tuple[int, int, bytes, bytes]


def _key(i: int) -> bytes:
    return f"station-{i % 10}".encode()


def _value(i: int) -> bytes:
    return f'{{"seq": {i}}}'.encode()


def _row(msg: Message) -> Row:
    partition, offset, key, value = msg.partition(), msg.offset(), msg.key(), msg.value()
    if partition is None or offset is None:
        raise AssertionError(f"message without partition/offset: {msg}")
    if not isinstance(key, bytes) or not isinstance(value, bytes):
        raise AssertionError(f"message without bytes key/value: {key!r} {value!r}")
    return (partition, offset, key, value)


def _check_delivered(rows: list[Row]) -> Counter[int]:
    """All records delivered once, offsets 0..n-1 in each partition, one partition per key."""
    assert len(rows) == RECORDS
    assert sorted(value for _, _, _, value in rows) == sorted(_value(i) for i in range(RECORDS))
    per_partition = Counter(partition for partition, _, _, _ in rows)
    assert sum(per_partition.values()) == RECORDS
    assert set(per_partition) <= set(range(PARTITIONS))
    for partition, count in per_partition.items():
        offsets = sorted(offset for p, offset, _, _ in rows if p == partition)
        assert offsets == list(range(count))
    partitions_of_key: dict[bytes, set[int]] = {}
    for partition, _, key, _ in rows:
        partitions_of_key.setdefault(key, set()).add(partition)
    assert all(len(parts) == 1 for parts in partitions_of_key.values())
    return per_partition


def _produce_confluent(bootstrap: str, topic: str, keys: list[bytes]) -> list[Row]:
    delivered: list[Row] = []
    errors: list[str] = []

    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            errors.append(str(err))
            return
        delivered.append(_row(msg))

    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "partitioner": "murmur2_random",  # the Java client's and aiokafka's partitioner
            "enable.idempotence": True,
            "linger.ms": 5,
        }
    )
    for i, key in enumerate(keys):
        producer.produce(topic, key=key, value=_value(i), on_delivery=on_delivery)
        producer.poll(0)
    assert producer.flush(30) == 0
    assert errors == []
    return delivered


async def _produce_aiokafka(bootstrap: str, topic: str, keys: list[bytes]) -> list[Row]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = [await producer.send(topic, key=k, value=_value(i)) for i, k in enumerate(keys)]
        metadata: list[Any] = list(await asyncio.gather(*futures))
    finally:
        await producer.stop()
    return [(m.partition, m.offset, keys[i], _value(i)) for i, m in enumerate(metadata)]


def test_confluent_kafka_round_trip_and_committed_offsets(
    kafka_bootstrap: str, kafka_topic_factory: TopicFactory
) -> None:
    topic = kafka_topic_factory(PARTITIONS)
    delivered = _produce_confluent(kafka_bootstrap, topic, [_key(i) for i in range(RECORDS)])
    per_partition = _check_delivered(delivered)
    assert len(per_partition) == PARTITIONS  # 10 keys spread over all 3 partitions

    group = f"it-confluent-{uuid.uuid4().hex[:8]}"
    config = {
        "bootstrap.servers": kafka_bootstrap,
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    }
    consumer = Consumer(config)
    received: list[Row] = []
    try:
        consumer.subscribe([topic])

        def all_received() -> bool:
            msg = consumer.poll(0.5)
            if msg is not None:
                assert msg.error() is None, msg.error()
                received.append(_row(msg))
            return len(received) >= RECORDS

        wait_for(all_received, DEADLINE, what=f"{RECORDS} records", interval=0)
        extra = consumer.poll(1.0)  # nothing beyond what was produced
        assert extra is None or extra.error() is not None
        assert sorted(received) == sorted(delivered)

        committed_now = consumer.commit(asynchronous=False)
        assert committed_now is not None
        assert {tp.partition: tp.offset for tp in committed_now} == dict(per_partition)
        wanted = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        committed = consumer.committed(wanted, timeout=10)
        assert {tp.partition: tp.offset for tp in committed} == {
            p: per_partition[p] for p in range(PARTITIONS)
        }
    finally:
        consumer.close()

    # The commits outlive the consumer: a new member of the group sees the same offsets.
    again = Consumer(config)
    try:
        committed = again.committed(wanted, timeout=10)
        assert [(tp.partition, tp.offset) for tp in committed] == [
            (p, per_partition[p]) for p in range(PARTITIONS)
        ]
    finally:
        again.close()


async def test_aiokafka_round_trip_and_committed_offsets(
    kafka_bootstrap: str, kafka_topic_factory: TopicFactory
) -> None:
    topic = kafka_topic_factory(PARTITIONS)
    delivered = await _produce_aiokafka(kafka_bootstrap, topic, [_key(i) for i in range(RECORDS)])
    per_partition = _check_delivered(delivered)
    assert len(per_partition) == PARTITIONS

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=f"it-aiokafka-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    received: list[Row] = []
    try:

        async def all_received() -> bool:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                received.extend((r.partition, r.offset, r.key, r.value) for r in records)
            return len(received) >= RECORDS

        await async_wait_for(all_received, DEADLINE, what=f"{RECORDS} records", interval=0)
        assert await consumer.getmany(timeout_ms=1000) == {}
        assert sorted(received) == sorted(delivered)

        await consumer.commit()
        committed = {
            p: await consumer.committed(AioTopicPartition(topic, p)) for p in range(PARTITIONS)
        }
        assert committed == {p: per_partition[p] for p in range(PARTITIONS)}
    finally:
        await consumer.stop()


async def test_librdkafka_murmur2_places_keys_like_aiokafka(
    kafka_bootstrap: str, kafka_topic_factory: TopicFactory
) -> None:
    """With partitioner=murmur2_random, confluent-kafka puts each key on the partition that
    aiokafka (and the Java client) choose."""
    keys = [f"station-{i}".encode() for i in range(30)]
    by_confluent = _produce_confluent(kafka_bootstrap, kafka_topic_factory(PARTITIONS), keys)
    by_aiokafka = await _produce_aiokafka(kafka_bootstrap, kafka_topic_factory(PARTITIONS), keys)
    assert len(by_confluent) == len(by_aiokafka) == len(keys)
    placed_confluent = {key: partition for partition, _, key, _ in by_confluent}
    placed_aiokafka = {key: partition for partition, _, key, _ in by_aiokafka}
    assert placed_confluent == placed_aiokafka
    assert set(placed_aiokafka.values()) == set(range(PARTITIONS))
