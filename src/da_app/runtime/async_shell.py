"""``AsyncRunner``: the asyncio shell around ``LoopCore``, on one event loop.

One task drives the core's programs; station runs are tasks bounded by ``max_concurrency`` (a
sync callback runs in a thread pool of ``max_workers``); uploads, dead letters and shares are
tasks that await their delivery reports. Completions come back through an ``asyncio.Queue``
that also wakes the loop. Revoked partitions are drained by the step after the poll that
revoked them (the listener is called synchronously inside the consumer's poll).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from da_app.runtime import actions as a
from da_app.runtime import deliveries as dv
from da_app.runtime import draining
from da_app.runtime import programs as pg
from da_app.runtime.callbacks import (
    BatchUploadHandler,
    Callback,
    ResultHandler,
    call_async,
    is_async_callable,
)
from da_app.runtime.core import LoopOptions, Ops
from da_app.runtime.restore import aperform as restore_io
from da_app.runtime.shell import Shell
from da_app.runtime.workers import WorkerPool
from da_core.engine import Engine
from da_core.errors import CommitError
from da_core.ports import AsyncConsumer, AsyncProducer, Clock

if TYPE_CHECKING:
    from typing_extensions import Unpack

log = logging.getLogger("da_app.runner")

ASYNC_FORWARDS_IN_FLIGHT = 200
"""Shares sent and not yet answered, at most (rekey routing). aiokafka slows down sharply with
many sends waiting at once (one producer, 20,000 records on 3 partitions, sends/s by how many
were awaited together: 100: 51k, 200: 47k, 500: 27k, 2,000: 11k, 20,000: 0.5k)."""


class AsyncRunner(Shell[AsyncConsumer, AsyncProducer]):
    """Runs one engine with async ports on the current event loop."""

    def __init__(
        self,
        engine: Engine,
        consumer: AsyncConsumer,
        producer: AsyncProducer,
        clock: Clock,
        callback: Callback,
        *,
        result_handler: ResultHandler | None = None,
        batch_upload_handler: BatchUploadHandler | None = None,
        max_concurrency: int = 64,
        max_workers: int = 32,
        global_consumer: AsyncConsumer | None = None,
        restore_consumer: AsyncConsumer | None = None,
        **options: Unpack[LoopOptions],
    ) -> None:
        ports = (consumer, producer, global_consumer, restore_consumer)
        calls = (callback, result_handler, batch_upload_handler)
        core = {"max_runs": max_concurrency, "max_forwards_in_flight": ASYNC_FORWARDS_IN_FLIGHT}
        self._bind(engine, clock, ports, calls, None, **core, **options)
        self.max_concurrency = max_concurrency
        self.max_workers = max_workers
        self._executor = WorkerPool(max_workers, thread_name_prefix="da-aworker")
        self._done: asyncio.Queue[a.Completion] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stop: asyncio.Event | None = None
        self._main: asyncio.Task[None] | None = None
        self._resubscribe = False
        self.loop: asyncio.AbstractEventLoop | None = None
        """The event loop the runner runs on (set by ``start``)."""
        self.stopped: asyncio.Event | None = None

    # ------------------------------------------------------------------ lifecycle

    async def open(self) -> None:
        """Start the clients and subscribe, without starting the loop task (a test harness
        then calls ``step()`` itself); ``start`` does this first."""
        self.loop = asyncio.get_running_loop()
        self._done = asyncio.Queue()
        self._stop = asyncio.Event()
        self.stopped = asyncio.Event()
        if not self.engine.global_topics:
            self.global_consumer = None
        self.core.global_reader = self.global_consumer is not None
        await self._drive(self.core.subscribe())  # the broker may be away: step() retries

    async def _connect(self) -> None:
        """Start the clients (``Connect``); each start is idempotent, so a retry after an
        unreachable broker starts only those still stopped."""
        await self.consumer.start()
        await self.producer.start()
        if self.global_consumer is not None:
            await self.global_consumer.start()
        if self.restore_consumer is not None:  # started here, not in open(): it may be away
            await self.restore_consumer.start()

    async def start(self) -> None:
        """Subscribe and start the loop task; returns once running (also when the broker is
        unreachable: the loop then retries the set-up with backoff)."""
        await self.open()
        self._main = asyncio.create_task(self._run(), name="da-engine-loop")

    def request_resubscribe(self) -> None:
        """Subscribe again to the engine's topics at the start of the next loop iteration
        (after a reconfiguration changed them)."""
        self._resubscribe = True

    async def _run(self) -> None:
        assert self._stop is not None
        try:
            while not self._stop.is_set():
                await self.step()
        finally:
            if not self._abandoned:
                await self.close()

    def request_stop(self) -> None:
        """Ask the loop to stop after its current iteration."""
        if self._stop is not None:
            self._stop.set()

    async def stop(self) -> None:
        """Stop consuming, finish in-flight work (up to ``drain_timeout``), commit, close."""
        if self._stop is None:
            return
        self._stop.set()
        if self._main is not None:
            await self._main
        elif self.stopped is not None and not self.stopped.is_set():
            await self.close()

    async def abandon(self) -> None:
        """Simulate a crash: stop at once, commit nothing more, leave the group."""
        self._abandoned = True
        self._listener.active = False
        self.request_stop()
        if self._main is not None:
            self._main.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._main
        for t in list(self._tasks):
            t.cancel()
        await self.consumer.close()
        if self.restore_consumer is not None:
            await self.restore_consumer.close()
        self._executor.shutdown(wait=False, cancel_futures=True)
        if self.stopped is not None:
            self.stopped.set()

    @property
    def alive(self) -> bool:
        return self._main is not None and not self._main.done()

    @property
    def workers(self) -> int:
        """Station runs at once: tasks for an async callback, else the executor's threads."""
        if is_async_callable(self.callback):
            return self.max_concurrency
        return min(self.max_concurrency, self.max_workers)

    async def step(self) -> int:
        """One loop iteration; returns how many things happened (0 = idle)."""
        if self._resubscribe:
            self._resubscribe = False
            await self._drive(self.core.subscribe(again=True))
        n: int = await self._drive(self.core.step())
        return n

    async def drain(self, deadline: a.Deadline | None = None) -> bool:
        """Finish in-flight work without polling (``LoopCore.drain``)."""
        done: bool = await self._drive(self.core.drain(deadline))
        return done

    async def close(self) -> None:
        """Drain, commit, close the clients (the end of ``stop``)."""
        await self._drive(self.core.shutdown())
        self._listener.active = False
        budget = draining.close_budget(self.core)
        await _bounded(self.consumer.close(), budget, "consumer close")
        if self.global_consumer is not None:
            await _bounded(self.global_consumer.close(), budget, "global reader close")
        if self.restore_consumer is not None:
            await _bounded(self.restore_consumer.close(), budget, "restore reader close")
        await _bounded(self.producer.flush(budget), budget + 1.0, "producer flush")
        await _bounded(self.producer.close(budget), budget + 3.0, "producer close")
        self._executor.shutdown(wait=False)
        self.core.closed()
        if self.stopped is not None:
            self.stopped.set()

    # ------------------------------------------------------------------ performing ops

    async def _drive(self, program: Ops) -> Any:
        """Run a core program to its end, awaiting each operation it yields."""
        return await pg.drive_async(program, self._perform)

    async def _perform(self, op: a.Op) -> Any:
        match op:
            case a.Wait(seconds):
                return await self._collect(seconds)
            case a.Start(work):
                self._start(work)
            case a.Sleep(seconds):
                assert self._stop is not None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), seconds)
                return self._stop.is_set()
            case a.Connect():
                await self._connect()
            case a.RequestStop():
                self.request_stop()
            case a.Commit(offsets, timeout) if timeout is not None:
                try:
                    await asyncio.wait_for(self.consumer.commit(offsets), timeout)
                except asyncio.TimeoutError as exc:
                    raise CommitError(
                        f"commit gave up after {timeout:.1f}s of the stop's budget "
                        "(broker unreachable?)"
                    ) from exc
            case a.RestoreFacts() | a.RestoreRead():
                assert self.restore_consumer is not None
                return await restore_io(self.consumer, self.restore_consumer, op)
            case _:
                calls = pg.port_calls(op, self.consumer, self.global_consumer, self._listener)
                return await pg.drive_async(calls, pg.call_awaiting)
        return None

    async def _collect(self, seconds: float) -> list[a.Completion]:
        """The completions there are, waiting up to ``seconds`` for a first one."""
        q = self._done
        assert q is not None
        items: list[a.Completion] = []
        if seconds > 0 and q.empty():
            with contextlib.suppress(TimeoutError):
                items.append(await asyncio.wait_for(q.get(), seconds))
        while not q.empty():
            items.append(q.get_nowait())
        return items

    def _start(self, work: a.Work) -> None:
        for run in work.runs:
            self._spawn(self._calls(pg.station_call(self, run)))
        for up in work.uploads:
            if self.batch_upload_handler is not None:
                self._spawn(self._calls(pg.handler_upload(self, up)))
            else:
                self._spawn(dv.send_upload(self.producer, up))
        for dl in work.dead_letters:
            self._spawn(dv.send_dead_letter(self.producer, dl))
        if work.forwards:
            self._spawn(dv.send_forwards(self.producer, work.forwards))

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        """A task's answer (a completion or a list of them) goes to the queue."""
        self._tasks.discard(task)
        if task.cancelled() or self._done is None:
            return
        done = task.result()
        for item in done if isinstance(done, list) else [done]:
            self._done.put_nowait(item)

    async def _calls(self, calls: pg.Calls) -> Any:
        """Run a program of user calls: awaited, or in the executor when sync."""
        return await pg.drive_async(calls, self._call)

    async def _call(self, call: pg.Call) -> Any:
        return await call_async(*call, self._executor, self.core.watch.timeout or None)


async def _bounded(aw: Coroutine[Any, Any, Any], seconds: float, what: str) -> None:
    """Await a step of ``close`` for at most ``seconds`` (the broker may be unreachable: a
    stop must end within ``shutdown_timeout`` anyway); a failure is logged, not raised."""
    try:
        await asyncio.wait_for(aw, seconds)
    except asyncio.TimeoutError:
        log.warning("stop: %s did not finish within %.1fs; going on", what, seconds)
    except Exception as exc:
        log.error("stop: %s failed: %s", what, exc)
