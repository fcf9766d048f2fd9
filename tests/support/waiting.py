"""The one way tests wait for something to happen: poll a probe until it returns a truthy
value, and fail the test at the deadline with what was awaited and what was last seen.

Use these instead of hand-written ``while ...: sleep(...)`` loops, which tend to fall through
silently when the deadline passes, and instead of a bare ``sleep`` (sleep-and-hope).

``timeout`` and ``interval`` are wall-clock seconds (``time.monotonic``); a test that drives a
``ManualClock`` still waits in real time for the threads or tasks it observes.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar, overload

T = TypeVar("T")

DEFAULT_TIMEOUT = 10.0
"""Seconds: long enough for a loaded 2-core CI host, short enough to fail a stuck test fast."""

DEFAULT_INTERVAL = 0.005
"""Seconds between probes: fine enough that a test does not idle noticeably."""


def _timed_out(what: str, timeout: float, last: object) -> AssertionError:
    return AssertionError(f"timed out after {timeout}s waiting for {what}; last value: {last!r}")


def wait_for(
    probe: Callable[[], T],
    timeout: float = DEFAULT_TIMEOUT,
    *,
    what: str,
    interval: float = DEFAULT_INTERVAL,
    observe: Callable[[], object] | None = None,
) -> T:
    """Call ``probe`` until it returns a truthy value and return that value.

    The probe is called at least once, and once more at the deadline, so a condition that
    holds at the last moment passes. Raises ``AssertionError`` naming ``what`` and the last
    value the probe returned (or what ``observe()`` returns, when the probe's value says
    little, such as ``False``) when the deadline passes first; an exception raised by the
    probe propagates at once. ``interval`` 0 suits a probe that blocks by itself (a poll).
    """
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise _timed_out(what, timeout, observe() if observe else value)
        if interval:
            time.sleep(interval)


@overload
async def async_wait_for(
    probe: Callable[[], Awaitable[T]],
    timeout: float = ...,
    *,
    what: str,
    interval: float = ...,
    observe: Callable[[], object] | None = ...,
) -> T: ...


@overload
async def async_wait_for(
    probe: Callable[[], T],
    timeout: float = ...,
    *,
    what: str,
    interval: float = ...,
    observe: Callable[[], object] | None = ...,
) -> T: ...


async def async_wait_for(
    probe: Callable[[], object],
    timeout: float = DEFAULT_TIMEOUT,
    *,
    what: str,
    interval: float = DEFAULT_INTERVAL,
    observe: Callable[[], object] | None = None,
) -> object:
    """``wait_for`` for coroutines: the probe may be sync or return an awaitable, and the
    wait yields to the event loop (``asyncio.sleep``, also with ``interval`` 0) so the tasks
    being observed can run."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() >= deadline:
            raise _timed_out(what, timeout, observe() if observe else value)
        await asyncio.sleep(interval)
