"""Fixtures that make service harnesses and stop every one of them at teardown.

- ``new_harness``: makes sync ``Harness`` objects (``new_harness(module, callback, **kw)``).
- ``harness``: parametrised over both runner shells (test ids ``[sync]``, ``[async]``); makes
  ``AnyHarness`` objects (``tests/unit/app/shells.py``) with one interface, driven with
  ``await`` (``await h.run_until_idle()``, ``await h.step()``), so a test of behaviour both
  runners share is written once as a coroutine. The sync shell is not run through an event
  loop facade the other way round, because the async runner's tasks must run on the test's
  own loop for the task-leak check of ``tests/conftest.py`` to see them.

A harness stopped (or crashed) by the test is not stopped again: ``stop`` is idempotent.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import pytest_asyncio

from da_app.runtime import Callback
from da_app.testing import AsyncHarness, Harness

from .shells import KINDS, AnyHarness, SyncShell


class Harnesses:
    """Makes harnesses of one shell (``kind``); each is stopped when ``stack`` closes (the
    last made first; every one even when a stop fails)."""

    def __init__(self, kind: str, stack: contextlib.AsyncExitStack) -> None:
        self.kind = kind
        self._stack = stack

    def __call__(self, module: str, callback: Callback, **kwargs: Any) -> AnyHarness:
        h: AnyHarness = (
            SyncShell(module, callback, **kwargs)
            if self.kind == "sync"
            else AsyncHarness(module, callback, **kwargs)
        )
        self._stack.push_async_callback(h.stop)
        return h


@pytest_asyncio.fixture(params=KINDS)
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[Harnesses]:
    async with contextlib.AsyncExitStack() as stack:
        yield Harnesses(request.param, stack)


NewHarness = Callable[..., Harness]
"""``new_harness(module, callback, **kwargs)``: as ``Harness(...)``."""


@pytest.fixture
def new_harness() -> Iterator[NewHarness]:
    with contextlib.ExitStack() as stack:

        def make(module: str, callback: Callback, **kwargs: Any) -> Harness:
            return stack.enter_context(Harness(module, callback, **kwargs))

        yield make
