"""``stop_producer``'s failing of the batches a stop could not deliver, on aiokafka's own
accumulator (no broker needed: a batch that no sender took is exactly what an outage leaves)."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

from aiokafka.cluster import ClusterMetadata
from aiokafka.errors import KafkaTimeoutError
from aiokafka.producer.message_accumulator import MessageAccumulator
from aiokafka.structs import TopicPartition

from da_adapters.aiokafka._support import _fail_waiting_batches


async def test_failing_the_waiting_batches_leaves_no_exception_unretrieved() -> None:
    """Each failed batch's own futures (its drain waiter: only a sender or a writer waiting
    for room ever reads it) are read here, so the event loop never reports "Future exception
    was never retrieved" when the producer is gone; the sends still get the failure."""
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    try:
        acc = MessageAccumulator(ClusterMetadata(), 16384, 0, 30)
        sends = [
            await acc.add_message(TopicPartition("t", p), b"k", b"v", timeout=1.0, timestamp_ms=1)
            for p in (0, 0, 1)
        ]
        _fail_waiting_batches(acc)
        for send in sends:
            assert isinstance(send.exception(), KafkaTimeoutError)
        del acc, sends
        for _ in range(3):
            gc.collect()
            await asyncio.sleep(0)
        assert [c.get("message") for c in reported] == []
    finally:
        loop.set_exception_handler(None)
