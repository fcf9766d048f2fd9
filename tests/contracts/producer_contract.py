"""The executable form of the ``Producer`` and ``AsyncProducer`` docstrings in
``da_core.ports``. A backend subclasses ``ProducerContract`` / ``AsyncProducerContract`` and
overrides ``new_topic`` and ``make_producer``; ``rejected_topic`` (a topic every record to
which is refused) skips its tests unless the backend can provide one.
"""

from __future__ import annotations

import asyncio

import pytest

from da_core.types import DeliveryReport, OutboundRecord
from tests.contracts.support import AsyncProducerFactory, ProducerFactory, TopicFactory
from tests.support.waiting import wait_for


class ProducerContract:
    """Behaviour every sync ``Producer`` must show."""

    @pytest.fixture
    def wait_timeout(self) -> float:
        return 20.0

    @pytest.fixture
    def new_topic(self) -> TopicFactory:
        raise NotImplementedError

    @pytest.fixture
    def make_producer(self) -> ProducerFactory:
        raise NotImplementedError

    @pytest.fixture
    def rejected_topic(self) -> str:
        pytest.skip("this backend cannot make the broker refuse a topic")

    def test_each_produced_record_gets_exactly_one_report(
        self, new_topic: TopicFactory, make_producer: ProducerFactory, wait_timeout: float
    ) -> None:
        topic = new_topic(3)
        producer = make_producer()
        reports: list[list[DeliveryReport]] = [[] for _ in range(20)]

        for i in range(20):
            producer.produce(OutboundRecord(topic, f"v{i}".encode()), reports[i].append)
        pending = producer.flush(wait_timeout)
        producer.poll(0)

        assert pending == 0
        assert [len(r) for r in reports] == [1] * 20
        assert all(r[0].ok and r[0].record.value == f"v{i}".encode() for i, r in enumerate(reports))

    def test_reports_are_served_by_poll_not_by_produce(
        self, new_topic: TopicFactory, make_producer: ProducerFactory, wait_timeout: float
    ) -> None:
        topic = new_topic(1)
        producer = make_producer()
        reports: list[DeliveryReport] = []

        producer.produce(OutboundRecord(topic, b"v"), reports.append)
        delivered_inside_produce = len(reports)
        served: list[int] = []

        def reported() -> bool:
            served.append(producer.poll(0.1))
            return bool(reports)

        wait_for(reported, wait_timeout, what="the delivery report", interval=0)

        assert delivered_inside_produce == 0
        assert (sum(served), len(reports)) == (1, 1)

    def test_reports_of_one_partition_carry_consecutive_offsets(
        self, new_topic: TopicFactory, make_producer: ProducerFactory, wait_timeout: float
    ) -> None:
        topic = new_topic(1)
        producer = make_producer()
        reports: list[DeliveryReport] = []

        for i in range(5):
            producer.produce(OutboundRecord(topic, f"v{i}".encode()), reports.append)
        producer.flush(wait_timeout)

        assert [r.partition for r in reports] == [0] * 5
        offsets = [r.offset for r in reports]
        assert offsets == list(range(5))

    def test_records_with_the_same_key_go_to_the_same_partition(
        self, new_topic: TopicFactory, make_producer: ProducerFactory, wait_timeout: float
    ) -> None:
        topic = new_topic(4)
        producer = make_producer()
        reports: list[DeliveryReport] = []

        for _ in range(4):
            for key in (b"alpha", b"beta", b"gamma", b"delta"):
                producer.produce(OutboundRecord(topic, b"x", key=key), reports.append)
        producer.flush(wait_timeout)

        partitions: dict[bytes | None, set[int | None]] = {}
        for report in reports:
            partitions.setdefault(report.record.key, set()).add(report.partition)
        assert len(reports) == 16
        assert all(len(p) == 1 for p in partitions.values()), partitions

    def test_an_explicit_partition_is_respected(
        self, new_topic: TopicFactory, make_producer: ProducerFactory, wait_timeout: float
    ) -> None:
        topic = new_topic(3)
        producer = make_producer()
        reports: list[DeliveryReport] = []

        producer.produce(OutboundRecord(topic, b"x", key=b"k", partition=2), reports.append)
        producer.produce(OutboundRecord(topic, b"y", partition=1), reports.append)
        producer.flush(wait_timeout)

        where = {r.record.value: (r.partition, r.offset) for r in reports}
        assert where == {b"x": (2, 0), b"y": (1, 0)}

    def test_a_record_the_broker_refuses_is_reported_with_an_error(
        self, rejected_topic: str, make_producer: ProducerFactory, wait_timeout: float
    ) -> None:
        producer = make_producer()
        reports: list[DeliveryReport] = []

        producer.produce(OutboundRecord(rejected_topic, b"x"), reports.append)
        pending = producer.flush(wait_timeout)

        assert pending == 0
        assert len(reports) == 1
        assert reports[0].error
        assert not reports[0].ok


class AsyncProducerContract:
    """Behaviour every ``AsyncProducer`` must show."""

    @pytest.fixture
    def new_topic(self) -> TopicFactory:
        raise NotImplementedError

    @pytest.fixture
    def make_producer(self) -> AsyncProducerFactory:
        raise NotImplementedError

    @pytest.fixture
    def rejected_topic(self) -> str:
        pytest.skip("this backend cannot make the broker refuse a topic")

    async def test_send_resolves_to_a_successful_report_with_partition_and_offset(
        self, new_topic: TopicFactory, make_producer: AsyncProducerFactory
    ) -> None:
        topic = new_topic(1)
        producer = await make_producer()
        record = OutboundRecord(topic, b"v", key=b"k")

        report = await producer.send(record)

        assert report == DeliveryReport(record=record, error=None, partition=0, offset=0)

    async def test_sends_to_one_partition_get_consecutive_offsets(
        self, new_topic: TopicFactory, make_producer: AsyncProducerFactory
    ) -> None:
        topic = new_topic(1)
        producer = await make_producer()

        reports = [await producer.send(OutboundRecord(topic, f"v{i}".encode())) for i in range(5)]

        assert [r.offset for r in reports] == list(range(5))

    async def test_sends_with_the_same_key_go_to_the_same_partition(
        self, new_topic: TopicFactory, make_producer: AsyncProducerFactory
    ) -> None:
        topic = new_topic(4)
        producer = await make_producer()

        reports = [
            await producer.send(OutboundRecord(topic, b"x", key=key))
            for _ in range(3)
            for key in (b"alpha", b"beta", b"gamma")
        ]

        by_key: dict[bytes | None, set[int | None]] = {}
        for report in reports:
            by_key.setdefault(report.record.key, set()).add(report.partition)
        assert all(len(p) == 1 for p in by_key.values()), by_key

    async def test_a_send_the_broker_refuses_returns_a_report_with_an_error(
        self, rejected_topic: str, make_producer: AsyncProducerFactory
    ) -> None:
        producer = await make_producer()

        report = await producer.send(OutboundRecord(rejected_topic, b"x"))

        assert report.error
        assert (report.ok, report.offset) == (False, None)

    async def test_send_many_answers_every_record_in_order(
        self, new_topic: TopicFactory, make_producer: AsyncProducerFactory
    ) -> None:
        topic = new_topic(2)
        producer = await make_producer()
        records = [OutboundRecord(topic, f"v{i}".encode(), partition=i % 2) for i in range(40)]

        reports = await producer.send_many(records)

        assert [r.record for r in reports] == records
        assert all(r.ok for r in reports)
        for p in (0, 1):
            assert [r.offset for r in reports if r.partition == p] == list(range(20))

    async def test_send_many_reports_a_refused_record_and_delivers_the_others(
        self, new_topic: TopicFactory, rejected_topic: str, make_producer: AsyncProducerFactory
    ) -> None:
        topic = new_topic(1)
        producer = await make_producer()
        records = [
            OutboundRecord(topic, b"a"),
            OutboundRecord(rejected_topic, b"x"),
            OutboundRecord(topic, b"b"),
        ]

        reports = await producer.send_many(records)

        assert [r.ok for r in reports] == [True, False, True]
        assert reports[1].error
        assert [reports[0].offset, reports[2].offset] == [0, 1]

    # -- what the sync contract also asks (same names, awaited) ---------------------------------

    async def test_each_sent_record_gets_exactly_one_report(
        self, new_topic: TopicFactory, make_producer: AsyncProducerFactory
    ) -> None:
        """Concurrent sends (one task each, as the service's uploads are) all resolve, each
        to the report of its own record."""
        topic = new_topic(3)
        producer = await make_producer()
        records = [OutboundRecord(topic, f"v{i}".encode()) for i in range(20)]

        reports = await asyncio.gather(*(producer.send(record) for record in records))

        assert [r.record for r in reports] == records
        assert all(r.ok for r in reports)
        assert len({(r.partition, r.offset) for r in reports}) == 20

    async def test_an_explicit_partition_is_respected(
        self, new_topic: TopicFactory, make_producer: AsyncProducerFactory
    ) -> None:
        topic = new_topic(3)
        producer = await make_producer()

        x = await producer.send(OutboundRecord(topic, b"x", key=b"k", partition=2))
        y = await producer.send(OutboundRecord(topic, b"y", partition=1))

        assert [(x.partition, x.offset), (y.partition, y.offset)] == [(2, 0), (1, 0)]

    async def test_send_many_of_nothing_is_nothing(
        self, make_producer: AsyncProducerFactory
    ) -> None:
        producer = await make_producer()

        assert await producer.send_many([]) == []

    async def test_closing_twice_is_harmless(
        self, new_topic: TopicFactory, make_producer: AsyncProducerFactory
    ) -> None:
        topic = new_topic(1)
        producer = await make_producer()
        report = await producer.send(OutboundRecord(topic, b"v"))

        await producer.close()
        await producer.close()

        assert report.ok
