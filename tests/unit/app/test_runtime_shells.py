"""Behaviour both runner shells share, run over each: back-pressure on pending uploads.

The producers here hold their delivery reports until released, so uploads stay pending.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from da_adapters.memory import ManualClock, MemoryBroker
from da_adapters.memory.producer import AsyncMemoryProducer, MemoryProducer
from da_app.runtime import AsyncRunner, SyncRunner
from da_app.services import AsyncDataAnalysisService, DataAnalysisService
from da_core.types import DeliveryReport, OutboundRecord

from .helpers import OUT_LP, PARAM, RT, param, realtime


class HeldProducer(MemoryProducer):
    """Serves no delivery report while ``held``."""

    held = True

    def poll(self, timeout: float = 0.0) -> int:
        return 0 if self.held else super().poll(timeout)


class AsyncHeldProducer(AsyncMemoryProducer):
    """``send`` answers only once ``release`` is set."""

    def __init__(self, broker: MemoryBroker) -> None:
        super().__init__(broker)
        self.release = asyncio.Event()

    async def send(self, record: OutboundRecord) -> DeliveryReport:
        await self.release.wait()
        return await super().send(record)

    async def send_many(self, records: Sequence[OutboundRecord]) -> list[DeliveryReport]:
        return [await self.send(r) for r in records]


def _model(sid: str, inp: dict[str, Any]) -> dict[str, Any]:
    return {"ok": True}


def _publish(broker: MemoryBroker, topic: str, payload: Any, key: str | None = None) -> None:
    broker.produce(topic, json.dumps(payload).encode(), key=key.encode() if key else None)


class Driver:
    """Steps one shell, sync or async, from async test code."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.clock = ManualClock()
        self.broker = MemoryBroker(self.clock)
        self.runner: SyncRunner | AsyncRunner
        self.release: Callable[[], None]

    async def open(self) -> None:
        common: dict[str, Any] = {
            "module_name": "load_prediction",
            "config": {"service": {"min_run_interval_seconds": 0}},  # manual clock: no waits
            "adapter": "memory",
            "broker": self.broker,
            "clock": self.clock,
            "group_id": f"bp-{self.kind}",
            "auto_offset_reset": "earliest",
        }
        limits: dict[str, Any] = {"max_pending_uploads": 1, "poll_timeout": 0.01}
        if self.kind == "sync":
            svc = DataAnalysisService(**common)
            producer = HeldProducer(self.broker)
            c = svc.container
            self.runner = SyncRunner(
                svc.engine, c.clients().consumer(), producer, self.clock, _model, **limits
            )
            self.runner.subscribe()
            self.release = lambda: setattr(producer, "held", False)
        else:
            asvc = AsyncDataAnalysisService(**common)
            aproducer = AsyncHeldProducer(self.broker)
            ac = asvc.container
            self.runner = AsyncRunner(
                asvc.engine, ac.clients().consumer(), aproducer, self.clock, _model, **limits
            )
            await self.runner.open()
            self.release = aproducer.release.set

    async def step(self) -> int:
        r = self.runner
        return await r.step() if isinstance(r, AsyncRunner) else r.step()

    async def until(self, predicate: Callable[[], bool], steps: int = 400) -> None:
        for _ in range(steps):
            if predicate():
                return
            await self.step()
            await asyncio.sleep(0)  # the async shell's tasks run between steps
        raise AssertionError("condition not reached")

    async def stop(self) -> None:
        r = self.runner
        if isinstance(r, AsyncRunner):
            await r.stop()
        else:
            r.stop()


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_consumption_pauses_while_max_pending_uploads_are_pending(kind: str) -> None:
    d = Driver(kind)
    await d.open()
    _publish(d.broker, PARAM, param("S1"))
    _publish(d.broker, RT, realtime("S1", 0, 1.0), key="S1")
    eng = d.runner.engine
    await d.until(lambda: eng.pending_uploads >= 1)
    await d.step()  # the next poll plans the pause
    assigned = d.runner.consumer.assignment()
    assert assigned
    assert d.runner.flow.paused == set(assigned)
    polled = d.runner.stats.records_polled
    _publish(d.broker, RT, realtime("S1", 1, 2.0), key="S1")
    for _ in range(5):
        await d.step()
    assert d.runner.stats.records_polled == polled  # nothing read while paused
    d.release()
    await d.until(lambda: d.runner.stats.records_polled > polled)
    assert d.runner.flow.paused == set()
    await d.until(lambda: eng.stats.uploads_ok >= 2 and d.runner.idle())
    assert len(d.broker.records(OUT_LP)) == 2
    await d.stop()
