"""The harnesses themselves: ``Harness`` and ``AsyncHarness`` as (async) context managers."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from da_app.testing import AsyncHarness, Harness
from da_core.types import TopicPartition

from .helpers import PARAM, RT, echo_window


async def amodel(sid: str, inp: dict[str, Any]) -> dict[str, Any]:
    await asyncio.sleep(0)
    return echo_window(sid, inp)


async def test_the_async_harness_runs_the_samples_and_stops_at_the_end_of_its_block() -> None:
    async with AsyncHarness("load_prediction", amodel) as h:
        h.publish_sample(PARAM, partition=0)
        h.publish_sample(RT, partition=0)
        steps = await h.run_until_idle()
        assert steps >= 2
        assert sorted(r["station_id"] for r in h.results()) == ["S0001", "S0002"]
        stopped = h.runner.stopped
        assert stopped is not None
        assert not stopped.is_set()
    assert stopped.is_set()
    assert h.committed()[TopicPartition(RT, 0)] == 1  # stop commits what is done
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []


async def test_a_crashed_async_harness_commits_nothing_more() -> None:
    h = AsyncHarness("load_prediction", echo_window, config={})
    await h.start()
    h.publish_sample(PARAM, partition=0)
    h.publish_sample(RT, partition=0)
    await h.step()  # read, maybe started: nothing uploaded or committed yet
    await h.crash()
    await h.stop()  # nothing more after a crash
    assert h.committed()[TopicPartition(RT, 0)] is None


def test_the_sync_harness_stops_at_the_end_of_its_block_and_ends_its_threads() -> None:
    before = set(threading.enumerate())
    with Harness("load_prediction", echo_window, max_workers=2) as h:
        h.publish_sample(PARAM, partition=0)
        h.publish_sample(RT, partition=0)
        h.run_until_idle()
        assert set(threading.enumerate()) - before  # the worker pool is up
    assert h.runner.stopped.is_set()
    assert h.committed()[TopicPartition(RT, 0)] == 1
    for t in set(threading.enumerate()) - before:
        t.join(5)
    assert set(threading.enumerate()) - before == set()
