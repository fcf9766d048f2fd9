"""The station store: per-station data (windows, latest dependency results) and global values.

This is the data half of the station table, free of any module's scheduling: it knows what
each station holds and when its order-second snapshots fall due, not whether a module runs
it. A later engine serving several modules can share one store (see ``table.StationTable``
for the per-module half).

Invariants:
* ``stations[sid].station_id == sid``; a station is in ``stations`` from its first item (or
  ``add_station``) until it is evicted, removed or revoked.
* ``StationData.snap_due`` is the newest deadline pushed on the snapshot heap for that station
  and not popped yet: adding to an order second that already has one pushes nothing.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from operator import itemgetter
from typing import Any

from da_core.config import TopicConfig
from da_core.extractors import StationItem
from da_core.module_input import DependencyResult
from da_core.station_window import HourlyGridWindow, SecondSnapshotWindow, Window, make_window
from da_core.types import TopicPartition

station_of = itemgetter(0)
"""``StationItem.station_id``, for grouping a record's items by station (``groupby``)."""


class StationData:
    """What one station holds: windows by topic, dependency results by module, and the
    partitions its records came from (for revoke)."""

    __slots__ = ("deps", "partitions", "snap_due", "station_id", "windows")

    def __init__(self, station_id: str) -> None:
        self.station_id = station_id
        self.windows: dict[str, Window] = {}
        self.deps: dict[str, DependencyResult] = {}
        self.partitions: set[TopicPartition] = set()
        self.snap_due: float | None = None


class StationStore:
    """Every station's data plus the global windows; see the module docstring."""

    def __init__(self) -> None:
        self.stations: dict[str, StationData] = {}
        self.globals: dict[str, Window] = {}
        """Global topic name -> its one window, shared by every station."""
        self.snapshot_heap: list[tuple[float, str]] = []
        """(deadline, station id): when a station's order-second window completes a second."""

    def create(self, station_id: str) -> StationData:
        st = self.stations[station_id] = StationData(station_id)
        return st

    def drop(self, station_id: str) -> None:
        del self.stations[station_id]

    # ------------------------------------------------------------------ writing

    def add_items(self, st: StationData, topic: TopicConfig, items: Sequence[StationItem]) -> None:
        """Add ``items`` (a run of one record's items of ``st``, in order) to ``st``'s window of
        ``topic`` (made on first use): the only way items enter a station window.

        An hourly grid takes the run whole (a history message is written column by column) and
        keeps no ``raw`` (none of its readers reads it: the decoded tree would be five
        GC-tracked containers per hourly row of REALTIME). An order-second window checks its
        deadline after every item."""
        windows = st.windows
        w = windows.get(topic.name)
        if w is None:
            w = windows[topic.name] = make_window(topic)
        if isinstance(w, HourlyGridWindow):
            w.add_items(items, lean=True)
        elif isinstance(w, SecondSnapshotWindow):
            for item in items:
                w.add(item)
                deadline = w.deadline()
                if deadline is not None and deadline != st.snap_due:
                    st.snap_due = deadline
                    heapq.heappush(self.snapshot_heap, (deadline, st.station_id))
        else:
            for item in items:
                w.add(item)

    def set_dependency(
        self, st: StationData, dep: str, values: Mapping[str, Any], time: float
    ) -> None:
        """Keep the newest result of dependency module ``dep`` (an older one is ignored)."""
        prev = st.deps.get(dep)
        if prev is None or prev.time <= time:
            st.deps[dep] = DependencyResult(dep, values, time)

    def apply_global(self, topic: TopicConfig, items: Sequence[StationItem]) -> None:
        w = self.globals.get(topic.name)
        if w is None:
            w = self.globals[topic.name] = make_window(topic)
        for item in items:
            w.add(item)

    # ------------------------------------------------------------------ time

    def due_snapshots(self, now: float, dirty: set[str]) -> None:
        """Complete the order seconds due by ``now``; stations whose window changed are added
        to ``dirty``."""
        heap = self.snapshot_heap
        stations = self.stations
        while heap and heap[0][0] <= now:
            due, sid = heapq.heappop(heap)
            st = stations.get(sid)
            if st is None:
                continue
            if st.snap_due == due:
                st.snap_due = None
            for w in st.windows.values():
                if isinstance(w, SecondSnapshotWindow) and w.advance(now):
                    dirty.add(sid)

    def expire(self, st: StationData, now: float, ttl: float, ttls: Mapping[str, float]) -> bool:
        """Drop ``st``'s entries older than their topic's TTL (``ttls``, else ``ttl``) and its
        dependency results older than ``ttl`` (seconds); True if nothing is left."""
        for name in list(st.windows):
            w = st.windows[name]
            topic_ttl = ttls.get(name, ttl)
            if topic_ttl != math.inf:
                w.expire(now, topic_ttl)
            if w.is_empty():
                del st.windows[name]
        for dep in [d for d, r in st.deps.items() if r.time < now - ttl]:
            del st.deps[dep]
        return not st.windows and not st.deps

    # ------------------------------------------------------------------ configuration

    def rewindow(self, topic: TopicConfig) -> None:
        """Give every window of ``topic`` its new kind/size, keeping the newest entries."""
        name = topic.name
        for st in self.stations.values():
            w = st.windows.get(name)
            if w is not None:
                st.windows[name] = _rewindow(w, make_window(topic))
        gw = self.globals.get(name)
        if gw is not None:
            self.globals[name] = _rewindow(gw, make_window(topic))

    def retain(self, topics: Collection[str], dependencies: Iterable[str]) -> None:
        """Drop the windows of topics and the results of dependencies no longer read."""
        deps = set(dependencies)
        for st in self.stations.values():
            for name in [n for n in st.windows if n not in topics]:
                del st.windows[name]
            for dep in [d for d in st.deps if d not in deps]:
                del st.deps[dep]


def _rewindow(old: Window, new: Window) -> Window:
    """Move an old window's items into a new window (newest entries survive a shrink)."""
    for item in old.all_items():
        new.add(item)
    return new
