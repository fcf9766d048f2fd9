"""Static group membership (``instance_id`` → ``group.instance.id`` / ``group_instance_id``) on
the real broker, for both clients.

A static member's ``close`` sends no LeaveGroup, so it looks to the group exactly like a crash:
the member stays listed until its session times out. The session timeout here is 30 s; a
restarted consumer with the same instance id must own the partitions again well before that
(bound: 10 s), where a dynamic member that crashed waits for the whole session timeout.
"""

from __future__ import annotations

import time
from typing import Any

from confluent_kafka.admin import AdminClient

from da_adapters.aiokafka import AiokafkaConsumer
from da_adapters.confluent import ConfluentConsumer
from da_core.types import TopicPartition
from tests.contracts.support import apoll_until, poll_until, unique_name
from tests.integration.kafka_fixtures import TopicFactory

SESSION_TIMEOUT_S = 30.0
RESTART_BOUND_S = 10.0
"""A restarted static member owns its partitions within this (a third of the session timeout)."""

CONFLUENT_STATIC: dict[str, Any] = {
    "session.timeout.ms": int(SESSION_TIMEOUT_S * 1000),
    "heartbeat.interval.ms": 1000,
}
AIOKAFKA_STATIC: dict[str, Any] = {
    "session_timeout_ms": int(SESSION_TIMEOUT_S * 1000),
    "heartbeat_interval_ms": 1000,
}


def _instance_ids(bootstrap: str, group: str) -> list[str | None]:
    """The static instance ids of the group's members, as the broker reports them now."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    [future] = admin.describe_consumer_groups([group], request_timeout=10).values()
    description = future.result(timeout=15)
    return sorted(m.group_instance_id for m in description.members)


def test_a_restarted_static_confluent_member_gets_its_partitions_back_at_once(
    kafka_bootstrap: str, kafka_topic_factory: TopicFactory
) -> None:
    topic = kafka_topic_factory(2, prefix="static-cf")
    group, instance = unique_name("static-cf"), unique_name("instance")
    everything = {TopicPartition(topic, p) for p in range(2)}

    def member() -> ConfluentConsumer:
        return ConfluentConsumer(
            group_id=group,
            bootstrap_servers=kafka_bootstrap,
            instance_id=instance,
            extra=CONFLUENT_STATIC,
        )

    first = member()
    first.subscribe([topic])
    poll_until(first, lambda _: first.assignment() == everything, 20.0)
    first.close()
    # close() of a static member sent no LeaveGroup: the broker still lists it, as after a crash
    assert _instance_ids(kafka_bootstrap, group) == [instance]

    restarted = member()
    try:
        began = time.monotonic()
        restarted.subscribe([topic])
        poll_until(restarted, lambda _: restarted.assignment() == everything, RESTART_BOUND_S)
        assert time.monotonic() - began < RESTART_BOUND_S
        assert _instance_ids(kafka_bootstrap, group) == [instance]
    finally:
        restarted.close()


async def test_a_restarted_static_aiokafka_member_gets_its_partitions_back_at_once(
    kafka_bootstrap: str, kafka_topic_factory: TopicFactory
) -> None:
    topic = kafka_topic_factory(2, prefix="static-aio")
    group, instance = unique_name("static-aio"), unique_name("instance")
    everything = {TopicPartition(topic, p) for p in range(2)}

    async def member() -> AiokafkaConsumer:
        consumer = AiokafkaConsumer(
            group_id=group,
            bootstrap_servers=kafka_bootstrap,
            instance_id=instance,
            extra=AIOKAFKA_STATIC,
        )
        await consumer.start()
        return consumer

    first = await member()
    await first.subscribe([topic])
    await apoll_until(first, lambda _: first.assignment() == everything, 20.0)
    await first.close()
    assert _instance_ids(kafka_bootstrap, group) == [instance]

    restarted = await member()
    try:
        began = time.monotonic()
        await restarted.subscribe([topic])
        await apoll_until(
            restarted, lambda _: restarted.assignment() == everything, RESTART_BOUND_S
        )
        assert time.monotonic() - began < RESTART_BOUND_S
        assert _instance_ids(kafka_bootstrap, group) == [instance]
    finally:
        await restarted.close()
