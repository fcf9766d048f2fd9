"""``WorkerPool``: the shells' thread pool for user callables, of daemon threads.

``concurrent.futures.ThreadPoolExecutor`` joins its workers when the interpreter exits, so one
callback that never returns would keep a stopped service's process alive for ever. These
workers are daemon threads: ``shutdown`` waits for them at most ``timeout`` seconds, and a
worker still stuck in a callback then dies with the process (``watch`` explains stuck
workers). Otherwise it behaves like ``ThreadPoolExecutor``: at most ``max_workers`` threads,
started on demand, futures completed with the callable's result or exception (any
``BaseException``: nothing escapes a worker).
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, TypeVar

T = TypeVar("T")

_Job = tuple[Future[Any], Callable[..., Any], tuple[Any, ...], dict[str, Any]]


class WorkerPool(Executor):
    """A fixed-size pool of daemon worker threads. See the module docstring."""

    def __init__(self, max_workers: int, thread_name_prefix: str = "da-worker") -> None:
        if max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, not {max_workers}")
        self.max_workers = max_workers
        self._prefix = thread_name_prefix
        self._names = itertools.count()
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._closed = False
        # as with ThreadPoolExecutor, idle workers end when an abandoned pool is collected
        weakref.finalize(self, _stop, self._jobs, self._threads)

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot submit to a pool that was shut down")
            self._jobs.put((future, fn, args, kwargs))
            if not self._idle.acquire(blocking=False) and len(self._threads) < self.max_workers:
                name = f"{self._prefix}_{next(self._names)}"
                work_args = (self._jobs, self._idle)
                t = threading.Thread(target=_work, args=work_args, name=name, daemon=True)
                t.start()
                self._threads.append(t)
        return future

    def shutdown(
        self, wait: bool = True, *, cancel_futures: bool = False, timeout: float | None = None
    ) -> None:
        """Refuse new work and let the workers end once the queue is done (``cancel_futures``:
        cancel what has not started). ``wait``: join them, for at most ``timeout`` seconds
        (None: as long as it takes); a worker still busy then is left behind (a daemon)."""
        with self._lock:
            self._closed = True
            threads = list(self._threads)
        if cancel_futures:
            while True:
                try:
                    job = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if job is not None:
                    job[0].cancel()
        for _ in threads:
            self._jobs.put(None)
        if not wait:
            return
        deadline = None if timeout is None else time.monotonic() + timeout
        for t in threads:
            t.join(None if deadline is None else max(0.0, deadline - time.monotonic()))


def _work(jobs: queue.SimpleQueue[_Job | None], idle: threading.Semaphore) -> None:
    """A worker: run jobs until a ``None``. Holds no reference to its pool, so a pool nobody
    uses any more can be collected (which stops its workers, ``_stop``)."""
    result: Any = None
    while (job := jobs.get()) is not None:
        future, fn, args, kwargs = job
        if future.set_running_or_notify_cancel():
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:  # a worker never dies of what it runs
                future.set_exception(exc)
            else:
                future.set_result(result)
        result = None
        del job, future, fn, args, kwargs  # no reference to the last job while idle
        idle.release()


def _stop(jobs: queue.SimpleQueue[_Job | None], threads: list[threading.Thread]) -> None:
    for _ in threads:
        jobs.put(None)
