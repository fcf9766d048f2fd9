"""Producers of the in-memory broker: ``MemoryProducer`` (the sync ``Producer`` port) and
``AsyncMemoryProducer`` (the ``AsyncProducer`` port).

The broker answers at once, so a record is appended (or refused) inside ``produce``; its
report is queued and handed to ``on_delivery`` only from a later ``poll``/``flush`` on the
caller's thread, exactly as the real clients do it, and exactly once per record.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable, Sequence

from da_adapters.memory.broker import MemoryBroker
from da_core.errors import DeliveryError
from da_core.types import DeliveryReport, OutboundRecord

DeliveryCallback = Callable[[DeliveryReport], None]


def _deliver(broker: MemoryBroker, record: OutboundRecord) -> DeliveryReport:
    try:
        stored = broker.produce_record(record)
    except DeliveryError as exc:
        return DeliveryReport(record=record, error=str(exc))
    return DeliveryReport(
        record=record, error=None, partition=stored.partition, offset=stored.offset
    )


class MemoryProducer:
    """The sync ``Producer`` port. ``produce`` is thread-safe; ``poll``/``flush`` serve the
    reports on the calling thread. ``max_pending`` bounds the reports not yet served, like
    the client's local queue: beyond it ``produce`` raises ``DeliveryError`` (no report)."""

    def __init__(self, broker: MemoryBroker, *, max_pending: int = 100_000) -> None:
        if max_pending < 1:
            raise ValueError(f"max_pending must be at least 1, not {max_pending}")
        self._broker = broker
        self._max_pending = max_pending
        self._cond = threading.Condition(threading.Lock())
        self._ready: deque[tuple[DeliveryCallback, DeliveryReport]] = deque()
        self._closed = False

    def produce(self, record: OutboundRecord, on_delivery: DeliveryCallback) -> None:
        with self._cond:
            if self._closed:
                raise DeliveryError("producer is closed")
            if len(self._ready) >= self._max_pending:
                raise DeliveryError(
                    f"local queue full ({self._max_pending} reports not yet served by poll)"
                )
            # Appending under our lock keeps reports in the order the records were written.
            self._ready.append((on_delivery, _deliver(self._broker, record)))
            self._cond.notify_all()

    def poll(self, timeout: float = 0.0) -> int:
        """Serve the ready reports, waiting up to ``timeout`` seconds for a first one."""
        with self._cond:
            self._cond.wait_for(lambda: bool(self._ready), max(timeout, 0.0))
        return self._serve()

    def flush(self, timeout: float) -> int:
        """Serve every report; returns how many are still pending (0: nothing is in flight)."""
        self._serve()
        with self._cond:
            return len(self._ready)

    def pending(self) -> int:
        """Reports queued and not yet served."""
        with self._cond:
            return len(self._ready)

    def close(self, timeout: float | None = None) -> None:
        """Serve what is left (so no report is lost) and refuse further records."""
        with self._cond:
            self._closed = True
        self._serve()

    def _serve(self) -> int:
        served = 0
        while True:
            # One at a time: if a callback raises, the rest stay queued for the next poll.
            with self._cond:
                if not self._ready:
                    return served
                on_delivery, report = self._ready.popleft()
            served += 1
            on_delivery(report)


class AsyncMemoryProducer:
    """The ``AsyncProducer`` port: ``send`` resolves to the report, never raising for a broker
    refusal (the report carries it). ``start()`` must be awaited first, as with aiokafka."""

    def __init__(self, broker: MemoryBroker) -> None:
        self._broker = broker
        self._started = False
        self._closed = False

    async def start(self) -> None:
        if self._closed:
            raise RuntimeError("producer is closed")
        self._started = True

    async def send(self, record: OutboundRecord) -> DeliveryReport:
        if self._closed:
            raise DeliveryError("producer is closed")
        if not self._started:
            raise RuntimeError("AsyncMemoryProducer.start() must be awaited before send")
        report = _deliver(self._broker, record)
        await asyncio.sleep(0)  # a real send yields to the loop while the broker answers
        return report

    async def send_many(self, records: Sequence[OutboundRecord]) -> list[DeliveryReport]:
        return [await self.send(r) for r in records]

    async def flush(self, timeout: float) -> None:
        """Nothing is ever in flight: each ``send`` already has its answer."""

    async def close(self, timeout: float | None = None) -> None:
        self._closed = True
