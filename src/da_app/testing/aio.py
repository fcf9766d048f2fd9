"""``AsyncHarness``: the asyncio service (``AsyncDataAnalysisService`` over ``AsyncRunner``)
stepped from the caller's coroutine; see the package docstring.

The runner is opened (clients started, subscribed) without its loop task; each ``step()`` is
one loop iteration on the caller's event loop, during which the station tasks run too (a sync
callback runs in the runner's thread pool). Everything is bound to the loop of the first
``start()`` or step: use one harness from one event loop.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

from da_app.runtime import AsyncRunner
from da_app.services import AsyncDataAnalysisService
from da_app.testing.base import Callables, HarnessBase


class AsyncHarness(HarnessBase[AsyncDataAnalysisService, AsyncRunner]):
    """One module's asyncio service on a private in-memory broker with a manual clock.

    ``await start()`` (or ``async with``) opens it; the first step does so too. ``await
    stop()`` (or leaving the ``async with`` block) or ``await crash()`` ends its tasks and
    worker threads."""

    _opened = False

    def _build(
        self, service_kwargs: dict[str, Any], callables: Callables
    ) -> tuple[AsyncDataAnalysisService, AsyncRunner]:
        """Built, not opened: ``start`` opens the runner on the caller's event loop."""
        service = AsyncDataAnalysisService(**service_kwargs)
        return service, service.build_runner(*callables)

    async def start(self) -> AsyncHarness:
        """Start the clients and subscribe (``AsyncRunner.open``); idempotent."""
        if not self._opened:
            self._opened = True
            await self.runner.open()
        return self

    async def __aenter__(self) -> AsyncHarness:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # ------------------------------------------------------------------ driving

    async def step(self) -> int:
        """One loop iteration; returns how many things happened (0 = idle)."""
        await self.start()
        return await self.runner.step()

    async def run_until_idle(self, timeout: float = 10.0) -> int:
        """As ``Harness.run_until_idle``: step until nothing is left to read or in flight."""
        await self.start()
        watch = self._settling(timeout)
        while not watch.settled(await self._quiet_step()):
            pass
        return watch.steps

    async def _quiet_step(self) -> bool:
        return await self.step() == 0 and self.runner.quiescent() and await self.caught_up()

    async def caught_up(self) -> bool:
        """Every assigned partition read to its end, and no rebalance pending."""
        return self._caught_up_with(await self.runner.consumer.lag_info())

    async def stop(self) -> None:
        """Stop as a well-behaved service does: drain, commit, leave the group, end the
        tasks and worker threads. Idempotent; nothing more after ``crash()``."""
        await self.runner.stop()

    async def crash(self) -> None:
        """Drop the service without stop(): nothing more is committed."""
        if self._opened:
            await self.runner.abandon()
        else:
            self._opened = True  # never started: nothing to drop, and nothing to start later
            self.runner.request_stop()
