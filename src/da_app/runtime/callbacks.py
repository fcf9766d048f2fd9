"""Adapting user callables: sync or async callbacks and handlers work with either service."""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

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


def call_sync(fn: Callable[..., Any], args: tuple[Any, ...], loop: LoopThread | None) -> Any:
    """Call ``fn`` from a worker thread, awaiting it on ``loop`` when it is async."""
    result = fn(*args)
    if inspect.isawaitable(result):
        if loop is None:
            raise RuntimeError("async callable given without a loop")
        return loop.run(_await(result))
    return result


async def call_async(fn: Callable[..., Any], args: tuple[Any, ...], executor: Any) -> Any:
    """Call ``fn`` from asyncio: awaited when async, in ``executor`` (a thread pool) when sync."""
    if is_async_callable(fn):
        return await fn(*args)
    loop = asyncio.get_running_loop()
    result = await loop.run_in_executor(executor, lambda: fn(*args))
    if inspect.isawaitable(result):
        return await result
    return result


async def _await(aw: Awaitable[T]) -> T:
    return await aw
