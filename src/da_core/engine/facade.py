"""The engine: the pure state machine behind one module's service (the façade).

It is told records (``ingest``), the time (``tick``) and completions (``finish_run``,
``upload_done``, ``dead_letter_done``, ``forward_done``, ``commit_done``), and answers with
work: station runs (``take_runs``), uploads (``take_uploads``), dead letters
(``take_dead_letters``), shares to forward (``take_forwards``) and commits (``take_commit``).
Runners (threads, asyncio) only move data between ports and the engine; one runner thread/task
at a time calls it (it is not thread-safe by itself).

Delivery (SPEC §6): every input record read from a group-managed partition is tracked in the
``OffsetLedger`` with one reference per station it touched. A reference is released when the
station's run that consumed it has completed and the upload carrying its result was
acknowledged (or its batch had nothing to upload), or when the station drops the data unused
(expiry, removal, revoke, retries exhausted). Bad records are released when their dead letter
is acknowledged, source records of rekey routing when all their shares are. The ledger commits
only the contiguous prefix of released records.

The work is done by the package's parts, one concern each (see ``da_core.engine``).
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from da_core.batch_collector import BatchCollector, RunOutcome
from da_core.config import Catalog, ModuleConfig
from da_core.engine.caches import EngineCaches
from da_core.engine.encoding import final_result
from da_core.engine.forwarding import Forwarder
from da_core.engine.intake import Intake
from da_core.engine.items import (
    BadResult,
    DeadLetter,
    EngineStats,
    Forward,
    RecordRef,
    RunFault,
    StationRun,
    Upload,
)
from da_core.engine.outbox import DEAD_LETTER_MAX_ATTEMPTS, Outbox
from da_core.engine.restore import Restorer
from da_core.engine.stations import StationData, StationStore
from da_core.engine.table import StationTable
from da_core.module_input import ModuleInputPlan, assemble
from da_core.offset_ledger import OffsetLedger
from da_core.ports import JsonCodec
from da_core.routing import Routing
from da_core.types import Record, TopicPartition

log = logging.getLogger("da_core.engine")


class Engine:
    """One module's state machine. See the module docstring for the protocol."""

    def __init__(
        self,
        catalog: Catalog,
        module: str,
        codec: JsonCodec,
        *,
        owns_station: Callable[[str], bool] | None = None,
        sweep_interval: float | None = None,
        routing: Routing | None = None,
        dead_letter_max_attempts: int | None = DEAD_LETTER_MAX_ATTEMPTS,
    ) -> None:
        """``dead_letter_max_attempts``: failed attempts after which a dead letter is given
        up and its record released (``outbox``; None: retried for ever)."""
        self.routing = routing = routing if routing is not None else Routing()
        self.stats = stats = EngineStats()
        self.ledger = ledger = OffsetLedger(catalog.commit)
        """The offset ledger. Read-only for callers: tell the engine, not the ledger."""
        self._codec = codec
        self._ids = ids = itertools.count(1)  # one sequence: runs, uploads, dead letters, shares
        self._caches = caches = EngineCaches()
        self._store = store = StationStore()
        self._table = table = StationTable(store, ledger, stats, owns_station)
        self._outbox = out = Outbox(
            catalog.module(module), ledger, stats, codec, ids, dead_letter_max_attempts
        )
        self._forwarder = fwd = Forwarder(routing, out.forwards, ledger, stats, caches, codec, ids)
        self._intake = intake = Intake(
            table, store, fwd, out.dead_letters, ledger, stats, caches, codec, ids
        )
        self._restorer = Restorer(intake, table, store, stats, caches, codec)
        self._running_runs: dict[int, tuple[StationRun, list[RecordRef]]] = {}
        self._sweep_interval_arg = sweep_interval
        self._last_sweep: float | None = None
        self._now = -math.inf  # the latest time the engine was told
        self._configure(catalog, module)
        self.collector: BatchCollector[list[RecordRef]] = BatchCollector(
            self.module.name, self.module.batch
        )

    # ------------------------------------------------------------------ configuration

    def _configure(self, catalog: Catalog, module: str) -> None:
        self.catalog = catalog
        self.module: ModuleConfig = catalog.module(module)
        self.plan = ModuleInputPlan.build(catalog, module)
        self._intake.configure(catalog, self.module, self.routing)
        self._table.configure(self.module, self._intake.inputs)
        self._outbox.module = self.module
        self._expire = catalog.data_expire_seconds
        self._ttls = {t: catalog.expire_of(t) for t in self.module.inputs}
        self._sweep_interval = (
            self._sweep_interval_arg
            if self._sweep_interval_arg is not None
            else max(1.0, min(30.0, self._expire / 10))
        )

    @property
    def internal_topics(self) -> dict[str, str]:
        """Source topic -> its internal station-keyed topic (empty unless rekey routing)."""
        return self._intake.internal_topics

    @property
    def topics(self) -> tuple[str, ...]:
        """Every topic this module subscribes to (inputs, then dependency outputs, then the
        internal station-keyed topics of rekey routing)."""
        return (*self.module.inputs, *self._intake.dep_topics, *self.internal_topics.values())

    @property
    def global_topics(self) -> tuple[str, ...]:
        return tuple(t for t, c in self._intake.inputs.items() if c.is_global)

    def reconfigure(self, catalog: Catalog) -> None:
        """Apply a new (validated) catalog while keeping window data where the window kind of a
        topic is unchanged; resized windows keep their newest entries."""
        old_inputs = self._intake.inputs
        self._configure(catalog, self.module.name)
        self.ledger.policy = catalog.commit
        self.collector.policy = self.module.batch
        for name, new in self._intake.inputs.items():
            old = old_inputs.get(name)
            if old is None or (old.window, old.window_size) != (new.window, new.window_size):
                self._store.rewindow(new)
        self._store.retain(self._intake.inputs, self.module.dependencies)

    # ------------------------------------------------------------------ rekey routing

    @property
    def rekey_partitions(self) -> int | None:
        """Partition count of the internal topics (rekey routing); set by the runner with
        ``set_rekey_partitions`` once it has made sure they exist, before consuming."""
        return self._forwarder.partitions

    @rekey_partitions.setter
    def rekey_partitions(self, n: int | None) -> None:
        # kept for callers written before ``set_rekey_partitions``
        if n is None:
            self._forwarder.partitions = None
        else:
            self._forwarder.set_partitions(n)

    def set_rekey_partitions(self, n: int) -> None:
        """Tell the engine the partition count (at least 1) of its internal topics."""
        self._forwarder.set_partitions(n)

    def colocation_count_topics(self) -> list[str]:
        """The topics whose partition counts ``colocation_problem`` needs (direct routing:
        every non-global group topic; rekey: none)."""
        return self._forwarder.colocation_count_topics(
            [t for t in self.topics if t not in self.global_topics]
        )

    def colocation_problem(
        self, assigned: set[TopicPartition], counts: Mapping[str, int]
    ) -> str | None:
        """Why this member's assignment would split a station's data across instances, or
        None (see ``da_core.routing.colocation_problem``)."""
        internal = list(self.internal_topics.values())
        sources = [t for t in self.topics if t not in self.global_topics and t not in internal]
        return self._forwarder.colocation_problem(sources, internal, assigned, counts)

    def take_forwards(self, now: float, limit: int | None = None) -> list[Forward]:
        """Shares to produce now (retries whose backoff has passed, then new ones in order), at
        most ``limit`` of them (the runner bounds what is in flight); the rest stay queued."""
        return self._outbox.forwards.take(now, limit)

    def forward_done(self, fwd_id: int, ok: bool, now: float, error: str | None = None) -> None:
        """The broker's answer for a share: acknowledged releases it, else it is retried with
        backoff (its source record stays uncommitted meanwhile)."""
        self._now = now
        self._outbox.forward_done(fwd_id, ok, now, error)

    @property
    def pending_forwards(self) -> int:
        """Shares not yet acknowledged: queued, waiting for a retry, or handed out."""
        return len(self._outbox.forwards)

    @property
    def forwards_in_flight(self) -> int:
        """Shares handed out by ``take_forwards`` whose answer has not come back yet."""
        return self._outbox.forwards.in_flight

    # ------------------------------------------------------------------ ingest and runs

    def ingest(self, records: Sequence[Record], now: float, *, tracked: bool = True) -> str | None:
        """Take a consumption cycle's records; returns the id of the batch it formed, if any.

        ``tracked`` False for records read outside the group (global topics read in full):
        they are applied but never committed."""
        self._now = now
        return self._mark_dirty(self._intake.ingest(records, tracked, now), now, remember=tracked)

    # ------------------------------------------------------------------ restore

    def restore(self, records: Sequence[Record], now: float) -> int:
        """Apply replayed records to windows as ``ingest`` would, without tracking, dead
        letters or dirt; returns how many were applied (see ``da_core.engine.restore``).
        The stations touched run nothing until ``finish_restore``."""
        self._now = now
        return self._restorer.apply(records, now)

    def finish_restore(self, now: float) -> str | None:
        """The restore of the assigned partitions ended: restoring stations go live, and
        those live records made dirty meanwhile are marked dirty now."""
        self._now = now
        return self._mark_dirty(self._restorer.finish(), now)

    @property
    def restoring(self) -> int:
        """Stations touched by a restore that has not finished yet."""
        return len(self._restorer.restoring)

    def _mark_dirty(
        self, station_ids: set[str], now: float, *, remember: bool = True
    ) -> str | None:
        restoring = self._restorer.restoring
        if restoring and not station_ids.isdisjoint(restoring):
            # a restoring station runs nothing until its restore ends; live dirt is kept for
            # then (global re-reads are not: the restored state is the state they refresh)
            quiet = station_ids & restoring
            if remember:
                self._restorer.dirty_meanwhile |= quiet
            station_ids = station_ids - quiet
        joined = self._table.mark_dirty(station_ids)
        if not joined:
            return None
        batch_id = self.collector.open(joined, now)
        if batch_id is not None:
            self.stats.batches_formed += 1
        return batch_id

    @property
    def has_work(self) -> bool:
        """A run is queued, or an upload or a share awaits its answer or its retry."""
        return bool(self._table.ready_q or self._outbox.uploads or self._outbox.forwards)

    @property
    def field_report_seconds(self) -> float:
        """Engine-time seconds after a topic's first record when configured fields never seen
        are reported (also after ``FIELD_REPORT_AFTER`` records, whichever comes first)."""
        return self._intake.field_report_seconds

    @field_report_seconds.setter
    def field_report_seconds(self, seconds: float) -> None:
        self._intake.field_report_seconds = seconds

    def fields_never_seen(self) -> dict[str, list[str]]:
        """Per topic with records, the configured fields that no record has carried yet."""
        return self._intake.fields_never_seen()

    def is_ready(self, st: StationData, now: float) -> bool:
        """Whether the station meets the module's readiness rules."""
        return self._table.is_ready(st)

    @property
    def runnable(self) -> int:
        """Stations queued to run."""
        return self._table.runnable

    @property
    def running(self) -> int:
        return len(self._running_runs)

    def take_runs(self, limit: int, now: float) -> list[StationRun]:
        """Start up to ``limit`` queued stations: at most one run per station at a time."""
        runs: list[StationRun] = []
        for st, refs in self._table.start(limit, now):
            sid = st.station_id
            batch_id = self.collector.run_started(sid, now)
            run = StationRun(next(self._ids), sid, batch_id, self._assemble(st, now), now)
            self._running_runs[run.run_id] = (run, refs)
            self.stats.runs_started += 1
            runs.append(run)
        return runs

    def _assemble(self, st: StationData, now: float) -> dict[str, Any]:
        return assemble(self.plan, st.station_id, st.windows, self._store.globals, st.deps, now)

    def finish_run(
        self, run: StationRun, now: float, *, result: Any = None, error: BaseException | None = None
    ) -> None:
        """Tell the engine a run ended with ``result`` (may be None) or raised ``error``.

        A result is encoded here, once (``encoding.final_result``): one that is not JSON
        fails the run with reason ``bad_result`` (counted in ``stats.run_faults``, one ERROR
        line naming the station and the encoder's complaint), as a ``RunFault`` given by the
        runner (``timeout``, ``callback_exit``) does; other errors are counted by exception
        class in ``stats.runs_failed``. A failed run is retried per the trigger's policy."""
        entry = self._running_runs.pop(run.run_id, None)
        if entry is None:
            return
        refs = entry[1]
        stats = self.stats
        if error is None and result is not None:
            try:
                result = final_result(run.station_id, result, self._codec)
            except BadResult as exc:
                error = exc
                log.error(
                    "result of station %s is not JSON (%s: %s); the run fails (bad_result)",
                    run.station_id,
                    type(result).__name__,
                    exc,
                    extra={"station_id": run.station_id, "da_module": self.module.name},
                )
        if error is not None:
            if isinstance(error, RunFault):
                etype = error.reason
                stats.run_faults[etype] = stats.run_faults.get(etype, 0) + 1
            else:
                etype = type(error).__name__
                stats.runs_failed[etype] = stats.runs_failed.get(etype, 0) + 1
            outcome = RunOutcome(kind="error", value=None, error_type=etype)
            refs = self._table.run_failed(
                run.station_id, f"{etype}: {error}", refs, now, self.module
            )
        elif result is None:
            stats.runs_none += 1
            outcome = RunOutcome(kind="none", value=None, error_type=None)
        else:
            stats.runs_ok += 1
            outcome = RunOutcome(kind="result", value=result, error_type=None)
        self.collector.run_finished(run.station_id, run.batch_id, outcome, refs, now)
        self._table.run_ended(run.station_id, ok=error is None)

    # ------------------------------------------------------------------ time

    def tick(self, now: float) -> None:
        """Advance time: complete order seconds, retries, interval runs, expiry, batches."""
        self._now = now
        self._intake.report_due_fields(now)
        dirty = self._table.due(now, self.module.trigger.interval_seconds)
        if dirty:
            self._mark_dirty(dirty, now)
        if self._last_sweep is None:
            self._last_sweep = now
        elif now - self._last_sweep >= self._sweep_interval:
            self._last_sweep = now
            self.sweep(now)
        for batch in self.collector.poll(now):
            self._outbox.complete(batch, now)

    @property
    def open_batches(self) -> int:
        return len(self.collector.open_batches())

    def flush_batches(self, now: float) -> int:
        """Complete every open batch now with what it has (for stop and revoke); members
        still running are carried. Returns how many batches were completed."""
        batches = self.collector.drain(now)
        for batch in batches:
            self._outbox.complete(batch, now)
        return len(batches)

    def sweep(self, now: float) -> int:
        """Expire old entries and evict stations with nothing left; returns evictions."""
        return self._table.sweep(now, self._expire, self._ttls)

    # ------------------------------------------------------------------ batches and the outbox

    def take_uploads(self, now: float) -> list[Upload]:
        """Uploads to perform now (new ones and retries whose backoff has passed)."""
        return self._outbox.uploads.take(now)

    def upload_done(self, upload_id: int, ok: bool, now: float, error: str | None = None) -> None:
        """The answer for an upload: acknowledged releases its records, else it is retried
        with backoff (``UPLOAD_BACKOFF``)."""
        self._now = now
        self._outbox.upload_done(upload_id, ok, now, error)

    @property
    def upload_failing_since(self) -> float | None:
        """When the current run of failed uploads began (None: the last one succeeded)."""
        return self._outbox.upload_failing_since

    @property
    def pending_uploads(self) -> int:
        return len(self._outbox.uploads)

    def take_dead_letters(self, now: float | None = None) -> list[DeadLetter]:
        """Dead letters to produce now: new ones, and failed ones whose backoff
        (``DEAD_LETTER_BACKOFF``) has passed by ``now`` (default: the latest time the engine
        was told, by ``tick``, ``ingest`` or a completion)."""
        return self._outbox.dead_letters.take(self._now if now is None else now)

    def dead_letter_done(self, dl_id: int, ok: bool, now: float) -> None:
        """The answer for a dead letter: acknowledged releases its record, else it is retried
        with backoff, up to ``dead_letter_max_attempts`` attempts; then it is given up and its
        record released (``stats.dead_letters_lost``, an ERROR line)."""
        self._now = now
        self._outbox.dead_letter_done(dl_id, ok, now)

    @property
    def dead_letters_failing(self) -> int:
        """Dead letters pending whose last attempt failed (the service is degraded)."""
        return self._outbox.dead_letters_failing

    @property
    def dead_letter_failing_since(self) -> float | None:
        """When dead letters began failing (None: none is failing now)."""
        return self._outbox.dead_letter_failing_since

    # ------------------------------------------------------------------ commits and partitions

    def take_commit(self, now: float) -> dict[TopicPartition, int] | None:
        """Offsets to commit now (per the commit policy), or None."""
        if not self.ledger.due(now):
            return None
        return self.ledger.take_commit(now)

    def commit_done(self, offsets: Mapping[TopicPartition, int], ok: bool, now: float) -> None:
        if ok:
            self.stats.commits_ok += 1
            self.ledger.commit_succeeded(dict(offsets), now)
        else:
            self.stats.commit_failures += 1
            self.ledger.commit_failed(dict(offsets), now)

    def flush_offsets(self) -> dict[TopicPartition, int]:
        """Everything committable now (for stop)."""
        return self.ledger.flush()

    def next_to_track(self, tp: TopicPartition) -> int | None:
        """The offset after the last one tracked for ``tp``, None when none was: a consumer
        rewound to an older offset (a rebalance that handed the partition back) has already
        delivered every record below it (``OffsetLedger.next_to_track``)."""
        return self.ledger.next_to_track(tp)

    def partitions_revoked(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        """Drop the state of stations fed only by these partitions; returns the offsets that may
        be committed for them now (work still in flight is left to the next owner)."""
        final = self.ledger.revoke(list(partitions))
        self._table.revoke(set(partitions))
        self._restorer.forget_missing()
        return final

    # ------------------------------------------------------------------ stations

    def add_station(self, station_id: str, now: float) -> bool:
        """Make a station known (it runs once its required topics are present)."""
        return self._table.add(station_id)

    def remove_station(self, station_id: str) -> bool:
        """Forget a station and release its held records."""
        return self._table.remove(station_id)

    @property
    def station_ids(self) -> list[str]:
        return list(self._store.stations)

    def __len__(self) -> int:
        return len(self._store.stations)

    def get_inputs(self, station_id: str, now: float) -> dict[str, Any] | None:
        st = self._store.stations.get(station_id)
        return None if st is None else self._assemble(st, now)

    def data_availability(self) -> tuple[float, dict[str, int]]:
        """The mean share of the module's input topics with data per station (1.0 with no
        stations; the ``availability_ratio`` of ``_data_quality`` before staleness) and, per
        input topic, how many stations lack it. O(stations × topics)."""
        return self._table.data_availability()

    def station_status(
        self, now: float, *, offset: int = 0, limit: int | None = None
    ) -> dict[str, dict[str, Any]]:
        """Every station's status, or the page of ``limit`` stations from ``offset`` in id
        order (for a bounded ``/status``)."""
        return self._table.station_status(offset, limit)

    @property
    def _snapshot_heap(self) -> list[tuple[float, str]]:
        # read by tests/unit/core/test_module_input_memo.py
        return self._store.snapshot_heap
