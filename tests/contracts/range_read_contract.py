"""The executable form of the range-read part of ``Consumer``/``AsyncConsumer`` (``watermarks``,
``offsets_for_times``, ``assign_at``, ``unassign``, ``position``): what a restore by replay
relies on. ``ConsumerContract`` / ``AsyncConsumerContract`` inherit these mixins, so every
backend runs them with its own fixtures (``clock``, ``new_topic``, ``make_consumer``,
``make_producer``, ``wait_timeout``).

Record times are whole seconds an hour back (exact in Kafka's milliseconds, and recent
enough that no retention deletes them).
"""

from __future__ import annotations

from collections.abc import Mapping

from da_core.ports import AsyncConsumer, Clock, Consumer
from da_core.types import OutboundRecord, Record, TopicPartition
from tests.contracts.support import (
    AsyncConsumerFactory,
    AsyncProducerFactory,
    ConsumerFactory,
    ProducerFactory,
    TopicFactory,
    produce_all,
    send_all,
    unique_name,
)
from tests.support.waiting import async_wait_for, wait_for

Ranges = Mapping[TopicPartition, tuple[int, int]]


def _stamped(topic: str, partition: int, times: list[float]) -> list[OutboundRecord]:
    return [
        OutboundRecord(topic, f"p{partition}-{i}".encode(), partition=partition, timestamp=t)
        for i, t in enumerate(times)
    ]


def _numbered(topic: str, partition: int, n: int, prefix: str = "v") -> list[OutboundRecord]:
    return [OutboundRecord(topic, f"{prefix}{i}".encode(), partition=partition) for i in range(n)]


def _base(clock: Clock) -> float:
    return float(int(clock.time()) - 3600)


def _offsets(records: list[Record], tp: TopicPartition) -> list[int]:
    return [r.offset for r in records if r.tp == tp]


def read_range(consumer: Consumer, ranges: Ranges, timeout: float) -> list[Record]:
    """Read ``[start, end)`` of each partition the way a restore does: ``assign_at`` the starts,
    poll until every ``position`` reaches its end, keep only records below the end,
    ``unassign``."""
    consumer.assign_at({tp: start for tp, (start, _end) in ranges.items()})
    received: list[Record] = []

    def done() -> bool:
        received.extend(consumer.poll(0.05))
        return all((consumer.position(tp) or 0) >= end for tp, (_s, end) in ranges.items())

    wait_for(done, timeout, what="range read", interval=0, observe=lambda: len(received))
    consumer.unassign(list(ranges))
    return [r for r in received if r.tp in ranges and r.offset < ranges[r.tp][1]]


async def aread_range(consumer: AsyncConsumer, ranges: Ranges, timeout: float) -> list[Record]:
    """``read_range`` for an ``AsyncConsumer``."""
    await consumer.assign_at({tp: start for tp, (start, _end) in ranges.items()})
    received: list[Record] = []

    async def done() -> bool:
        received.extend(await consumer.poll(0.05))
        for tp, (_start, end) in ranges.items():
            if (await consumer.position(tp) or 0) < end:
                return False
        return True

    await async_wait_for(done, timeout, what="range read", interval=0)
    await consumer.unassign(list(ranges))
    return [r for r in received if r.tp in ranges and r.offset < ranges[r.tp][1]]


class RangeReadContract:
    """Range reads on a sync ``Consumer``."""

    def test_watermarks_are_low_and_high_and_equal_for_an_empty_partition(
        self,
        new_topic: TopicFactory,
        make_consumer: ConsumerFactory,
        make_producer: ProducerFactory,
        wait_timeout: float,
    ) -> None:
        topic = new_topic(2)
        tp0, tp1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
        produce_all(make_producer(), _numbered(topic, 0, 3), wait_timeout)
        consumer = make_consumer(unique_name("group"))

        assert consumer.watermarks([tp0, tp1]) == {tp0: (0, 3), tp1: (0, 0)}
        assert consumer.assignment() == set()

    def test_offsets_for_times_finds_the_first_record_at_or_after_each_time(
        self,
        clock: Clock,
        new_topic: TopicFactory,
        make_consumer: ConsumerFactory,
        make_producer: ProducerFactory,
        wait_timeout: float,
    ) -> None:
        topic = new_topic(2)
        t = _base(clock)
        tp0, tp1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
        produce_all(make_producer(), _stamped(topic, 0, [t, t + 10, t + 20]), wait_timeout)
        consumer = make_consumer(unique_name("group"))

        def at(time: float, tp: TopicPartition = tp0) -> int | None:
            return consumer.offsets_for_times({tp: time})[tp]

        assert at(t - 5) == 0  # before every record
        assert at(t) == 0  # exactly at a record
        assert at(t + 5) == 1  # between two records
        assert at(t + 10) == 1
        assert at(t + 10.0004) == 2  # later than the record within its millisecond
        assert at(t + 20) == 2
        assert at(t + 25) is None  # after every record
        assert at(t, tp1) is None  # an empty partition
        both = consumer.offsets_for_times({tp0: t + 15, tp1: t})
        assert both == {tp0: 2, tp1: None}

    def test_a_range_read_returns_exactly_start_to_end_and_commits_nothing(
        self,
        new_topic: TopicFactory,
        make_consumer: ConsumerFactory,
        make_producer: ProducerFactory,
        wait_timeout: float,
    ) -> None:
        topic = new_topic(1)
        tp = TopicPartition(topic, 0)
        produce_all(make_producer(), _numbered(topic, 0, 10), wait_timeout)
        group = unique_name("group")
        consumer = make_consumer(group, auto_offset_reset="latest")

        consumer.assign_at({tp: 3})
        assert consumer.position(tp) == 3  # the start, before anything is read
        records = read_range(consumer, {tp: (3, 7)}, wait_timeout)

        assert _offsets(records, tp) == [3, 4, 5, 6]
        assert [r.value for r in records] == [b"v3", b"v4", b"v5", b"v6"]
        assert consumer.assignment() == set()
        assert consumer.committed([tp]) == {tp: None}

    def test_two_partitions_are_read_from_different_starts(
        self,
        new_topic: TopicFactory,
        make_consumer: ConsumerFactory,
        make_producer: ProducerFactory,
        wait_timeout: float,
    ) -> None:
        topic = new_topic(2)
        tp0, tp1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
        producer = make_producer()
        produce_all(producer, _numbered(topic, 0, 6, "a"), wait_timeout)
        produce_all(producer, _numbered(topic, 1, 6, "b"), wait_timeout)
        consumer = make_consumer(unique_name("group"))

        records = read_range(consumer, {tp0: (1, 5), tp1: (4, 6)}, wait_timeout)

        assert _offsets(records, tp0) == [1, 2, 3, 4]
        assert _offsets(records, tp1) == [4, 5]

    def test_assign_at_again_moves_the_position(
        self,
        new_topic: TopicFactory,
        make_consumer: ConsumerFactory,
        make_producer: ProducerFactory,
        wait_timeout: float,
    ) -> None:
        topic = new_topic(1)
        tp = TopicPartition(topic, 0)
        produce_all(make_producer(), _numbered(topic, 0, 6), wait_timeout)
        consumer = make_consumer(unique_name("group"))
        first = read_range(consumer, {tp: (0, 6)}, wait_timeout)

        again = read_range(consumer, {tp: (2, 4)}, wait_timeout)

        assert _offsets(first, tp) == [0, 1, 2, 3, 4, 5]
        assert _offsets(again, tp) == [2, 3]

    def test_unassign_stops_reading_a_partition_and_keeps_the_others(
        self,
        new_topic: TopicFactory,
        make_consumer: ConsumerFactory,
        make_producer: ProducerFactory,
        wait_timeout: float,
    ) -> None:
        topic = new_topic(2)
        tp0, tp1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
        producer = make_producer()
        produce_all(producer, _numbered(topic, 0, 2, "a"), wait_timeout)
        produce_all(producer, _numbered(topic, 1, 2, "b"), wait_timeout)
        consumer = make_consumer(unique_name("group"))
        consumer.assign_at({tp0: 0, tp1: 0})

        consumer.unassign([tp0])
        produce_all(producer, _numbered(topic, 0, 2, "late-a"), wait_timeout)
        produce_all(producer, _numbered(topic, 1, 2, "late-b"), wait_timeout)
        received: list[Record] = []

        def all_of_tp1() -> bool:
            received.extend(consumer.poll(0.05))
            return len(_offsets(received, tp1)) >= 4

        wait_for(all_of_tp1, wait_timeout, what="partition 1", interval=0)
        received.extend(consumer.poll(0.2))

        assert _offsets(received, tp1) == [0, 1, 2, 3]
        assert _offsets(received, tp0) == []
        assert consumer.position(tp0) is None


class AsyncRangeReadContract:
    """Range reads on an ``AsyncConsumer``."""

    async def test_watermarks_are_low_and_high_and_equal_for_an_empty_partition(
        self,
        new_topic: TopicFactory,
        make_consumer: AsyncConsumerFactory,
        make_producer: AsyncProducerFactory,
    ) -> None:
        topic = new_topic(2)
        tp0, tp1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
        await send_all(await make_producer(), _numbered(topic, 0, 3))
        consumer = await make_consumer(unique_name("group"))

        assert await consumer.watermarks([tp0, tp1]) == {tp0: (0, 3), tp1: (0, 0)}
        assert consumer.assignment() == set()

    async def test_offsets_for_times_finds_the_first_record_at_or_after_each_time(
        self,
        clock: Clock,
        new_topic: TopicFactory,
        make_consumer: AsyncConsumerFactory,
        make_producer: AsyncProducerFactory,
    ) -> None:
        topic = new_topic(2)
        t = _base(clock)
        tp0, tp1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
        await send_all(await make_producer(), _stamped(topic, 0, [t, t + 10, t + 20]))
        consumer = await make_consumer(unique_name("group"))

        async def at(time: float, tp: TopicPartition = tp0) -> int | None:
            return (await consumer.offsets_for_times({tp: time}))[tp]

        assert await at(t - 5) == 0
        assert await at(t) == 0
        assert await at(t + 5) == 1
        assert await at(t + 10) == 1
        assert await at(t + 10.0004) == 2
        assert await at(t + 20) == 2
        assert await at(t + 25) is None
        assert await at(t, tp1) is None
        both = await consumer.offsets_for_times({tp0: t + 15, tp1: t})
        assert both == {tp0: 2, tp1: None}

    async def test_a_range_read_returns_exactly_start_to_end_and_commits_nothing(
        self,
        new_topic: TopicFactory,
        make_consumer: AsyncConsumerFactory,
        make_producer: AsyncProducerFactory,
        wait_timeout: float,
    ) -> None:
        topic = new_topic(1)
        tp = TopicPartition(topic, 0)
        await send_all(await make_producer(), _numbered(topic, 0, 10))
        consumer = await make_consumer(unique_name("group"), auto_offset_reset="latest")

        await consumer.assign_at({tp: 3})
        assert await consumer.position(tp) == 3
        records = await aread_range(consumer, {tp: (3, 7)}, wait_timeout)

        assert _offsets(records, tp) == [3, 4, 5, 6]
        assert [r.value for r in records] == [b"v3", b"v4", b"v5", b"v6"]
        assert consumer.assignment() == set()
        assert await consumer.committed([tp]) == {tp: None}

    async def test_two_partitions_are_read_from_different_starts(
        self,
        new_topic: TopicFactory,
        make_consumer: AsyncConsumerFactory,
        make_producer: AsyncProducerFactory,
        wait_timeout: float,
    ) -> None:
        topic = new_topic(2)
        tp0, tp1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
        producer = await make_producer()
        await send_all(producer, _numbered(topic, 0, 6, "a"))
        await send_all(producer, _numbered(topic, 1, 6, "b"))
        consumer = await make_consumer(unique_name("group"))

        records = await aread_range(consumer, {tp0: (1, 5), tp1: (4, 6)}, wait_timeout)

        assert _offsets(records, tp0) == [1, 2, 3, 4]
        assert _offsets(records, tp1) == [4, 5]

    async def test_assign_at_again_moves_the_position(
        self,
        new_topic: TopicFactory,
        make_consumer: AsyncConsumerFactory,
        make_producer: AsyncProducerFactory,
        wait_timeout: float,
    ) -> None:
        topic = new_topic(1)
        tp = TopicPartition(topic, 0)
        await send_all(await make_producer(), _numbered(topic, 0, 6))
        consumer = await make_consumer(unique_name("group"))
        first = await aread_range(consumer, {tp: (0, 6)}, wait_timeout)

        again = await aread_range(consumer, {tp: (2, 4)}, wait_timeout)

        assert _offsets(first, tp) == [0, 1, 2, 3, 4, 5]
        assert _offsets(again, tp) == [2, 3]

    async def test_unassign_stops_reading_a_partition_and_keeps_the_others(
        self,
        new_topic: TopicFactory,
        make_consumer: AsyncConsumerFactory,
        make_producer: AsyncProducerFactory,
        wait_timeout: float,
    ) -> None:
        topic = new_topic(2)
        tp0, tp1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
        producer = await make_producer()
        await send_all(producer, _numbered(topic, 0, 2, "a"))
        await send_all(producer, _numbered(topic, 1, 2, "b"))
        consumer = await make_consumer(unique_name("group"))
        await consumer.assign_at({tp0: 0, tp1: 0})

        await consumer.unassign([tp0])
        await send_all(producer, _numbered(topic, 0, 2, "late-a"))
        await send_all(producer, _numbered(topic, 1, 2, "late-b"))
        received: list[Record] = []

        async def all_of_tp1() -> bool:
            received.extend(await consumer.poll(0.05))
            return len(_offsets(received, tp1)) >= 4

        await async_wait_for(all_of_tp1, wait_timeout, what="partition 1", interval=0)
        received.extend(await consumer.poll(0.2))

        assert _offsets(received, tp1) == [0, 1, 2, 3]
        assert _offsets(received, tp0) == []
        assert await consumer.position(tp0) is None
