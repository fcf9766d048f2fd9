"""Topics created after a consumer subscribed to them are consumed once the client's metadata
refresh sees them, with either client, here with ``metadata_max_age_ms`` at 1 s (Kafka's
meaning of the key: the proactive refresh period; librdkafka's name for it is
``topic.metadata.refresh.interval.ms``, see ``test_kafka_config``).

Two topics, created one after the other: librdkafka picks up the first topic of a
subscription to appear at once whatever the refresh period, but a second one only at the next
periodic refresh. With the key mapped to librdkafka's ``metadata.max.age.ms`` (the cache age,
as before deaf1ca) the second topic's record waited for the default period of 5 minutes: the
cause of the stall seen in the sync broker-outage test (the service subscribes to several
topics that appear with the test's first records). With aiokafka's default of 5 minutes the
records would wait that long too."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
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
LIMIT = 30.0
"""Seconds a record of a topic created later may take: a few refresh periods and a group
rebalance (the default refresh period is 300 s)."""


def _group(bootstrap: str) -> dict[str, Any]:
    """A new group reading from the start, as a service with ``auto_offset_reset`` earliest."""
    return {
        "group_id": unique("late-topic"),
        "bootstrap_servers": bootstrap,
        "auto_offset_reset": "earliest",
    }


def _create_with_a_record(bootstrap: str, topic: str) -> None:
    ensure_topic(bootstrap, topic, 1)
    produce(bootstrap, [(topic, "S1", {"n": 1})])


def test_confluent_consumes_topics_created_one_after_the_other_after_it_subscribed(
    kafka_bootstrap: str,
) -> None:
    first, second = unique("late-topic-a"), unique("late-topic-b")
    consumer = ConfluentConsumer(KafkaSections(consumer=SETTINGS), **_group(kafka_bootstrap))
    got: list[Record] = []
    try:
        consumer.subscribe([first, second])
        joined = time.monotonic() + 3.0  # subscribed to topics the broker does not know
        while time.monotonic() < joined:
            got.extend(consumer.poll(0.2))
        assert got == []
        for topic in (first, second):
            _create_with_a_record(kafka_bootstrap, topic)
            created = time.monotonic()

            def consumed(topic: str = topic) -> bool:
                got.extend(consumer.poll(0.2))
                return any(r.topic == topic for r in got)

            wait_for(consumed, LIMIT, what=f"the record of {topic}, created later", interval=0)
            assert time.monotonic() - created < LIMIT
        # the rebalance for the second topic may hand the first one's record again (no commit)
        assert {r.topic for r in got} == {first, second}
    finally:
        consumer.close()


async def test_aiokafka_consumes_topics_created_one_after_the_other_after_it_subscribed(
    kafka_bootstrap: str,
) -> None:
    first, second = unique("late-topic-a"), unique("late-topic-b")
    consumer = AiokafkaConsumer(KafkaSections(consumer=SETTINGS), **_group(kafka_bootstrap))
    got: list[Record] = []
    await consumer.start()
    try:
        await consumer.subscribe([first, second])
        joined = time.monotonic() + 3.0
        while time.monotonic() < joined:
            got.extend(await consumer.poll(0.2))
        assert got == []
        for topic in (first, second):
            await asyncio.to_thread(_create_with_a_record, kafka_bootstrap, topic)
            await async_wait_for(
                _consumed(consumer, got, topic), LIMIT, what=f"the record of {topic}"
            )
        # the rebalance for the second topic may hand the first one's record again (no commit)
        assert {r.topic for r in got} == {first, second}
    finally:
        await consumer.close()


def _consumed(
    consumer: AiokafkaConsumer, got: list[Record], topic: str
) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        got.extend(await consumer.poll(0.2))
        return any(r.topic == topic for r in got)

    return check
