"""``LoopCore``: every decision of the engine loop, sans I/O, shared by both runners.

The core owns the engine (its only caller) and decides: completions (run, upload, share and
dead-letter answers go to the engine), the poll's size and timeout, back-pressure (every
partition pauses while ``max_pending_uploads`` uploads are unacknowledged, every one but the
internal topics' while ``max_pending_forwards`` shares are, in both shells alike), fair intake
and pause/resume (``FlowControl``),
rebalance bookkeeping (``RebalanceBook``, the co-location check, ``refuse``), the rekey routing
plan, the global-topic refresh schedule, draining and shutdown, and ``RunnerStats``.

It has no thread, task, socket or clock read of its own: time comes only from the ``Clock``
port given to it. Its I/O is written as generators (``subscribe``, ``step``, ``drain``,
``revoke_due``, ``shutdown``) that yield operations (``da_app.runtime.actions``: poll, commit,
start work, wait...) and receive their answers; a shell drives one with a trampoline that
performs each operation on its ports, throwing an operation's exception back into the
generator. The sync shell performs them on threads' clients, the async one awaits them: the
behaviour is the same by construction. Other methods are plain state changes.

Termination under a clock that never moves (``ManualClock`` in tests): every deadline is a
``Deadline``, which also passes after a bounded number of idle waits of real time (``Wait`` or
``Sleep`` ops of known length). Draining and shutdown are written in ``draining``, routing
setup and the global topics' refresh (every ``GLOBAL_REFRESH_SECONDS`` of the clock, at every
(re)subscription, and whenever ``request_global_refresh()`` asks) in ``subscription``.
"""

from __future__ import annotations

import logging
from collections.abc import Generator, Iterable, Sequence
from typing import Any, TypedDict

from da_app.runtime import draining
from da_app.runtime.actions import (
    Assignment,
    BrokerState,
    Commit,
    Completion,
    Connect,
    Deadline,
    ForwardDone,
    Op,
    Partitions,
    Poll,
    PollGlobal,
    PollPlan,
    RequestStop,
    RunDone,
    Sleep,
    Start,
    Subscribe,
    UploadDone,
    Wait,
    Work,
    exc_text,
)
from da_app.runtime.broker_watch import BrokerWatch
from da_app.runtime.flow import FlowControl
from da_app.runtime.rebalance import RebalanceBook
from da_app.runtime.rebalance import refuse as refuse
from da_app.runtime.restore import RestorePhase
from da_app.runtime.stats import RunnerStats
from da_app.runtime.subscription import GLOBAL_REFRESH_SECONDS as GLOBAL_REFRESH_SECONDS
from da_app.runtime.subscription import GlobalTopics, prepare_routing
from da_app.runtime.upload_parts import UploadParts
from da_app.runtime.watch import RunWatch
from da_core.engine import Engine
from da_core.errors import ConfigError
from da_core.ports import Clock
from da_core.types import Record, TopicPartition

log = logging.getLogger("da_app.runner")

Ops = Generator[Op, Any, Any]
"""A core program: yields operations, receives their answers."""

BUSY_WAIT = 0.005
"""Seconds to wait for a completion when work is in flight and nothing else happened."""
FORWARDS_PER_UPLOAD = 10
"""Back-pressure default: consumption pauses at ``max_pending_uploads`` times this many
unacknowledged shares (rekey routing)."""
SHUTDOWN_TIMEOUT = 20.0
"""Default bound of a whole stop (seconds): drain, final commit, flush, close. Well under the
30 s grace of Kubernetes and systemd, whatever the broker does."""
MAX_FORWARDS_IN_FLIGHT = 5000
"""Shares produced and not yet answered, at most (rekey routing; the sync shell's default):
the client's queue and the broker see a bounded load, the rest waits in the engine."""


class LoopOptions(TypedDict, total=False):
    """The keyword arguments of ``LoopCore`` that both shells take as they are."""

    poll_timeout: float
    max_poll_records: int
    drain_timeout: float
    shutdown_timeout: float
    broker: str
    max_pending_uploads: int
    max_pending_forwards: int | None
    multi_consumer_mode: bool
    callback_timeout: float


class LoopCore:
    """The loop's state machine; see the module docstring.

    ``max_runs``: station runs in flight at most (the sync pool's workers, the async
    concurrency). ``custom_upload``: uploads go to a ``batch_upload_handler`` (one completion
    per upload) instead of being produced (one per record). ``global_reader``: global topics
    are read by a separate reader outside the group (else through the group).
    ``shutdown_timeout``: a stop ends within about this many seconds (``draining``).
    ``broker``: how log lines name the broker (its bootstrap servers)."""

    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        *,
        max_runs: int,
        poll_timeout: float = 0.1,
        max_poll_records: int = 500,
        drain_timeout: float = 10.0,
        shutdown_timeout: float = SHUTDOWN_TIMEOUT,
        max_pending_uploads: int = 1000,
        max_pending_forwards: int | None = None,
        max_forwards_in_flight: int = MAX_FORWARDS_IN_FLIGHT,
        multi_consumer_mode: bool = False,
        global_reader: bool = False,
        custom_upload: bool = False,
        restore_reader: bool = False,
        callback_timeout: float = 0.0,
        broker: str = "the broker",
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.max_runs = max_runs
        self.poll_timeout = poll_timeout
        self.max_poll_records = max_poll_records
        self.drain_timeout = drain_timeout
        self.shutdown_timeout = shutdown_timeout
        self.max_pending_uploads = max_pending_uploads
        self.max_pending_forwards = (
            max_pending_forwards
            if max_pending_forwards is not None
            else max_pending_uploads * FORWARDS_PER_UPLOAD
        )
        self.max_forwards_in_flight = max_forwards_in_flight
        self.global_reader = global_reader
        self.custom_upload = custom_upload
        self.flow = FlowControl(max_poll_records, multi_consumer_mode)
        self.rebalance = RebalanceBook(engine.next_to_track)
        self.stats = RunnerStats(created_at=clock.time())
        # restore_reader: the shell can replay outside the group (da_app.runtime.restore)
        self.restore = RestorePhase(engine, clock, self.stats, enabled=restore_reader)
        self.watch = RunWatch(callback_timeout)  # the run timeout (s, 0: none); stuck workers
        self.broker = BrokerWatch(self.stats, broker)
        self.stop_commits: draining.StopCommits | None = None  # set by a stop
        self.subscribed = False
        self._again = False  # a failed set-up to retry was a resubscription
        self._runs = 0
        self._uploads = UploadParts()
        self._dead: set[int] = set()
        self._busy = False
        self._globals = GlobalTopics()

    # ------------------------------------------------------------------ predicates

    @property
    def runs_in_flight(self) -> int:
        return self._runs

    @property
    def in_flight(self) -> int:
        """Runs (but the stuck: no drain waits for them), uploads, shares and dead letters
        started and not answered yet."""
        return (
            self._runs
            - self.watch.stuck
            + len(self._uploads)
            + len(self._dead)
            + self.engine.forwards_in_flight
        )

    def idle(self) -> bool:
        """Nothing queued, running, uploading (or waiting to retry) or waiting to be told."""
        eng = self.engine
        return not (eng.runnable or eng.pending_uploads or eng.pending_forwards or self.in_flight)

    def quiescent(self) -> bool:
        """Nothing can happen until records arrive or time passes: no run queued or in
        flight, nothing awaiting its answer, no record buffered by the fair intake (uploads
        and shares waiting for a retry backoff may remain)."""
        return not (self.engine.runnable or self.in_flight or self.flow.backlog or self.restore.due)

    def group_topics(self) -> tuple[str, ...]:
        eng = self.engine
        if not self.global_reader:
            return eng.topics  # without a separate reader, global topics come through the group
        return tuple(t for t in eng.topics if t not in eng.global_topics)

    # ------------------------------------------------------------------ completions

    def complete(self, items: Iterable[Completion]) -> int:
        """Hand answers to the engine; returns how many there were."""
        now = self.clock.time()
        eng = self.engine
        n = 0
        for item in items:
            n += 1
            if isinstance(item, RunDone):
                self._runs -= 1
                if not self.watch.returned(item.run):
                    continue  # a timed-out run came back late: its slot is free again
                self.restore.run_done()
                self.stats.run_finished(item.seconds, item.run.module_input)
                self.stats.result_handler_errors += item.handler_failed
                eng.finish_run(item.run, now, result=item.result, error=item.error)
            elif isinstance(item, UploadDone):
                if (outcome := self._uploads.part_done(item)) is not None:
                    ok, error = outcome
                    eng.upload_done(item.upload_id, ok, now, error)
            elif isinstance(item, ForwardDone):
                eng.forward_done(item.fwd_id, item.ok, now, item.error)
            elif item.dl_id in self._dead:
                self._dead.discard(item.dl_id)
                eng.dead_letter_done(item.dl_id, item.ok, now)
        return n

    # ------------------------------------------------------------------ one iteration

    def step(self) -> Ops:
        """One loop iteration; returns how many things happened (0: idle). After a failed
        set-up (the broker may be unreachable at start), until one succeeds, an iteration
        is a set-up attempt after a backoff (``retry_subscribe``)."""
        if not self.subscribed and self.broker.setup_failures:
            return (yield from self.retry_subscribe())
        activity = self.complete((yield Wait(0.0)))
        plan = self.poll_plan((yield Assignment()), activity)
        try:
            records: list[Record] = yield Poll(plan)
            self.stats.consumer_alive = True
            self.stats.last_poll_error = None
        except Exception as exc:  # the broker can be unreachable: keep running, back off
            yield Sleep(self.poll_failed(exc))
            records = []
        else:  # a poll does not fail when the brokers are down: ask the client
            self.broker.observe((yield BrokerState()))
        yield from self.revoke_due()
        # metadata requests wait for the broker: none while it is known to be down
        if self.rebalance.colocation_due and not self.broker.down:
            yield from self.metadata_step(self.check_colocation())
        activity += self.ingest(records)
        activity += yield from self.restore.step(self.ingest)
        if self.global_reader:
            if self.global_refresh_due() and not self.broker.down:
                yield from self.metadata_step(self.refresh_globals())
            activity += self.ingest_global((yield PollGlobal(self.max_poll_records)))
        activity += yield from self.pump()
        wait = self.end_step(activity)
        if wait:
            activity += self.complete((yield Wait(wait)))
        return activity

    def metadata_step(self, program: Ops) -> Ops:
        """Run a metadata program of the loop (co-location check, global refresh); a failure
        (the broker went away) is a lost broker, not the loop's end: it runs again later."""
        try:
            yield from program
        except ConfigError:
            raise
        except Exception as exc:
            self.broker.lost(exc_text(exc))

    def poll_plan(self, assignment: set[TopicPartition], activity: int) -> PollPlan:
        """Back-pressure and fair-intake pauses, and how long the poll may wait: not at all
        when there is work to do now, briefly while work is in flight."""
        eng = self.engine
        self._busy = bool(activity or self._runs or eng.has_work)
        if activity or eng.runnable or self.flow.backlog or self.restore.active:
            timeout = 0.0
        else:
            timeout = BUSY_WAIT if self._busy else self.poll_timeout
        uploads = eng.pending_uploads >= self.max_pending_uploads
        shares = eng.pending_forwards >= self.max_pending_forwards
        over = uploads or shares
        if self.flow.pressure(over, self.clock.time(), eng.pending_uploads, eng.pending_forwards):
            self.stats.backpressure_pauses += 1
        pause, resume = self.flow.plan(
            assignment,
            pause_all=uploads,
            pause_sources=shares,
            internal=eng.internal_topics.values(),
        )
        pause, resume = self.restore.adjust(pause, resume, self.flow.paused)
        return PollPlan(timeout, self.flow.poll_size(len(eng.topics)), pause, resume)

    def poll_failed(self, exc: BaseException) -> float:
        """Account a failed poll; returns the backoff (seconds) before the next one."""
        self.stats.consumer_alive = False
        self.stats.poll_errors += 1
        self.stats.last_poll_error = exc_text(exc)
        log.error("poll failed: %s", exc, extra={"event": "poll_failed"})
        self.broker.lost(exc_text(exc))
        return min(1.0, self.poll_timeout * 5)

    def ingest(self, records: list[Record]) -> int:
        """Group records: replays skipped, fair admission, then the engine."""
        records = self.flow.admit(self.restore.hold(self.rebalance.skip_replayed(records)))
        if records:
            self.stats.records_polled += len(records)
            self.engine.ingest(records, self.clock.time())
        return len(records)

    def ingest_global(self, records: list[Record]) -> int:
        if live := self.restore.global_records(records):  # re-read: restored silently
            self.engine.ingest(live, self.clock.time(), tracked=False)
        return len(records)

    def take_work(self) -> Work:
        """Advance the engine's time and take what may start now within the limits."""
        eng = self.engine
        self.watch.expire(self)
        now = self.clock.time()
        eng.tick(now)
        free = self.max_runs - self._runs  # stuck runs keep their slots
        runs = eng.take_runs(free, now) if free > 0 and eng.runnable else []
        self._runs += len(runs)
        self.watch.started(runs, now)
        uploads = eng.take_uploads(now)
        for up in uploads:
            parts = 1 if self.custom_upload else len(up.records)
            if parts:
                self._uploads.started(up.upload_id, parts)
            else:
                eng.upload_done(up.upload_id, True, now)  # nothing to produce
        dead = eng.take_dead_letters()
        self._dead.update(dl.dl_id for dl in dead)
        forwards = []
        if eng.internal_topics:
            forwards = eng.take_forwards(now, self.max_forwards_in_flight - eng.forwards_in_flight)
        return Work(runs, uploads, dead, forwards)

    def pump(self) -> Ops:
        """Everything but polling: start work, take answers, commit what is due."""
        work = self.take_work()
        if work:
            yield Start(work)
        n = len(work) + self.complete((yield Wait(0.0)))
        # While the broker is down a commit cannot succeed: the ledger keeps the offsets and
        # the loop does not even try (an attempt would hold it for the client's timeout).
        off = self.broker.down or draining.commits_off(self)
        offsets = None if off else self.engine.take_commit(self.clock.time())
        if offsets:
            yield from self.commit(offsets)
        return n

    def commit(self, offsets: dict[TopicPartition, int]) -> Ops:
        """Commit and tell the engine; returns whether it worked (failures are retried)."""
        stop = self.stop_commits
        try:
            yield Commit(offsets, None if stop is None else stop.timeout(self.clock.time()))
        except Exception as exc:
            if stop is not None:
                stop.failed = True  # no other commit in this stop (``draining.StopCommits``)
            log.error(
                "commit failed (%s); offsets kept for retry", exc, extra={"event": "commit_failed"}
            )
            now = self.clock.time()
            self.stats.commit_failed_at = now
            self.engine.commit_done(offsets, False, now)
            return False
        now = self.clock.time()
        self.stats.last_commit_at = now
        self.stats.commit_failed_at = None
        self.engine.commit_done(offsets, True, now)
        return True

    def end_step(self, activity: int) -> float:
        """Account the iteration; returns how long to wait for a completion before the next
        one (work is in flight and nothing happened: do not spin)."""
        now = self.clock.time()
        self.stats.loops += 1
        self.stats.last_loop_at = now
        self.stats.throughput.tick(now, self.engine.stats.records_in, self.stats.callback_count)
        return BUSY_WAIT if not activity and self._busy else 0.0

    # ------------------------------------------------------------------ draining

    def drain_deadline(self) -> Deadline:
        return draining.drain_deadline(self)

    def drain(self, deadline: Deadline | None = None) -> Ops:
        """Finish in-flight work without polling; True once idle (``draining.drain``)."""
        return draining.drain(self, deadline)

    def shutdown(self) -> Ops:
        """Drain, then commit everything done; the shell closes its clients afterwards."""
        return draining.shutdown(self)

    def closed(self) -> None:
        self.stats.consumer_alive = False
        self.stats.producer_alive = False

    # ------------------------------------------------------------------ rebalance

    def on_revoked(self, partitions: Sequence[TopicPartition]) -> None:
        """Told by the consumer (inside a poll); the shell then runs ``revoke_due``."""
        self.flow.revoked(partitions)  # the consumer delivers them again
        self.restore.revoked(partitions)
        self.rebalance.revoked(partitions)

    def on_assigned(self, partitions: Sequence[TopicPartition]) -> None:
        self.restore.assigned(self.rebalance.assigned(partitions))

    def revoke_due(self) -> Ops:
        """Drain, commit the final offsets of and forget the partitions due for revoke."""
        due = self.rebalance.take_due()
        if not due:
            return
        self.flow.revoked(due)
        log.info(
            "partitions revoked: %s; draining",
            ", ".join(map(str, due)),
            extra={"event": "partitions_revoked"},
        )
        yield from self.drain()
        final = self.engine.partitions_revoked(due)
        if final:
            yield from self.commit(final)

    def check_colocation(self) -> Ops:
        """After an assignment: refuse to go on when this member's partitions would split a
        station's data across instances (see ``da_core.routing``)."""
        eng = self.engine
        found = yield Partitions(tuple(eng.colocation_count_topics()))
        self.rebalance.colocation_due = False  # done once the metadata came (else: again)
        counts = {t: len(ps) for t, ps in found.items()}
        if refuse(self.stats, eng.colocation_problem((yield Assignment()), counts)):
            yield RequestStop()

    # ------------------------------------------------------------------ subscription

    def subscribe(self, *, again: bool = False) -> Ops:
        """Connect, prepare routing, join the group for the engine's topics, read global
        topics; returns whether it worked. ``again``: a reconfiguration changed the topics;
        partitions handed back keep state. A failure other than a ``ConfigError`` (the
        broker is unreachable) is logged once, shown on readiness, and retried by ``step``
        with backoff; a ``ConfigError`` is raised."""
        if again:
            self.rebalance.resubscribing()
        try:
            yield Connect()
            yield from self.prepare_routing()
            topics = self.group_topics()
            yield Subscribe(topics)
            yield from self.refresh_globals()
        except ConfigError:
            raise
        except Exception as exc:
            self.subscribed, self._again = False, again
            self.stats.consumer_alive = False
            self.stats.last_poll_error = exc_text(exc)
            self.broker.setup_failed(exc)
            return False
        if again:
            log.info("subscribed to %s", ", ".join(topics), extra={"event": "subscribed"})
        self.subscribed, self._again = True, False
        self.stats.consumer_alive = True
        self.stats.producer_alive = True
        self.stats.last_poll_error = None
        self.broker.setup_ok()
        return True

    def retry_subscribe(self) -> Ops:
        """One set-up attempt of a loop that is not subscribed yet, after the backoff of the
        failures before it (a stop request ends the wait and skips the attempt); the
        iteration counts for liveness, so ``/health`` stays up while the broker is away."""
        if self.broker.setup_failures and (yield Sleep(self.broker.backoff())):
            return 0
        yield from self.subscribe(again=self._again)
        self.end_step(0)
        return 0

    def prepare_routing(self) -> Ops:
        """Rekey routing: the internal topics exist with one partition count (``subscription``)."""
        return prepare_routing(self.engine, self.clock)

    def request_global_refresh(self) -> None:
        """Look for new partitions of global topics at the next iteration."""
        self._globals.request_refresh()

    def global_refresh_due(self) -> bool:
        return self.global_reader and self._globals.refresh_due(self.clock.time())

    def refresh_globals(self) -> Ops:
        """Assign every partition of the global topics (new ones too) from the beginning."""
        new = yield from self._globals.refresh(self.engine, self.clock.time(), self.global_reader)
        if new:
            yield from self.restore.globals_assigned(new)
