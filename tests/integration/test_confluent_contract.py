"""The port contract suites, run on ``ConfluentConsumer`` / ``ConfluentProducer`` against a real
Kafka broker (``kafka_bootstrap``), plus checks the contract does not cover: the wire
translation on real consumed messages, commit failures, lag after ``assign``.

Fast group joins: ``session.timeout.ms=6000`` and ``heartbeat.interval.ms=500`` (the test
broker has ``group.initial.rebalance.delay.ms=0``). A topic the broker refuses every record
to is one with ``max.message.bytes=1``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import confluent_kafka as ck
import pytest
from confluent_kafka.admin import AdminClient

from da_adapters.clock import SystemClock
from da_adapters.confluent import ConfluentConsumer, ConfluentProducer
from da_core.errors import CommitError
from da_core.ports import Clock, Consumer, Producer
from da_core.types import OutboundRecord, Record, TopicPartition
from tests.contracts.consumer_contract import ConsumerContract
from tests.contracts.producer_contract import ProducerContract
from tests.contracts.support import (
    ConsumerFactory,
    ProducerFactory,
    RecordingListener,
    TopicFactory,
    poll_until,
    produce_all,
    unique_name,
)
from tests.integration.kafka_fixtures import TopicFactory as KafkaTopicFactory

FAST_GROUP: dict[str, Any] = {
    "session.timeout.ms": 6000,
    "heartbeat.interval.ms": 500,
    "topic.metadata.refresh.interval.ms": 5000,
}
FAST_PRODUCER: dict[str, Any] = {"linger.ms": 2}


def _numbered(topic: str, n: int) -> list[OutboundRecord]:
    return [OutboundRecord(topic, f"v{i}".encode()) for i in range(n)]


def delete_records_before(bootstrap: str, tp: TopicPartition, offset: int) -> None:
    """Move the partition's log start to ``offset`` (as retention would)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.delete_records([ck.TopicPartition(tp.topic, tp.partition, offset)])
    for future in futures.values():
        future.result(30)


class ConfluentBackend:
    """The fixtures every confluent suite shares."""

    @pytest.fixture
    def wait_timeout(self) -> float:
        return 20.0

    @pytest.fixture
    def clock(self) -> Clock:
        return SystemClock()

    @pytest.fixture
    def new_topic(self, kafka_topic_factory: KafkaTopicFactory) -> TopicFactory:
        def create(partitions: int) -> str:
            return kafka_topic_factory(partitions, prefix="cf")

        return create

    @pytest.fixture
    def rejected_topic(self, kafka_topic_factory: KafkaTopicFactory) -> str:
        # Any record batch is larger than one byte: the broker refuses it (MSG_SIZE_TOO_LARGE,
        # not retriable), so the report fails at once.
        return kafka_topic_factory(1, prefix="cf-rejected", config={"max.message.bytes": "1"})

    @pytest.fixture
    def make_consumer(self, kafka_bootstrap: str) -> Iterator[ConsumerFactory]:
        made: list[ConfluentConsumer] = []

        def make(group: str, *, auto_offset_reset: str = "earliest") -> Consumer:
            consumer = ConfluentConsumer(
                group_id=group,
                bootstrap_servers=kafka_bootstrap,
                auto_offset_reset=auto_offset_reset,
                extra=FAST_GROUP,
            )
            made.append(consumer)
            return consumer

        yield make
        for consumer in made:
            consumer.close()

    @pytest.fixture
    def make_producer(self, kafka_bootstrap: str) -> Iterator[ProducerFactory]:
        made: list[ConfluentProducer] = []

        def make() -> Producer:
            producer = ConfluentProducer(bootstrap_servers=kafka_bootstrap, extra=FAST_PRODUCER)
            made.append(producer)
            return producer

        yield make
        for producer in made:
            producer.close()


class TestConfluentConsumer(ConfluentBackend, ConsumerContract):
    pass


class TestConfluentProducer(ConfluentBackend, ProducerContract):
    pass


class TestConfluentConsumerCooperative(ConfluentBackend):
    """The group part of the contract with the cooperative-sticky assignor (incremental
    callbacks)."""

    @pytest.fixture
    def make_consumer(self, kafka_bootstrap: str) -> Iterator[ConsumerFactory]:
        made: list[ConfluentConsumer] = []

        def make(group: str, *, auto_offset_reset: str = "earliest") -> Consumer:
            consumer = ConfluentConsumer(
                group_id=group,
                bootstrap_servers=kafka_bootstrap,
                auto_offset_reset=auto_offset_reset,
                extra={**FAST_GROUP, "partition.assignment.strategy": "cooperative-sticky"},
            )
            made.append(consumer)
            return consumer

        yield make
        for consumer in made:
            consumer.close()

    test_two_members_split_the_partitions_without_overlap = (
        ConsumerContract.test_two_members_split_the_partitions_without_overlap
    )
    test_when_a_member_leaves_the_other_gets_all_partitions = (
        ConsumerContract.test_when_a_member_leaves_the_other_gets_all_partitions
    )
    test_closing_a_member_revokes_its_partitions_through_its_listener = (
        ConsumerContract.test_closing_a_member_revokes_its_partitions_through_its_listener
    )


# -- beyond the contract -----------------------------------------------------------------------


class TestConfluentSpecifics(ConfluentBackend):
    def test_round_trip_translates_every_field_of_the_wire_message(
        self,
        new_topic: TopicFactory,
        make_consumer: ConsumerFactory,
        make_producer: ProducerFactory,
        wait_timeout: float,
    ) -> None:
        """Message -> Record on messages librdkafka really consumed: bytes key/value, a None
        value (tombstone), headers in order (duplicates kept), float-seconds timestamp."""
        topic = new_topic(1)
        headers = (("h", b"1"), ("h", b"2"), ("empty", b""))
        producer = make_producer()
        before = time.time()
        produce_all(
            producer,
            [OutboundRecord(topic, b"v", key=b"k", headers=headers)],
            wait_timeout,
        )
        # A tombstone (null value) goes through the client directly: OutboundRecord needs bytes.
        raw = producer._producer  # type: ignore[attr-defined]
        raw.produce(topic, value=None, key=b"gone")
        assert raw.flush(wait_timeout) == 0
        consumer = make_consumer(unique_name("group"))
        consumer.subscribe([topic])

        records = poll_until(consumer, lambda rs: len(rs) >= 2, wait_timeout)

        first, second = records
        assert isinstance(first, Record)
        assert isinstance(second, Record)
        assert (first.topic, first.partition, first.offset) == (topic, 0, 0)
        assert (first.key, first.value, first.headers) == (b"k", b"v", headers)
        assert isinstance(first.timestamp, float)
        assert before - 1.0 <= first.timestamp <= time.time() + 1.0
        assert (second.offset, second.key, second.value, second.headers) == (1, b"gone", None, ())

    def test_a_commit_the_broker_refuses_raises_commit_error(
        self, new_topic: TopicFactory, make_consumer: ConsumerFactory
    ) -> None:
        consumer = make_consumer(unique_name("group"))

        with pytest.raises(CommitError):
            consumer.commit({TopicPartition(unique_name("no-such-topic"), 0): 1})

    def test_assign_and_subscribe_on_one_consumer_are_merged_in_poll(
        self,
        new_topic: TopicFactory,
        make_consumer: ConsumerFactory,
        make_producer: ProducerFactory,
        wait_timeout: float,
    ) -> None:
        group_topic, global_topic = new_topic(2), new_topic(1)
        producer = make_producer()
        produce_all(producer, [OutboundRecord(global_topic, b"g0")], wait_timeout)
        produce_all(producer, [OutboundRecord(group_topic, b"s0", partition=1)], wait_timeout)
        consumer = make_consumer(unique_name("group"))
        listener = RecordingListener()
        consumer.subscribe([group_topic], listener)
        consumer.assign([TopicPartition(global_topic, 0)], from_beginning=True)

        records = poll_until(consumer, lambda rs: len(rs) >= 2, wait_timeout)

        assert sorted((r.topic, r.value) for r in records) == sorted(
            [(group_topic, b"s0"), (global_topic, b"g0")]
        )
        assert consumer.assignment() == {TopicPartition(group_topic, p) for p in range(2)}
        assert TopicPartition(global_topic, 0) not in listener.assigned()
        # The assigned partition is not the group's: lag covers the group's partitions only.
        assert {(lag.topic, lag.partition) for lag in consumer.lag_info()} == {
            (group_topic, 0),
            (group_topic, 1),
        }

    def test_a_paused_partition_assigned_again_after_a_rebalance_is_not_paused(
        self,
        new_topic: TopicFactory,
        make_consumer: ConsumerFactory,
        make_producer: ProducerFactory,
        wait_timeout: float,
    ) -> None:
        """Pause state is forgotten on revoke (librdkafka itself would keep it across an eager
        revoke/assign, leaving the partition silently stalled)."""
        topic, other = new_topic(2), new_topic(1)
        tp0 = TopicPartition(topic, 0)
        consumer = make_consumer(unique_name("group"))
        listener = RecordingListener()
        consumer.subscribe([topic], listener)
        poll_until(consumer, lambda rs: len(consumer.assignment()) == 2, wait_timeout)
        consumer.pause([tp0])
        mark = len(listener.events)

        consumer.subscribe([topic, other], listener)  # eager rebalance: revoke all, assign all
        poll_until(consumer, lambda rs: len(consumer.assignment()) == 3, wait_timeout)
        produce_all(make_producer(), [OutboundRecord(topic, b"p0", partition=0)], wait_timeout)
        records = poll_until(consumer, lambda rs: len(rs) >= 1, wait_timeout)

        assert tp0 in listener.revoked(since=mark)
        assert [(r.partition, r.value) for r in records] == [(0, b"p0")]

    def test_an_out_of_range_committed_offset_is_reported_and_reset(
        self,
        kafka_bootstrap: str,
        new_topic: TopicFactory,
        make_consumer: ConsumerFactory,
        make_producer: ProducerFactory,
        wait_timeout: float,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """SPEC §8: the group and partition are named; ``auto_offset_reset`` decides."""
        topic = new_topic(1)
        tp = TopicPartition(topic, 0)
        group = unique_name("group")
        produce_all(make_producer(), _numbered(topic, 10), wait_timeout)
        first = make_consumer(group)
        first.commit({tp: 2})
        first.close()
        delete_records_before(kafka_bootstrap, tp, 5)  # offset 2 no longer exists

        second = make_consumer(group, auto_offset_reset="earliest")
        with caplog.at_level(logging.WARNING, logger="da_adapters.confluent"):
            second.subscribe([topic])
            records = poll_until(second, lambda rs: len(rs) >= 5, wait_timeout)

        assert [r.offset for r in records] == [5, 6, 7, 8, 9]
        warnings = [r.getMessage() for r in caplog.records if r.name == "da_adapters.confluent"]
        assert any(group in w and f"{topic}[0]" in w for w in warnings), warnings

    def test_partitions_for_a_missing_topic_is_empty(self, make_consumer: ConsumerFactory) -> None:
        consumer = make_consumer(unique_name("group"))

        assert consumer.partitions_for(unique_name("missing")) == []
