"""Behaviours of the in-memory consumers and producers beyond the port contracts: how they
wait (threads and asyncio), fairness, misuse, and the producer's report queue."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from da_adapters.memory import (
    AsyncMemoryConsumer,
    AsyncMemoryProducer,
    ManualClock,
    MemoryBroker,
    MemoryConsumer,
    MemoryProducer,
)
from da_core.errors import DeliveryError
from da_core.types import DeliveryReport, OutboundRecord, TopicPartition

T0 = TopicPartition("t", 0)
T1 = TopicPartition("t", 1)


class SignallingBroker(MemoryBroker):
    """Sets ``waiting`` when a consumer is about to block, so a test can act while it waits."""

    def __init__(self) -> None:
        super().__init__(ManualClock())
        self.waiting = threading.Event()

    def wait(self, *args: Any, **kwargs: Any) -> bool:
        self.waiting.set()
        return super().wait(*args, **kwargs)


@pytest.fixture
def broker() -> MemoryBroker:
    broker = MemoryBroker(ManualClock())
    broker.create_topic("t", 2)
    return broker


def record(value: bytes = b"x", partition: int = 0) -> OutboundRecord:
    return OutboundRecord("t", value, partition=partition)


# -- sync consumer ------------------------------------------------------------------------------


def test_poll_returns_a_record_produced_by_another_thread_while_it_waits() -> None:
    broker = SignallingBroker()
    consumer = MemoryConsumer(broker, "g")
    consumer.assign([T0])
    producer = threading.Thread(
        target=lambda: broker.waiting.wait(5.0) and broker.produce("t", b"late", partition=0)
    )
    producer.start()

    started = time.monotonic()
    records = consumer.poll(10.0)
    elapsed = time.monotonic() - started
    producer.join()

    assert [r.value for r in records] == [b"late"]
    assert elapsed < 5.0


def test_poll_with_nothing_to_read_waits_out_its_timeout_and_returns_nothing(
    broker: MemoryBroker,
) -> None:
    consumer = MemoryConsumer(broker, "g")
    consumer.assign([T0])

    started = time.monotonic()
    records = consumer.poll(0.1)

    assert records == []
    assert time.monotonic() - started >= 0.1


def test_poll_returns_at_most_max_records_and_the_rest_next_time(broker: MemoryBroker) -> None:
    for i in range(5):
        broker.produce("t", f"v{i}".encode(), partition=0)
    consumer = MemoryConsumer(broker, "g")
    consumer.assign([T0])

    first = consumer.poll(0, max_records=3)
    second = consumer.poll(0, max_records=3)

    assert ([r.offset for r in first], [r.offset for r in second]) == ([0, 1, 2], [3, 4])


def test_a_full_partition_does_not_starve_the_others(broker: MemoryBroker) -> None:
    for _ in range(100):
        broker.produce("t", b"x", partition=0)
    broker.produce("t", b"lonely", partition=1)
    consumer = MemoryConsumer(broker, "g")
    consumer.assign([T0, T1])

    seen = consumer.poll(0, max_records=10) + consumer.poll(0, max_records=10)

    assert b"lonely" in [r.value for r in seen]


def test_pausing_a_partition_that_is_not_assigned_is_ignored(broker: MemoryBroker) -> None:
    broker.produce("t", b"x", partition=1)
    consumer = MemoryConsumer(broker, "g")
    consumer.pause([T1])
    consumer.assign([T1])

    assert [r.partition for r in consumer.poll(0)] == [1]


def test_a_closed_consumer_refuses_to_poll(broker: MemoryBroker) -> None:
    consumer = MemoryConsumer(broker, "g")
    consumer.close()

    with pytest.raises(RuntimeError, match="closed"):
        consumer.poll(0)


def test_an_unknown_offset_reset_policy_is_refused(broker: MemoryBroker) -> None:
    with pytest.raises(ValueError, match="auto_offset_reset"):
        MemoryConsumer(broker, "g", auto_offset_reset="smallest")


def test_closing_leaves_the_group(broker: MemoryBroker) -> None:
    consumer = MemoryConsumer(broker, "g")
    consumer.subscribe(["t"])
    joined = broker.group_assignment("g")

    consumer.close()

    assert list(joined) == [consumer.member_id]
    assert broker.group_assignment("g") == {}


# -- async consumer -----------------------------------------------------------------------------


async def test_async_poll_wakes_as_soon_as_another_task_produces(broker: MemoryBroker) -> None:
    consumer = AsyncMemoryConsumer(broker, "g")
    await consumer.start()
    await consumer.assign([T0])
    started = time.monotonic()
    polling = asyncio.create_task(consumer.poll(10.0))
    await asyncio.sleep(0)  # let the poll reach its wait

    broker.produce("t", b"now", partition=0)
    records = await polling

    assert [r.value for r in records] == [b"now"]
    assert time.monotonic() - started < 5.0


async def test_async_poll_wakes_when_another_thread_produces(broker: MemoryBroker) -> None:
    consumer = AsyncMemoryConsumer(broker, "g")
    await consumer.start()
    await consumer.assign([T0])
    polling = asyncio.create_task(consumer.poll(10.0))
    await asyncio.sleep(0)
    started = time.monotonic()

    await asyncio.to_thread(broker.produce, "t", b"from a thread", partition=0)
    records = await polling

    assert [r.value for r in records] == [b"from a thread"]
    assert time.monotonic() - started < 5.0


async def test_async_poll_lets_other_tasks_run_while_it_waits(broker: MemoryBroker) -> None:
    consumer = AsyncMemoryConsumer(broker, "g")
    await consumer.start()
    await consumer.assign([T0])
    order: list[str] = []

    async def poll() -> None:
        await consumer.poll(0.2)
        order.append("poll returned")

    async def other() -> None:
        order.append("other task ran")

    await asyncio.gather(poll(), other())

    assert order == ["other task ran", "poll returned"]


async def test_an_async_consumer_must_be_started_before_use(broker: MemoryBroker) -> None:
    consumer = AsyncMemoryConsumer(broker, "g")

    with pytest.raises(RuntimeError, match="start"):
        await consumer.subscribe(["t"])


# -- producers ----------------------------------------------------------------------------------


def test_a_raising_callback_does_not_lose_the_reports_after_it(broker: MemoryBroker) -> None:
    producer = MemoryProducer(broker)
    later: list[DeliveryReport] = []

    def explode(report: DeliveryReport) -> None:
        raise RuntimeError("callback failed")

    producer.produce(record(b"a"), explode)
    producer.produce(record(b"b"), later.append)
    with pytest.raises(RuntimeError, match="callback failed"):
        producer.poll(0)
    served = producer.poll(0)

    assert served == 1
    assert [r.record.value for r in later] == [b"b"]


def test_producer_poll_waits_for_a_report_from_another_thread(broker: MemoryBroker) -> None:
    producer = MemoryProducer(broker)
    reports: list[DeliveryReport] = []
    thread = threading.Thread(target=lambda: producer.produce(record(), reports.append))

    thread.start()
    served = producer.poll(5.0)
    thread.join()

    assert (served, len(reports)) == (1, 1)


def test_a_full_local_queue_refuses_the_record_without_a_report(broker: MemoryBroker) -> None:
    producer = MemoryProducer(broker, max_pending=2)
    reports: list[DeliveryReport] = []
    producer.produce(record(b"a"), reports.append)
    producer.produce(record(b"b"), reports.append)

    with pytest.raises(DeliveryError, match="queue full"):
        producer.produce(record(b"c"), reports.append)
    producer.flush(1.0)

    assert [r.record.value for r in reports] == [b"a", b"b"]
    assert [r.value for r in broker.records("t")] == [b"a", b"b"]


def test_closing_a_producer_serves_its_pending_reports_and_refuses_more(
    broker: MemoryBroker,
) -> None:
    producer = MemoryProducer(broker)
    reports: list[DeliveryReport] = []
    producer.produce(record(), reports.append)

    producer.close()

    assert len(reports) == 1
    with pytest.raises(DeliveryError, match="closed"):
        producer.produce(record(), reports.append)


async def test_an_async_producer_must_be_started_before_sending(broker: MemoryBroker) -> None:
    producer = AsyncMemoryProducer(broker)

    with pytest.raises(RuntimeError, match="start"):
        await producer.send(record())
