"""The station table: one module's scheduling state over a ``StationStore``.

Per station the table keeps a ``RunState`` (held record references, queued/running/rerun,
run and error counts) apart from the station's data (``stations.StationData``), so that a
later engine serving several modules can give each module its own table over one shared
store. Today the engine has one module and the table creates and drops stations in the store
itself: ``states`` and ``store.stations`` have the same keys.

Scheduling invariants:
* a station is in ``ready_q`` at most once while ``queued``; ``queued`` and ``running`` may
  both hold (made dirty while running: it runs again once the current run ends); ``rerun``
  marks a running station made dirty again before it was queued;
* at most one run per station at a time;
* ``pending`` holds the references of records applied since the station's last run start;
  they are handed to that run (and released when its batch is uploaded), released at once
  when the station is not ready (``mark_dirty``), or released unused when the station goes
  (expiry, removal, revoke keeps only other partitions').
"""

from __future__ import annotations

import heapq
import logging
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from da_core.config import ModuleConfig, TopicConfig
from da_core.engine.items import EngineStats, RecordRef, release
from da_core.engine.stations import StationData, StationStore
from da_core.offset_ledger import OffsetLedger
from da_core.types import GLOBAL_STATION, TopicPartition

log = logging.getLogger("da_core.engine")


class RunState:
    """One module's scheduling state of one station."""

    __slots__ = (
        "errors",
        "failures_in_row",
        "last_error",
        "last_run_at",
        "pending",
        "queued",
        "rerun",
        "running",
        "runs",
    )

    def __init__(self) -> None:
        self.pending: list[RecordRef] = []
        self.queued = False
        self.running = False
        self.rerun = False
        self.runs = 0
        self.errors = 0
        self.failures_in_row = 0
        self.last_run_at: float | None = None
        self.last_error: str | None = None


class StationTable:
    """Stations of one module: readiness, ready queue, retry and interval schedules, sweep,
    revoke, add/remove and the status views. See the module docstring for the invariants."""

    def __init__(
        self,
        store: StationStore,
        ledger: OffsetLedger,
        stats: EngineStats,
        owns_station: Callable[[str], bool] | None = None,
    ) -> None:
        self.store = store
        self.states: dict[str, RunState] = {}
        self.ready_q: deque[str] = deque()
        self._retry_heap: list[tuple[float, str]] = []  # (due, station id) after a failed run
        # (due, station id): queued stations whose last run started under ``_min_gap`` ago
        self._throttle_heap: list[tuple[float, str]] = []
        self._min_gap = 0.0
        self._last_interval_run: float | None = None
        self._ledger = ledger
        self._stats = stats
        self._owns = owns_station
        self._module = ""
        self._inputs: tuple[str, ...] = ()
        self._global: frozenset[str] = frozenset()
        self._required: tuple[str, ...] = ()
        self._min_ratio: float | None = None
        self._required_deps: tuple[str, ...] = ()

    def configure(self, module: ModuleConfig, inputs: Mapping[str, TopicConfig]) -> None:
        """Take the module's readiness rules (``inputs``: its input topics by name)."""
        self._module = module.name
        self._min_gap = module.trigger.min_run_interval
        self._inputs = tuple(module.inputs)
        self._global = frozenset(t for t, c in inputs.items() if c.is_global)
        r = module.readiness
        # the default: every input a station must have (not global, not optional)
        default = tuple(
            t for t in module.inputs if t not in self._global and not inputs[t].optional
        )
        required = r.required_topics if r.required_topics is not None else default
        self._required = () if r.min_ratio is not None else tuple(required)
        self._min_ratio = r.min_ratio
        self._required_deps = tuple(r.required_dependencies)

    # ------------------------------------------------------------------ membership

    def station_for(self, station_id: str) -> StationData | None:
        """The station's data, made on its first item unless it is the global pseudo-station
        or another instance owns it (``owns_station``)."""
        st = self.store.stations.get(station_id)
        if st is not None:
            return st
        if station_id == GLOBAL_STATION or (self._owns is not None and not self._owns(station_id)):
            return None
        st = self._create(station_id)
        if self.store.globals:
            log.info(
                "new station %r given %d global values",
                station_id,
                len(self.store.globals),
                extra={"event": "station_new", "station_id": station_id, "da_module": self._module},
            )
        return st

    def _create(self, station_id: str) -> StationData:
        self.states[station_id] = RunState()
        return self.store.create(station_id)

    def _drop(self, station_id: str) -> None:
        self.states.pop(station_id).queued = False
        self.store.drop(station_id)

    def add(self, station_id: str) -> bool:
        if station_id in self.states:
            return False
        self._create(station_id)
        return True

    def remove(self, station_id: str) -> bool:
        """Forget a station and release its held records."""
        rs = self.states.get(station_id)
        if rs is None:
            return False
        release(rs.pending, self._ledger, self._stats, unused=True)
        rs.pending = []
        self._drop(station_id)
        return True

    def hold(self, tp: TopicPartition, offset: int, station_ids: Iterable[str]) -> None:
        """Make every known station of ``station_ids`` hold one record (none: done at once)."""
        states = self.states
        holders = [states[s] for s in station_ids if s in states]
        if not holders:
            self._ledger.done(tp, offset)
            return
        ref = RecordRef(tp, offset, len(holders))
        for rs in holders:
            rs.pending.append(ref)

    # ------------------------------------------------------------------ readiness and dirt

    def has(self, st: StationData, topic: str) -> bool:
        w = self.store.globals.get(topic) if topic in self._global else st.windows.get(topic)
        return w is not None and not w.is_empty()

    def is_ready(self, st: StationData) -> bool:
        for dep in self._required_deps:
            if dep not in st.deps:
                return False
        if self._min_ratio is not None:
            total = len(self._inputs)
            have = sum(1 for t in self._inputs if self.has(st, t))
            return total == 0 or have / total >= self._min_ratio
        # ``all(self.has(st, t) ...)`` inlined: this runs for every dirty station of every poll
        is_global = self._global
        windows = st.windows
        global_windows = self.store.globals
        for t in self._required:
            w = global_windows.get(t) if t in is_global else windows.get(t)
            if w is None or w.is_empty():
                return False
        return True

    def mark_dirty(self, station_ids: Iterable[str]) -> list[str]:
        """Queue the ready ones of ``station_ids`` (a running one reruns after its run);
        returns the ready ones, which join the batch being formed.

        A station that is not ready releases the records it holds at once (unless a run of
        it is queued, which takes them): they only updated its windows, which are restored
        from the log after a restart (``da_core.engine.restore``), so holding them until the
        station runs would stop its partitions' commits for as long as it is not ready
        (for ever for a station that lacks a required topic)."""
        joined: list[str] = []
        stations = self.store.stations
        states = self.states
        for sid in station_ids:
            st = stations.get(sid)
            if st is None:
                continue
            rs = states[sid]
            if not self.is_ready(st):
                if rs.pending and not rs.queued:
                    self._stats.refs_released_unready += len(rs.pending)
                    release(rs.pending, self._ledger, self._stats)
                    rs.pending = []
                continue
            if rs.running:
                rs.rerun = True
            elif not rs.queued:
                rs.queued = True
                self.ready_q.append(sid)
            joined.append(sid)
        return joined

    def due(self, now: float, interval: float | None) -> set[str]:
        """Stations to mark dirty at ``now``: completed order seconds, due retries, and every
        station when the module's ``interval`` (seconds, or None) has passed."""
        dirty: set[str] = set()
        self.store.due_snapshots(now, dirty)
        rheap = self._retry_heap
        while rheap and rheap[0][0] <= now:
            dirty.add(heapq.heappop(rheap)[1])
        theap = self._throttle_heap
        while theap and theap[0][0] <= now:
            sid = heapq.heappop(theap)[1]
            rs = self.states.get(sid)
            if rs is not None and rs.queued:  # still queued (not dropped): its turn has come
                self.ready_q.append(sid)
        if interval is not None:
            if self._last_interval_run is None:
                self._last_interval_run = now
            elif now - self._last_interval_run >= interval:
                self._last_interval_run = now
                dirty.update(self.states)
        return dirty

    # ------------------------------------------------------------------ runs

    def start(self, limit: int, now: float) -> list[tuple[StationData, list[RecordRef]]]:
        """Start up to ``limit`` queued stations; each comes with the references it consumes.
        A station whose last run started less than the module's ``min_run_interval`` ago is
        set aside, still queued, until ``due`` finds the interval passed."""
        out: list[tuple[StationData, list[RecordRef]]] = []
        stations = self.store.stations
        gap = self._min_gap
        while self.ready_q and len(out) < limit:
            sid = self.ready_q.popleft()
            rs = self.states.get(sid)
            if rs is None or not rs.queued:
                continue
            last = rs.last_run_at
            if gap > 0.0 and last is not None and now - last < gap:
                # ran less than ``gap`` ago: stays queued (its updates coalesce), back in the
                # ready queue when the gap has passed (``due``)
                heapq.heappush(self._throttle_heap, (last + gap, sid))
                continue
            rs.queued = False
            rs.running = True
            rs.rerun = False
            refs, rs.pending = rs.pending, []
            rs.runs += 1
            rs.last_run_at = now
            out.append((stations[sid], refs))
        return out

    def run_failed(
        self, station_id: str, error: str, refs: list[RecordRef], now: float, module: ModuleConfig
    ) -> list[RecordRef]:
        """Count a failed run; within ``callback_max_retries`` failures in a row its records
        are held again and the station retried after ``callback_retry_delay`` seconds.
        Returns the references the batch keeps (none when held for the retry)."""
        rs = self.states.get(station_id)
        if rs is None:
            return refs
        rs.errors += 1
        rs.failures_in_row += 1
        rs.last_error = error
        retry = module.trigger
        if rs.failures_in_row <= retry.callback_max_retries:
            rs.pending[:0] = refs
            heapq.heappush(self._retry_heap, (now + retry.callback_retry_delay, station_id))
            return []
        log.error(
            "station %r failed %d times in a row; releasing %d held records",
            station_id,
            rs.failures_in_row,
            len(refs),
            extra={"event": "station_failing", "station_id": station_id, "da_module": module.name},
        )
        rs.failures_in_row = 0
        return refs

    def run_ended(self, station_id: str, *, ok: bool) -> None:
        """The station's run is over; a station made dirty meanwhile is queued again."""
        rs = self.states.get(station_id)
        if rs is None:
            return
        if ok:
            rs.failures_in_row = 0
        rs.running = False
        if rs.rerun:
            rs.rerun = False
            if not rs.queued:
                rs.queued = True
                self.ready_q.append(station_id)

    # ------------------------------------------------------------------ expiry and revoke

    def sweep(self, now: float, ttl: float, ttls: Mapping[str, float]) -> int:
        """Expire old entries and evict stations with nothing left; returns evictions."""
        evicted = 0
        store = self.store
        for sid in list(store.stations):
            empty = store.expire(store.stations[sid], now, ttl, ttls)
            rs = self.states[sid]
            if empty and not rs.running and not rs.queued:
                release(rs.pending, self._ledger, self._stats, unused=True)
                rs.pending = []
                self._drop(sid)
                self._stats.stations_evicted += 1
                evicted += 1
        return evicted

    def revoke(self, gone: set[TopicPartition]) -> None:
        """Drop the stations fed only by ``gone`` partitions (a running one is kept until its
        run ends, with no partitions); others forget those partitions. Their references are
        dropped without release: the ledger already forgot the partitions."""
        for sid in list(self.store.stations):
            st = self.store.stations[sid]
            if not st.partitions or not st.partitions <= gone:
                st.partitions -= gone
                continue
            rs = self.states[sid]
            rs.pending = [r for r in rs.pending if r.tp not in gone]
            if rs.running:
                st.partitions = set()
                continue
            self._drop(sid)

    # ------------------------------------------------------------------ views

    @property
    def runnable(self) -> int:
        return len(self.ready_q)

    @property
    def throttled(self) -> int:
        """Queued stations waiting for their ``min_run_interval`` to pass."""
        return len(self._throttle_heap)

    def data_availability(self) -> tuple[float, dict[str, int]]:
        """See ``Engine.data_availability``."""
        inputs = self._inputs
        missing = dict.fromkeys(inputs, 0)
        stations = self.store.stations
        if not stations or not inputs:
            return 1.0, missing
        total = 0.0
        for st in stations.values():
            have = 0
            for t in inputs:
                if self.has(st, t):
                    have += 1
                else:
                    missing[t] += 1
            total += have / len(inputs)
        return total / len(stations), missing

    def station_status(
        self, offset: int = 0, limit: int | None = None
    ) -> dict[str, dict[str, Any]]:
        """Per station: running, queued, ready, runs, errors... All stations, or the page of
        ``limit`` stations from ``offset`` in id order (O(n log n) for the sort, but only the
        page is built)."""
        stations = self.store.stations
        if limit is None and offset == 0:
            ids: Iterable[str] = list(stations)
        else:
            ordered = sorted(stations)
            ids = ordered[offset : None if limit is None else offset + limit]
        out: dict[str, dict[str, Any]] = {}
        for sid in ids:
            st = stations[sid]
            rs = self.states[sid]
            out[sid] = {
                "running": rs.running,
                "queued": rs.queued,
                "ready": self.is_ready(st),
                "runs": rs.runs,
                "errors": rs.errors,
                "last_run_at": rs.last_run_at,
                "last_error": rs.last_error,
                "topics": sorted(st.windows),
                "dependencies": sorted(st.deps),
                "held_records": len(rs.pending),
            }
        return out
