"""The synchronous runner: moves data between the ports and the engine on one loop thread.

The loop thread owns the engine (it is the only caller); station runs go to a bounded thread
pool (``max_workers``) and come back through a queue. No per-station threads: 10,000 stations
share the pool. Delivery reports and custom upload handlers come back the same way.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import attrs

from da_app.callbacks import LoopThread, call_sync, is_async_callable
from da_app.flow import FlowControl
from da_app.stats import PROCESSING_BUCKETS, RATIO_BUCKETS, Histogram, RateSampler
from da_core.engine import DeadLetter, Engine, Forward, StationRun, Upload
from da_core.errors import CommitError, ConfigError, DeliveryError
from da_core.ports import Clock, Consumer, Producer
from da_core.routing import plan_internal_topics
from da_core.types import DeliveryReport, Record, TopicPartition

log = logging.getLogger("da_app.runner")

GLOBAL_REFRESH_SECONDS = 5.0
"""How often new partitions of global topics are looked for (wall seconds)."""
ROUTING_SETUP_SECONDS = 30.0
"""How long created internal topics may take to show up in the cluster's metadata."""
MAX_FORWARDS_IN_FLIGHT = 5000
"""Shares produced and not yet answered, at most (rekey routing): the client's queue and the
broker see a bounded load, the rest waits in the engine."""
FORWARDS_PER_UPLOAD = 10
"""Back-pressure: consumption pauses at ``max_pending_uploads`` times this many unacknowledged
shares (rekey routing)."""

Callback = Callable[[str, dict[str, Any]], Any]
ResultHandler = Callable[[str, dict[str, Any], Any], Any]
BatchUploadHandler = Callable[[str, list[dict[str, Any]]], Any]


@attrs.define
class RunnerStats:
    """What the runner measured (durations are wall-clock seconds; ``last_loop_at``,
    ``last_commit_at`` and ``commit_failed_at`` are times of the service's clock).

    ``processing`` and ``availability`` are cumulative histograms of every finished run's
    duration and ``_data_quality['availability_ratio']``; ``missing_topic_runs`` counts, per
    topic, the runs whose input lacked it; ``throughput`` samples records and runs per second.
    """

    loops: int = 0
    records_polled: int = 0
    callback_seconds: deque[float] = attrs.field(factory=lambda: deque(maxlen=4096))
    callback_count: int = 0
    result_handler_errors: int = 0
    poll_errors: int = 0
    last_loop_at: float = 0.0
    last_poll_error: str | None = None
    consumer_alive: bool = False
    producer_alive: bool = False
    commit_failed_at: float | None = None
    last_commit_at: float | None = None
    processing: Histogram = attrs.field(factory=lambda: Histogram(PROCESSING_BUCKETS))
    availability: Histogram = attrs.field(factory=lambda: Histogram(RATIO_BUCKETS))
    missing_topic_runs: dict[str, int] = attrs.field(factory=dict)
    throughput: RateSampler = attrs.field(factory=RateSampler)
    refused: str | None = None
    """Why the runner refused to go on (station co-location broken, ``da_core.routing``)."""

    def run_finished(self, seconds: float, module_input: Mapping[str, Any]) -> None:
        """Account one finished run (called on the loop thread when its result comes back)."""
        self.callback_count += 1
        self.callback_seconds.append(seconds)
        self.processing.observe(seconds)
        quality = module_input.get("_data_quality")
        if isinstance(quality, Mapping):
            ratio = quality.get("availability_ratio")
            if isinstance(ratio, (int, float)):
                self.availability.observe(float(ratio))
            missing = self.missing_topic_runs
            for topic in quality.get("missing_topics") or ():
                missing[topic] = missing.get(topic, 0) + 1


@attrs.frozen
class _RunDone:
    run: StationRun
    result: Any
    error: BaseException | None
    seconds: float


@attrs.frozen
class _UploadDone:
    upload_id: int
    ok: bool
    error: str | None


@attrs.frozen
class _ForwardDone:
    fwd_id: int
    ok: bool
    error: str | None


@attrs.frozen
class _DeadDone:
    dl_id: int
    ok: bool


class _Listener:
    def __init__(self, runner: SyncRunner) -> None:
        self._runner = runner
        self.active = True

    def on_assigned(self, partitions: Sequence[TopicPartition]) -> None:
        if self.active:
            log.info("partitions assigned: %s", ", ".join(map(str, partitions)))
            self._runner._on_assigned(partitions)

    def on_revoked(self, partitions: Sequence[TopicPartition]) -> None:
        if self.active:
            self._runner._on_revoked(partitions)


class SyncRunner:
    """Runs one engine with a sync consumer/producer. See the module docstring."""

    def __init__(
        self,
        engine: Engine,
        consumer: Consumer,
        producer: Producer,
        clock: Clock,
        callback: Callback,
        *,
        result_handler: ResultHandler | None = None,
        batch_upload_handler: BatchUploadHandler | None = None,
        max_workers: int = 32,
        poll_timeout: float = 0.1,
        max_poll_records: int = 500,
        drain_timeout: float = 10.0,
        global_consumer: Consumer | None = None,
        max_pending_uploads: int = 1000,
        multi_consumer_mode: bool = False,
    ) -> None:
        self.engine = engine
        self.consumer = consumer
        self.producer = producer
        self.clock = clock
        self.callback = callback
        self.result_handler = result_handler
        self.batch_upload_handler = batch_upload_handler
        self.max_workers = max_workers
        self.poll_timeout = poll_timeout
        self.max_poll_records = max_poll_records
        self.drain_timeout = drain_timeout
        self.global_consumer = global_consumer
        self.max_pending_uploads = max_pending_uploads
        self.flow = FlowControl(max_poll_records, multi_consumer_mode)
        self.stats = RunnerStats()
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="da-worker")
        needs_loop = any(
            f is not None and is_async_callable(f)
            for f in (callback, result_handler, batch_upload_handler)
        )
        self._aloop = LoopThread() if needs_loop else None
        self._done: queue.SimpleQueue[_RunDone | _UploadDone | _DeadDone | _ForwardDone] = (
            queue.SimpleQueue()
        )
        self._check_colocation = False
        self._in_flight = 0
        self._upload_parts: dict[int, list[int | str | None]] = {}
        self._stop = threading.Event()
        self._abandoned = False
        self._thread: threading.Thread | None = None
        self._listener = _Listener(self)
        self._subscribed = False
        self._global_assigned: set[TopicPartition] = set()
        self._next_global_refresh = 0.0
        self._lock = threading.RLock()
        self._running = False
        self._keep_state_on_rebalance = False
        self._held_revoked: set[TopicPartition] = set()
        self._skip_below: dict[TopicPartition, int] = {}
        self.stopped = threading.Event()

    # ------------------------------------------------------------------ lifecycle

    def subscribe(self) -> None:
        """Join the group for the module's topics; global topics go to the global reader."""
        if self._subscribed:
            return
        self._prepare_routing()
        self.consumer.subscribe(self._group_topics(), self._listener)
        self._refresh_globals()
        self._subscribed = True
        self.stats.consumer_alive = True
        self.stats.producer_alive = True

    def _group_topics(self) -> list[str]:
        eng = self.engine
        if self.global_consumer is None:
            # Without a separate reader, global topics are read through the group.
            return list(eng.topics)
        return [t for t in eng.topics if t not in eng.global_topics]

    def _prepare_routing(self) -> None:
        """Rekey routing: make sure the internal topics exist with one partition count and
        tell the engine that count."""
        eng = self.engine
        if not eng.internal_topics:
            return
        c = self.consumer
        sources = {t: len(c.partitions_for(t)) for t in eng.internal_topics}
        internal = {t: len(c.partitions_for(t)) for t in eng.internal_topics.values()}
        n, missing = plan_internal_topics(eng.routing, sources, internal)
        if missing:
            c.create_topics(missing, n, eng.routing.replication_factor)
            deadline = time.monotonic() + ROUTING_SETUP_SECONDS
            while any(len(c.partitions_for(t)) != n for t in missing):
                if time.monotonic() >= deadline:
                    raise ConfigError(
                        f"internal topics {', '.join(missing)} did not appear with {n} "
                        f"partitions within {ROUTING_SETUP_SECONDS:.0f}s"
                    )
                time.sleep(0.2)
        eng.rekey_partitions = n
        log_routing(list(internal), n)

    def _colocation_check(self) -> None:
        """After an assignment: refuse to go on when this member's partitions would split a
        station's data across instances (see ``da_core.routing``)."""
        self._check_colocation = False
        eng = self.engine
        counts = {t: len(self.consumer.partitions_for(t)) for t in eng.colocation_count_topics()}
        if refuse(self.stats, eng.colocation_problem(self.consumer.assignment(), counts)):
            self._stop.set()

    def refresh_globals(self) -> None:
        with self._lock:
            self._refresh_globals()

    def _refresh_globals(self) -> None:
        """Assign every partition of the global topics (new ones too) from the beginning."""
        gc = self.global_consumer
        self._next_global_refresh = time.monotonic() + GLOBAL_REFRESH_SECONDS
        if gc is None:
            return
        new = [
            TopicPartition(t, p)
            for t in self.engine.global_topics
            for p in gc.partitions_for(t)
            if TopicPartition(t, p) not in self._global_assigned
        ]
        if new:
            gc.assign(new, from_beginning=True)
            self._global_assigned.update(new)

    @property
    def subscribed(self) -> bool:
        return self._subscribed

    def resubscribe(self) -> None:
        """Subscribe again to the engine's topics after a reconfiguration changed them (call
        with ``_lock`` held, as ``reload_config`` does)."""
        topics = self._group_topics()
        # The group rebalances (an eager one revokes everything): keep the station state of
        # the partitions handed back (see ``_on_assigned``).
        self._keep_state_on_rebalance = True
        self._prepare_routing()
        self.consumer.subscribe(topics, self._listener)
        self._refresh_globals()
        log.info("subscribed to %s", ", ".join(topics))

    def start(self) -> None:
        """Run the loop in a background thread."""
        self.subscribe()
        self._thread = threading.Thread(target=self.run, name="da-engine-loop", daemon=True)
        self._thread.start()

    def run(self) -> None:
        """Run the loop on this thread until ``stop()``; then drain and commit."""
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
            self._thread.join(timeout if timeout is not None else self.drain_timeout + 10)
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
        finally:
            self._pool.shutdown(wait=False, cancel_futures=True)
            if self._aloop is not None:
                self._aloop.close()
            self.stopped.set()

    @property
    def alive(self) -> bool:
        """The loop is running, in its background thread or in ``run()`` on the caller's."""
        return self._running or (self._thread is not None and self._thread.is_alive())

    # ------------------------------------------------------------------ the loop

    def step(self) -> int:
        """One loop iteration; returns how many things happened (0 = idle)."""
        with self._lock:
            return self._step()

    def _step(self) -> int:
        eng = self.engine
        activity = self._drain_completions()
        now = self.clock.time()
        backlog = bool(self.flow.backlog)
        busy = activity or self._in_flight or eng.has_work
        timeout = (
            0.0 if activity or eng.runnable or backlog else (0.005 if busy else self.poll_timeout)
        )
        self._apply_backpressure()
        try:
            records = self.consumer.poll(timeout, self.flow.poll_size(len(eng.topics)))
            self.stats.consumer_alive = True
            self.stats.last_poll_error = None
        except Exception as exc:  # the broker can be unreachable; keep running, back off
            self.stats.consumer_alive = False
            self.stats.poll_errors += 1
            self.stats.last_poll_error = f"{type(exc).__name__}: {exc}"
            log.error("poll failed: %s", exc)
            time.sleep(min(1.0, self.poll_timeout * 5))
            records = []
        now = self.clock.time()
        if records and self._skip_below:
            records = skip_replayed(records, self._skip_below)
        if self._check_colocation:
            self._colocation_check()
        records = self.flow.admit(records)
        if records:
            self.stats.records_polled += len(records)
            eng.ingest(records, now)
            activity += len(records)
        if self.global_consumer is not None:
            if time.monotonic() >= self._next_global_refresh:
                self._refresh_globals()
            grecs = self.global_consumer.poll(0.0, self.max_poll_records)
            if grecs:
                eng.ingest(grecs, now, tracked=False)
                activity += len(grecs)
        activity += self._pump(now)
        self.stats.loops += 1
        self.stats.last_loop_at = now
        self.stats.throughput.tick(
            time.monotonic(), eng.stats.records_in, self.stats.callback_count
        )
        return activity

    def _pump(self, now: float) -> int:
        """Everything but polling: time, runs, uploads, dead letters, delivery, commits."""
        eng = self.engine
        activity = 0
        eng.tick(now)
        free = self.max_workers - self._in_flight
        if free > 0 and eng.runnable:
            for run in eng.take_runs(free, now):
                self._submit_run(run)
                activity += 1
        for up in eng.take_uploads(now):
            self._start_upload(up)
            activity += 1
        for dl in eng.take_dead_letters():
            self._start_dead_letter(dl)
            activity += 1
        if eng.internal_topics:
            for fw in eng.take_forwards(now, MAX_FORWARDS_IN_FLIGHT - eng.forwards_in_flight):
                self._start_forward(fw)
                activity += 1
        activity += self.producer.poll(0.0)
        activity += self._drain_completions()
        self._maybe_commit(now)
        return activity

    def _apply_backpressure(self) -> None:
        """Pause what must wait: every partition while too many uploads are pending, and in
        multi_consumer_mode the partitions of topics whose intake buffer is over high water."""
        over = (
            self.engine.pending_uploads >= self.max_pending_uploads
            or self.engine.pending_forwards >= self.max_pending_uploads * FORWARDS_PER_UPLOAD
        )
        if over and not self.flow.paused:
            log.warning("pausing consumption: %d uploads pending", self.engine.pending_uploads)
        pause, resume = self.flow.plan(self.consumer.assignment(), pause_all=over)
        if pause:
            self.consumer.pause(pause)
        if resume:
            self.consumer.resume(resume)

    # ------------------------------------------------------------------ runs

    def _submit_run(self, run: StationRun) -> None:
        self._in_flight += 1
        fut = self._pool.submit(self._call, run)
        fut.add_done_callback(self._run_finished)

    def _call(self, run: StationRun) -> _RunDone:
        t0 = time.perf_counter()
        try:
            result = call_sync(self.callback, (run.station_id, run.module_input), self._aloop)
        except Exception as exc:
            log.exception(
                "callback failed for station %s (batch %s, topics %s)",
                run.station_id,
                run.batch_id,
                ",".join(run.module_input.get("_data_quality", {}).get("available_topics", [])),
                extra={"station_id": run.station_id, "batch_id": run.batch_id},
            )
            return _RunDone(run, None, exc, time.perf_counter() - t0)
        if self.result_handler is not None:
            try:
                call_sync(
                    self.result_handler, (run.station_id, run.module_input, result), self._aloop
                )
            except Exception:
                self.stats.result_handler_errors += 1
                log.exception("result_handler failed for station %s", run.station_id)
        return _RunDone(run, result, None, time.perf_counter() - t0)

    def _run_finished(self, fut: Future[_RunDone]) -> None:
        if fut.cancelled():
            return
        self._done.put(fut.result())

    # ------------------------------------------------------------------ uploads

    def _start_upload(self, up: Upload) -> None:
        if self.batch_upload_handler is not None:
            handler = self.batch_upload_handler

            def call() -> _UploadDone:
                try:
                    call_sync(handler, (up.batch_id, up.results), self._aloop)
                except Exception as exc:
                    return _UploadDone(up.upload_id, False, f"{type(exc).__name__}: {exc}")
                return _UploadDone(up.upload_id, True, None)

            fut = self._pool.submit(call)
            fut.add_done_callback(lambda f: self._done.put(f.result()))
            return
        parts: list[int | str | None] = [len(up.records), None]
        self._upload_parts[up.upload_id] = parts

        def on_delivery(report: DeliveryReport, uid: int = up.upload_id) -> None:
            p = self._upload_parts.get(uid)
            if p is None:
                return
            if not report.ok and p[1] is None:
                p[1] = report.error or "delivery failed"
            remaining = int(p[0] or 0) - 1
            p[0] = remaining
            if remaining == 0:
                del self._upload_parts[uid]
                err = p[1]
                self._done.put(_UploadDone(uid, err is None, None if err is None else str(err)))

        for rec in up.records:
            try:
                self.producer.produce(rec, on_delivery)
            except (DeliveryError, Exception) as exc:
                on_delivery(DeliveryReport(rec, f"{type(exc).__name__}: {exc}"))

    def _start_dead_letter(self, dl: DeadLetter) -> None:
        def on_delivery(report: DeliveryReport, i: int = dl.dl_id) -> None:
            self._done.put(_DeadDone(i, report.ok))

        try:
            self.producer.produce(dl.record, on_delivery)
        except Exception as exc:
            on_delivery(DeliveryReport(dl.record, str(exc)))

    def _start_forward(self, fw: Forward) -> None:
        def on_delivery(report: DeliveryReport, i: int = fw.fwd_id) -> None:
            self._done.put(_ForwardDone(i, report.ok, report.error))

        try:
            self.producer.produce(fw.record, on_delivery)
        except Exception as exc:
            on_delivery(DeliveryReport(fw.record, str(exc)))

    # ------------------------------------------------------------------ completions

    def _drain_completions(self) -> int:
        n = 0
        now = self.clock.time()
        while True:
            try:
                item = self._done.get_nowait()
            except queue.Empty:
                return n
            n += 1
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

    def _maybe_commit(self, now: float) -> None:
        offsets = self.engine.take_commit(now)
        if offsets:
            self._commit(offsets, now)

    def _commit(self, offsets: dict[TopicPartition, int], now: float) -> bool:
        try:
            self.consumer.commit(offsets)
        except (CommitError, Exception) as exc:
            log.error("commit failed (%s); offsets kept for retry", exc)
            self.stats.commit_failed_at = now
            self.engine.commit_done(offsets, False, now)
            return False
        self.stats.last_commit_at = now
        self.stats.commit_failed_at = None
        self.engine.commit_done(offsets, True, now)
        return True

    # ------------------------------------------------------------------ draining

    def idle(self) -> bool:
        """Nothing queued, running, uploading or waiting to be told."""
        eng = self.engine
        return (
            not eng.runnable
            and not self._in_flight
            and not eng.pending_uploads
            and not eng.pending_forwards
            and not self._upload_parts
            and self._done.empty()
        )

    def quiescent(self) -> bool:
        """Nothing can happen until records arrive or time passes: no run queued or running,
        no produce awaiting its report (uploads waiting for a retry backoff may remain)."""
        return (
            not self.engine.runnable
            and not self._in_flight
            and not self._upload_parts
            and not self.engine.forwards_in_flight
            and self._done.empty()
            and not self.flow.backlog
        )

    def drain(self, deadline: float) -> bool:
        """Finish in-flight work without polling new records, until idle or ``deadline``
        (monotonic seconds); open batches are completed by their timeout at the latest."""
        while time.monotonic() < deadline:
            now = self.clock.time()
            self._pump(now)
            self.producer.poll(0.01)
            if self.idle():
                if not self.engine.open_batches:
                    return True
                # only open batches are left: nothing more will finish them, upload now
                self.engine.flush_batches(now)
        return False

    def _on_revoked(self, partitions: Sequence[TopicPartition]) -> None:
        self.flow.revoked(partitions)  # the consumer delivers them again
        if self._keep_state_on_rebalance:
            self._held_revoked.update(partitions)
            log.info(
                "partitions revoked: %s; state kept until the new assignment (resubscribed)",
                ", ".join(map(str, partitions)),
            )
            return
        log.info("partitions revoked: %s; draining", ", ".join(map(str, partitions)))
        self.drain(time.monotonic() + self.drain_timeout)
        final = self.engine.partitions_revoked(partitions)
        if final:
            self._commit(final, self.clock.time())

    def _on_assigned(self, partitions: Sequence[TopicPartition]) -> None:
        """After our own resubscription: partitions handed back keep their stations' windows
        and held records; the records the consumer delivers again from the committed offset
        (already in the windows and the ledger) are skipped. Partitions not handed back are
        revoked now."""
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
        gone = held - back
        if gone:
            self._on_revoked(sorted(gone, key=lambda tp: (tp.topic, tp.partition)))

    def _shutdown(self) -> None:
        with self._lock:  # status readers wait for the final state instead of racing the drain
            self._shutdown_locked()

    def _shutdown_locked(self) -> None:
        drained = self.drain(time.monotonic() + self.drain_timeout)
        if not drained:
            log.warning("stop: drain deadline passed with work in flight; it will be redelivered")
        offsets = self.engine.flush_offsets()
        if offsets:
            self._commit(offsets, self.clock.time())
        self._listener.active = False
        try:
            self.consumer.close()
        except Exception as exc:
            log.error("consumer close failed: %s", exc)
        if self.global_consumer is not None:
            self.global_consumer.close()
        remaining = self.producer.flush(5.0)
        if remaining:
            log.warning("stop: %d produced records without delivery report", remaining)
        self.producer.close()
        self._pool.shutdown(wait=True)
        if self._aloop is not None:
            self._aloop.close()
        self.stats.consumer_alive = False
        self.stats.producer_alive = False


def refuse(stats: RunnerStats, problem: str | None) -> bool:
    """Record and log the first reason to refuse (a broken co-location); True: stop now."""
    if problem is None or stats.refused is not None:
        return False
    stats.refused = problem
    log.error("refusing to run: %s", problem)
    return True


def log_routing(internal: Sequence[str], partitions: int) -> None:
    log.info(
        "station routing: rekey through %d internal topic(s) of %d partitions (%s)",
        len(internal),
        partitions,
        ", ".join(internal),
    )


def skip_replayed(records: list[Record], skip: dict[TopicPartition, int]) -> list[Record]:
    """Drop records below their partition's mark (already ingested before a rebalance handed
    the partition back); a partition's mark is cleared at its first new record."""
    out: list[Record] = []
    for rec in records:
        mark = skip.get(rec.tp)
        if mark is None:
            out.append(rec)
        elif rec.offset >= mark:
            del skip[rec.tp]
            out.append(rec)
    return out
