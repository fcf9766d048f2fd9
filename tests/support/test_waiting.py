"""The waiting helpers: return the probe's value, fail naming what was awaited."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from tests.support.waiting import async_wait_for, wait_for


def test_wait_for_returns_the_first_truthy_value() -> None:
    values = iter([0, None, "", "ready"])

    assert wait_for(lambda: next(values), 1.0, what="readiness", interval=0) == "ready"


def test_wait_for_fails_naming_what_and_the_last_value() -> None:
    calls = itertools.count(1)

    with pytest.raises(AssertionError, match=r"waiting for the answer; last value: \[\]"):
        wait_for(lambda: [] if next(calls) else [1], 0.05, what="the answer")
    assert next(calls) > 2  # probed more than once, and at the deadline


def test_wait_for_shows_what_observe_returns_at_the_deadline() -> None:
    with pytest.raises(AssertionError, match="last value: 'three records'"):
        wait_for(lambda: False, 0.0, what="records", observe=lambda: "three records")


def test_wait_for_lets_the_probes_exception_through() -> None:
    def probe() -> bool:
        raise KeyError("boom")

    with pytest.raises(KeyError):
        wait_for(probe, 1.0, what="anything")


async def test_async_wait_for_awaits_an_async_probe_and_lets_tasks_run() -> None:
    done = asyncio.Event()
    setter = asyncio.get_running_loop().call_later(0.01, done.set)

    async def probe() -> bool:
        return done.is_set()

    assert await async_wait_for(probe, 1.0, what="the event", interval=0) is True
    setter.cancel()


async def test_async_wait_for_takes_a_sync_probe_and_fails_at_the_deadline() -> None:
    with pytest.raises(AssertionError, match=r"timed out after 0\.02s waiting for nothing"):
        await async_wait_for(lambda: 0, 0.02, what="nothing")
