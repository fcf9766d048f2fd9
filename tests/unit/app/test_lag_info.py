"""Issue 13 item 3: ``service.consumer.get_lag_info()`` as the guide writes it returns the dict
on both services, from any thread, and ``aget_lag_info()`` is the awaitable variant."""

from __future__ import annotations

import asyncio
import json
import threading
import warnings
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio

from da_adapters.clock import SystemClock
from da_adapters.memory import MemoryBroker
from da_app.services import AsyncDataAnalysisService, DataAnalysisService
from tests.support.waiting import async_wait_for, wait_for

from .helpers import PARAM, param

TOPIC = PARAM  # an input of load_prediction


def _options(broker: MemoryBroker) -> dict[str, Any]:
    return {
        "module_name": "load_prediction",
        "config": {},
        "adapter": "memory",
        "broker": broker,
        "auto_offset_reset": "earliest",
        "poll_timeout": 0.01,
    }


def _assigned(lag: dict[str, list[dict[str, Any]]]) -> bool:
    """The topic's partitions are assigned and their high watermarks add up to the record."""
    return TOPIC in lag and sum(p["high_watermark"] or 0 for p in lag[TOPIC]) == 1


@pytest.fixture
def sync_service() -> Iterator[DataAnalysisService]:
    broker = MemoryBroker(SystemClock())
    broker.produce(TOPIC, json.dumps(param("S1")).encode())
    svc = DataAnalysisService(**_options(broker))
    svc.start(lambda sid, inp: None)
    try:
        yield svc
    finally:
        svc.stop()


@pytest_asyncio.fixture
async def async_service() -> AsyncIterator[AsyncDataAnalysisService]:
    broker = MemoryBroker(SystemClock())
    broker.produce(TOPIC, json.dumps(param("S1")).encode())
    svc = AsyncDataAnalysisService(**_options(broker))

    async def cb(sid: str, inp: dict[str, Any]) -> None:
        return None

    await svc.start(cb)
    try:
        yield svc
    finally:
        await svc.stop()


def test_sync_service_lag_from_another_thread_and_awaited(
    sync_service: DataAnalysisService,
) -> None:
    lag = wait_for(sync_service.consumer.get_lag_info, what="a lag reading with the topic")
    wait_for(lambda: _assigned(sync_service.consumer.get_lag_info()), what="the high watermark")
    seen: list[Any] = []
    t = threading.Thread(target=lambda: seen.append(sync_service.consumer.get_lag_info()))
    t.start()
    t.join(10)
    assert _assigned(seen[0])
    assert _assigned(asyncio.run(sync_service.consumer.aget_lag_info()))
    assert isinstance(lag, dict)


async def test_async_service_lag_on_the_loop_is_a_dict_without_a_warning(
    async_service: AsyncDataAnalysisService,
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "coroutine ... was never awaited" fails the test
        lag = async_service.consumer.get_lag_info()
    assert isinstance(lag, dict)
    # the call scheduled a reading in the background: the next calls return it
    await async_wait_for(
        lambda: _assigned(async_service.consumer.get_lag_info()),
        what="the background reading",
    )


async def test_async_service_awaitable_variant_is_fresh_and_kept(
    async_service: AsyncDataAnalysisService,
) -> None:
    fresh = await async_wait_for(
        async_service.consumer.aget_lag_info, what="a fresh reading with the topic"
    )
    await async_wait_for(
        lambda: _assigned_async(async_service), what="the high watermark in a fresh reading"
    )
    assert isinstance(fresh, dict)
    # the fresh reading is the one a caller on the loop gets at once
    assert _assigned(async_service.consumer.get_lag_info())


async def _assigned_async(svc: AsyncDataAnalysisService) -> bool:
    return _assigned(await svc.consumer.aget_lag_info())


async def test_async_service_lag_from_another_thread_is_read_on_the_loop(
    async_service: AsyncDataAnalysisService,
) -> None:
    lag = await async_wait_for(
        lambda: asyncio.to_thread(async_service.consumer.get_lag_info),
        what="a reading from another thread",
    )
    await async_wait_for(
        lambda: _to_thread_assigned(async_service), what="the high watermark from a thread"
    )
    assert async_service._lag.read_at is not None  # a fresh reading, kept as the latest
    assert isinstance(lag, dict)


async def _to_thread_assigned(svc: AsyncDataAnalysisService) -> bool:
    return _assigned(await asyncio.to_thread(svc.consumer.get_lag_info))


async def test_async_lag_before_start_and_after_stop() -> None:
    svc = AsyncDataAnalysisService(**_options(MemoryBroker(SystemClock())))
    assert svc.consumer.get_lag_info() == {}
    assert await svc.consumer.aget_lag_info() == {}

    async def cb(sid: str, inp: dict[str, Any]) -> None:
        return None

    await svc.start(cb)
    await svc.consumer.aget_lag_info()
    await svc.stop()
    assert isinstance(svc.consumer.get_lag_info(), dict)  # the last reading, no task left
