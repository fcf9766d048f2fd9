"""Adapting user callables: sync or async callbacks and handlers work with either service.

Every user call goes through ``call_sync`` or ``call_async``, which guarantee two things:
``SystemExit`` and ``KeyboardInterrupt`` raised by the callable come out as ``CallbackExit``
(an ordinary exception: a failed run with reason ``callback_exit``, never the end of a worker
or of the event loop), and an async callable is cancelled after ``timeout`` seconds
(``asyncio.wait_for``), failing with ``RunTimedOut``. A sync callable cannot be interrupted:
its timeout is the loop's (``watch.RunWatch``).
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from da_core.engine import CallbackExit, RunTimedOut

T = TypeVar("T")

Callback = Callable[[str, dict[str, Any]], Any]
"""The module's model: ``(station_id, module_input) -> result`` (sync or ``async def``)."""
ResultHandler = Callable[[str, dict[str, Any], Any], Any]
"""Called after each run with ``(station_id, module_input, result)``."""
BatchUploadHandler = Callable[[str, list[dict[str, Any]]], Any]
"""Replaces the default upload: ``(batch_id, results)``."""


def is_async_callable(fn: Callable[..., Any]) -> bool:
    """True for ``async def`` functions and objects whose ``__call__`` is ``async def``."""
    if inspect.iscoroutinefunction(fn):
        return True
    call = getattr(fn, "__call__", None)  # noqa: B004 - we want the bound __call__ itself
    return call is not None and inspect.iscoroutinefunction(call)


class LoopThread:
    """A private event loop in a daemon thread, for running async callables from sync code."""

    def __init__(self, name: str = "da-async-callbacks") -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def close(self) -> None:
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        if not self._loop.is_running():
            self._loop.close()


def call_sync(
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    loop: LoopThread | None,
    timeout: float | None = None,
) -> Any:
    """Call ``fn`` from a worker thread, awaiting it on ``loop`` when it is async (cancelled
    after ``timeout`` seconds, when given)."""
    try:
        result = fn(*args)
    except (SystemExit, KeyboardInterrupt) as exc:
        raise _exit(exc) from exc
    if inspect.isawaitable(result):
        if loop is None:
            raise RuntimeError("async callable given without a loop")
        return loop.run(_await(result, timeout))
    return result


async def call_async(
    fn: Callable[..., Any], args: tuple[Any, ...], executor: Any, timeout: float | None = None
) -> Any:
    """Call ``fn`` from asyncio: awaited when async (cancelled after ``timeout`` seconds, when
    given), in ``executor`` (a thread pool) when sync."""
    if is_async_callable(fn):
        return await _await(fn(*args), timeout)
    loop = asyncio.get_running_loop()
    try:
        result = await loop.run_in_executor(executor, lambda: fn(*args))
    except (SystemExit, KeyboardInterrupt) as exc:
        raise _exit(exc) from exc
    if inspect.isawaitable(result):
        return await _await(result, timeout)
    return result


async def _await(aw: Awaitable[T], timeout: float | None = None) -> T:
    """Await ``aw``, cancelled after ``timeout`` seconds (``RunTimedOut``) when given."""
    if not timeout:
        return await _guarded(aw)
    try:
        return await asyncio.wait_for(_guarded(aw), timeout)
    except (TimeoutError, asyncio.TimeoutError):  # distinct before 3.11
        raise RunTimedOut(f"no result within {timeout:g}s") from None
    except _OwnTimeout as own:
        raise own.error from own.error.__cause__


class _OwnTimeout(Exception):
    """A timeout the callable raised itself (not ``wait_for``'s), carried past ``_await``."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


async def _guarded(aw: Awaitable[T]) -> T:
    """Await ``aw`` in the task that runs it (``wait_for`` makes one), turning exits into
    ``CallbackExit`` before asyncio would let them stop the event loop."""
    try:
        return await aw
    except (TimeoutError, asyncio.TimeoutError) as exc:
        raise _OwnTimeout(exc) from exc
    except (SystemExit, KeyboardInterrupt) as exc:
        raise _exit(exc) from exc


def _exit(exc: BaseException) -> CallbackExit:
    return CallbackExit(f"the callable raised {type(exc).__name__}({exc})")
