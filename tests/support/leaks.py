"""Leak checks behind the suite-wide fixtures of ``tests/conftest.py``: a test must not leave
threads or asyncio tasks running after it ends.

Why: a leaked thread keeps polling, producing or serving after its test, and an earlier test's
threads have made later tests fail (a thread-count assertion in a clean clone). The check turns
such a leak into a failure of the test that caused it.

Threads
-------
The threads alive before a test are its baseline; after the test (and after every fixture of
the test has been torn down) each new thread gets a short, bounded join (``JOIN_GRACE``
seconds in total) and the ones still alive fail the test. Threads that exist for the whole
process are not the test's doing: those alive when the session's first test starts are
allowed, and so are the threads named in ``PROCESS_WIDE_THREADS`` (libraries that start a
global thread lazily, on first use, and keep it for the life of the process).

Tasks
-----
For an async test the tasks of its event loop still pending after the test and its async
fixtures fail the test (the loop would otherwise cancel them silently at close).

Known leaks in production code are marked on the test with
``@pytest.mark.leaks_threads(reason=...)``; that marker skips both checks for the test. It is a
temporary allow-list: each use names the leaking object so the leak gets fixed.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Collection, Iterable

JOIN_GRACE = 2.0
"""Seconds a test's leftover threads get, in total, to finish on their own: threads told to
stop at teardown may need a poll timeout or two to notice."""

PROCESS_WIDE_THREADS: dict[str, str] = {
    # thread-name prefix -> why it may outlive any test
}
"""Threads allowed by name prefix, because a library starts them once per process."""


def is_process_wide(thread: threading.Thread) -> bool:
    return any(thread.name.startswith(prefix) for prefix in PROCESS_WIDE_THREADS)


def _describe_thread(thread: threading.Thread) -> str:
    target = getattr(thread, "_target", None)
    where = getattr(target, "__qualname__", None) or type(thread).__qualname__
    return f"{thread.name} ({where}, daemon={thread.daemon})"


def leftover_threads(
    baseline: Collection[threading.Thread], grace: float = JOIN_GRACE
) -> list[threading.Thread]:
    """Threads alive now that are not in ``baseline`` nor process-wide, after joining them
    for at most ``grace`` seconds in total."""
    deadline = time.monotonic() + grace

    def new() -> list[threading.Thread]:
        return [
            t
            for t in threading.enumerate()
            if t not in baseline and not is_process_wide(t) and t is not threading.current_thread()
        ]

    left: list[threading.Thread] = []
    for thread in new():
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            left.append(thread)
    return left


def thread_leak_message(threads: Iterable[threading.Thread]) -> str:
    shown = "\n  ".join(_describe_thread(t) for t in threads)
    return (
        "the test left threads running (stop or close what started them in the test or a "
        f"fixture teardown):\n  {shown}"
    )


def pending_tasks(loop: asyncio.AbstractEventLoop) -> list[asyncio.Task[object]]:
    """Tasks of ``loop`` not done, except the one asking."""
    current = asyncio.current_task(loop)
    return [t for t in asyncio.all_tasks(loop) if t is not current and not t.done()]


def task_leak_message(tasks: Iterable[asyncio.Task[object]]) -> str:
    shown = "\n  ".join(f"{t.get_name()}: {t.get_coro()!r}" for t in tasks)
    return (
        "the test left asyncio tasks pending (await or cancel them in the test or a fixture "
        f"teardown):\n  {shown}"
    )
