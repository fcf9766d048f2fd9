"""What the contract suites share: the factory types a backend provides, listeners that record
rebalance callbacks, and polling helpers that wait on conditions with deadlines (no sleeps),
built on ``tests.support.waiting``."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from da_core.ports import AsyncConsumer, AsyncProducer, Consumer, Producer
from da_core.types import DeliveryReport, OutboundRecord, Record, TopicPartition
from tests.support.waiting import async_wait_for, wait_for

TopicFactory = Callable[[int], str]
"""``new_topic(partitions)``: create a topic no other test uses and return its name."""

ProducerFactory = Callable[[], Producer]
AsyncProducerFactory = Callable[[], Awaitable[AsyncProducer]]
"""Returns a started producer; the fixture closes it at teardown."""


class ConsumerFactory(Protocol):
    """``make_consumer(group)``: a new consumer of that group; the fixture closes it at
    teardown (closing twice must be harmless for the fixture)."""

    def __call__(self, group: str, *, auto_offset_reset: str = "earliest") -> Consumer: ...


class AsyncConsumerFactory(Protocol):
    """Like ``ConsumerFactory``, returning a started ``AsyncConsumer``."""

    def __call__(
        self, group: str, *, auto_offset_reset: str = "earliest"
    ) -> Awaitable[AsyncConsumer]: ...


def unique_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


class RecordingListener:
    """A ``RebalanceListener`` that records every callback, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, frozenset[TopicPartition]]] = []

    def on_assigned(self, partitions: Sequence[TopicPartition]) -> None:
        self.events.append(("assigned", frozenset(partitions)))

    def on_revoked(self, partitions: Sequence[TopicPartition]) -> None:
        self.events.append(("revoked", frozenset(partitions)))

    def assigned(self, since: int = 0) -> set[TopicPartition]:
        """Every partition assigned in events[since:]."""
        return {tp for kind, tps in self.events[since:] if kind == "assigned" for tp in tps}

    def revoked(self, since: int = 0) -> set[TopicPartition]:
        return {tp for kind, tps in self.events[since:] if kind == "revoked" for tp in tps}


def _describe(records: Sequence[Record]) -> str:
    shown = ", ".join(f"{r.topic}[{r.partition}]@{r.offset}" for r in records[:20])
    return f"{len(records)} records: {shown}{' ...' if len(records) > 20 else ''}"


def poll_until(
    consumer: Consumer,
    predicate: Callable[[list[Record]], bool],
    timeout: float,
    *,
    poll_timeout: float = 0.05,
) -> list[Record]:
    """Poll until ``predicate(everything received so far)`` holds; fail at the deadline."""
    received: list[Record] = []

    def probe() -> bool:
        if predicate(received):
            return True
        received.extend(consumer.poll(poll_timeout))
        return predicate(received)

    wait_for(probe, timeout, what="records", interval=0, observe=lambda: _describe(received))
    return received


def poll_many_until(
    consumers: Sequence[Consumer],
    condition: Callable[[], bool],
    timeout: float,
    *,
    poll_timeout: float = 0.05,
) -> list[list[Record]]:
    """Poll each consumer in turn (so all of them serve their rebalances) until
    ``condition()``; returns what each received."""
    received: list[list[Record]] = [[] for _ in consumers]

    def probe() -> bool:
        if condition():
            return True
        for i, consumer in enumerate(consumers):
            received[i].extend(consumer.poll(poll_timeout))
        return condition()

    wait_for(probe, timeout, what="a condition over several consumers", interval=0)
    return received


async def apoll_until(
    consumer: AsyncConsumer,
    predicate: Callable[[list[Record]], bool],
    timeout: float,
    *,
    poll_timeout: float = 0.05,
) -> list[Record]:
    received: list[Record] = []

    async def probe() -> bool:
        if predicate(received):
            return True
        received.extend(await consumer.poll(poll_timeout))
        return predicate(received)

    await async_wait_for(
        probe, timeout, what="records", interval=0, observe=lambda: _describe(received)
    )
    return received


async def apoll_many_until(
    consumers: Sequence[AsyncConsumer],
    condition: Callable[[], bool],
    timeout: float,
    *,
    poll_timeout: float = 0.05,
) -> list[list[Record]]:
    received: list[list[Record]] = [[] for _ in consumers]

    async def probe() -> bool:
        if condition():
            return True
        for i, consumer in enumerate(consumers):
            received[i].extend(await consumer.poll(poll_timeout))
        return condition()

    await async_wait_for(probe, timeout, what="a condition over several consumers", interval=0)
    return received


def produce_all(
    producer: Producer, records: Sequence[OutboundRecord], timeout: float
) -> list[DeliveryReport]:
    """Produce, flush, and return one report per record (in produce order), all successful."""
    reports: list[list[DeliveryReport]] = [[] for _ in records]
    for i, record in enumerate(records):
        producer.produce(record, reports[i].append)
    assert producer.flush(timeout) == 0, "flush left records in flight"
    assert [len(r) for r in reports] == [1] * len(records), "not exactly one report per record"
    flat = [r[0] for r in reports]
    errors = [r.error for r in flat if r.error is not None]
    assert not errors, f"delivery failed: {errors}"
    return flat


async def send_all(
    producer: AsyncProducer, records: Sequence[OutboundRecord]
) -> list[DeliveryReport]:
    """Send in order and return the reports, all successful."""
    reports = [await producer.send(record) for record in records]
    errors = [r.error for r in reports if r.error is not None]
    assert not errors, f"delivery failed: {errors}"
    return reports


def values(records: Sequence[Record]) -> list[bytes | None]:
    return [r.value for r in records]


def in_partition(records: Sequence[Record], partition: int) -> list[Record]:
    return [r for r in records if r.partition == partition]
