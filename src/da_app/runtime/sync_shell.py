"""``SyncRunner``: the thread shell around ``LoopCore``.

One loop thread drives the core's programs (it is the engine's only caller, under ``_lock``);
station runs and custom uploads go to a bounded thread pool (``max_workers``) and come back,
with the producer's delivery reports, through a queue. No per-station threads: 10,000
stations share the pool. An async callable given to this runner is awaited on a private event
loop thread.
"""

from __future__ import annotations

import logging
import queue
import threading
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from da_app.runtime import actions as a
from da_app.runtime import draining
from da_app.runtime import programs as pg
from da_app.runtime import shell as sh
from da_app.runtime.callbacks import (
    BatchUploadHandler,
    Callback,
    LoopThread,
    ResultHandler,
    call_sync,
    is_async_callable,
)
from da_app.runtime.core import LoopOptions, Ops
from da_app.runtime.deliveries import produce_work
from da_app.runtime.restore import perform as restore_io
from da_app.runtime.workers import WorkerPool
from da_core.engine import Engine
from da_core.ports import Clock, Consumer, Producer

if TYPE_CHECKING:
    from typing_extensions import Unpack

log = logging.getLogger("da_app.runner")

STOP_WORKER_WAIT = 2.0
"""Seconds ``stop`` waits for busy workers after the drain; one still busy is left behind (a
daemon thread: it cannot keep the process alive)."""


class SyncRunner(sh.Shell[Consumer, Producer]):
    """Runs one engine with a sync consumer/producer. See the module docstring."""

    def __init__(
        self,
        engine: Engine,
        consumer: Consumer,
        producer: Producer,
        clock: Clock,
        callback: Callback,
        *,
        max_workers: int = 32,
        result_handler: ResultHandler | None = None,
        batch_upload_handler: BatchUploadHandler | None = None,
        global_consumer: Consumer | None = None,
        restore_consumer: Consumer | None = None,
        **options: Unpack[LoopOptions],
    ) -> None:
        self.max_workers = max_workers
        ports = (consumer, producer, global_consumer, restore_consumer)
        calls = (callback, result_handler, batch_upload_handler)
        core = {"max_runs": max_workers, "global_reader": global_consumer is not None}
        self._bind(engine, clock, ports, calls, self._revoke_due, **core, **options)
        self._pool = WorkerPool(max_workers, thread_name_prefix="da-worker")
        handlers = (callback, result_handler, batch_upload_handler)
        needs_loop = any(f is not None and is_async_callable(f) for f in handlers)
        self._aloop = LoopThread() if needs_loop else None
        self._done: queue.SimpleQueue[a.Completion] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.RLock()
        """Held by the loop for each step; readers take it to see a state between steps."""
        self._running = False
        self.stopped = threading.Event()

    # ------------------------------------------------------------------ lifecycle

    def subscribe(self) -> None:
        """Join the group for the module's topics; global topics go to the global reader."""
        if not self.core.subscribed:
            self._drive(self.core.subscribe())

    def resubscribe(self) -> None:
        """Subscribe again after a reconfiguration changed the topics (call with ``_lock``
        held, as ``reload_config`` does)."""
        self._drive(self.core.subscribe(again=True))

    def start(self) -> None:
        """Run the loop in a background thread (after a first set-up attempt here: when the
        broker is unreachable, the loop retries with backoff)."""
        self.subscribe()
        self._thread = threading.Thread(target=self.run, name="da-engine-loop", daemon=True)
        self._thread.start()

    def run(self) -> None:
        """Run the loop on this thread until ``stop()``; then drain and commit. After a
        failed set-up (in ``start``), the loop's iterations retry it with backoff."""
        if not self.core.broker.setup_failures:
            self.subscribe()
        self._running = True
        try:
            while not self._stop.is_set():
                self.step()
        finally:
            self._running = False
            if not self._abandoned:
                self._shutdown()
            self.stopped.set()

    def request_stop(self) -> None:
        """Ask the loop to stop after its current iteration (safe from a signal handler: it
        only sets an event; ``run()`` then drains, commits and returns)."""
        self._stop.set()

    def stop(self, timeout: float | None = None) -> None:
        """Stop consuming, finish in-flight work (up to ``drain_timeout``), commit, close."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout if timeout is not None else self.core.shutdown_timeout + 5)
        elif self._thread is None and not self.stopped.is_set():
            self._shutdown()
            self.stopped.set()

    def abandon(self) -> None:
        """Simulate a crash: stop at once, commit nothing more, leave the group."""
        self._abandoned = True
        self._listener.active = False
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(10)
        try:
            self.consumer.close()
            if self.restore_consumer is not None:
                self.restore_consumer.close()
        finally:
            self._close_workers(wait=False)
            self.stopped.set()

    @property
    def alive(self) -> bool:
        """The loop is running, in its background thread or in ``run()`` on the caller's."""
        return self._running or (self._thread is not None and self._thread.is_alive())

    def step(self) -> int:
        """One loop iteration; returns how many things happened (0 = idle)."""
        with self._lock:
            n: int = self._drive(self.core.step())
            return n

    def drain(self, deadline: a.Deadline | None = None) -> bool:
        """Finish in-flight work without polling (``LoopCore.drain``)."""
        done: bool = self._drive(self.core.drain(deadline))
        return done

    def _revoke_due(self) -> None:
        self._drive(self.core.revoke_due())

    def _shutdown(self) -> None:
        with self._lock:  # status readers wait for the final state instead of racing the drain
            self._drive(self.core.shutdown())
            self._listener.active = False
            try:
                self.consumer.close()
            except Exception as exc:
                log.error("consumer close failed: %s", exc)
            if self.global_consumer is not None:
                self.global_consumer.close()
            if self.restore_consumer is not None:
                self.restore_consumer.close()
            budget = draining.close_budget(self.core)
            remaining = self.producer.flush(budget)
            if remaining:
                log.warning(
                    "stop: %d produced records without delivery report",
                    remaining,
                    extra={"event": "undelivered_on_stop"},
                )
            self.producer.close(0.0 if remaining else budget)
            self._close_workers(wait=True)
            self.core.closed()

    @property
    def workers(self) -> int:
        """Threads that run station callbacks."""
        return self.max_workers

    def _close_workers(self, wait: bool) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=not wait, timeout=STOP_WORKER_WAIT)
        if self._aloop is not None:
            self._aloop.close()

    # ------------------------------------------------------------------ performing ops

    def _drive(self, program: Ops) -> Any:
        """Run a core program to its end, performing each operation it yields."""
        return pg.drive(program, self._perform)

    def _perform(self, op: a.Op) -> Any:
        match op:
            case a.Wait(seconds):
                return self._collect(seconds)
            case a.Start(work):
                self._start(work)
            case a.Sleep(seconds):
                return self._stop.wait(seconds)
            case a.Connect():
                return None  # librdkafka clients connect by themselves
            case a.RequestStop():
                self._stop.set()
            case a.RestoreFacts() | a.RestoreRead():
                assert self.restore_consumer is not None
                return restore_io(self.consumer, self.restore_consumer, op)
            case _:
                calls = pg.port_calls(op, self.consumer, self.global_consumer, self._listener)
                return pg.drive(calls, pg.call)
        return None

    def _collect(self, seconds: float) -> list[a.Completion]:
        """Serve delivery reports, then take the completions; wait up to ``seconds`` for a
        first one (on the producer when only produced records are out)."""
        self.producer.poll(0.0)
        items: list[a.Completion] = []
        if seconds > 0 and self._done.empty():
            if self.core.runs_in_flight:
                try:
                    items.append(self._done.get(timeout=seconds))
                except queue.Empty:
                    return items
            else:
                self.producer.poll(seconds)
        while not self._done.empty():
            items.append(self._done.get_nowait())
        return items

    def _start(self, work: a.Work) -> None:
        for run in work.runs:
            self._submit(pg.station_call(self, run))
        custom = self.batch_upload_handler is not None
        for up in work.uploads if custom else ():
            self._submit(pg.handler_upload(self, up))
        produce_work(self.producer, work, self._done.put, uploads=not custom)

    def _submit(self, calls: pg.Calls) -> None:
        self._pool.submit(pg.drive, calls, self._call).add_done_callback(self._finished)

    def _finished(self, fut: Future[Any]) -> None:
        if not fut.cancelled():
            self._done.put(fut.result())

    def _call(self, call: pg.Call) -> Any:
        """One user call, on a worker thread (an async callable on the private loop)."""
        return call_sync(*call, self._aloop, self.core.watch.timeout or None)
