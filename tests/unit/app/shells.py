"""The service tests' harnesses, and one interface over both runner shells.

``SyncShell`` is the sync ``Harness`` behind ``AsyncHarness``'s interface: the driving methods
(``step``, ``run_until_idle``, ``caught_up``, ``stop``, ``crash``) are coroutines that run the
sync harness's step on the calling thread. The sync runner needs no event loop; while it
steps, the test's loop is blocked, which is harmless: nothing else of the test runs on it.
So a test of behaviour both runners share is written once, as a coroutine over ``AnyHarness``,
and runs over each shell (``harness`` fixture, ``tests/unit/app/conftest.py``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from da_app.runtime import Callback, SyncRunner
from da_app.services import DataAnalysisService
from da_app.testing import AsyncHarness, Harness, HarnessBase
from tests.support.waiting import async_wait_for

KINDS = ("sync", "async")
"""The runner shells: ``SyncRunner`` (threads) and ``AsyncRunner`` (asyncio)."""


class SyncShell(HarnessBase[DataAnalysisService, SyncRunner]):
    """A sync ``Harness`` driven through coroutines (see the module docstring)."""

    def __init__(self, module: str, callback: Callback, **kwargs: Any) -> None:
        # Not HarnessBase.__init__: the wrapped Harness builds the service, this one shares it.
        self.sync = Harness(module, callback, **kwargs)
        self.clock, self.broker = self.sync.clock, self.sync.broker
        self.service, self.runner = self.sync.service, self.sync.runner

    async def start(self) -> SyncShell:
        return self

    async def step(self) -> int:
        return self.sync.step()

    async def run_until_idle(self, timeout: float = 10.0) -> int:
        return self.sync.run_until_idle(timeout)

    async def caught_up(self) -> bool:
        return self.sync.caught_up()

    async def stop(self) -> None:
        self.sync.stop()

    async def crash(self) -> None:
        self.sync.crash()


AnyHarness = SyncShell | AsyncHarness
"""A harness of either shell, driven with ``await``."""


async def step_until(
    h: AnyHarness, condition: Callable[[], object], *, what: str, timeout: float = 10.0
) -> None:
    """Step ``h`` until ``condition()`` (a value, or an awaitable one) is true; fails the test
    naming ``what`` after ``timeout`` wall seconds (``async_wait_for``)."""

    async def stepped() -> object:
        await h.step()
        value = condition()
        return await value if inspect.isawaitable(value) else value

    await async_wait_for(stepped, timeout, what=what, interval=0)
