"""The port contract suites, run on the in-memory broker."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from da_adapters.memory import (
    AsyncMemoryConsumer,
    AsyncMemoryProducer,
    ManualClock,
    MemoryBroker,
    MemoryConsumer,
    MemoryProducer,
)
from da_core.ports import AsyncConsumer, AsyncProducer, Clock, Consumer, Producer
from tests.contracts.consumer_contract import AsyncConsumerContract, ConsumerContract
from tests.contracts.producer_contract import AsyncProducerContract, ProducerContract
from tests.contracts.support import (
    AsyncConsumerFactory,
    AsyncProducerFactory,
    ConsumerFactory,
    ProducerFactory,
    TopicFactory,
    unique_name,
)


class MemoryBackend:
    """The fixtures every memory suite shares."""

    @pytest.fixture
    def broker(self) -> MemoryBroker:
        return MemoryBroker(ManualClock())

    @pytest.fixture
    def wait_timeout(self) -> float:
        return 5.0

    @pytest.fixture
    def clock(self, broker: MemoryBroker) -> Clock:
        return broker.clock

    @pytest.fixture
    def new_topic(self, broker: MemoryBroker) -> TopicFactory:
        def create(partitions: int) -> str:
            name = unique_name("topic")
            broker.create_topic(name, partitions)
            return name

        return create

    @pytest.fixture
    def rejected_topic(self, broker: MemoryBroker) -> str:
        name = unique_name("rejected")
        broker.reject_topic(name)
        return name


class SyncMemoryBackend(MemoryBackend):
    @pytest.fixture
    def make_consumer(self, broker: MemoryBroker) -> Iterator[ConsumerFactory]:
        made: list[MemoryConsumer] = []

        def make(group: str, *, auto_offset_reset: str = "earliest") -> Consumer:
            consumer = MemoryConsumer(broker, group, auto_offset_reset=auto_offset_reset)
            made.append(consumer)
            return consumer

        yield make
        for consumer in made:
            consumer.close()

    @pytest.fixture
    def make_producer(self, broker: MemoryBroker) -> Iterator[ProducerFactory]:
        made: list[MemoryProducer] = []

        def make() -> Producer:
            producer = MemoryProducer(broker)
            made.append(producer)
            return producer

        yield make
        for producer in made:
            producer.close()


class AsyncMemoryBackend(MemoryBackend):
    @pytest.fixture
    async def make_consumer(self, broker: MemoryBroker) -> AsyncIterator[AsyncConsumerFactory]:
        made: list[AsyncMemoryConsumer] = []

        async def make(group: str, *, auto_offset_reset: str = "earliest") -> AsyncConsumer:
            consumer = AsyncMemoryConsumer(broker, group, auto_offset_reset=auto_offset_reset)
            await consumer.start()
            made.append(consumer)
            return consumer

        yield make
        for consumer in made:
            await consumer.close()

    @pytest.fixture
    async def make_producer(self, broker: MemoryBroker) -> AsyncIterator[AsyncProducerFactory]:
        made: list[AsyncMemoryProducer] = []

        async def make() -> AsyncProducer:
            producer = AsyncMemoryProducer(broker)
            await producer.start()
            made.append(producer)
            return producer

        yield make
        for producer in made:
            await producer.close()


class TestMemoryConsumer(SyncMemoryBackend, ConsumerContract):
    pass


class TestMemoryProducer(SyncMemoryBackend, ProducerContract):
    pass


class TestAsyncMemoryConsumer(AsyncMemoryBackend, AsyncConsumerContract):
    pass


class TestAsyncMemoryProducer(AsyncMemoryBackend, AsyncProducerContract):
    pass


class TestMemoryConsumerCooperative(SyncMemoryBackend, ConsumerContract):
    """The same contract holds with the cooperative rebalance protocol."""

    @pytest.fixture
    def broker(self) -> MemoryBroker:
        return MemoryBroker(ManualClock(), rebalance_protocol="cooperative")


class TestAsyncMemoryConsumerCooperative(AsyncMemoryBackend, AsyncConsumerContract):
    """The async contract with the cooperative rebalance protocol."""

    @pytest.fixture
    def broker(self) -> MemoryBroker:
        return MemoryBroker(ManualClock(), rebalance_protocol="cooperative")
