"""The latest consumer lag a service read, for callers that cannot wait for a fresh one.

The guide calls ``service.consumer.get_lag_info()`` without ``await`` on both services. On
the async service a fresh reading needs the event loop (aiokafka's positions, committed
offsets and high watermarks are coroutines), which a caller running *on* that loop cannot
block. So the service keeps the last reading here: every fresh reading (``aget_lag_info()``,
``get_lag_info()`` from another thread, the ``/status`` snapshot) updates it, and a caller on
the loop gets it at once while a refresh is scheduled in the background (at most one at a
time, and only when the reading is older than ``REFRESH_SECONDS``).

Invariants: ``lags`` is replaced whole (readers on other threads see one reading, never a
mix); ``read_at`` is the service clock's time of that reading (None before the first); the
background task is cancelled by ``aclose()``, which the service awaits before it stops its
runner (no task outlives the service).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence

from da_core.types import PartitionLag

REFRESH_SECONDS = 1.0
"""A reading younger than this is not refreshed by a caller on the loop (seconds)."""


class LagSnapshot:
    """The last lag reading of one service (see the module docstring)."""

    def __init__(self) -> None:
        self.lags: tuple[PartitionLag, ...] = ()
        self.read_at: float | None = None
        self._task: asyncio.Task[object] | None = None

    def update(self, lags: Sequence[PartitionLag], now: float) -> None:
        self.lags = tuple(lags)
        self.read_at = now

    def refresh_in_background(
        self,
        loop: asyncio.AbstractEventLoop,
        fetch: Callable[[], Awaitable[object]],
        now: float,
    ) -> None:
        """Schedule ``fetch()`` (which calls ``update``) on ``loop`` unless one is running or
        the reading is younger than ``REFRESH_SECONDS``. Call on ``loop``'s thread."""
        if self._task is not None and not self._task.done():
            return
        if self.read_at is not None and now - self.read_at < REFRESH_SECONDS:
            return

        async def run() -> object:
            return await fetch()

        self._task = loop.create_task(run(), name="da-lag-refresh")
        self._task.add_done_callback(_swallow)

    async def aclose(self) -> None:
        """Cancel a background refresh and wait for it to end."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def _swallow(task: asyncio.Task[object]) -> None:
    """A failed background reading keeps the previous one (the broker may be unreachable)."""
    if not task.cancelled():
        task.exception()
