"""Behaviours of the in-memory broker that no real-Kafka contract can check: the partitioner's
exact hash, injected faults, out-of-range resets, range assignment and rebalance ordering."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pytest
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given
from hypothesis import strategies as st

from da_adapters.memory import (
    ManualClock,
    MemoryBroker,
    MemoryConsumer,
    MemoryProducer,
    murmur2,
    partition_for_key,
    range_assign,
    to_positive,
)
from da_core.errors import CommitError, DeliveryError
from da_core.types import DeliveryReport, OutboundRecord, Record, TopicPartition

T0 = TopicPartition("t", 0)
T1 = TopicPartition("t", 1)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def broker(clock: ManualClock) -> MemoryBroker:
    return MemoryBroker(clock)


def put(broker: MemoryBroker, n: int, topic: str = "t", partition: int | None = 0) -> None:
    for i in range(n):
        broker.produce(topic, f"v{i}".encode(), partition=partition)


def drain(consumer: MemoryConsumer) -> list[Record]:
    out: list[Record] = []
    while batch := consumer.poll(0):
        out += batch
    return out


class Events:
    """A rebalance listener writing ``"<name> <kind> <partitions>"`` lines to a shared list."""

    def __init__(self, name: str, log: list[str]) -> None:
        self.name, self.log = name, log

    def on_assigned(self, partitions: Sequence[TopicPartition]) -> None:
        self.log.append(f"{self.name} assigned {[str(tp) for tp in partitions]}")

    def on_revoked(self, partitions: Sequence[TopicPartition]) -> None:
        self.log.append(f"{self.name} revoked {[str(tp) for tp in partitions]}")


# -- the partitioner ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        # org.apache.kafka.common.utils.UtilsTest#testMurmur2
        (b"21", -973932308),
        (b"foobar", -790332482),
        (b"a-little-bit-long-string", -985981536),
        (b"a-little-bit-longer-string", -1486304829),
        (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
        (b"abc", 479470107),
    ],
)
def test_murmur2_gives_the_java_clients_hash(data: bytes, expected: int) -> None:
    assert murmur2(data) == expected


@given(st.binary(max_size=64))
def test_murmur2_agrees_with_the_aiokafka_implementation(data: bytes) -> None:
    assert murmur2(data) & 0xFFFFFFFF == aiokafka_murmur2(data)


@pytest.mark.parametrize(
    ("key", "partition"),
    # Kafka's partitioner over 1000 partitions, as quoted by kafka-python's and aiokafka's tests.
    [(b"", 681), (b"a", 524), (b"ab", 434), (b"abc", 107), (b"123456789", 566), (b"\x00 ", 742)],
)
def test_partition_for_key_matches_the_java_default_partitioner(key: bytes, partition: int) -> None:
    assert partition_for_key(key, 1000) == partition


def test_to_positive_clears_the_sign_bit_instead_of_taking_the_absolute_value() -> None:
    assert (to_positive(-1), to_positive(-(2**31)), to_positive(5)) == (0x7FFFFFFF, 0, 5)


def test_a_keyed_record_lands_on_the_murmur2_partition(broker: MemoryBroker) -> None:
    broker.create_topic("t", 7)

    stored = broker.produce("t", b"x", key=b"station-42")

    assert stored.partition == partition_for_key(b"station-42", 7)


def test_keyless_records_go_round_robin(broker: MemoryBroker) -> None:
    broker.create_topic("t", 3)

    partitions = [broker.produce("t", b"x").partition for _ in range(6)]

    assert partitions == [0, 1, 2, 0, 1, 2]


# -- topics and records ------------------------------------------------------------------------


def test_records_are_stamped_with_the_clock_unless_a_timestamp_is_given(
    broker: MemoryBroker, clock: ManualClock
) -> None:
    first = broker.produce("t", b"a")
    clock.advance(2.5)
    second = broker.produce("t", b"b")
    third = broker.produce("t", b"c", timestamp=123.0)

    assert (first.timestamp, second.timestamp, third.timestamp) == (
        1_800_000_000.0,
        1_800_000_002.5,
        123.0,
    )


def test_producing_to_an_unknown_topic_creates_it_with_the_default_partitions(
    clock: ManualClock,
) -> None:
    broker = MemoryBroker(clock, default_partitions=5)

    broker.produce("fresh", b"x")

    assert broker.partitions_for("fresh") == [0, 1, 2, 3, 4]


def test_without_auto_create_an_unknown_topic_is_refused(clock: ManualClock) -> None:
    broker = MemoryBroker(clock, auto_create_topics=False)

    with pytest.raises(DeliveryError, match="UNKNOWN_TOPIC"):
        broker.produce("missing", b"x")
    assert broker.topics() == []


def test_a_partition_the_topic_does_not_have_is_refused(broker: MemoryBroker) -> None:
    broker.create_topic("t", 2)

    with pytest.raises(DeliveryError, match="UNKNOWN_PARTITION"):
        broker.produce("t", b"x", partition=2)


def test_creating_an_existing_topic_with_another_partition_count_is_an_error(
    broker: MemoryBroker,
) -> None:
    broker.create_topic("t", 2)
    broker.create_topic("t", 2)

    with pytest.raises(ValueError, match="2 partitions"):
        broker.create_topic("t", 3)


def test_the_high_watermark_is_the_next_offset_to_be_written(broker: MemoryBroker) -> None:
    broker.create_topic("t", 2)
    put(broker, 4)

    assert (broker.high_watermark(T0), broker.high_watermark(T1)) == (4, 0)


def test_deleting_records_moves_the_log_start_and_keeps_the_high_watermark(
    broker: MemoryBroker,
) -> None:
    put(broker, 5)

    broker.delete_records_before(T0, 3)

    assert (broker.log_start_offset(T0), broker.high_watermark(T0)) == (3, 5)
    assert [r.offset for r in broker.records("t", 0)] == [3, 4]


# -- injected faults ----------------------------------------------------------------------------


def test_fail_next_produce_refuses_exactly_that_many_records(broker: MemoryBroker) -> None:
    broker.create_topic("t", 1)
    broker.fail_next_produce("t", "NOT_ENOUGH_REPLICAS", count=2)
    producer = MemoryProducer(broker)
    reports: list[DeliveryReport] = []

    for i in range(3):
        producer.produce(OutboundRecord("t", f"v{i}".encode()), reports.append)
    producer.flush(1.0)

    assert [r.error for r in reports] == ["NOT_ENOUGH_REPLICAS", "NOT_ENOUGH_REPLICAS", None]
    assert [(r.value, r.offset) for r in broker.records("t")] == [(b"v2", 0)]


def test_a_rejected_topic_refuses_every_record_until_accepted_again(broker: MemoryBroker) -> None:
    broker.reject_topic("t")

    refused = []
    for _ in range(3):
        with pytest.raises(DeliveryError, match="TOPIC_AUTHORIZATION_FAILED") as caught:
            broker.produce("t", b"x")
        refused.append(caught.value)
    broker.accept_topic("t")

    assert len(refused) == 3
    assert broker.produce("t", b"x").offset == 0


def test_failed_commits_raise_and_store_nothing_then_commits_work_again(
    broker: MemoryBroker,
) -> None:
    broker.create_topic("t", 1)
    consumer = MemoryConsumer(broker, "g")
    broker.fail_commits("g", count=2)

    for _ in range(2):
        with pytest.raises(CommitError):
            consumer.commit({T0: 3})
    stored_after_failures = consumer.committed([T0])
    consumer.commit({T0: 4})

    assert stored_after_failures == {T0: None}
    assert consumer.committed([T0]) == {T0: 4}


def test_commit_failures_are_per_group(broker: MemoryBroker) -> None:
    broker.create_topic("t", 1)
    broker.fail_commits("other")

    MemoryConsumer(broker, "g").commit({T0: 1})

    assert broker.committed("g", [T0]) == {T0: 1}


# -- out of range -------------------------------------------------------------------------------


def test_a_position_below_the_log_start_resets_to_earliest_with_a_warning(
    broker: MemoryBroker, caplog: pytest.LogCaptureFixture
) -> None:
    broker.create_topic("t", 1)
    consumer = MemoryConsumer(broker, "g", auto_offset_reset="earliest")
    consumer.subscribe(["t"])
    assert consumer.poll(0) == []  # assigned, positioned at 0
    put(broker, 5)
    broker.delete_records_before(T0, 3)

    with caplog.at_level(logging.WARNING, logger="da_adapters.memory.broker"):
        records = drain(consumer)

    assert [r.offset for r in records] == [3, 4]
    assert "out of range" in caplog.text
    assert "'g'" in caplog.text
    assert "t[0]" in caplog.text


def test_a_position_below_the_log_start_resets_to_latest_when_so_configured(
    broker: MemoryBroker,
) -> None:
    broker.create_topic("t", 1)
    consumer = MemoryConsumer(broker, "g", auto_offset_reset="latest")
    consumer.subscribe(["t"])
    consumer.poll(0)
    put(broker, 5)
    broker.delete_records_before(T0, 3)

    skipped = drain(consumer)
    broker.produce("t", b"after", partition=0)

    assert skipped == []
    assert [(r.offset, r.value) for r in drain(consumer)] == [(5, b"after")]


def test_a_committed_offset_below_the_log_start_is_reset_on_assignment(
    broker: MemoryBroker, caplog: pytest.LogCaptureFixture
) -> None:
    put(broker, 5)
    MemoryConsumer(broker, "g").commit({T0: 1})
    broker.delete_records_before(T0, 3)
    consumer = MemoryConsumer(broker, "g", auto_offset_reset="earliest")
    consumer.subscribe(["t"])

    with caplog.at_level(logging.WARNING, logger="da_adapters.memory.broker"):
        records = drain(consumer)

    assert [r.offset for r in records] == [3, 4]
    assert "t[0]" in caplog.text


# -- assignment ---------------------------------------------------------------------------------


def test_range_assign_gives_the_first_members_the_extra_partitions() -> None:
    assigned = range_assign({"m1": ["t"], "m2": ["t"]}, {"t": 3})

    assert assigned == {"m1": frozenset({T0, T1}), "m2": frozenset({TopicPartition("t", 2)})}


def test_range_assign_co_partitions_topics_with_equal_partition_counts() -> None:
    assigned = range_assign(
        {"m1": ["a", "b"], "m2": ["a", "b"], "m3": ["a", "b"]}, {"a": 6, "b": 6}
    )

    for tps in assigned.values():
        by_topic = {t: {tp.partition for tp in tps if tp.topic == t} for t in ("a", "b")}
        assert by_topic["a"] == by_topic["b"]
        assert len(by_topic["a"]) == 2


def test_range_assign_skips_topics_that_do_not_exist_yet() -> None:
    assert range_assign({"m1": ["t", "later"]}, {"t": 1}) == {"m1": frozenset({T0})}


def test_a_topic_created_after_subscribing_is_assigned(clock: ManualClock) -> None:
    broker = MemoryBroker(clock, auto_create_topics=False)
    consumer = MemoryConsumer(broker, "g")
    consumer.subscribe(["later"])
    consumer.poll(0)
    before = consumer.assignment()

    broker.create_topic("later", 2)
    consumer.poll(0)

    assert before == set()
    assert consumer.assignment() == {TopicPartition("later", 0), TopicPartition("later", 1)}


def test_changing_the_subscription_revokes_the_old_topic_and_assigns_the_new(
    broker: MemoryBroker,
) -> None:
    broker.create_topic("t", 1)
    broker.create_topic("u", 1)
    log: list[str] = []
    consumer = MemoryConsumer(broker, "g")
    consumer.subscribe(["t"], Events("c", log))
    consumer.poll(0)

    consumer.subscribe(["u"], Events("c", log))
    consumer.poll(0)

    assert log == ["c assigned ['t[0]']", "c revoked ['t[0]']", "c assigned ['u[0]']"]


# -- rebalance ordering -------------------------------------------------------------------------


class CommitOnRevoke:
    """Commits every position of ``consumer`` when partitions are revoked (the last moment)."""

    def __init__(self, consumer: MemoryConsumer, log: list[str]) -> None:
        self.consumer, self.log = consumer, log

    def on_assigned(self, partitions: Sequence[TopicPartition]) -> None:
        self.log.append(f"first assigned {[str(tp) for tp in partitions]}")

    def on_revoked(self, partitions: Sequence[TopicPartition]) -> None:
        positions = {
            TopicPartition(lag.topic, lag.partition): lag.position
            for lag in self.consumer.lag_info()
        }
        self.consumer.commit({tp: p for tp, p in positions.items() if p is not None})
        self.log.append(f"first revoked {[str(tp) for tp in partitions]}")


def _second_member_joins(
    broker: MemoryBroker, log: list[str]
) -> tuple[MemoryConsumer, MemoryConsumer]:
    """``first`` owns t[0], t[1] and has read 3 records of each; ``second`` then joins."""
    broker.create_topic("t", 2)
    put(broker, 3, partition=0)
    put(broker, 3, partition=1)
    first = MemoryConsumer(broker, "g", auto_offset_reset="earliest")
    second = MemoryConsumer(broker, "g", auto_offset_reset="earliest")
    first.subscribe(["t"], CommitOnRevoke(first, log))
    assert len(drain(first)) == 6
    second.subscribe(["t"], Events("second", log))
    return first, second


def test_a_partition_moves_only_after_its_old_owner_has_revoked_it(broker: MemoryBroker) -> None:
    log: list[str] = []
    first, second = _second_member_joins(broker, log)

    waiting = second.poll(0)
    assignment_while_first_holds = second.assignment()
    first.poll(0)
    second.poll(0)

    assert (waiting, assignment_while_first_holds) == ([], set())
    assert log == [
        "first assigned ['t[0]', 't[1]']",
        "first revoked ['t[0]', 't[1]']",
        "first assigned ['t[0]']",
        "second assigned ['t[1]']",
    ]


def test_the_new_owner_starts_where_the_old_owner_committed_in_its_revoke(
    broker: MemoryBroker,
) -> None:
    first, second = _second_member_joins(broker, [])
    second.poll(0)
    first.poll(0)

    redelivered = drain(second)
    broker.produce("t", b"new", partition=1)

    assert redelivered == []
    assert [(r.offset, r.value) for r in drain(second)] == [(3, b"new")]


def test_a_commit_for_a_partition_another_member_now_owns_is_refused(
    broker: MemoryBroker,
) -> None:
    first, second = _second_member_joins(broker, [])
    second.poll(0)
    first.poll(0)
    second.poll(0)

    with pytest.raises(CommitError, match="another member"):
        first.commit({T1: 1})
    assert broker.committed("g", [T1]) == {T1: 3}


def test_cooperative_rebalance_revokes_only_the_partitions_that_move(clock: ManualClock) -> None:
    broker = MemoryBroker(clock, rebalance_protocol="cooperative")
    log: list[str] = []
    first, second = _second_member_joins(broker, log)

    second.poll(0)
    first.poll(0)
    second.poll(0)

    assert log == [
        "first assigned ['t[0]', 't[1]']",
        "first revoked ['t[1]']",
        "second assigned ['t[1]']",
    ]


def test_a_member_that_never_polls_keeps_its_partitions_from_the_others(
    broker: MemoryBroker,
) -> None:
    first, second = _second_member_joins(broker, [])

    for _ in range(3):
        second.poll(0)

    assert second.assignment() == set()
    assert broker.group_assignment("g") == {
        first.member_id: frozenset({T0}),
        second.member_id: frozenset({T1}),
    }


def test_each_rebalance_moves_the_generation(broker: MemoryBroker) -> None:
    broker.create_topic("t", 2)
    first = MemoryConsumer(broker, "g")
    first.subscribe(["t"])
    after_join = broker.generation("g")

    MemoryConsumer(broker, "g").subscribe(["t"])

    assert broker.generation("g") == after_join + 1
