"""The async port contract suites, run on ``AiokafkaConsumer`` / ``AiokafkaProducer`` against a
real Kafka broker (``kafka_bootstrap``), plus checks the contract does not cover: the wire
translation on real consumed records, commits of revoked partitions after ``poll`` returns
(the revoke hold), commit failures, ``assign`` merged with ``subscribe``.

Fast group joins: ``session_timeout_ms=6000`` and ``heartbeat_interval_ms=500`` (the test
broker has ``group.initial.rebalance.delay.ms=0``). A topic the broker refuses every record
to is one with ``max.message.bytes=1``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from da_adapters.aiokafka import AiokafkaConsumer, AiokafkaProducer
from da_adapters.clock import SystemClock
from da_core.errors import CommitError
from da_core.ports import AsyncConsumer, AsyncProducer, Clock
from da_core.types import OutboundRecord, Record, TopicPartition
from tests.contracts.consumer_contract import AsyncConsumerContract
from tests.contracts.producer_contract import AsyncProducerContract
from tests.contracts.support import (
    AsyncConsumerFactory,
    AsyncProducerFactory,
    RecordingListener,
    TopicFactory,
    apoll_many_until,
    apoll_until,
    send_all,
    unique_name,
)
from tests.integration.kafka_fixtures import TopicFactory as KafkaTopicFactory
from tests.integration.test_confluent_contract import delete_records_before
from tests.support.waiting import async_wait_for

FAST_GROUP: dict[str, Any] = {"session_timeout_ms": 6000, "heartbeat_interval_ms": 500}
FAST_PRODUCER: dict[str, Any] = {"linger_ms": 2}


def _warned(caplog: pytest.LogCaptureFixture, group: str, topic: str) -> bool:
    return any(
        r.name == "da_adapters.aiokafka"
        and group in r.getMessage()
        and f"{topic}[0]" in r.getMessage()
        for r in caplog.records
    )


class AiokafkaBackend:
    """The fixtures every aiokafka suite shares."""

    @pytest.fixture
    def wait_timeout(self) -> float:
        return 20.0

    @pytest.fixture
    def clock(self) -> Clock:
        return SystemClock()

    @pytest.fixture
    def new_topic(self, kafka_topic_factory: KafkaTopicFactory) -> TopicFactory:
        def create(partitions: int) -> str:
            return kafka_topic_factory(partitions, prefix="aio")

        return create

    @pytest.fixture
    def rejected_topic(self, kafka_topic_factory: KafkaTopicFactory) -> str:
        # Any record batch is larger than one byte: the broker refuses it (MessageSizeTooLarge,
        # not retriable), so the send fails at once.
        return kafka_topic_factory(1, prefix="aio-rejected", config={"max.message.bytes": "1"})

    @pytest.fixture
    async def make_consumer(self, kafka_bootstrap: str) -> AsyncIterator[AsyncConsumerFactory]:
        made: list[AiokafkaConsumer] = []

        async def make(group: str, *, auto_offset_reset: str = "earliest") -> AsyncConsumer:
            consumer = AiokafkaConsumer(
                group_id=group,
                bootstrap_servers=kafka_bootstrap,
                auto_offset_reset=auto_offset_reset,
                extra=FAST_GROUP,
            )
            made.append(consumer)
            await consumer.start()
            return consumer

        yield make
        for consumer in made:
            await consumer.close()

    @pytest.fixture
    async def make_producer(self, kafka_bootstrap: str) -> AsyncIterator[AsyncProducerFactory]:
        made: list[AiokafkaProducer] = []

        async def make() -> AsyncProducer:
            producer = AiokafkaProducer(bootstrap_servers=kafka_bootstrap, extra=FAST_PRODUCER)
            made.append(producer)
            await producer.start()
            return producer

        yield make
        for producer in made:
            await producer.close()


class TestAiokafkaConsumer(AiokafkaBackend, AsyncConsumerContract):
    pass


class TestAiokafkaProducer(AiokafkaBackend, AsyncProducerContract):
    pass


# -- beyond the contract -----------------------------------------------------------------------


class TestAiokafkaSpecifics(AiokafkaBackend):
    async def test_round_trip_translates_every_field_of_the_wire_record(
        self,
        kafka_bootstrap: str,
        new_topic: TopicFactory,
        make_consumer: AsyncConsumerFactory,
        make_producer: AsyncProducerFactory,
        wait_timeout: float,
    ) -> None:
        """ConsumerRecord -> Record on records aiokafka really consumed: bytes key/value, a
        None value (tombstone), headers in order (duplicates kept), float-seconds timestamp."""
        topic = new_topic(1)
        headers = (("h", b"1"), ("h", b"2"), ("empty", b""))
        before = time.time()
        await send_all(
            await make_producer(), [OutboundRecord(topic, b"v", key=b"k", headers=headers)]
        )
        # A tombstone (null value) goes through the client directly: OutboundRecord needs bytes.
        raw = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        await raw.start()
        try:
            await raw.send_and_wait(topic, value=None, key=b"gone")
        finally:
            await raw.stop()
        consumer = await make_consumer(unique_name("group"))
        await consumer.subscribe([topic])

        records = await apoll_until(consumer, lambda rs: len(rs) >= 2, wait_timeout)

        first, second = records
        assert isinstance(first, Record)
        assert isinstance(second, Record)
        assert (first.topic, first.partition, first.offset) == (topic, 0, 0)
        assert (first.key, first.value, first.headers) == (b"k", b"v", headers)
        assert isinstance(first.timestamp, float)
        assert before - 1.0 <= first.timestamp <= time.time() + 1.0
        assert (second.offset, second.key, second.value, second.headers) == (1, b"gone", None, ())

    async def test_revoked_partitions_can_be_committed_after_poll_returns(
        self,
        new_topic: TopicFactory,
        make_consumer: AsyncConsumerFactory,
        make_producer: AsyncProducerFactory,
        wait_timeout: float,
    ) -> None:
        """Like the async runner: the listener only notes the revocation; the commit happens
        after ``poll`` returns. The rebalance waits for it, so the commit succeeds and the new
        owner starts right after what was committed."""
        topic = new_topic(2)
        every = {TopicPartition(topic, p) for p in range(2)}
        group = unique_name("group")
        producer = await make_producer()
        await send_all(
            producer, [OutboundRecord(topic, b"x", partition=p) for p in range(2) for _ in range(3)]
        )
        one = await make_consumer(group)
        one_listener = RecordingListener()
        await one.subscribe([topic], one_listener)
        seen = await apoll_until(one, lambda rs: len(rs) >= 6, wait_timeout)
        done = {
            TopicPartition(topic, p): 1 + max(r.offset for r in seen if r.partition == p)
            for p in range(2)
        }

        two = await make_consumer(group)
        await two.subscribe([topic])
        committed_after_poll: list[TopicPartition] = []
        mark = len(one_listener.events)

        async def split() -> bool:
            nonlocal mark
            if two.assignment() and one.assignment() | two.assignment() == every:
                return True
            await one.poll(0.05)
            revoked = one_listener.revoked(since=mark)
            mark = len(one_listener.events)
            if revoked:
                await one.commit({tp: done[tp] for tp in revoked})  # must not raise
                committed_after_poll.extend(revoked)
            await two.poll(0.05)
            return False

        await async_wait_for(split, wait_timeout, what="the second member's share", interval=0)

        assert set(committed_after_poll) >= two.assignment()
        assert await two.committed(sorted(every, key=lambda tp: tp.partition)) == done

    async def test_a_commit_for_a_partition_not_owned_raises_commit_error(
        self, new_topic: TopicFactory, make_consumer: AsyncConsumerFactory
    ) -> None:
        topic = new_topic(1)
        consumer = await make_consumer(unique_name("group"))

        with pytest.raises(CommitError):
            await consumer.commit({TopicPartition(topic, 0): 1})

    async def test_assign_and_subscribe_on_one_consumer_are_merged_in_poll(
        self,
        new_topic: TopicFactory,
        make_consumer: AsyncConsumerFactory,
        make_producer: AsyncProducerFactory,
        wait_timeout: float,
    ) -> None:
        group_topic, global_topic = new_topic(2), new_topic(1)
        producer = await make_producer()
        await send_all(producer, [OutboundRecord(global_topic, b"g0")])
        await send_all(producer, [OutboundRecord(group_topic, b"s0", partition=1)])
        consumer = await make_consumer(unique_name("group"))
        listener = RecordingListener()
        await consumer.subscribe([group_topic], listener)
        await consumer.assign([TopicPartition(global_topic, 0)], from_beginning=True)

        records = await apoll_until(consumer, lambda rs: len(rs) >= 2, wait_timeout)
        await apoll_until(consumer, lambda rs: len(consumer.assignment()) == 2, wait_timeout)

        assert sorted((r.topic, r.value) for r in records) == sorted(
            [(group_topic, b"s0"), (global_topic, b"g0")]
        )
        assert consumer.assignment() == {TopicPartition(group_topic, p) for p in range(2)}
        assert TopicPartition(global_topic, 0) not in listener.assigned()
        lags = await consumer.lag_info()
        assert {(lag.topic, lag.partition) for lag in lags} == {(group_topic, 0), (group_topic, 1)}

    async def test_assign_from_the_end_skips_existing_records(
        self,
        new_topic: TopicFactory,
        make_consumer: AsyncConsumerFactory,
        make_producer: AsyncProducerFactory,
        wait_timeout: float,
    ) -> None:
        topic = new_topic(1)
        producer = await make_producer()
        await send_all(producer, [OutboundRecord(topic, b"old")])
        consumer = await make_consumer(unique_name("group"))

        await consumer.assign([TopicPartition(topic, 0)], from_beginning=False)
        await send_all(producer, [OutboundRecord(topic, b"new")])
        records = await apoll_until(consumer, lambda rs: len(rs) >= 1, wait_timeout)
        records += await consumer.poll(0.2)

        assert [r.value for r in records] == [b"new"]

    async def test_a_paused_partition_assigned_again_after_a_rebalance_is_not_paused(
        self,
        new_topic: TopicFactory,
        make_consumer: AsyncConsumerFactory,
        make_producer: AsyncProducerFactory,
        wait_timeout: float,
    ) -> None:
        topic, other = new_topic(2), new_topic(1)
        tp0 = TopicPartition(topic, 0)
        consumer = await make_consumer(unique_name("group"))
        listener = RecordingListener()
        await consumer.subscribe([topic], listener)
        await apoll_until(consumer, lambda rs: len(consumer.assignment()) == 2, wait_timeout)
        consumer.pause([tp0])
        mark = len(listener.events)

        await consumer.subscribe([topic, other], listener)
        await apoll_until(consumer, lambda rs: len(consumer.assignment()) == 3, wait_timeout)
        await send_all(await make_producer(), [OutboundRecord(topic, b"p0", partition=0)])
        records = await apoll_until(consumer, lambda rs: len(rs) >= 1, wait_timeout)

        assert tp0 in listener.revoked(since=mark)
        assert [(r.partition, r.value) for r in records] == [(0, b"p0")]

    async def test_an_out_of_range_committed_offset_is_reported_and_reset(
        self,
        kafka_bootstrap: str,
        new_topic: TopicFactory,
        make_consumer: AsyncConsumerFactory,
        make_producer: AsyncProducerFactory,
        wait_timeout: float,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """SPEC §8: the group and partition are named; ``auto_offset_reset`` decides."""
        topic = new_topic(1)
        tp = TopicPartition(topic, 0)
        group = unique_name("group")
        await send_all(await make_producer(), [OutboundRecord(topic, b"v") for _ in range(10)])
        first = await make_consumer(group)
        await first.subscribe([topic])
        await apoll_until(first, lambda rs: first.assignment() == {tp}, wait_timeout)
        await first.commit({tp: 2})
        await first.close()
        delete_records_before(kafka_bootstrap, tp, 5)  # offset 2 no longer exists

        second = await make_consumer(group, auto_offset_reset="earliest")
        with caplog.at_level(logging.WARNING, logger="da_adapters.aiokafka"):
            await second.subscribe([topic])
            records = await apoll_until(second, lambda rs: len(rs) >= 5, wait_timeout)

            async def warned() -> bool:
                await second.poll(0.05)
                return _warned(caplog, group, topic)

            await async_wait_for(warned, wait_timeout, what="the out-of-range warning")

        assert [r.offset for r in records] == [5, 6, 7, 8, 9]
        assert _warned(caplog, group, topic), caplog.text

    async def test_a_send_to_an_illegal_topic_name_fails_at_once(
        self, make_producer: AsyncProducerFactory
    ) -> None:
        producer = await make_producer()
        started = time.monotonic()

        report = await producer.send(OutboundRecord("bad topic name!", b"x"))

        assert report.error is not None
        assert report.error.startswith("InvalidTopicError")
        assert time.monotonic() - started < 1.0

    async def test_partitions_for_a_missing_topic_is_empty(
        self, make_consumer: AsyncConsumerFactory
    ) -> None:
        consumer = await make_consumer(unique_name("group"))

        assert await consumer.partitions_for(unique_name("missing")) == []

    async def test_the_two_members_of_a_group_never_overlap(
        self, new_topic: TopicFactory, make_consumer: AsyncConsumerFactory, wait_timeout: float
    ) -> None:
        topic = new_topic(4)
        every = {TopicPartition(topic, p) for p in range(4)}
        group = unique_name("group")
        one, two = await make_consumer(group), await make_consumer(group)
        await one.subscribe([topic], RecordingListener())
        await two.subscribe([topic], RecordingListener())

        await apoll_many_until(
            [one, two],
            lambda: (
                bool(one.assignment() and two.assignment())
                and one.assignment() | two.assignment() == every
            ),
            wait_timeout,
        )

        assert not one.assignment() & two.assignment()
