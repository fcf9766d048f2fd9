"""The leak checks behind ``tests/conftest.py``: they see a thread or task a test left."""

from __future__ import annotations

import asyncio
import threading

from tests.support.leaks import leftover_threads, pending_tasks, thread_leak_message


def test_a_thread_still_running_after_the_grace_is_a_leftover() -> None:
    baseline = frozenset(threading.enumerate())
    release = threading.Event()
    thread = threading.Thread(target=release.wait, name="left-behind")
    thread.start()
    try:
        left = leftover_threads(baseline, grace=0.05)
    finally:
        release.set()
        thread.join()

    assert left == [thread]
    assert "left-behind" in thread_leak_message(left)


def test_a_thread_that_ends_within_the_grace_is_not_a_leftover() -> None:
    baseline = frozenset(threading.enumerate())
    release = threading.Event()
    thread = threading.Thread(target=release.wait, name="ending")
    thread.start()
    release.set()

    assert leftover_threads(baseline, grace=5.0) == []


async def test_a_pending_task_is_seen_and_the_asking_task_is_not() -> None:
    release = asyncio.Event()
    task = asyncio.create_task(release.wait(), name="waiting")

    seen = pending_tasks(asyncio.get_running_loop())
    release.set()
    await task

    assert seen == [task]
    assert pending_tasks(asyncio.get_running_loop()) == []
