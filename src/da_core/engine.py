"""The engine: the pure state machine behind one module's service.

It is told records (``ingest``), the time (``tick``) and completions (``finish_run``,
``upload_done``, ``dead_letter_done``, ``commit_done``), and answers with work: station runs
(``take_runs``), uploads (``take_uploads``), dead letters (``take_dead_letters``) and commits
(``take_commit``). Runners (threads, asyncio) only move data between ports and the engine; one
runner thread/task at a time calls it (it is not thread-safe by itself).

Delivery (SPEC §6): every input record read from a group-managed partition is tracked in the
``OffsetLedger`` with one reference per station it touched. A reference is released when the
station's run that consumed it has completed and the upload carrying its result was
acknowledged (or its batch had nothing to upload), or when the station drops the data unused
(expiry, removal, revoke, retries exhausted). Bad records are released when their dead letter
is acknowledged. The ledger commits only the contiguous prefix of released records.
"""

from __future__ import annotations

import heapq
import logging
import math
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs

from da_core.batch_collector import BatchCollector, CompletedBatch, RunOutcome
from da_core.config import Catalog, ModuleConfig, TopicConfig
from da_core.extractors import StationItem, compile_topic, extract
from da_core.module_input import DependencyResult, ModuleInputPlan, assemble
from da_core.offset_ledger import OffsetLedger
from da_core.partitioning import partition_for_key
from da_core.ports import JsonCodec
from da_core.routing import SOURCE_HEADER, Routing, colocation_problem, shares
from da_core.station_window import SecondSnapshotWindow, Window, make_window
from da_core.types import GLOBAL_STATION, OutboundRecord, Record, TopicPartition

log = logging.getLogger("da_core.engine")

PREVIEW_BYTES = 200
UPLOAD_BACKOFF_MAX = 30.0
FORWARD_BACKOFF_MAX = 5.0
FIELD_REPORT_AFTER = 200
"""Records of a topic after which configured fields never seen are reported once."""

_new = tuple.__new__
_TPS: dict[tuple[str, int], TopicPartition] = {}
_TPS_MAX = 4096


def _tp_of(rec: Record) -> TopicPartition:
    """``rec.tp``, built once per partition instead of once per use (ingest's hot path)."""
    key = (rec.topic, rec.partition)
    tp = _TPS.get(key)
    if tp is None:
        if len(_TPS) >= _TPS_MAX:
            _TPS.clear()
        tp = _TPS[key] = TopicPartition(rec.topic, rec.partition)
    return tp


class RecordRef:
    """One input record held by the stations that read it; done when ``remaining`` hits 0."""

    __slots__ = ("offset", "remaining", "tp")

    def __init__(self, tp: TopicPartition, offset: int, remaining: int) -> None:
        self.tp = tp
        self.offset = offset
        self.remaining = remaining


@attrs.frozen(slots=True)
class StationRun:
    """A run to start: call the module's callback with ``module_input`` for ``station_id``."""

    run_id: int
    station_id: str
    batch_id: str | None
    module_input: dict[str, Any]
    started_at: float


@attrs.frozen(slots=True)
class Upload:
    """Results to publish. ``records`` are what the default upload produces; a custom
    ``batch_upload_handler`` receives ``(batch_id, results)`` instead."""

    upload_id: int
    batch_id: str
    module: str
    results: list[dict[str, Any]]
    records: tuple[OutboundRecord, ...]
    attempt: int = 0


@attrs.frozen(slots=True)
class DeadLetter:
    """A bad input record to publish to the dead-letter topic (with the reason in headers)."""

    dl_id: int
    source: Record
    reason: str
    detail: str
    record: OutboundRecord


@attrs.frozen(slots=True)
class Forward:
    """One station's share of a source record, to produce to its internal station-keyed topic
    (``station_routing: rekey``, see ``da_core.routing``)."""

    fwd_id: int
    record: OutboundRecord
    attempt: int = 0


@attrs.define
class EngineStats:
    """Counters since start. Exported as metrics by the application."""

    records_in: int = 0
    records_ignored: int = 0
    items_in: int = 0
    bad_input: dict[str, int] = attrs.field(factory=dict)
    bad_fields: int = 0
    skipped_items: int = 0
    runs_started: int = 0
    runs_ok: int = 0
    runs_none: int = 0
    runs_failed: dict[str, int] = attrs.field(factory=dict)
    batches_formed: int = 0
    batches_completed: int = 0
    batches_timed_out: int = 0
    batches_empty: int = 0
    batch_sizes: dict[int, int] = attrs.field(factory=dict)
    """Uploaded batches by their number of station results: ``{stations: batches}``."""
    uploads_ok: int = 0
    upload_failures: int = 0
    upload_retries: int = 0
    dead_letters: int = 0
    dead_letter_failures: int = 0
    stations_evicted: int = 0
    refs_released_unused: int = 0
    global_values_cached: int = 0
    commits_ok: int = 0
    commit_failures: int = 0
    records_forwarded: int = 0
    """Source records split by station and forwarded to internal topics (rekey routing)."""
    shares_forwarded: int = 0
    forward_failures: int = 0


class _Station:
    __slots__ = (
        "deps",
        "errors",
        "failures_in_row",
        "last_error",
        "last_run_at",
        "partitions",
        "pending",
        "queued",
        "rerun",
        "running",
        "runs",
        "snap_due",
        "station_id",
        "windows",
    )

    def __init__(self, station_id: str) -> None:
        self.station_id = station_id
        self.windows: dict[str, Window] = {}
        self.deps: dict[str, DependencyResult] = {}
        self.pending: list[RecordRef] = []
        self.partitions: set[TopicPartition] = set()
        self.queued = False
        self.running = False
        self.rerun = False
        self.runs = 0
        self.errors = 0
        self.failures_in_row = 0
        self.last_run_at: float | None = None
        self.last_error: str | None = None
        # The newest order-second deadline pushed on the engine's snapshot heap and not popped
        # yet: adding to a second that already has one pushes nothing.
        self.snap_due: float | None = None


@attrs.define
class _PendingForward:
    forward: Forward
    ref: RecordRef


@attrs.define
class _PendingUpload:
    upload: Upload
    attachments: list[list[RecordRef]]
    due: float


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
    ) -> None:
        self._codec = codec
        self.routing = routing if routing is not None else Routing()
        self.rekey_partitions: int | None = None
        """Partition count of the internal topics (rekey routing); the runner sets it once it
        has made sure they exist, before consuming."""
        self._fwd: dict[int, _PendingForward] = {}
        self._fwd_q: deque[int] = deque()  # new shares, in order
        self._fwd_retry: list[tuple[float, int]] = []  # (due, id) of failed ones, a heap
        self._owns = owns_station
        self._stations: dict[str, _Station] = {}
        self._globals: dict[str, Window] = {}
        self._ready_q: deque[str] = deque()
        self._snapshot_heap: list[tuple[float, str]] = []
        self._retry_heap: list[tuple[float, str]] = []
        self._uploads: dict[int, _PendingUpload] = {}
        self._upload_q: list[int] = []
        self._dead: dict[int, tuple[DeadLetter, RecordRef | None]] = {}
        self._dead_q: list[int] = []
        self._next_id = 0
        self._running_runs: dict[int, tuple[StationRun, list[RecordRef]]] = {}
        self._field_seen: dict[str, set[str]] = {}
        self._field_count: dict[str, int] = {}
        self._field_reported: set[str] = set()
        self.stats = EngineStats()
        self._sweep_interval_arg = sweep_interval
        self._last_sweep: float | None = None
        self._last_interval_run: float | None = None
        self.upload_failing_since: float | None = None
        self._configure(catalog, module)
        self.ledger = OffsetLedger(catalog.commit)

    # ------------------------------------------------------------------ configuration

    def _configure(self, catalog: Catalog, module: str) -> None:
        self.catalog = catalog
        self.module: ModuleConfig = catalog.module(module)
        self.plan = ModuleInputPlan.build(catalog, module)
        self._inputs: dict[str, TopicConfig] = {t: catalog.topics[t] for t in self.module.inputs}
        self._dep_topics: dict[str, str] = {
            catalog.output_topic_of(d): d for d in self.module.dependencies
        }
        self._envelope = TopicConfig(name="__envelope__", extractor="envelope")
        # What ingest looks records up by: the topic a record came from. With rekey routing,
        # source topics map to (config, internal topic) in _routed, and the internal topics
        # stand in for them in _by_topic / _dep_by_topic.
        self._by_topic: dict[str, TopicConfig] = dict(self._inputs)
        self._dep_by_topic: dict[str, str] = dict(self._dep_topics)
        self._routed: dict[str, tuple[TopicConfig, str]] = {}
        if self.routing.rekey:
            for name, cfg in self._inputs.items():
                if not cfg.is_global:
                    internal = self.routing.internal_topic(name)
                    self._routed[name] = (cfg, internal)
                    del self._by_topic[name]
                    self._by_topic[internal] = cfg
            for out_topic, dep in self._dep_topics.items():
                internal = self.routing.internal_topic(out_topic)
                self._routed[out_topic] = (self._envelope, internal)
                del self._dep_by_topic[out_topic]
                self._dep_by_topic[internal] = dep
        self.internal_topics: dict[str, str] = {s: i for s, (_, i) in self._routed.items()}
        """Source topic -> its internal station-keyed topic (empty unless rekey routing)."""
        self._expire = catalog.data_expire_seconds
        self._ttls = {t: catalog.expire_of(t) for t in self.module.inputs}
        self._sweep_interval = (
            self._sweep_interval_arg
            if self._sweep_interval_arg is not None
            else max(1.0, min(30.0, self._expire / 10))
        )
        r = self.module.readiness
        non_global = tuple(t for t in self.module.inputs if not self._inputs[t].is_global)
        self._required = r.required_topics if r.required_topics is not None else non_global
        if r.min_ratio is not None:
            self._required = ()
        self._min_ratio = r.min_ratio
        self._required_deps = r.required_dependencies
        if not hasattr(self, "collector"):
            self.collector: BatchCollector[list[RecordRef]] = BatchCollector(
                self.module.name, self.module.batch
            )

    @property
    def topics(self) -> tuple[str, ...]:
        """Every topic this module subscribes to (inputs, then dependency outputs, then the
        internal station-keyed topics of rekey routing)."""
        return (*self.module.inputs, *self._dep_topics, *self.internal_topics.values())

    @property
    def global_topics(self) -> tuple[str, ...]:
        return tuple(t for t, c in self._inputs.items() if c.is_global)

    def reconfigure(self, catalog: Catalog) -> None:
        """Apply a new (validated) catalog while keeping window data where the window kind of a
        topic is unchanged; resized windows keep their newest entries."""
        old_inputs = self._inputs
        self._configure(catalog, self.module.name)
        self.ledger.policy = catalog.commit
        self.collector.policy = self.module.batch
        for name, new in self._inputs.items():
            old = old_inputs.get(name)
            if old is not None and (old.window, old.window_size) == (new.window, new.window_size):
                continue
            for st in self._stations.values():
                w = st.windows.get(name)
                if w is not None:
                    st.windows[name] = _rewindow(w, make_window(new))
            gw = self._globals.get(name)
            if gw is not None:
                self._globals[name] = _rewindow(gw, make_window(new))
        for st in self._stations.values():
            for name in [n for n in st.windows if n not in self._inputs]:
                del st.windows[name]
            for dep in [d for d in st.deps if d not in self.module.dependencies]:
                del st.deps[dep]

    # ------------------------------------------------------------------ ingest

    def ingest(self, records: Sequence[Record], now: float, *, tracked: bool = True) -> str | None:
        """Take a consumption cycle's records; returns the id of the batch it formed, if any.

        ``tracked`` False for records read outside the group (global topics read in full):
        they are applied but never committed."""
        dirty: set[str] = set()
        stats = self.stats
        inputs = self._by_topic
        routed = self._routed
        stations = self._stations
        ledger = self.ledger
        codec = self._codec
        reported = self._field_reported
        for rec in records:
            stats.records_in += 1
            topic = inputs.get(rec.topic)
            dep = None
            if topic is None:
                if routed:
                    route = routed.get(rec.topic)
                    if route is not None:
                        self._forward(rec, route[0], route[1], now)
                        continue
                dep = self._dep_by_topic.get(rec.topic)
                if dep is None:
                    stats.records_ignored += 1
                    if tracked:
                        tp = _tp_of(rec)
                        ledger.track(tp, rec.offset)
                        ledger.done(tp, rec.offset)
                    continue
                topic = self._envelope
            ex = extract(topic, rec, codec)
            if ex.rejection is not None:
                self._reject(rec, ex.rejection.reason, ex.rejection.detail, tracked, now)
                continue
            stats.bad_fields += ex.bad_fields
            stats.skipped_items += ex.skipped_items
            if dep is None and topic.name not in reported:
                self._note_fields(topic, ex.seen_fields)
            if topic.is_global:
                self._apply_global(topic, ex.items, dirty)
                if tracked:
                    ledger.track(_tp_of(rec), rec.offset)
                    self._hold(rec, dirty, now)
                continue
            touched: list[_Station] = []
            name = topic.name
            lean = topic.window == "hourly_grid"
            for item in ex.items:
                st = stations.get(item.station_id)
                if st is None:
                    st = self._station_for(item.station_id, now)
                    if st is None:
                        continue
                stats.items_in += 1
                if dep is not None:
                    prev = st.deps.get(dep)
                    if prev is None or prev.time <= item.time:
                        st.deps[dep] = DependencyResult(dep, item.values, item.time)
                else:  # self._add_item(st, topic, item), inlined: once per item
                    windows = st.windows
                    w = windows.get(name)
                    if w is None:
                        w = windows[name] = make_window(topic)
                    if lean:
                        # the grid never reads ``raw``: drop the decoded tree it would keep
                        # alive (five GC-tracked containers per hourly row of REALTIME)
                        item = _new(StationItem, (*item[:3], None, *item[4:]))
                    w.add(item)
                    if isinstance(w, SecondSnapshotWindow):
                        deadline = w.deadline()
                        if deadline is not None and deadline != st.snap_due:
                            st.snap_due = deadline
                            heapq.heappush(self._snapshot_heap, (deadline, st.station_id))
                if (not touched or touched[-1] is not st) and st not in touched:
                    touched.append(st)
            if not touched:
                if tracked:
                    tp = _tp_of(rec)
                    ledger.track(tp, rec.offset)
                    ledger.done(tp, rec.offset)
                continue
            if tracked:
                tp = _tp_of(rec)
                ledger.track(tp, rec.offset)
                ref = RecordRef(tp, rec.offset, len(touched))
                for st in touched:
                    st.pending.append(ref)
                    st.partitions.add(tp)
                    dirty.add(st.station_id)
            else:
                for st in touched:
                    dirty.add(st.station_id)
        return self._mark_dirty(dirty, now)

    def _forward(self, rec: Record, topic: TopicConfig, internal: str, now: float) -> None:
        """Rekey routing: split a source record by station and queue one share per station
        for its internal topic; the record is done when every share is acknowledged."""
        ex = extract(topic, rec, self._codec)
        if ex.rejection is not None:
            self._reject(rec, ex.rejection.reason, ex.rejection.detail, True, now)
            return
        n = self.rekey_partitions
        if n is None:
            raise RuntimeError("rekey routing: rekey_partitions must be set before ingesting")
        plan = compile_topic(topic)
        parts = shares(
            ex.items, rec.value or b"", plan.wrapper_key, plan.extractor == "array", self._codec
        )
        tp = _tp_of(rec)
        self.ledger.track(tp, rec.offset)
        self.stats.records_forwarded += 1
        if not parts:
            self.ledger.done(tp, rec.offset)
            return
        self.stats.shares_forwarded += len(parts)
        ref = RecordRef(tp, rec.offset, len(parts))
        headers = (
            (SOURCE_HEADER, f"{rec.topic}/{rec.partition}/{rec.offset}".encode()),
            *rec.headers,
        )
        for sid, value in parts:
            key = sid.encode()
            out = OutboundRecord(
                internal, value, key, headers, partition_for_key(key, n), rec.timestamp
            )
            fid = self._new_id()
            self._fwd[fid] = _PendingForward(Forward(fid, out), ref)
            self._fwd_q.append(fid)

    def colocation_count_topics(self) -> list[str]:
        """The topics whose partition counts ``colocation_problem`` needs (direct routing:
        every non-global group topic; rekey: none)."""
        if self.routing.rekey:
            return []
        return [t for t in self.topics if t not in self.global_topics]

    def colocation_problem(
        self, assigned: set[TopicPartition], counts: Mapping[str, int]
    ) -> str | None:
        """Why this member's assignment would split a station's data across instances, or
        None (see ``da_core.routing.colocation_problem``)."""
        internal = list(self.internal_topics.values())
        sources = [t for t in self.topics if t not in self.global_topics and t not in internal]
        return colocation_problem(self.routing, sources, internal, assigned, counts)

    def take_forwards(self, now: float, limit: int | None = None) -> list[Forward]:
        """Shares to produce now (retries whose backoff has passed, then new ones in order), at
        most ``limit`` of them (the runner bounds what is in flight); the rest stay queued."""
        room = (len(self._fwd_q) + len(self._fwd_retry)) if limit is None else max(0, limit)
        out: list[Forward] = []
        retry = self._fwd_retry
        while retry and retry[0][0] <= now and len(out) < room:
            p = self._fwd.get(heapq.heappop(retry)[1])
            if p is not None:
                out.append(p.forward)
        q = self._fwd_q
        pending = self._fwd
        while q and len(out) < room:
            p = pending.get(q.popleft())
            if p is not None:
                out.append(p.forward)
        return out

    def forward_done(self, fwd_id: int, ok: bool, now: float, error: str | None = None) -> None:
        """The broker's answer for a share: acknowledged releases it, else it is retried with
        backoff (its source record stays uncommitted meanwhile)."""
        p = self._fwd.get(fwd_id)
        if p is None:
            return
        if ok:
            del self._fwd[fwd_id]
            self._release([p.ref])
            return
        self.stats.forward_failures += 1
        attempt = p.forward.attempt + 1
        delay = min(FORWARD_BACKOFF_MAX, 0.05 * (2 ** min(attempt, 10)))
        log.error(
            "forwarding %s to %s failed (attempt %d): %s; retrying in %.2fs",
            p.ref.tp,
            p.forward.record.topic,
            attempt,
            error,
            delay,
            extra={"topic": p.forward.record.topic, "da_module": self.module.name},
        )
        p.forward = attrs.evolve(p.forward, attempt=attempt)
        heapq.heappush(self._fwd_retry, (now + delay, fwd_id))

    @property
    def pending_forwards(self) -> int:
        """Shares not yet acknowledged: queued, waiting for a retry, or handed out."""
        return len(self._fwd)

    @property
    def forwards_in_flight(self) -> int:
        """Shares handed out by ``take_forwards`` whose answer has not come back yet."""
        return len(self._fwd) - len(self._fwd_q) - len(self._fwd_retry)

    @property
    def has_work(self) -> bool:
        """A run is queued, or an upload or a share awaits its answer or its retry."""
        return bool(self._ready_q or self._uploads or self._fwd)

    def _hold(self, rec: Record, dirty: set[str], now: float) -> None:
        """A global record is held by every station it made dirty (none: done at once)."""
        ready = [self._stations[s] for s in dirty if s in self._stations]
        if not ready:
            self.ledger.done(rec.tp, rec.offset)
            return
        ref = RecordRef(rec.tp, rec.offset, len(ready))
        for st in ready:
            st.pending.append(ref)

    def _add_item(self, st: _Station, topic: TopicConfig, item: StationItem) -> None:
        # ingest inlines this; keep both in step
        w = st.windows.get(topic.name)
        if w is None:
            w = st.windows[topic.name] = make_window(topic)
        w.add(item)
        if isinstance(w, SecondSnapshotWindow):
            deadline = w.deadline()
            if deadline is not None and deadline != st.snap_due:
                st.snap_due = deadline
                heapq.heappush(self._snapshot_heap, (deadline, st.station_id))

    def _apply_global(
        self, topic: TopicConfig, items: Sequence[StationItem], dirty: set[str]
    ) -> None:
        w = self._globals.get(topic.name)
        if w is None:
            w = self._globals[topic.name] = make_window(topic)
        for item in items:
            w.add(item)
        self.stats.global_values_cached += 1
        log.info(
            "global data cached: topic %s, applied to %d existing stations",
            topic.name,
            len(self._stations),
            extra={"topic": topic.name, "da_module": self.module.name},
        )
        dirty.update(self._stations)

    def _station_for(self, station_id: str, now: float) -> _Station | None:
        st = self._stations.get(station_id)
        if st is not None:
            return st
        if station_id == GLOBAL_STATION or (self._owns is not None and not self._owns(station_id)):
            return None
        st = self._stations[station_id] = _Station(station_id)
        if self._globals:
            log.info(
                "new station %s given %d global values",
                station_id,
                len(self._globals),
                extra={"station_id": station_id, "da_module": self.module.name},
            )
        return st

    def _reject(self, rec: Record, reason: str, detail: str, tracked: bool, now: float) -> None:
        stats = self.stats
        stats.bad_input[reason] = stats.bad_input.get(reason, 0) + 1
        preview = (rec.value or b"")[:PREVIEW_BYTES].decode("utf-8", "replace")
        log.warning(
            "bad input on %s[%d]@%d: %s (%s); preview: %r",
            rec.topic,
            rec.partition,
            rec.offset,
            reason,
            detail,
            preview,
            extra={"topic": rec.topic, "da_module": self.module.name, "reason": reason},
        )
        ref = None
        if tracked:
            self.ledger.track(rec.tp, rec.offset)
            ref = RecordRef(rec.tp, rec.offset, 1)
        headers = (
            ("da.reason", reason.encode()),
            ("da.detail", detail.encode("utf-8", "replace")[:1000]),
            ("da.topic", rec.topic.encode()),
            ("da.partition", str(rec.partition).encode()),
            ("da.offset", str(rec.offset).encode()),
            ("da.module", self.module.name.encode()),
            ("da.timestamp", repr(rec.timestamp).encode()),
        )
        out = OutboundRecord(
            topic=self.catalog.dead_letter_topic,
            value=rec.value if rec.value is not None else b"",
            key=rec.key,
            headers=headers + rec.headers,
        )
        dl = DeadLetter(self._new_id(), rec, reason, detail, out)
        self._dead[dl.dl_id] = (dl, ref)
        self._dead_q.append(dl.dl_id)

    def _note_fields(self, topic: TopicConfig, seen: Iterable[str]) -> None:
        name = topic.name
        if name in self._field_reported:
            return
        acc = self._field_seen.setdefault(name, set())
        acc.update(seen)
        n = self._field_count[name] = self._field_count.get(name, 0) + 1
        if n >= FIELD_REPORT_AFTER:
            self._field_reported.add(name)
            never = [f for f in topic.all_fields() if f not in acc]
            if never:
                log.warning(
                    "data quality: configured fields of %s never seen in %d records: %s",
                    name,
                    n,
                    ", ".join(never),
                    extra={"topic": name, "da_module": self.module.name},
                )

    def fields_never_seen(self) -> dict[str, list[str]]:
        """Per topic with records, the configured fields that no record has carried yet."""
        return {
            name: [f for f in self._inputs[name].all_fields() if f not in seen]
            for name, seen in self._field_seen.items()
            if name in self._inputs
        }

    # ------------------------------------------------------------------ readiness and dirt

    def is_ready(self, st: _Station, now: float) -> bool:
        for dep in self._required_deps:
            if dep not in st.deps:
                return False
        if self._min_ratio is not None:
            total = len(self.module.inputs)
            have = sum(1 for t in self.module.inputs if self._has(st, t))
            return total == 0 or have / total >= self._min_ratio
        # ``all(self._has(st, t) ...)`` inlined: this runs for every dirty station of every poll
        inputs = self._inputs
        windows = st.windows
        global_windows = self._globals
        for t in self._required:
            w = global_windows.get(t) if inputs[t].is_global else windows.get(t)
            if w is None or w.is_empty():
                return False
        return True

    def _has(self, st: _Station, topic: str) -> bool:
        w = self._globals.get(topic) if self._inputs[topic].is_global else st.windows.get(topic)
        return w is not None and not w.is_empty()

    def _mark_dirty(self, station_ids: Iterable[str], now: float) -> str | None:
        joined: list[str] = []
        for sid in station_ids:
            st = self._stations.get(sid)
            if st is None or not self.is_ready(st, now):
                continue
            if st.running:
                st.rerun = True
                joined.append(sid)
            elif not st.queued:
                st.queued = True
                self._ready_q.append(sid)
                joined.append(sid)
            else:
                joined.append(sid)
        if not joined:
            return None
        batch_id = self.collector.open(joined, now)
        if batch_id is not None:
            self.stats.batches_formed += 1
        return batch_id

    # ------------------------------------------------------------------ runs

    @property
    def runnable(self) -> int:
        """Stations queued to run."""
        return len(self._ready_q)

    @property
    def running(self) -> int:
        return len(self._running_runs)

    def take_runs(self, limit: int, now: float) -> list[StationRun]:
        """Start up to ``limit`` queued stations: at most one run per station at a time."""
        runs: list[StationRun] = []
        while self._ready_q and len(runs) < limit:
            sid = self._ready_q.popleft()
            st = self._stations.get(sid)
            if st is None or not st.queued:
                continue
            st.queued = False
            st.running = True
            st.rerun = False
            refs, st.pending = st.pending, []
            batch_id = self.collector.run_started(sid, now)
            run = StationRun(self._new_id(), sid, batch_id, self._assemble(st, now), started_at=now)
            self._running_runs[run.run_id] = (run, refs)
            st.runs += 1
            st.last_run_at = now
            self.stats.runs_started += 1
            runs.append(run)
        return runs

    def _assemble(self, st: _Station, now: float) -> dict[str, Any]:
        return assemble(self.plan, st.station_id, st.windows, self._globals, st.deps, now)

    def finish_run(
        self, run: StationRun, now: float, *, result: Any = None, error: BaseException | None = None
    ) -> None:
        """Tell the engine a run ended with ``result`` (may be None) or raised ``error``."""
        entry = self._running_runs.pop(run.run_id, None)
        if entry is None:
            return
        _, refs = entry
        st = self._stations.get(run.station_id)
        if error is not None:
            etype = type(error).__name__
            self.stats.runs_failed[etype] = self.stats.runs_failed.get(etype, 0) + 1
            outcome = RunOutcome(kind="error", value=None, error_type=etype)
            if st is not None:
                st.errors += 1
                st.failures_in_row += 1
                st.last_error = f"{etype}: {error}"
                retry = self.module.trigger
                if st.failures_in_row <= retry.callback_max_retries:
                    st.pending[:0] = refs
                    heapq.heappush(
                        self._retry_heap, (now + retry.callback_retry_delay, st.station_id)
                    )
                    refs = []
                else:
                    log.error(
                        "station %s failed %d times in a row; releasing %d held records",
                        st.station_id,
                        st.failures_in_row,
                        len(refs),
                        extra={"station_id": st.station_id, "da_module": self.module.name},
                    )
                    st.failures_in_row = 0
            self.collector.run_finished(run.station_id, run.batch_id, outcome, refs, now)
        else:
            if result is None:
                self.stats.runs_none += 1
                outcome = RunOutcome(kind="none", value=None, error_type=None)
            else:
                self.stats.runs_ok += 1
                outcome = RunOutcome(kind="result", value=result, error_type=None)
            if st is not None:
                st.failures_in_row = 0
            self.collector.run_finished(run.station_id, run.batch_id, outcome, refs, now)
        if st is not None:
            st.running = False
            if st.rerun:
                st.rerun = False
                if not st.queued:
                    st.queued = True
                    self._ready_q.append(st.station_id)

    # ------------------------------------------------------------------ time

    def tick(self, now: float) -> None:
        """Advance time: complete order seconds, retries, interval runs, expiry, batches."""
        dirty: set[str] = set()
        heap = self._snapshot_heap
        while heap and heap[0][0] <= now:
            due, sid = heapq.heappop(heap)
            st = self._stations.get(sid)
            if st is None:
                continue
            if st.snap_due == due:
                st.snap_due = None
            for w in st.windows.values():
                if isinstance(w, SecondSnapshotWindow) and w.advance(now):
                    dirty.add(sid)
        rheap = self._retry_heap
        while rheap and rheap[0][0] <= now:
            _, sid = heapq.heappop(rheap)
            dirty.add(sid)
        interval = self.module.trigger.interval_seconds
        if interval is not None:
            if self._last_interval_run is None:
                self._last_interval_run = now
            elif now - self._last_interval_run >= interval:
                self._last_interval_run = now
                dirty.update(self._stations)
        if dirty:
            self._mark_dirty(dirty, now)
        if self._last_sweep is None:
            self._last_sweep = now
        elif now - self._last_sweep >= self._sweep_interval:
            self._last_sweep = now
            self.sweep(now)
        for batch in self.collector.poll(now):
            self._complete(batch, now)

    @property
    def open_batches(self) -> int:
        return len(self.collector.open_batches())

    def flush_batches(self, now: float) -> int:
        """Complete every open batch now with what it has (for stop and revoke); members
        still running are carried. Returns how many batches were completed."""
        batches = self.collector.drain(now)
        for batch in batches:
            self._complete(batch, now)
        return len(batches)

    def sweep(self, now: float) -> int:
        """Expire old entries and evict stations with nothing left; returns evictions."""
        ttl = self._expire
        ttls = self._ttls
        evicted = 0
        for sid in list(self._stations):
            st = self._stations[sid]
            for name in list(st.windows):
                w = st.windows[name]
                topic_ttl = ttls.get(name, ttl)
                if topic_ttl != math.inf:
                    w.expire(now, topic_ttl)
                if w.is_empty():
                    del st.windows[name]
            for dep in [d for d, r in st.deps.items() if r.time < now - ttl]:
                del st.deps[dep]
            if not st.windows and not st.deps and not st.running and not st.queued:
                self._evict(st)
                evicted += 1
        return evicted

    def _evict(self, st: _Station) -> None:
        self._release(st.pending, unused=True)
        st.pending = []
        del self._stations[st.station_id]
        self.stats.stations_evicted += 1

    # ------------------------------------------------------------------ batches and uploads

    def _complete(self, batch: CompletedBatch[list[RecordRef]], now: float) -> None:
        self.stats.batches_completed += 1
        if batch.timed_out:
            self.stats.batches_timed_out += 1
        refs: list[list[RecordRef]] = [a for a in batch.attachments if a]
        if not batch.uploadable:
            self.stats.batches_empty += 1
            for r in refs:
                self._release(r)
            return
        sizes = self.stats.batch_sizes
        sizes[len(batch.results)] = sizes.get(len(batch.results), 0) + 1
        upload = Upload(
            upload_id=self._new_id(),
            batch_id=batch.batch_id,
            module=self.module.name,
            results=batch.results,
            records=self._records_for(batch, now),
        )
        self._uploads[upload.upload_id] = _PendingUpload(upload, refs, now)
        self._upload_q.append(upload.upload_id)

    def _records_for(
        self, batch: CompletedBatch[list[RecordRef]], now: float
    ) -> tuple[OutboundRecord, ...]:
        topic = self.module.output
        if self.module.output_mode == "station":
            return tuple(
                OutboundRecord(
                    topic=topic,
                    key=str(r["station_id"]).encode(),
                    value=self._codec.dumps(
                        {
                            "batch_id": batch.batch_id,
                            "module": self.module.name,
                            "timestamp": now,
                            "stations_count": 1,
                            "results": [r],
                        }
                    ),
                )
                for r in batch.results
            )
        envelope = {
            "batch_id": batch.batch_id,
            "module": self.module.name,
            "timestamp": now,
            "stations_count": len(batch.results),
            "results": batch.results,
        }
        return (
            OutboundRecord(
                topic=topic, key=batch.batch_id.encode(), value=self._codec.dumps(envelope)
            ),
        )

    def take_uploads(self, now: float) -> list[Upload]:
        """Uploads to perform now (new ones and retries whose backoff has passed)."""
        out: list[Upload] = []
        keep: list[int] = []
        for uid in self._upload_q:
            p = self._uploads.get(uid)
            if p is None:
                continue
            if p.due <= now:
                out.append(p.upload)
            else:
                keep.append(uid)
        self._upload_q = keep
        return out

    def upload_done(self, upload_id: int, ok: bool, now: float, error: str | None = None) -> None:
        p = self._uploads.get(upload_id)
        if p is None:
            return
        if ok:
            del self._uploads[upload_id]
            self.stats.uploads_ok += 1
            self.upload_failing_since = None
            for r in p.attachments:
                self._release(r)
            return
        self.stats.upload_failures += 1
        self.stats.upload_retries += 1
        if self.upload_failing_since is None:
            self.upload_failing_since = now
        attempt = p.upload.attempt + 1
        delay = min(UPLOAD_BACKOFF_MAX, 0.1 * (2 ** min(attempt, 10)))
        log.error(
            "upload of batch %s failed (attempt %d): %s; retrying in %.1fs",
            p.upload.batch_id,
            attempt,
            error,
            delay,
            extra={"batch_id": p.upload.batch_id, "da_module": self.module.name},
        )
        p.upload = attrs.evolve(p.upload, attempt=attempt)
        p.due = now + delay
        self._upload_q.append(upload_id)

    @property
    def pending_uploads(self) -> int:
        return len(self._uploads)

    def take_dead_letters(self) -> list[DeadLetter]:
        out = [self._dead[i][0] for i in self._dead_q if i in self._dead]
        self._dead_q = []
        return out

    def dead_letter_done(self, dl_id: int, ok: bool, now: float) -> None:
        entry = self._dead.get(dl_id)
        if entry is None:
            return
        if ok:
            del self._dead[dl_id]
            self.stats.dead_letters += 1
            if entry[1] is not None:
                self._release([entry[1]])
        else:
            self.stats.dead_letter_failures += 1
            self._dead_q.append(dl_id)

    def _release(self, refs: Iterable[RecordRef], *, unused: bool = False) -> None:
        done = self.ledger.done
        for ref in refs:
            ref.remaining -= 1
            if ref.remaining == 0:
                done(ref.tp, ref.offset)
            if unused:
                self.stats.refs_released_unused += 1

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

    def partitions_revoked(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        """Drop the state of stations fed only by these partitions; returns the offsets that may
        be committed for them now (work still in flight is left to the next owner)."""
        gone = set(partitions)
        final = self.ledger.revoke(list(partitions))
        for sid in list(self._stations):
            st = self._stations[sid]
            if not st.partitions or not st.partitions <= gone:
                st.partitions -= gone
                continue
            st.pending = [r for r in st.pending if r.tp not in gone]
            if st.running:
                st.partitions = set()
                continue
            self._drop_station(st)
        return final

    def _drop_station(self, st: _Station) -> None:
        st.queued = False
        del self._stations[st.station_id]

    # ------------------------------------------------------------------ stations

    def add_station(self, station_id: str, now: float) -> bool:
        """Make a station known (it runs once its required topics are present)."""
        if station_id in self._stations:
            return False
        self._stations[station_id] = _Station(station_id)
        return True

    def remove_station(self, station_id: str) -> bool:
        """Forget a station and release its held records."""
        st = self._stations.get(station_id)
        if st is None:
            return False
        self._release(st.pending, unused=True)
        st.pending = []
        self._drop_station(st)
        return True

    @property
    def station_ids(self) -> list[str]:
        return list(self._stations)

    def __len__(self) -> int:
        return len(self._stations)

    def get_inputs(self, station_id: str, now: float) -> dict[str, Any] | None:
        st = self._stations.get(station_id)
        return None if st is None else self._assemble(st, now)

    def data_availability(self) -> tuple[float, dict[str, int]]:
        """The mean share of the module's input topics with data per station (1.0 with no
        stations; the ``availability_ratio`` of ``_data_quality`` before staleness) and, per
        input topic, how many stations lack it. O(stations × topics)."""
        inputs = self.module.inputs
        missing = dict.fromkeys(inputs, 0)
        if not self._stations or not inputs:
            return 1.0, missing
        total = 0.0
        for st in self._stations.values():
            have = 0
            for t in inputs:
                if self._has(st, t):
                    have += 1
                else:
                    missing[t] += 1
            total += have / len(inputs)
        return total / len(self._stations), missing

    def station_status(self, now: float) -> dict[str, dict[str, Any]]:
        return {
            sid: {
                "running": st.running,
                "queued": st.queued,
                "ready": self.is_ready(st, now),
                "runs": st.runs,
                "errors": st.errors,
                "last_run_at": st.last_run_at,
                "last_error": st.last_error,
                "topics": sorted(st.windows),
                "dependencies": sorted(st.deps),
                "held_records": len(st.pending),
            }
            for sid, st in self._stations.items()
        }

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def set_rekey_partitions(self, n: int) -> None:
        """Rekey routing: the partition count of the internal topics (set before ingesting)."""
        self.rekey_partitions = n

    def next_to_track(self, tp: TopicPartition) -> int | None:
        """``OffsetLedger.next_to_track`` of the engine's ledger."""
        return self.ledger.next_to_track(tp)


def _rewindow(old: Window, new: Window) -> Window:
    """Move an old window's items into a new window (newest entries survive a shrink)."""
    for item in old.all_items():
        new.add(item)
    return new
