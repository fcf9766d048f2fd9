"""The asyncio runner: the same protocol as ``SyncRunner``, on one event loop.

One task owns the engine; station runs are tasks bounded by ``max_concurrency`` (a sync
callback runs in a thread pool of ``max_workers``); uploads and dead letters are tasks that
await their delivery reports. Completions come back through an ``asyncio.Queue`` that also
wakes the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from da_app.callbacks import call_async
from da_app.flow import FlowControl
from da_app.runner import (
    FORWARDS_PER_UPLOAD,
    GLOBAL_REFRESH_SECONDS,
    ROUTING_SETUP_SECONDS,
    BatchUploadHandler,
    Callback,
    ResultHandler,
    RunnerStats,
    _DeadDone,
    _ForwardDone,
    _RunDone,
    _UploadDone,
    log_routing,
    refuse,
    skip_replayed,
)
from da_core.engine import DeadLetter, Engine, Forward, StationRun, Upload
from da_core.errors import ConfigError
from da_core.ports import AsyncConsumer, AsyncProducer, Clock
from da_core.routing import plan_internal_topics
from da_core.types import TopicPartition

ASYNC_FORWARDS_IN_FLIGHT = 200
"""Shares sent and not yet answered, at most (rekey routing). aiokafka slows down sharply with
many sends waiting at once (one producer, 20,000 records on 3 partitions, sends/s by how many
were awaited together: 100: 51k, 200: 47k, 500: 27k, 2,000: 11k, 20,000: 0.5k)."""

log = logging.getLogger("da_app.async_runner")


class _AsyncListener:
    """Rebalance callbacks arrive synchronously from the consumer; revoke work is scheduled."""

    def __init__(self, runner: AsyncRunner) -> None:
        self._runner = runner
        self.active = True

    def on_assigned(self, partitions: Sequence[TopicPartition]) -> None:
        if self.active:
            log.info("partitions assigned: %s", ", ".join(map(str, partitions)))
            self._runner._on_assigned(partitions)

    def on_revoked(self, partitions: Sequence[TopicPartition]) -> None:
        if not self.active:
            return
        r = self._runner
        if r._keep_state_on_rebalance:
            r._held_revoked.update(partitions)
            log.info(
                "partitions revoked: %s; state kept until the new assignment (resubscribed)",
                ", ".join(map(str, partitions)),
            )
        else:
            r._revoked.extend(partitions)


class AsyncRunner:
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
        poll_timeout: float = 0.1,
        max_poll_records: int = 500,
        drain_timeout: float = 10.0,
        global_consumer: AsyncConsumer | None = None,
        multi_consumer_mode: bool = False,
        max_pending_forwards: int = 1000 * FORWARDS_PER_UPLOAD,
    ) -> None:
        self.engine = engine
        self.max_pending_forwards = max_pending_forwards
        self.consumer = consumer
        self.producer = producer
        self.clock = clock
        self.callback = callback
        self.result_handler = result_handler
        self.batch_upload_handler = batch_upload_handler
        self.max_concurrency = max_concurrency
        self.poll_timeout = poll_timeout
        self.max_poll_records = max_poll_records
        self.drain_timeout = drain_timeout
        self.global_consumer = global_consumer
        self.flow = FlowControl(max_poll_records, multi_consumer_mode)
        self.stats = RunnerStats()
        self._executor = ThreadPoolExecutor(
            max_workers=max_workers, thread_name_prefix="da-aworker"
        )
        self._done: asyncio.Queue[_RunDone | _UploadDone | _DeadDone | _ForwardDone] | None = None
        self._check_colocation = False
        self._in_flight = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stop: asyncio.Event | None = None
        self._main: asyncio.Task[None] | None = None
        self._listener = _AsyncListener(self)
        self._revoked: list[TopicPartition] = []
        self._global_assigned: set[TopicPartition] = set()
        self._next_global_refresh = 0.0
        self._abandoned = False
        self._subscribed = False
        self._resubscribe = False
        self._keep_state_on_rebalance = False
        self._held_revoked: set[TopicPartition] = set()
        self._skip_below: dict[TopicPartition, int] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        """The event loop the runner runs on (set by ``start``)."""
        self.stopped: asyncio.Event | None = None

    async def start(self) -> None:
        """Subscribe and start the loop task; returns once running."""
        self.loop = asyncio.get_running_loop()
        self._done = asyncio.Queue()
        self._stop = asyncio.Event()
        self.stopped = asyncio.Event()
        await self.consumer.start()
        await self.producer.start()
        eng = self.engine
        await self._prepare_routing()
        if self.global_consumer is not None and eng.global_topics:
            await self.global_consumer.start()
            await self.consumer.subscribe(
                [t for t in eng.topics if t not in eng.global_topics], self._listener
            )
            await self._refresh_globals()
        else:
            self.global_consumer = None
            await self.consumer.subscribe(list(eng.topics), self._listener)
        self._subscribed = True
        self.stats.consumer_alive = True
        self.stats.producer_alive = True
        self._main = asyncio.create_task(self._run(), name="da-engine-loop")

    @property
    def subscribed(self) -> bool:
        return self._subscribed

    def request_resubscribe(self) -> None:
        """Subscribe again to the engine's topics at the start of the next loop iteration
        (after a reconfiguration changed them)."""
        self._resubscribe = True

    async def _apply_resubscribe(self) -> None:
        self._resubscribe = False
        topics = self.engine.topics
        if self.global_consumer is not None:
            topics = tuple(t for t in topics if t not in self.engine.global_topics)
        self._keep_state_on_rebalance = True  # as SyncRunner.resubscribe
        await self._prepare_routing()
        await self.consumer.subscribe(list(topics), self._listener)
        await self._refresh_globals()
        log.info("subscribed to %s", ", ".join(topics))

    async def _prepare_routing(self) -> None:
        """As ``SyncRunner._prepare_routing``."""
        eng = self.engine
        if not eng.internal_topics:
            return
        c = self.consumer
        sources = {t: len(await c.partitions_for(t)) for t in eng.internal_topics}
        internal = {t: len(await c.partitions_for(t)) for t in eng.internal_topics.values()}
        n, missing = plan_internal_topics(eng.routing, sources, internal)
        if missing:
            await c.create_topics(missing, n, eng.routing.replication_factor)
            deadline = time.monotonic() + ROUTING_SETUP_SECONDS
            while True:
                counts = [len(await c.partitions_for(t)) for t in missing]
                if all(k == n for k in counts):
                    break
                if time.monotonic() >= deadline:
                    raise ConfigError(
                        f"internal topics {', '.join(missing)} did not appear with {n} "
                        f"partitions within {ROUTING_SETUP_SECONDS:.0f}s"
                    )
                await asyncio.sleep(0.2)
        eng.rekey_partitions = n
        log_routing(list(internal), n)

    async def _colocation_check(self) -> None:
        """As ``SyncRunner._colocation_check``."""
        self._check_colocation = False
        eng = self.engine
        counts = {
            t: len(await self.consumer.partitions_for(t)) for t in eng.colocation_count_topics()
        }
        if refuse(self.stats, eng.colocation_problem(self.consumer.assignment(), counts)):
            assert self._stop is not None
            self._stop.set()

    def _on_assigned(self, partitions: Sequence[TopicPartition]) -> None:
        """As ``SyncRunner._on_assigned``; partitions not handed back are revoked in ``step``."""
        self._check_colocation = True
        held, self._held_revoked = self._held_revoked, set()
        self._keep_state_on_rebalance = False
        if not held:
            return
        back = held.intersection(partitions)
        for tp in back:
            nxt = self.engine.ledger.next_to_track(tp)
            if nxt is not None:
                self._skip_below[tp] = nxt
        self._revoked.extend(sorted(held - back, key=lambda tp: (tp.topic, tp.partition)))

    async def _refresh_globals(self) -> None:
        """Assign every partition of the global topics (new ones too) from the beginning."""
        gc = self.global_consumer
        self._next_global_refresh = time.monotonic() + GLOBAL_REFRESH_SECONDS
        if gc is None:
            return
        new = []
        for t in self.engine.global_topics:
            for p in await gc.partitions_for(t):
                tp = TopicPartition(t, p)
                if tp not in self._global_assigned:
                    new.append(tp)
        if new:
            await gc.assign(new, from_beginning=True)
            self._global_assigned.update(new)

    async def _run(self) -> None:
        assert self._stop is not None
        assert self.stopped is not None
        try:
            while not self._stop.is_set():
                await self.step()
        finally:
            if not self._abandoned:
                await self._shutdown()
            self.stopped.set()

    async def stop(self) -> None:
        """Stop consuming, finish in-flight work (up to ``drain_timeout``), commit, close."""
        if self._stop is None:
            return
        self._stop.set()
        if self._main is not None:
            await self._main

    async def abandon(self) -> None:
        """Simulate a crash: stop at once, commit nothing more, leave the group."""
        self._abandoned = True
        self._listener.active = False
        if self._stop is not None:
            self._stop.set()
        if self._main is not None:
            self._main.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._main
        for t in list(self._tasks):
            t.cancel()
        await self.consumer.close()
        self._executor.shutdown(wait=False, cancel_futures=True)
        if self.stopped is not None:
            self.stopped.set()

    @property
    def alive(self) -> bool:
        return self._main is not None and not self._main.done()

    async def step(self) -> int:
        eng = self.engine
        if self._resubscribe:
            await self._apply_resubscribe()
        activity = self._drain_completions()
        backlog = bool(self.flow.backlog)
        busy = activity or self._in_flight or eng.has_work
        timeout = (
            0.0 if activity or eng.runnable or backlog else (0.005 if busy else self.poll_timeout)
        )
        self._apply_backpressure()
        try:
            records = await self.consumer.poll(timeout, self.flow.poll_size(len(eng.topics)))
            self.stats.consumer_alive = True
            self.stats.last_poll_error = None
        except Exception as exc:
            self.stats.consumer_alive = False
            self.stats.poll_errors += 1
            self.stats.last_poll_error = f"{type(exc).__name__}: {exc}"
            log.error("poll failed: %s", exc)
            await asyncio.sleep(min(1.0, self.poll_timeout * 5))
            records = []
        if self._revoked:
            revoked, self._revoked = self._revoked, []
            await self._on_revoked(revoked)
        if self._check_colocation:
            await self._colocation_check()
        now = self.clock.time()
        if records and self._skip_below:
            records = skip_replayed(records, self._skip_below)
        records = self.flow.admit(records)
        if records:
            self.stats.records_polled += len(records)
            eng.ingest(records, now)
            activity += len(records)
        if self.global_consumer is not None:
            if time.monotonic() >= self._next_global_refresh:
                await self._refresh_globals()
            grecs = await self.global_consumer.poll(0.0, self.max_poll_records)
            if grecs:
                eng.ingest(grecs, now, tracked=False)
                activity += len(grecs)
        activity += await self._pump(now)
        if not activity and busy and self._done is not None:
            # wait briefly for a completion instead of spinning
            with contextlib.suppress(asyncio.TimeoutError):
                item = await asyncio.wait_for(self._done.get(), 0.005)
                self._handle(item)
                activity += 1
        self.stats.loops += 1
        self.stats.last_loop_at = now
        self.stats.throughput.tick(
            time.monotonic(), eng.stats.records_in, self.stats.callback_count
        )
        return activity

    async def _pump(self, now: float) -> int:
        eng = self.engine
        activity = 0
        eng.tick(now)
        free = self.max_concurrency - self._in_flight
        if free > 0 and eng.runnable:
            for run in eng.take_runs(free, now):
                self._in_flight += 1
                self._spawn(self._call(run))
                activity += 1
        for up in eng.take_uploads(now):
            self._spawn(self._upload(up))
            activity += 1
        if eng.internal_topics:
            forwards = eng.take_forwards(now, ASYNC_FORWARDS_IN_FLIGHT - eng.forwards_in_flight)
            if forwards:
                self._spawn(self._forward(forwards))
                activity += len(forwards)
        for dl in eng.take_dead_letters():
            self._spawn(self._dead_letter(dl))
            activity += 1
        activity += self._drain_completions()
        offsets = eng.take_commit(now)
        if offsets:
            await self._commit(offsets, now)
        return activity

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _call(self, run: StationRun) -> None:
        assert self._done is not None
        t0 = time.perf_counter()
        try:
            result = await call_async(
                self.callback, (run.station_id, run.module_input), self._executor
            )
        except Exception as exc:
            log.exception(
                "callback failed for station %s (batch %s)",
                run.station_id,
                run.batch_id,
                extra={"station_id": run.station_id, "batch_id": run.batch_id},
            )
            self._done.put_nowait(_RunDone(run, None, exc, time.perf_counter() - t0))
            return
        if self.result_handler is not None:
            try:
                await call_async(
                    self.result_handler, (run.station_id, run.module_input, result), self._executor
                )
            except Exception:
                self.stats.result_handler_errors += 1
                log.exception("result_handler failed for station %s", run.station_id)
        self._done.put_nowait(_RunDone(run, result, None, time.perf_counter() - t0))

    async def _upload(self, up: Upload) -> None:
        assert self._done is not None
        if self.batch_upload_handler is not None:
            try:
                await call_async(
                    self.batch_upload_handler, (up.batch_id, up.results), self._executor
                )
            except Exception as exc:
                self._done.put_nowait(
                    _UploadDone(up.upload_id, False, f"{type(exc).__name__}: {exc}")
                )
                return
            self._done.put_nowait(_UploadDone(up.upload_id, True, None))
            return
        reports = await asyncio.gather(
            *(self.producer.send(r) for r in up.records), return_exceptions=True
        )
        errors = [
            str(r) if isinstance(r, BaseException) else r.error
            for r in reports
            if isinstance(r, BaseException) or not r.ok
        ]
        self._done.put_nowait(_UploadDone(up.upload_id, not errors, errors[0] if errors else None))

    async def _dead_letter(self, dl: DeadLetter) -> None:
        assert self._done is not None
        try:
            report = await self.producer.send(dl.record)
            ok = report.ok
        except Exception:
            ok = False
        self._done.put_nowait(_DeadDone(dl.dl_id, ok))

    async def _forward(self, forwards: list[Forward]) -> None:
        assert self._done is not None
        try:
            reports = await self.producer.send_many([f.record for f in forwards])
        except Exception as exc:
            for f in forwards:
                self._done.put_nowait(_ForwardDone(f.fwd_id, False, f"{type(exc).__name__}: {exc}"))
            return
        for f, r in zip(forwards, reports, strict=True):
            self._done.put_nowait(_ForwardDone(f.fwd_id, r.ok, r.error))

    def _handle(self, item: _RunDone | _UploadDone | _DeadDone | _ForwardDone) -> None:
        now = self.clock.time()
        if isinstance(item, _RunDone):
            self._in_flight -= 1
            self.stats.run_finished(item.seconds, item.run.module_input)
            self.engine.finish_run(item.run, now, result=item.result, error=item.error)
        elif isinstance(item, _UploadDone):
            self.engine.upload_done(item.upload_id, item.ok, now, item.error)
        elif isinstance(item, _ForwardDone):
            self.engine.forward_done(item.fwd_id, item.ok, now, item.error)
        else:
            self.engine.dead_letter_done(item.dl_id, item.ok, now)

    def _drain_completions(self) -> int:
        if self._done is None:
            return 0
        n = 0
        while not self._done.empty():
            self._handle(self._done.get_nowait())
            n += 1
        return n

    async def _commit(self, offsets: dict[TopicPartition, int], now: float) -> bool:
        try:
            await self.consumer.commit(offsets)
        except Exception as exc:
            log.error("commit failed (%s); offsets kept for retry", exc)
            self.stats.commit_failed_at = now
            self.engine.commit_done(offsets, False, now)
            return False
        self.stats.last_commit_at = now
        self.stats.commit_failed_at = None
        self.engine.commit_done(offsets, True, now)
        return True

    def idle(self) -> bool:
        eng = self.engine
        return (
            not eng.runnable
            and not self._in_flight
            and not eng.pending_uploads
            and not eng.pending_forwards
            and (self._done is None or self._done.empty())
        )

    async def drain(self, deadline: float) -> bool:
        while time.monotonic() < deadline:
            now = self.clock.time()
            await self._pump(now)
            if self.idle():
                if not self.engine.open_batches:
                    return True
                self.engine.flush_batches(now)
            await asyncio.sleep(0.002)
        return False

    def _apply_backpressure(self) -> None:
        """Pause what must wait: every partition while too many shares (rekey routing) are
        unacknowledged, and in multi_consumer_mode the partitions of topics whose intake
        buffer is over high water."""
        over = self.engine.pending_forwards >= self.max_pending_forwards
        if over and not self.flow.paused:
            log.warning("pausing consumption: %d shares pending", self.engine.pending_forwards)
        pause, resume = self.flow.plan(self.consumer.assignment(), pause_all=over)
        if pause:
            self.consumer.pause(pause)
        if resume:
            self.consumer.resume(resume)

    async def _on_revoked(self, partitions: Sequence[TopicPartition]) -> None:
        self.flow.revoked(partitions)  # the consumer delivers them again
        log.info("partitions revoked: %s; draining", ", ".join(map(str, partitions)))
        await self.drain(time.monotonic() + self.drain_timeout)
        final = self.engine.partitions_revoked(partitions)
        if final:
            await self._commit(final, self.clock.time())

    async def _shutdown(self) -> None:
        if not await self.drain(time.monotonic() + self.drain_timeout):
            log.warning("stop: drain deadline passed with work in flight; it will be redelivered")
        offsets = self.engine.flush_offsets()
        if offsets:
            await self._commit(offsets, self.clock.time())
        self._listener.active = False
        await self.consumer.close()
        if self.global_consumer is not None:
            await self.global_consumer.close()
        await self.producer.flush(5.0)
        await self.producer.close()
        self._executor.shutdown(wait=False)
        self.stats.consumer_alive = False
        self.stats.producer_alive = False
