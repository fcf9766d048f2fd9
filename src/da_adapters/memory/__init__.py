"""The in-memory bus: a Kafka-like broker, its consumers and producers, and a manual clock.

It is the test harness (feed records, advance the clock, inject faults, assert on what was
published) and the embedded default when no Kafka is configured.
"""

from da_adapters.memory.broker import MemoryBroker, OffsetReset, RebalanceProtocol
from da_adapters.memory.clock import ManualClock
from da_adapters.memory.consumer import AsyncMemoryConsumer, MemoryConsumer
from da_adapters.memory.group import range_assign
from da_adapters.memory.partitioner import murmur2, partition_for_key, to_positive
from da_adapters.memory.producer import AsyncMemoryProducer, MemoryProducer

__all__ = [
    "AsyncMemoryConsumer",
    "AsyncMemoryProducer",
    "ManualClock",
    "MemoryBroker",
    "MemoryConsumer",
    "MemoryProducer",
    "OffsetReset",
    "RebalanceProtocol",
    "murmur2",
    "partition_for_key",
    "range_assign",
    "to_positive",
]
