"""Restore: replayed records applied to station windows without running anything.

After a restart or a new assignment the loop replays each owned partition from a look-back
before the group's committed offset up to (excluding) that offset (``da_core.restore_plan``),
and hands the records to ``Engine.restore``. They are applied exactly as ``Engine.ingest``
applies records (same extractors through ``Intake.route``, same windows through
``StationStore.add_items``, same dependency-result rule through ``set_dependency``), except:

* nothing is tracked in the offset ledger: the records are below the committed offset, which
  is where live consumption starts, so no record is both replayed and consumed live;
* no station is made dirty: restored data runs nothing by itself (no result for restored
  data); the stations it touched are *restoring* until ``Engine.finish_restore``;
* a bad record is skipped and counted (``EngineStats.restore_skipped``), never dead-lettered
  again (it was, when first consumed);
* a source record of rekey routing is skipped, never split: its shares are on the internal
  topics, which are what the group owner restores.

Order-second windows: seconds that are already complete by ``now`` are completed silently
(``advance(now)`` without dirt), so the restored window shows the same completed seconds a
never-restarted instance would.

Invariant: a station touched by restore keeps the partition it came from in
``StationData.partitions``, so a later revoke of that partition drops it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from itertools import groupby

from da_core.engine.caches import EngineCaches
from da_core.engine.intake import Intake
from da_core.engine.items import EngineStats
from da_core.engine.stations import StationData, StationStore, station_of
from da_core.engine.table import StationTable
from da_core.extractors import extract
from da_core.ports import JsonCodec
from da_core.station_window import SecondSnapshotWindow
from da_core.types import Record

log = logging.getLogger("da_core.engine")


class Restorer:
    """Applies replayed records; keeps the set of stations restoring (see the module
    docstring). ``restoring`` and ``dirty_meanwhile`` are read by ``Engine._mark_dirty``."""

    def __init__(
        self,
        intake: Intake,
        table: StationTable,
        store: StationStore,
        stats: EngineStats,
        caches: EngineCaches,
        codec: JsonCodec,
    ) -> None:
        self._intake = intake
        self._table = table
        self._store = store
        self._stats = stats
        self._caches = caches
        self._codec = codec
        self.restoring: set[str] = set()
        """Stations touched by restore since the last ``finish``: they run nothing yet."""
        self.dirty_meanwhile: set[str] = set()
        """Restoring stations that live records made dirty: marked dirty at ``finish``."""

    def apply(self, records: Sequence[Record], now: float) -> int:
        """Apply ``records`` (replayed, see the module docstring); returns how many were
        applied (the others are counted in ``restore_skipped``)."""
        stats = self._stats
        store = self._store
        station_for = self._table.station_for
        stations = store.stations
        route = self._intake.route
        admissible = self._intake.admissible
        refusal = self._intake.refusal
        codec = self._codec
        plans = self._caches.plans
        tp_of = self._caches.tp_of
        touched: dict[str, StationData] = {}
        applied = 0
        for rec in records:
            found = route(rec.topic)
            if found is None:
                stats.restore_skipped += 1
                continue
            topic, dep = found
            ex = extract(topic, rec, codec, plans)
            items = None if ex.rejection is not None else admissible(rec, ex.items, now)
            if items is None:  # rejected live too (dead-lettered then): never applied
                stats.restore_skipped += 1
                continue
            applied += 1
            if topic.is_global:
                store.apply_global(topic, items)
                log.info(
                    "global data cached (restored): topic %s, applied to %d existing stations",
                    topic.name,
                    len(stations),
                    extra={"event": "global_cached", "topic": topic.name},
                )
                continue
            tp = tp_of(rec)
            for sid, group in groupby(items, station_of):
                run = list(group)  # one station's items, as intake applies them
                st = stations.get(sid)
                if st is None:
                    if refusal(sid, len(stations)) is not None:
                        continue  # max_stations / allow-list: refused live too
                    st = station_for(sid)
                    if st is None:
                        continue
                if dep is not None:
                    for item in run:
                        store.set_dependency(st, dep, item.values, item.time)
                else:
                    store.add_items(st, topic, run)
                st.partitions.add(tp)
                touched[st.station_id] = st
        stats.records_restored += applied
        self.restoring.update(touched)
        for st in touched.values():
            for w in st.windows.values():
                if isinstance(w, SecondSnapshotWindow):
                    w.advance(now)  # seconds complete by now: completed silently
        return applied

    def finish(self) -> set[str]:
        """The restore ended: the restoring stations go live; returns those that live records
        made dirty meanwhile (the caller marks them dirty now)."""
        dirty = self.dirty_meanwhile & set(self._store.stations)
        self.restoring = set()
        self.dirty_meanwhile = set()
        return dirty

    def forget_missing(self) -> None:
        """Drop stations that no longer exist (revoked, evicted) from the restoring sets."""
        alive = self._store.stations
        self.restoring = {s for s in self.restoring if s in alive}
        self.dirty_meanwhile = {s for s in self.dirty_meanwhile if s in alive}
