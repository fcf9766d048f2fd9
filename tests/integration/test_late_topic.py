"""A topic created after a consumer subscribed to it is consumed once the client's metadata
refresh sees it, with either client, here with ``metadata_max_age_ms`` at 1 s (Kafka's
meaning of the key: the proactive refresh period; librdkafka's name for it is
``topic.metadata.refresh.interval.ms``, see ``test_kafka_config``). With aiokafka's default
of 5 minutes the records would wait that long."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from da_adapters.aiokafka import AiokafkaConsumer
from da_adapters.confluent import ConfluentConsumer
from da_adapters.kafka_config import KafkaSections
from da_core.types import Record
from tests.integration.e2e_support import ensure_topic, produce, unique
from tests.support.waiting import async_wait_for, wait_for

pytestmark = pytest.mark.timeout(120)

REFRESH_MS = 1000
SETTINGS: dict[str, Any] = {
    "metadata_max_age_ms": REFRESH_MS,
    "session_timeout_ms": 6000,
    "heartbeat_interval_ms": 500,
}


def _group(bootstrap: str) -> dict[str, Any]:
    """A new group reading from the start, as a service with ``auto_offset_reset`` earliest."""
    return {
        "group_id": unique("late-topic"),
        "bootstrap_servers": bootstrap,
        "auto_offset_reset": "earliest",
    }


def test_confluent_consumes_a_topic_created_after_it_subscribed(kafka_bootstrap: str) -> None:
    topic = unique("late-topic")
    consumer = ConfluentConsumer(KafkaSections(consumer=SETTINGS), **_group(kafka_bootstrap))
    got: list[Record] = []
    try:
        consumer.subscribe([topic])
        joined = time.monotonic() + 3.0  # subscribed to a topic the broker does not know
        while time.monotonic() < joined:
            got.extend(consumer.poll(0.2))
        assert got == []
        ensure_topic(kafka_bootstrap, topic, 1)
        produce(kafka_bootstrap, [(topic, "S1", {"n": 1})])
        created = time.monotonic()

        def consumed() -> bool:
            got.extend(consumer.poll(0.2))
            return bool(got)

        # a few refresh periods and a group rebalance
        wait_for(consumed, 30, what="the record of the topic created later", interval=0)
        assert [r.topic for r in got] == [topic]
        assert time.monotonic() - created < 30
    finally:
        consumer.close()


async def test_aiokafka_consumes_a_topic_created_after_it_subscribed(kafka_bootstrap: str) -> None:
    topic = unique("late-topic")
    consumer = AiokafkaConsumer(KafkaSections(consumer=SETTINGS), **_group(kafka_bootstrap))
    got: list[Record] = []
    await consumer.start()
    try:
        await consumer.subscribe([topic])
        joined = time.monotonic() + 3.0
        while time.monotonic() < joined:
            got.extend(await consumer.poll(0.2))
        assert got == []
        await asyncio.to_thread(ensure_topic, kafka_bootstrap, topic, 1)
        await asyncio.to_thread(produce, kafka_bootstrap, [(topic, "S1", {"n": 1})])

        async def consumed() -> bool:
            got.extend(await consumer.poll(0.2))
            return bool(got)

        await async_wait_for(consumed, 30, what="the record of the topic created later")
        assert [r.topic for r in got] == [topic]
    finally:
        await consumer.close()
