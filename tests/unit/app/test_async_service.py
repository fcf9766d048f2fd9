"""The asyncio service on the in-memory bus, and parity with the sync service."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from da_adapters.memory import ManualClock, MemoryBroker
from da_app.services import AsyncDataAnalysisService
from da_app.testing import Harness
from tests.support.waiting import async_wait_for

from .helpers import OUT_LP, PARAM, RT, param, rt_row

STATIONS = [f"S{i}" for i in range(20)]


def model(sid: str, inp: dict[str, Any]) -> dict[str, Any]:
    return {
        "last": inp["outputPowerPerStationAvg"],
        "sum": sum(inp["outputPowerPerStationAvg_window"]),
    }


async def amodel(sid: str, inp: dict[str, Any]) -> dict[str, Any]:
    await asyncio.sleep(0)
    return model(sid, inp)


def _feed(publish: Any) -> None:
    publish(PARAM, param(*STATIONS))
    for hour in range(5):
        publish(RT, {"realTimeData": [rt_row(s, hour, hour + i) for i, s in enumerate(STATIONS)]})


def _latest(results: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for r in results:
        out[r["station_id"]] = r
    return out


async def test_async_and_sync_services_give_the_same_outputs() -> None:
    with Harness("load_prediction", model) as h:
        _feed(lambda t, p: h.publish(t, p))
        h.run_until_idle()
        sync_latest = _latest(h.results())

    clock = ManualClock()
    broker = MemoryBroker(clock)
    svc = AsyncDataAnalysisService(
        module_name="load_prediction",
        config={},
        adapter="memory",
        broker=broker,
        clock=clock,
        group_id="async",
        auto_offset_reset="earliest",
        poll_timeout=0.01,
    )
    await svc.start(amodel)
    _feed(lambda t, p: broker.produce(t, json.dumps(p).encode()))

    def results() -> list[dict[str, Any]]:
        return [
            r for rec in broker.records(OUT_LP) for r in json.loads(rec.value or b"{}")["results"]
        ]

    def caught_up() -> bool:
        latest = _latest(results())
        return set(latest) == set(STATIONS) and all(
            latest[s]["last"] == sync_latest[s]["last"] for s in STATIONS
        )

    await async_wait_for(
        caught_up, what="the sync service's outputs", observe=lambda: _latest(results())
    )
    await svc.stop()
    assert _latest(results()) == sync_latest
    status = svc.get_service_status()
    assert status["main_thread_alive"] is False
    assert status["station_count"] == len(STATIONS)


async def test_async_service_accepts_a_sync_callback_and_sync_handler() -> None:
    clock = ManualClock()
    broker = MemoryBroker(clock)
    got: list[str] = []
    svc = AsyncDataAnalysisService(
        module_name="load_prediction",
        config={},
        adapter="memory",
        broker=broker,
        clock=clock,
        group_id="async2",
        auto_offset_reset="earliest",
        poll_timeout=0.01,
    )
    await svc.start(
        model, batch_upload_handler=lambda b, rs: got.extend(r["station_id"] for r in rs)
    )
    _feed(lambda t, p: broker.produce(t, json.dumps(p).encode()))
    await async_wait_for(
        lambda: set(got) == set(STATIONS), what="every station uploaded", observe=lambda: got
    )
    await svc.stop()
    assert broker.records(OUT_LP) == []
