"""Suite-wide fixtures: no default server ports, and no test leaves threads or asyncio tasks
behind (see ``tests/support/leaks.py``)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Generator, Iterator

import pytest
import pytest_asyncio

from tests.support.leaks import (
    leftover_threads,
    pending_tasks,
    task_leak_message,
    thread_leak_message,
)

TASK_GRACE = 1.0
"""Seconds a test's leftover tasks get to finish (a task cancelled at teardown needs a loop
iteration or two to complete)."""

_session_threads: frozenset[threading.Thread] | None = None
"""Threads alive when the session's first test started: process-wide, allowed in every test."""


KNOWN_LEAKS: dict[str, str] = {
    # "path::test function" -> what leaks where. Temporary: each entry is a leak to fix, after
    # which the entry goes. Kept here rather than as decorators in files other helpers own.
}
"""Tests given the ``leaks_threads`` marker at collection (``pytest_collection_modifyitems``)."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        reason = KNOWN_LEAKS.get(item.nodeid.split("[", 1)[0])
        if reason is not None:
            item.add_marker(pytest.mark.leaks_threads(reason=reason))


@pytest.fixture(autouse=True)
def _no_default_servers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Services started by tests do not bind the default ports 8080/8001 (several test runs
    may share a host); tests that want the servers pass explicit ports or start them."""
    monkeypatch.setenv("DATA_ANALYSIS_HEALTH_PORT", "0")
    monkeypatch.setenv("DATA_ANALYSIS_METRICS_PORT", "0")


def _known_leak(request: pytest.FixtureRequest) -> bool:
    return request.node.get_closest_marker("leaks_threads") is not None


_BASELINE = pytest.StashKey[frozenset[threading.Thread]]()

_fixture_threads: set[threading.Thread] = set()
"""Threads started by the setup of fixtures wider than a function (module, session): they
belong to the fixture, which outlives the test, so no single test is blamed for them."""


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    global _session_threads
    if _session_threads is None:
        _session_threads = frozenset(threading.enumerate())
    item.stash[_BASELINE] = frozenset(threading.enumerate())
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(
    fixturedef: pytest.FixtureDef[object],
) -> Generator[None, object, object]:
    before = frozenset(threading.enumerate()) if fixturedef.scope != "function" else None
    try:
        return (yield)
    finally:
        if before is not None:
            _fixture_threads.update(set(threading.enumerate()) - before)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Iterator[None]:
    """Fail the test when threads it started are alive after its teardown.

    This runs after every function-scoped fixture of the test has been torn down (including
    the asyncio runner, whose executor threads are joined by then), which a fixture cannot do:
    the runner is set up before any autouse fixture.
    """
    result = yield
    if item.get_closest_marker("leaks_threads") is None and _BASELINE in item.stash:
        allowed = item.stash[_BASELINE] | (_session_threads or frozenset()) | _fixture_threads
        left = leftover_threads(allowed)
        if left:
            pytest.fail(thread_leak_message(left), pytrace=False)
    return result


@pytest.fixture(autouse=True)
def _no_pending_tasks_in_async_tests(request: pytest.FixtureRequest) -> None:
    """For async tests, pull in ``_no_pending_tasks``, which runs on the test's own loop; it
    is set up before, so torn down after, the test's own fixtures."""
    if pytest_asyncio.is_async_test(request.node) and not _known_leak(request):
        request.getfixturevalue("_no_pending_tasks")


@pytest_asyncio.fixture
async def _no_pending_tasks() -> AsyncIterator[None]:
    """Fail an async test whose loop still has pending tasks after the test's teardown (set
    up before, so torn down after, the test's own fixtures)."""
    yield
    loop = asyncio.get_running_loop()
    deadline = time.monotonic() + TASK_GRACE
    while (tasks := pending_tasks(loop)) and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    if tasks:
        for task in tasks:  # do not let them run on into the loop's close
            task.cancel()
        pytest.fail(task_leak_message(tasks), pytrace=False)
