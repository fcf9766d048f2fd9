"""The executable form of the ``Consumer`` and ``AsyncConsumer`` docstrings in
``da_core.ports``. A backend subclasses ``ConsumerContract`` / ``AsyncConsumerContract`` in a
``Test...`` class and overrides the abstract fixtures (``clock``, ``new_topic``,
``make_consumer``, ``make_producer``; ``wait_timeout`` optionally).

The tests hold for both the eager and the cooperative rebalance protocols: they assert on the
end state and on which callbacks happened, not on the exact sequence of callbacks.
"""

from __future__ import annotations

import pytest

from da_core.ports import Clock
from da_core.types import OutboundRecord, TopicPartition
from tests.contracts.range_read_contract import AsyncRangeReadContract, RangeReadContract
from tests.contracts.support import (
    AsyncConsumerFactory,
    AsyncProducerFactory,
    ConsumerFactory,
    ProducerFactory,
    RecordingListener,
    TopicFactory,
    apoll_many_until,
    apoll_until,
    in_partition,
    poll_many_until,
    poll_until,
    produce_all,
    send_all,
    unique_name,
    values,
)
from tests.support.waiting import async_wait_for, wait_for

HEADERS = (("trace-id", b"abc-123"), ("source", b"contract"))


def _numbered(
    topic: str, n: int, prefix: str = "v", partition: int | None = None
) -> list[OutboundRecord]:
    return [
        OutboundRecord(topic=topic, value=f"{prefix}{i}".encode(), partition=partition)
        for i in range(n)
    ]


class ConsumerContract(RangeReadContract):
    """Behaviour every sync ``Consumer`` (with its ``Producer``) must show."""

    @pytest.fixture
    def wait_timeout(self) -> float:
        """How long a condition may take on this backend (a real broker rebalances slowly)."""
        return 20.0

    @pytest.fixture
    def clock(self) -> Clock:
        """The clock the backend stamps records with."""
        raise NotImplementedError

    @pytest.fixture
    def new_topic(self) -> TopicFactory:
        raise NotImplementedError

    @pytest.fixture
    def make_consumer(self) -> ConsumerFactory:
        raise NotImplementedError

    @pytest.fixture
    def make_producer(self) -> ProducerFactory:
        raise NotImplementedError

    # -- round trip ---------------------------------------------------------------------------

    def test_a_produced_record_is_consumed_with_its_key_headers_and_timestamp(
        self,
        clock: Clock,
        new_topic: TopicFactory,
        make_consumer: ConsumerFactory,
        make_producer: ProducerFactory,
        wait_timeout: float,
    ) -> None:
        topic = new_topic(1)
        before = clock.time()
        sent = OutboundRecord(
            topic=topic, value=b"\xe2\x82\xac value", key=b"st-1", headers=HEADERS
        )
        [report] = produce_all(make_producer(), [sent], wait_timeout)
        after = clock.time()
        consumer = make_consumer(unique_name("group"))
        consumer.subscribe([topic])

        [record] = poll_until(consumer, lambda rs: len(rs) >= 1, wait_timeout)

        assert (record.topic, record.value, record.key) == (topic, sent.value, b"st-1")
        assert record.headers == HEADERS
        assert (record.partition, record.offset) == (report.partition, report.offset)
        assert before - 1.0 <= record.timestamp <= after + 1.0

    def test_records_of_one_partition_arrive_in_offset_order(
        self,
        new_topic: TopicFactory,
        make_consumer: ConsumerFactory,
        make_producer: ProducerFactory,
        wait_timeout: float,
    ) -> None:
        topic = new_topic(1)
        produce_all(make_producer(), _numbered(topic, 30), wait_timeout)
        consumer = make_consumer(unique_name("group"))
        consumer.subscribe([topic])

        records = poll_until(consumer, lambda rs: len(rs) >= 30, wait_timeout)

        assert [r.offset for r in records] == list(range(30))
        assert values(records) == [f"v{i}".encode() for i in range(30)]

    def test_records_with_the_same_key_are_consumed_from_one_partition(
        self,
        new_topic: TopicFactory,
        make_consumer: ConsumerFactory,
        make_producer: ProducerFactory,
        wait_timeout: float,
    ) -> None:
        topic = new_topic(3)
        keys = [f"station-{i}".encode() for i in range(8)]
        sent = [OutboundRecord(topic, b"x", key=key) for _ in range(3) for key in keys]
        produce_all(make_producer(), sent, wait_timeout)
        consumer = make_consumer(unique_name("group"))
        consumer.subscribe([topic])

        records = poll_until(consumer, lambda rs: len(rs) >= len(sent), wait_timeout)

        partitions_of = {key: {r.partition for r in records if r.key == key} for key in keys}
        assert all(len(partitions) == 1 for partitions in partitions_of.values()), partitions_of

    def test_partitions_for_lists_the_partitions_of_a_topic(
        self, new_topic: TopicFactory, make_consumer: ConsumerFactory
    ) -> None:
        topic = new_topic(3)
        consumer = make_consumer(unique_name("group"))

        assert sorted(consumer.partitions_for(topic)) == [0, 1, 2]

    def test_an_explicit_timestamp_is_kept(
        self,
        new_topic: TopicFactory,
        make_consumer: ConsumerFactory,
        make_producer: ProducerFactory,
        wait_timeout: float,
    ) -> None:
        topic = new_topic(1)
        stamp = 1_700_000_000.125  # long ago: the broker must keep the producer's time
        produce_all(make_producer(), [OutboundRecord(topic, b"x", timestamp=stamp)], wait_timeout)
        consumer = make_consumer(unique_name("group"))
        consumer.subscribe([topic])

        [record] = poll_until(consumer, lambda rs: len(rs) >= 1, wait_timeout)

        assert record.timestamp == pytest.approx(stamp, abs=0.001)

    def test_create_topics_creates_missing_topics_and_leaves_existing_ones(
        self, new_topic: TopicFactory, make_consumer: ConsumerFactory, wait_timeout: float
    ) -> None:
        existing = new_topic(2)
        fresh = unique_name("created")
        consumer = make_consumer(unique_name("group"))

        consumer.create_topics([existing, fresh], 3)

        wait_for(
            lambda: len(consumer.partitions_for(fresh)) == 3,
            wait_timeout,
            what=f"the 3 partitions of {fresh}",
            interval=0.1,
            observe=lambda: consumer.partitions_for(fresh),
        )
        assert sorted(consumer.partitions_for(fresh)) == [0, 1, 2]
        assert sorted(consumer.partitions_for(existing)) == [0, 1]
        consumer.create_topics([fresh], 3)  # again: nothing to do, no error
        assert sorted(consumer.partitions_for(fresh)) == [0, 1, 2]

    # -- offsets --------------------------------------------------------------------------------

    def test_a_new_member_resumes_at_the_committed_offset(
        self,
        new_topic: TopicFactory,
        make_consumer: ConsumerFactory,
        make_producer: ProducerFactory,
        wait_timeout: float,
    ) -> None:
        topic = new_topic(1)
        tp = TopicPartition(topic, 0)
        group = unique_name("group")
        produce_all(make_producer(), _numbered(topic, 10), wait_timeout)
        first = make_consumer(group)
        first.subscribe([topic])
        poll_until(first, lambda rs: len(rs) >= 10, wait_timeout)
        first.commit({tp: 4})  # records 0..3 done: 4 is the next to read
        first.close()

        second = make_consumer(group)
        second.subscribe([topic])
        records = poll_until(second, lambda rs: len(rs) >= 6, wait_timeout)

        assert [r.offset for r in records] == [4, 5, 6, 7, 8, 9]
        assert records[0].value == b"v4"

    def test_committed_returns_the_last_commit_and_none_where_nothing_was_committed(
        self,
        new_topic: TopicFactory,
        make_consumer: ConsumerFactory,
        make_producer: ProducerFactory,
        wait_timeout: float,
    ) -> None:
        topic = new_topic(2)
        tp0, tp1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
        produce_all(make_producer(), _numbered(topic, 5, partition=0), wait_timeout)
        consumer = make_consumer(unique_name("group"))
        consumer.subscribe([topic])
        poll_until(consumer, lambda rs: len(rs) >= 5, wait_timeout)

        consumer.commit({tp0: 3})
        consumer.commit({tp0: 5})

        assert consumer.committed([tp0, tp1]) == {tp0: 5, tp1: None}

    def test_earliest_reads_records_produced_before_joining(
        self,
        new_topic: TopicFactory,
        make_consumer: ConsumerFactory,
        make_producer: ProducerFactory,
        wait_timeout: float,
    ) -> None:
        topic = new_topic(1)
        produce_all(make_producer(), _numbered(topic, 3, "old"), wait_timeout)
        consumer = make_consumer(unique_name("group"), auto_offset_reset="earliest")
        consumer.subscribe([topic])

        records = poll_until(consumer, lambda rs: len(rs) >= 3, wait_timeout)

        assert values(records) == [b"old0", b"old1", b"old2"]

    def test_latest_skips_records_produced_before_joining(
        self,
        new_topic: TopicFactory,
        make_consumer: ConsumerFactory,
        make_producer: ProducerFactory,
        wait_timeout: float,
    ) -> None:
        topic = new_topic(1)
        producer = make_producer()
        produce_all(producer, _numbered(topic, 3, "old"), wait_timeout)
        consumer = make_consumer(unique_name("group"), auto_offset_reset="latest")
        consumer.subscribe([topic])

        # Produce fresh records until one arrives: when "latest" is resolved is up to the
        # backend, but nothing produced before the subscription may ever show up.
        received: list[bytes | None] = []

        def fresh_arrived() -> bool:
            produce_all(producer, [OutboundRecord(topic, b"new")], wait_timeout)
            received.extend(values(consumer.poll(0.1)))
            return b"new" in received

        wait_for(fresh_arrived, wait_timeout, what="a fresh record", interval=0)

        assert not [v for v in received if v is not None and v.startswith(b"old")]

    # -- the group --------------------------------------------------------------------------------

    def test_two_members_split_the_partitions_without_overlap(
        self, new_topic: TopicFactory, make_consumer: ConsumerFactory, wait_timeout: float
    ) -> None:
        topic = new_topic(4)
        every = {TopicPartition(topic, p) for p in range(4)}
        group = unique_name("group")
        one, two = make_consumer(group), make_consumer(group)
        one.subscribe([topic])
        two.subscribe([topic])

        poll_many_until(
            [one, two],
            lambda: (
                bool(one.assignment())
                and bool(two.assignment())
                and one.assignment() | two.assignment() == every
            ),
            wait_timeout,
        )

        assert not one.assignment() & two.assignment()

    def test_when_a_member_leaves_the_other_gets_all_partitions(
        self, new_topic: TopicFactory, make_consumer: ConsumerFactory, wait_timeout: float
    ) -> None:
        topic = new_topic(4)
        every = {TopicPartition(topic, p) for p in range(4)}
        group = unique_name("group")
        one, two = make_consumer(group), make_consumer(group)
        listener = RecordingListener()
        one.subscribe([topic])
        two.subscribe([topic], listener)
        poll_many_until(
            [one, two],
            lambda: (
                bool(one.assignment() and two.assignment())
                and one.assignment() | two.assignment() == every
            ),
            wait_timeout,
        )
        left_behind = one.assignment()
        mark = len(listener.events)

        one.close()
        poll_until(two, lambda rs: two.assignment() == every, wait_timeout)

        assert listener.assigned(since=mark) >= left_behind

    def test_closing_a_member_revokes_its_partitions_through_its_listener(
        self, new_topic: TopicFactory, make_consumer: ConsumerFactory, wait_timeout: float
    ) -> None:
        topic = new_topic(2)
        every = {TopicPartition(topic, p) for p in range(2)}
        consumer = make_consumer(unique_name("group"))
        listener = RecordingListener()
        consumer.subscribe([topic], listener)
        poll_until(consumer, lambda rs: consumer.assignment() == every, wait_timeout)

        consumer.close()

        assert listener.events[-1] == ("revoked", frozenset(every))

    def test_the_listener_hears_of_the_assignment_from_inside_poll(
        self, new_topic: TopicFactory, make_consumer: ConsumerFactory, wait_timeout: float
    ) -> None:
        topic = new_topic(2)
        every = {TopicPartition(topic, p) for p in range(2)}
        consumer = make_consumer(unique_name("group"))
        listener = RecordingListener()
        consumer.subscribe([topic], listener)
        assert listener.events == []

        poll_until(consumer, lambda rs: consumer.assignment() == every, wait_timeout)

        assert listener.assigned() == every

    # -- pause and resume --------------------------------------------------------------------------

    def test_a_paused_partition_returns_no_records(
        self,
        new_topic: TopicFactory,
        make_consumer: ConsumerFactory,
        make_producer: ProducerFactory,
        wait_timeout: float,
    ) -> None:
        topic = new_topic(2)
        tp0, tp1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
        consumer = make_consumer(unique_name("group"))
        consumer.subscribe([topic])
        poll_until(consumer, lambda rs: consumer.assignment() == {tp0, tp1}, wait_timeout)
        consumer.pause([tp0])
        producer = make_producer()
        # Partition 0's records are written first: had the pause no effect, they would be
        # there by the time all of partition 1's have arrived.
        produce_all(producer, _numbered(topic, 3, "p0-", partition=0), wait_timeout)
        produce_all(producer, _numbered(topic, 3, "p1-", partition=1), wait_timeout)

        records = poll_until(consumer, lambda rs: len(in_partition(rs, 1)) >= 3, wait_timeout)
        records += consumer.poll(0.2)

        assert in_partition(records, 0) == []

    def test_resume_delivers_the_paused_records_without_loss(
        self,
        new_topic: TopicFactory,
        make_consumer: ConsumerFactory,
        make_producer: ProducerFactory,
        wait_timeout: float,
    ) -> None:
        topic = new_topic(2)
        tp0, tp1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
        consumer = make_consumer(unique_name("group"))
        consumer.subscribe([topic])
        poll_until(consumer, lambda rs: consumer.assignment() == {tp0, tp1}, wait_timeout)
        consumer.pause([tp0])
        producer = make_producer()
        produce_all(producer, _numbered(topic, 3, "p0-", partition=0), wait_timeout)
        produce_all(producer, _numbered(topic, 3, "p1-", partition=1), wait_timeout)
        before = poll_until(consumer, lambda rs: len(in_partition(rs, 1)) >= 3, wait_timeout)

        consumer.resume([tp0])
        after = poll_until(consumer, lambda rs: len(in_partition(rs, 0)) >= 3, wait_timeout)

        resumed = in_partition(before + after, 0)
        assert [r.offset for r in resumed] == [0, 1, 2]
        assert values(resumed) == [b"p0-0", b"p0-1", b"p0-2"]

    # -- assign (outside the group) ----------------------------------------------------------------

    def test_assign_reads_every_partition_from_the_beginning_outside_the_group(
        self,
        new_topic: TopicFactory,
        make_consumer: ConsumerFactory,
        make_producer: ProducerFactory,
        wait_timeout: float,
    ) -> None:
        topic = new_topic(2)
        producer = make_producer()
        produce_all(producer, _numbered(topic, 2, "a", partition=0), wait_timeout)
        produce_all(producer, _numbered(topic, 2, "b", partition=1), wait_timeout)
        consumer = make_consumer(unique_name("group"), auto_offset_reset="latest")

        consumer.assign([TopicPartition(topic, 0), TopicPartition(topic, 1)], from_beginning=True)
        records = poll_until(consumer, lambda rs: len(rs) >= 4, wait_timeout)

        assert sorted((r.partition, r.offset) for r in records) == [(0, 0), (0, 1), (1, 0), (1, 1)]
        assert consumer.assignment() == set()

    def test_assign_again_adds_partitions_and_keeps_the_positions_of_the_others(
        self,
        new_topic: TopicFactory,
        make_consumer: ConsumerFactory,
        make_producer: ProducerFactory,
        wait_timeout: float,
    ) -> None:
        topic = new_topic(2)
        tp0, tp1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
        producer = make_producer()
        produce_all(producer, _numbered(topic, 2, "a", partition=0), wait_timeout)
        produce_all(producer, _numbered(topic, 2, "b", partition=1), wait_timeout)
        consumer = make_consumer(unique_name("group"))
        consumer.assign([tp0])
        first = poll_until(consumer, lambda rs: len(rs) >= 2, wait_timeout)

        consumer.assign([tp0, tp1])
        more = poll_until(consumer, lambda rs: len(rs) >= 2, wait_timeout)
        more += consumer.poll(0.2)

        assert values(first) == [b"a0", b"a1"]
        assert values(more) == [b"b0", b"b1"]  # partition 0 is not read again

    def test_assign_leaves_no_committed_offsets(
        self,
        new_topic: TopicFactory,
        make_consumer: ConsumerFactory,
        make_producer: ProducerFactory,
        wait_timeout: float,
    ) -> None:
        topic = new_topic(1)
        tp = TopicPartition(topic, 0)
        group = unique_name("group")
        produce_all(make_producer(), _numbered(topic, 3), wait_timeout)
        reader = make_consumer(group)
        reader.assign([tp])
        poll_until(reader, lambda rs: len(rs) >= 3, wait_timeout)
        reader.close()

        assert make_consumer(group).committed([tp]) == {tp: None}

    def test_assign_from_the_end_skips_existing_records(
        self,
        new_topic: TopicFactory,
        make_consumer: ConsumerFactory,
        make_producer: ProducerFactory,
        wait_timeout: float,
    ) -> None:
        topic = new_topic(1)
        producer = make_producer()
        produce_all(producer, _numbered(topic, 3, "old"), wait_timeout)
        consumer = make_consumer(unique_name("group"))

        consumer.assign([TopicPartition(topic, 0)], from_beginning=False)
        produce_all(producer, _numbered(topic, 2, "new"), wait_timeout)
        records = poll_until(consumer, lambda rs: len(rs) >= 2, wait_timeout)
        records += consumer.poll(0.2)

        assert values(records) == [b"new0", b"new1"]

    # -- lag --------------------------------------------------------------------------------------

    def test_lag_info_without_commits_counts_from_the_position(
        self,
        new_topic: TopicFactory,
        make_consumer: ConsumerFactory,
        make_producer: ProducerFactory,
        wait_timeout: float,
    ) -> None:
        topic = new_topic(1)
        produce_all(make_producer(), _numbered(topic, 5), wait_timeout)
        consumer = make_consumer(unique_name("group"))
        consumer.subscribe([topic])
        poll_until(consumer, lambda rs: len(rs) >= 5, wait_timeout)

        [lag] = consumer.lag_info()

        assert (lag.topic, lag.partition) == (topic, 0)
        assert (lag.committed, lag.position, lag.high_watermark, lag.lag) == (None, 5, 5, 0)

    def test_lag_info_counts_from_the_committed_offset(
        self,
        new_topic: TopicFactory,
        make_consumer: ConsumerFactory,
        make_producer: ProducerFactory,
        wait_timeout: float,
    ) -> None:
        topic = new_topic(1)
        produce_all(make_producer(), _numbered(topic, 5), wait_timeout)
        consumer = make_consumer(unique_name("group"))
        consumer.subscribe([topic])
        poll_until(consumer, lambda rs: len(rs) >= 5, wait_timeout)

        consumer.commit({TopicPartition(topic, 0): 3})
        [lag] = consumer.lag_info()

        assert (lag.committed, lag.position, lag.high_watermark, lag.lag) == (3, 5, 5, 2)

    def test_lag_info_follows_the_high_watermark_as_records_arrive(
        self,
        new_topic: TopicFactory,
        make_consumer: ConsumerFactory,
        make_producer: ProducerFactory,
        wait_timeout: float,
    ) -> None:
        topic = new_topic(1)
        producer = make_producer()
        produce_all(producer, _numbered(topic, 5), wait_timeout)
        consumer = make_consumer(unique_name("group"))
        consumer.subscribe([topic])
        poll_until(consumer, lambda rs: len(rs) >= 5, wait_timeout)
        consumer.commit({TopicPartition(topic, 0): 5})

        produce_all(producer, _numbered(topic, 4, "more"), wait_timeout)
        [lag] = consumer.lag_info()

        assert (lag.committed, lag.position, lag.high_watermark, lag.lag) == (5, 5, 9, 4)


class AsyncConsumerContract(AsyncRangeReadContract):
    """Behaviour every ``AsyncConsumer`` (with its ``AsyncProducer``) must show."""

    @pytest.fixture
    def wait_timeout(self) -> float:
        return 20.0

    @pytest.fixture
    def clock(self) -> Clock:
        raise NotImplementedError

    @pytest.fixture
    def new_topic(self) -> TopicFactory:
        raise NotImplementedError

    @pytest.fixture
    def make_consumer(self) -> AsyncConsumerFactory:
        raise NotImplementedError

    @pytest.fixture
    def make_producer(self) -> AsyncProducerFactory:
        raise NotImplementedError

    async def test_a_sent_record_is_consumed_with_its_key_headers_and_timestamp(
        self,
        clock: Clock,
        new_topic: TopicFactory,
        make_consumer: AsyncConsumerFactory,
        make_producer: AsyncProducerFactory,
        wait_timeout: float,
    ) -> None:
        topic = new_topic(1)
        before = clock.time()
        sent = OutboundRecord(topic=topic, value=b"payload", key=b"st-1", headers=HEADERS)
        [report] = await send_all(await make_producer(), [sent])
        after = clock.time()
        consumer = await make_consumer(unique_name("group"))
        await consumer.subscribe([topic])

        [record] = await apoll_until(consumer, lambda rs: len(rs) >= 1, wait_timeout)

        assert (record.value, record.key, record.headers) == (b"payload", b"st-1", HEADERS)
        assert (record.partition, record.offset) == (report.partition, report.offset)
        assert before - 1.0 <= record.timestamp <= after + 1.0

    async def test_records_of_one_partition_arrive_in_offset_order(
        self,
        new_topic: TopicFactory,
        make_consumer: AsyncConsumerFactory,
        make_producer: AsyncProducerFactory,
        wait_timeout: float,
    ) -> None:
        topic = new_topic(1)
        await send_all(await make_producer(), _numbered(topic, 30))
        consumer = await make_consumer(unique_name("group"))
        await consumer.subscribe([topic])

        records = await apoll_until(consumer, lambda rs: len(rs) >= 30, wait_timeout)

        assert [r.offset for r in records] == list(range(30))

    async def test_a_new_member_resumes_at_the_committed_offset(
        self,
        new_topic: TopicFactory,
        make_consumer: AsyncConsumerFactory,
        make_producer: AsyncProducerFactory,
        wait_timeout: float,
    ) -> None:
        topic = new_topic(1)
        tp = TopicPartition(topic, 0)
        group = unique_name("group")
        await send_all(await make_producer(), _numbered(topic, 10))
        first = await make_consumer(group)
        await first.subscribe([topic])
        await apoll_until(first, lambda rs: len(rs) >= 10, wait_timeout)
        await first.commit({tp: 7})
        await first.close()

        second = await make_consumer(group)
        await second.subscribe([topic])
        records = await apoll_until(second, lambda rs: len(rs) >= 3, wait_timeout)

        assert [r.offset for r in records] == [7, 8, 9]
        assert await second.committed([tp]) == {tp: 7}

    async def test_two_members_split_the_partitions_and_the_survivor_takes_all(
        self, new_topic: TopicFactory, make_consumer: AsyncConsumerFactory, wait_timeout: float
    ) -> None:
        topic = new_topic(4)
        every = {TopicPartition(topic, p) for p in range(4)}
        group = unique_name("group")
        one, two = await make_consumer(group), await make_consumer(group)
        one_listener, two_listener = RecordingListener(), RecordingListener()
        await one.subscribe([topic], one_listener)
        await two.subscribe([topic], two_listener)
        await apoll_many_until(
            [one, two],
            lambda: (
                bool(one.assignment() and two.assignment())
                and one.assignment() | two.assignment() == every
            ),
            wait_timeout,
        )
        assert not one.assignment() & two.assignment()
        left_behind = one.assignment()
        mark = len(two_listener.events)

        await one.close()
        await apoll_until(two, lambda rs: two.assignment() == every, wait_timeout)

        assert one_listener.events[-1] == ("revoked", frozenset(left_behind))
        assert two_listener.assigned(since=mark) >= left_behind

    async def test_a_paused_partition_waits_until_resumed(
        self,
        new_topic: TopicFactory,
        make_consumer: AsyncConsumerFactory,
        make_producer: AsyncProducerFactory,
        wait_timeout: float,
    ) -> None:
        topic = new_topic(2)
        tp0, tp1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
        consumer = await make_consumer(unique_name("group"))
        await consumer.subscribe([topic])
        await apoll_until(consumer, lambda rs: consumer.assignment() == {tp0, tp1}, wait_timeout)
        consumer.pause([tp0])
        producer = await make_producer()
        await send_all(producer, _numbered(topic, 3, "p0-", partition=0))
        await send_all(producer, _numbered(topic, 3, "p1-", partition=1))

        paused = await apoll_until(consumer, lambda rs: len(in_partition(rs, 1)) >= 3, wait_timeout)
        paused += await consumer.poll(0.2)
        consumer.resume([tp0])
        resumed = await apoll_until(
            consumer, lambda rs: len(in_partition(rs, 0)) >= 3, wait_timeout
        )

        assert in_partition(paused, 0) == []
        assert [r.offset for r in in_partition(resumed, 0)] == [0, 1, 2]

    async def test_assign_reads_from_the_beginning_outside_the_group_and_commits_nothing(
        self,
        new_topic: TopicFactory,
        make_consumer: AsyncConsumerFactory,
        make_producer: AsyncProducerFactory,
        wait_timeout: float,
    ) -> None:
        topic = new_topic(1)
        tp = TopicPartition(topic, 0)
        group = unique_name("group")
        await send_all(await make_producer(), _numbered(topic, 3))
        reader = await make_consumer(group, auto_offset_reset="latest")

        await reader.assign([tp], from_beginning=True)
        records = await apoll_until(reader, lambda rs: len(rs) >= 3, wait_timeout)
        await reader.close()

        assert [r.offset for r in records] == [0, 1, 2]
        assert reader.assignment() == set()
        assert await (await make_consumer(group)).committed([tp]) == {tp: None}

    async def test_lag_info_reports_committed_position_and_high_watermark(
        self,
        new_topic: TopicFactory,
        make_consumer: AsyncConsumerFactory,
        make_producer: AsyncProducerFactory,
        wait_timeout: float,
    ) -> None:
        topic = new_topic(1)
        await send_all(await make_producer(), _numbered(topic, 5))
        consumer = await make_consumer(unique_name("group"))
        await consumer.subscribe([topic])
        await apoll_until(consumer, lambda rs: len(rs) >= 5, wait_timeout)

        await consumer.commit({TopicPartition(topic, 0): 2})
        [lag] = await consumer.lag_info()

        assert (lag.topic, lag.partition) == (topic, 0)
        assert (lag.committed, lag.position, lag.high_watermark, lag.lag) == (2, 5, 5, 3)

    async def test_partitions_for_lists_the_partitions_of_a_topic(
        self, new_topic: TopicFactory, make_consumer: AsyncConsumerFactory
    ) -> None:
        topic = new_topic(3)
        consumer = await make_consumer(unique_name("group"))

        assert sorted(await consumer.partitions_for(topic)) == [0, 1, 2]

    async def test_an_explicit_timestamp_is_kept(
        self,
        new_topic: TopicFactory,
        make_consumer: AsyncConsumerFactory,
        make_producer: AsyncProducerFactory,
        wait_timeout: float,
    ) -> None:
        topic = new_topic(1)
        stamp = 1_700_000_000.125
        await send_all(await make_producer(), [OutboundRecord(topic, b"x", timestamp=stamp)])
        consumer = await make_consumer(unique_name("group"))
        await consumer.subscribe([topic])

        [record] = await apoll_until(consumer, lambda rs: len(rs) >= 1, wait_timeout)

        assert record.timestamp == pytest.approx(stamp, abs=0.001)

    async def test_create_topics_creates_missing_topics_and_leaves_existing_ones(
        self, new_topic: TopicFactory, make_consumer: AsyncConsumerFactory, wait_timeout: float
    ) -> None:
        existing = new_topic(2)
        fresh = unique_name("created")
        consumer = await make_consumer(unique_name("group"))

        await consumer.create_topics([existing, fresh], 3)

        async def created() -> bool:
            return len(await consumer.partitions_for(fresh)) == 3

        await async_wait_for(created, wait_timeout, what=f"the 3 partitions of {fresh}")
        assert sorted(await consumer.partitions_for(fresh)) == [0, 1, 2]
        assert sorted(await consumer.partitions_for(existing)) == [0, 1]
        await consumer.create_topics([fresh], 3)
        assert sorted(await consumer.partitions_for(fresh)) == [0, 1, 2]

    # -- what the sync contract also asks (same names, awaited) ---------------------------------

    async def test_records_with_the_same_key_are_consumed_from_one_partition(
        self,
        new_topic: TopicFactory,
        make_consumer: AsyncConsumerFactory,
        make_producer: AsyncProducerFactory,
        wait_timeout: float,
    ) -> None:
        topic = new_topic(3)
        keys = [f"station-{i}".encode() for i in range(8)]
        sent = [OutboundRecord(topic, b"x", key=key) for _ in range(3) for key in keys]
        await send_all(await make_producer(), sent)
        consumer = await make_consumer(unique_name("group"))
        await consumer.subscribe([topic])

        records = await apoll_until(consumer, lambda rs: len(rs) >= len(sent), wait_timeout)

        partitions_of = {key: {r.partition for r in records if r.key == key} for key in keys}
        assert all(len(partitions) == 1 for partitions in partitions_of.values()), partitions_of

    async def test_committed_returns_the_last_commit_and_none_where_nothing_was_committed(
        self,
        new_topic: TopicFactory,
        make_consumer: AsyncConsumerFactory,
        make_producer: AsyncProducerFactory,
        wait_timeout: float,
    ) -> None:
        topic = new_topic(2)
        tp0, tp1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
        await send_all(await make_producer(), _numbered(topic, 5, partition=0))
        consumer = await make_consumer(unique_name("group"))
        await consumer.subscribe([topic])
        await apoll_until(consumer, lambda rs: len(rs) >= 5, wait_timeout)

        await consumer.commit({tp0: 3})
        await consumer.commit({tp0: 5})

        assert await consumer.committed([tp0, tp1]) == {tp0: 5, tp1: None}

    async def test_earliest_reads_records_produced_before_joining(
        self,
        new_topic: TopicFactory,
        make_consumer: AsyncConsumerFactory,
        make_producer: AsyncProducerFactory,
        wait_timeout: float,
    ) -> None:
        topic = new_topic(1)
        await send_all(await make_producer(), _numbered(topic, 3, "old"))
        consumer = await make_consumer(unique_name("group"), auto_offset_reset="earliest")
        await consumer.subscribe([topic])

        records = await apoll_until(consumer, lambda rs: len(rs) >= 3, wait_timeout)

        assert values(records) == [b"old0", b"old1", b"old2"]

    async def test_latest_skips_records_produced_before_joining(
        self,
        new_topic: TopicFactory,
        make_consumer: AsyncConsumerFactory,
        make_producer: AsyncProducerFactory,
        wait_timeout: float,
    ) -> None:
        topic = new_topic(1)
        producer = await make_producer()
        await send_all(producer, _numbered(topic, 3, "old"))
        consumer = await make_consumer(unique_name("group"), auto_offset_reset="latest")
        await consumer.subscribe([topic])
        received: list[bytes | None] = []

        async def fresh_arrived() -> bool:
            # when "latest" is resolved is up to the backend: keep sending until one arrives
            await send_all(producer, [OutboundRecord(topic, b"new")])
            received.extend(values(await consumer.poll(0.1)))
            return b"new" in received

        await async_wait_for(fresh_arrived, wait_timeout, what="a fresh record", interval=0)

        assert not [v for v in received if v is not None and v.startswith(b"old")]

    async def test_closing_a_member_revokes_its_partitions_through_its_listener(
        self, new_topic: TopicFactory, make_consumer: AsyncConsumerFactory, wait_timeout: float
    ) -> None:
        topic = new_topic(2)
        every = {TopicPartition(topic, p) for p in range(2)}
        consumer = await make_consumer(unique_name("group"))
        listener = RecordingListener()
        await consumer.subscribe([topic], listener)
        await apoll_until(consumer, lambda rs: consumer.assignment() == every, wait_timeout)

        await consumer.close()

        assert listener.events[-1] == ("revoked", frozenset(every))
        assert consumer.assignment() == set()

    async def test_closing_twice_is_harmless_and_tells_the_listener_once(
        self, new_topic: TopicFactory, make_consumer: AsyncConsumerFactory, wait_timeout: float
    ) -> None:
        topic = new_topic(1)
        consumer = await make_consumer(unique_name("group"))
        listener = RecordingListener()
        await consumer.subscribe([topic], listener)
        await apoll_until(consumer, lambda rs: bool(consumer.assignment()), wait_timeout)

        await consumer.close()
        await consumer.close()

        assert [kind for kind, _ in listener.events] == ["assigned", "revoked"]

    async def test_the_listener_hears_of_the_assignment_from_inside_poll(
        self, new_topic: TopicFactory, make_consumer: AsyncConsumerFactory, wait_timeout: float
    ) -> None:
        topic = new_topic(2)
        every = {TopicPartition(topic, p) for p in range(2)}
        consumer = await make_consumer(unique_name("group"))
        listener = RecordingListener()
        await consumer.subscribe([topic], listener)
        assert listener.events == []

        await apoll_until(consumer, lambda rs: consumer.assignment() == every, wait_timeout)

        assert listener.assigned() == every

    async def test_resume_delivers_the_paused_records_without_loss(
        self,
        new_topic: TopicFactory,
        make_consumer: AsyncConsumerFactory,
        make_producer: AsyncProducerFactory,
        wait_timeout: float,
    ) -> None:
        topic = new_topic(2)
        tp0, tp1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
        consumer = await make_consumer(unique_name("group"))
        await consumer.subscribe([topic])
        await apoll_until(consumer, lambda rs: consumer.assignment() == {tp0, tp1}, wait_timeout)
        consumer.pause([tp0])
        producer = await make_producer()
        await send_all(producer, _numbered(topic, 3, "p0-", partition=0))
        await send_all(producer, _numbered(topic, 3, "p1-", partition=1))
        before = await apoll_until(consumer, lambda rs: len(in_partition(rs, 1)) >= 3, wait_timeout)

        consumer.resume([tp0])
        after = await apoll_until(consumer, lambda rs: len(in_partition(rs, 0)) >= 3, wait_timeout)

        resumed = in_partition(before + after, 0)
        assert [r.offset for r in resumed] == [0, 1, 2]
        assert values(resumed) == [b"p0-0", b"p0-1", b"p0-2"]

    async def test_assign_reads_every_partition_from_the_beginning_outside_the_group(
        self,
        new_topic: TopicFactory,
        make_consumer: AsyncConsumerFactory,
        make_producer: AsyncProducerFactory,
        wait_timeout: float,
    ) -> None:
        topic = new_topic(2)
        producer = await make_producer()
        await send_all(producer, _numbered(topic, 2, "a", partition=0))
        await send_all(producer, _numbered(topic, 2, "b", partition=1))
        consumer = await make_consumer(unique_name("group"), auto_offset_reset="latest")

        await consumer.assign(
            [TopicPartition(topic, 0), TopicPartition(topic, 1)], from_beginning=True
        )
        records = await apoll_until(consumer, lambda rs: len(rs) >= 4, wait_timeout)

        assert sorted((r.partition, r.offset) for r in records) == [(0, 0), (0, 1), (1, 0), (1, 1)]
        assert consumer.assignment() == set()

    async def test_assign_again_adds_partitions_and_keeps_the_positions_of_the_others(
        self,
        new_topic: TopicFactory,
        make_consumer: AsyncConsumerFactory,
        make_producer: AsyncProducerFactory,
        wait_timeout: float,
    ) -> None:
        topic = new_topic(2)
        tp0, tp1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
        producer = await make_producer()
        await send_all(producer, _numbered(topic, 2, "a", partition=0))
        await send_all(producer, _numbered(topic, 2, "b", partition=1))
        consumer = await make_consumer(unique_name("group"))
        await consumer.assign([tp0])
        first = await apoll_until(consumer, lambda rs: len(rs) >= 2, wait_timeout)

        await consumer.assign([tp0, tp1])
        more = await apoll_until(consumer, lambda rs: len(rs) >= 2, wait_timeout)
        more += await consumer.poll(0.2)

        assert values(first) == [b"a0", b"a1"]
        assert values(more) == [b"b0", b"b1"]  # partition 0 is not read again

    async def test_assign_from_the_end_skips_existing_records(
        self,
        new_topic: TopicFactory,
        make_consumer: AsyncConsumerFactory,
        make_producer: AsyncProducerFactory,
        wait_timeout: float,
    ) -> None:
        topic = new_topic(1)
        producer = await make_producer()
        await send_all(producer, _numbered(topic, 3, "old"))
        consumer = await make_consumer(unique_name("group"))

        await consumer.assign([TopicPartition(topic, 0)], from_beginning=False)
        await send_all(producer, _numbered(topic, 2, "new"))
        records = await apoll_until(consumer, lambda rs: len(rs) >= 2, wait_timeout)
        records += await consumer.poll(0.2)

        assert values(records) == [b"new0", b"new1"]

    async def test_lag_info_without_commits_counts_from_the_position(
        self,
        new_topic: TopicFactory,
        make_consumer: AsyncConsumerFactory,
        make_producer: AsyncProducerFactory,
        wait_timeout: float,
    ) -> None:
        topic = new_topic(1)
        await send_all(await make_producer(), _numbered(topic, 5))
        consumer = await make_consumer(unique_name("group"))
        await consumer.subscribe([topic])
        await apoll_until(consumer, lambda rs: len(rs) >= 5, wait_timeout)

        [lag] = await consumer.lag_info()

        assert (lag.topic, lag.partition) == (topic, 0)
        assert (lag.committed, lag.position, lag.high_watermark, lag.lag) == (None, 5, 5, 0)

    async def test_lag_info_follows_the_high_watermark_as_records_arrive(
        self,
        new_topic: TopicFactory,
        make_consumer: AsyncConsumerFactory,
        make_producer: AsyncProducerFactory,
        wait_timeout: float,
    ) -> None:
        topic = new_topic(1)
        producer = await make_producer()
        await send_all(producer, _numbered(topic, 5))
        consumer = await make_consumer(unique_name("group"))
        await consumer.subscribe([topic])
        await apoll_until(consumer, lambda rs: len(rs) >= 5, wait_timeout)
        await consumer.commit({TopicPartition(topic, 0): 5})

        await send_all(producer, _numbered(topic, 4, "more"))
        [lag] = await consumer.lag_info()

        assert (lag.committed, lag.position, lag.high_watermark, lag.lag) == (5, 5, 9, 4)
