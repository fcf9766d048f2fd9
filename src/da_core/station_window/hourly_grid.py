"""``HourlyGridWindow``: one item per hour slot, exactly ``size`` slots ending at the newest,
held in typed columns (``columns.Column``) rather than as the items themselves."""

from __future__ import annotations

import math
from array import array
from collections.abc import Sequence
from typing import Any

from da_core.extractors.items import NO_GUN_VALUES, StationItem
from da_core.station_window.base import SECONDS_PER_SLOT, WindowItem, _check_size
from da_core.station_window.columns import Column
from da_core.station_window.grid_run import read_run

_NAN = math.nan
_RUN_MIN = 8
"""Runs shorter than this are added item by item."""


def _without_raw(item: WindowItem) -> WindowItem:
    if type(item) is StationItem:
        return item._replace(raw=None)
    return item


class HourlyGridWindow:
    """Items keyed by hour slot: exactly ``size`` slots ending at the newest slot seen.

    Invariants: the slots held are ``newest - size + 1 .. newest``; at most one item per slot,
    the one with the greatest ``item.time`` (ties: the later arrival); an item whose slot is
    older than the window when it arrives is ignored; the newest slot only moves forward (until
    everything expires, which resets the window). An item without a ``slot`` is placed by its
    record time (``int(item.time // 3600)``).

    Storage (a 168-hour REALTIME window: about 25 KB instead of about 170 KB of items): slot
    ``s`` lives in row ``s % size`` of a ring, so advancing the newest slot moves nothing. Per
    row: whether it holds an item, the item's ``time``, ``event_time``, ``station_id`` and
    ``gun_ids``; per field of ``values`` one ``Column``; per gun field and gun id one
    ``Column``; ``device`` and ``slot_list`` only where set. An item's ``raw`` is not kept (no
    reader of a grid reads it). A row's columns are all written when an item is placed in it,
    so a column's entry counts only while its row holds an item.

    ``latest()`` is the item placed in the newest slot itself; ``items()``/``all_items()``
    rebuild the others as ``StationItem``s equal in everything the window reads (``raw`` None).
    """

    __slots__ = (
        "_cols",
        "_count",
        "_distinct_ids",
        "_etimes",
        "_extras",
        "_gcols",
        "_gun_cache",
        "_guns",
        "_last_time",
        "_latest",
        "_memo",
        "_min_time",
        "_newest",
        "_present",
        "_sids",
        "_size",
        "_times",
        "hot",
    )

    def __init__(self, size: int) -> None:
        self._size = _check_size(size)
        self._newest: int | None = None
        self._count = 0
        self._present = bytearray(size)
        self._times = array("d", bytes(8 * size))
        self._etimes = array("d", bytes(8 * size))  # NaN: no event_time
        self._sids: list[str | None] = [None] * size
        self._guns: list[tuple[str, ...]] = [()] * size
        self._extras: dict[int, tuple[str | None, tuple[Any, ...] | None]] = {}
        self._cols: dict[str, Column] = {}
        self._gcols: dict[str, dict[str, Column]] = {}
        self._latest: WindowItem | None = None  # the item placed in the newest slot
        self._distinct_ids: tuple[str, ...] = ()  # the last gun ids seen to be distinct
        self._last_time: float | None = None
        # A lower bound of the oldest item.time held (exact after expire), so that ``expire`` is
        # O(1) when nothing is old enough.
        self._min_time: float | None = None
        # The union of the gun ids of the items held, computed on demand.
        self._gun_cache: tuple[str, ...] | None = None
        # Values derived from the content by readers (see ``memo``); None after any change.
        self._memo: dict[Any, Any] | None = None
        # A readers' hint kept across changes: set by a reader that found the window read more
        # than once per content (module-input assembly then memoises value objects rather than
        # packed numbers).
        self.hot = False

    @property
    def size(self) -> int:
        return self._size

    @property
    def newest_slot(self) -> int | None:
        return self._newest

    @property
    def last_time(self) -> float | None:
        """The newest ``item.time`` held, or None when empty."""
        return self._last_time

    # ------------------------------------------------------------------ writing

    def add(self, item: WindowItem) -> None:
        slot = item.slot
        if slot is None:
            slot = int(item.time // SECONDS_PER_SLOT)
        size = self._size
        newest = self._newest
        if newest is None:
            newest = self._newest = slot
        elif slot > newest:
            self._advance(slot - newest)
            newest = self._newest = slot
        if slot <= newest - size:
            return  # older than the window
        row = slot % size
        t = item.time
        present = self._present
        old_guns: tuple[str, ...] | None = None
        if present[row]:
            if t < self._times[row]:
                return  # the slot already holds a newer item
            old_guns = self._guns[row]
        else:
            present[row] = 1
            self._count += 1
        self._memo = None
        self._times[row] = t
        et = item.event_time
        self._etimes[row] = _NAN if et is None else et
        self._sids[row] = item.station_id
        ids = item.gun_ids
        self._guns[row] = ids
        device = item.device
        slot_list = item.slot_list
        if device is not None or slot_list is not None:
            self._extras[row] = (device, slot_list)
        elif self._extras:
            self._extras.pop(row, None)
        self._put_values(row, item.values)
        self._put_guns(row, ids, item.gun_values)
        if slot == newest:
            self._latest = item
        if self._last_time is None or t > self._last_time:
            self._last_time = t
        if self._min_time is None or t < self._min_time:
            self._min_time = t
        union = self._gun_cache
        if union is not None and not (ids == union and (old_guns is None or old_guns == union)):
            self._gun_cache = None

    def add_items(self, items: Sequence[WindowItem], lean: bool = False) -> None:
        """``add`` each of ``items`` in order. ``lean``: the newest slot's item is kept without
        its ``raw`` (a copy). A run of new consecutive slots with the same fields and guns (a
        168-hour history message) is written column by column (``_add_run``)."""
        if len(items) < _RUN_MIN or not self._add_run(items):
            add = self.add
            for item in items:
                add(item)
        latest = self._latest
        if lean and latest is not None and latest.raw is not None:
            self._latest = _without_raw(latest)

    def _add_run(self, items: Sequence[WindowItem]) -> bool:
        """Write ``items`` column by column if they are a run (``grid_run.read_run``) newer
        than the newest slot: the effect of adding them one by one. False (nothing done)
        otherwise."""
        newest = self._newest
        first = items[0].slot
        if first is None or (newest is not None and first <= newest):
            return False  # not a run of new hours (checked before the run is laid out)
        run = read_run(items, self._size)
        if run is None:
            return False
        size = self._size
        last_slot = run.first_slot + len(items) - 1
        if newest is None:
            self._newest = last_slot
        else:
            self._advance(last_slot - newest)
            self._newest = last_slot
        self._memo = None
        m = len(run.times)
        ids = run.gun_ids
        start = (last_slot - m + 1) % size
        segments = [(start, min(size, start + m))]
        if start + m > size:
            segments.append((0, start + m - size))
        cols = self._cols
        gcols = self._gcols
        offset = 0
        for a, b in segments:
            k = b - a
            part = slice(offset, offset + k)
            offset += k
            self._present[a:b] = bytes([1]) * k
            self._times[a:b] = array("d", run.times[part])
            self._etimes[a:b] = array("d", run.event_times[part])
            self._sids[a:b] = run.station_ids[part]
            self._guns[a:b] = [ids] * k
            if self._extras:
                for row in range(a, b):
                    self._extras.pop(row, None)
            for f, vals in run.values.items():
                col = cols.get(f)
                if col is None:
                    col = cols[f] = Column(size)
                col.put_run(a, vals[part])
            for f, col in cols.items():
                if f not in run.values:
                    col.clear_run(a, b)
            for f, per_gun in run.gun_values.items():
                for col, gvals in zip(self._gun_columns(f, ids), per_gun, strict=True):
                    col.put_run(a, gvals[part])
            for f, by_gun in gcols.items():
                written = f in run.gun_values
                for gun, col in by_gun.items():
                    if not written or gun not in ids:
                        col.clear_run(a, b)
        self._count += m
        self._latest = items[-1]
        union = self._gun_cache
        if union is not None and ids != union:
            self._gun_cache = None
        self._recompute_times()
        return True

    def _put_values(self, row: int, values: Any) -> None:
        cols = self._cols
        if cols.keys() != values.keys():
            for f in values:
                if f not in cols:
                    cols[f] = Column(self._size)
            for f, col in cols.items():
                if f not in values:
                    col.clear(row)
        for f, v in values.items():
            cols[f].put(row, v)

    def _put_guns(self, row: int, ids: tuple[str, ...], rows: Any) -> None:
        """Each gun field's values by gun id; a field whose length is not ``len(ids)`` counts as
        missing in this row (as ``StationItem`` promises, they are that long)."""
        gcols = self._gcols
        n = len(ids)
        distinct = ids is self._distinct_ids or len(set(ids)) == n
        if distinct:
            self._distinct_ids = ids  # extractors share one tuple across a record's rows
        for f, vals in rows.items():
            if n and len(vals) == n:
                for col, v in zip(self._gun_columns(f, ids), vals, strict=True):
                    col.put(row, v)
        # Clear what this row does not hold: guns it lacks, fields it lacks or has at another
        # length. In the steady case (the same guns and fields as every column) nothing is.
        for f, by_gun in gcols.items():
            vals = rows.get(f)
            if vals is not None and n and len(vals) == n:
                if distinct and len(by_gun) == n:
                    continue  # every column of f was just written
                for g, col in by_gun.items():
                    if g not in ids:
                        col.clear(row)
            else:
                for col in by_gun.values():
                    col.clear(row)

    def _gun_columns(self, field: str, ids: tuple[str, ...]) -> list[Column]:
        """The columns of gun field ``field`` for each of ``ids``, made on first use."""
        by_gun = self._gcols.get(field)
        if by_gun is None:
            by_gun = self._gcols[field] = {}
        cols = []
        for g in ids:
            col = by_gun.get(g)
            if col is None:
                col = by_gun[g] = Column(self._size)
            cols.append(col)
        return cols

    def _advance(self, k: int) -> None:
        """Move the window k slots forward, dropping the k oldest slots."""
        self._memo = None
        self._latest = None
        size = self._size
        if k >= size:
            if self._count:
                self._present = bytearray(size)
                self._cols = {}
                self._gcols = {}
                self._extras = {}
                self._count = 0
                self._gun_cache = None
                self._last_time = self._min_time = None
            return
        newest = self._newest
        assert newest is not None
        present = self._present
        last = self._last_time
        recompute = False
        for slot in range(newest + 1, newest + k + 1):
            row = slot % size
            if present[row]:
                self._drop(row)
                if last is not None and self._times[row] >= last:
                    recompute = True
        # _min_time may stay a lower bound; _last_time must stay exact.
        if recompute:
            self._recompute_times()

    def _drop(self, row: int) -> None:
        """The row holds no item any more; objects its columns held are let go."""
        self._present[row] = 0
        self._count -= 1
        self._gun_cache = None
        for col in self._cols.values():
            if col.objs and row in col.objs:
                col.clear(row)
        for by_gun in self._gcols.values():
            for col in by_gun.values():
                if col.objs and row in col.objs:
                    col.clear(row)
        if self._extras:
            self._extras.pop(row, None)

    def _recompute_times(self) -> None:
        times = [t for t, p in zip(self._times, self._present, strict=True) if p]
        self._last_time = max(times) if times else None
        self._min_time = min(times) if times else None

    def expire(self, now: float, ttl: float) -> None:
        cutoff = now - ttl
        if self._min_time is None or self._min_time >= cutoff:
            return
        present = self._present
        times = self._times
        for row in range(self._size):
            if present[row] and times[row] < cutoff:
                self._drop(row)
        self._memo = None
        newest = self._newest
        if newest is not None and not present[newest % self._size]:
            self._latest = None
        self._recompute_times()
        if not self._count:
            self._newest = None  # nothing left: the next item starts a fresh grid

    # ------------------------------------------------------------------ reading

    def is_empty(self) -> bool:
        return not self._count

    def held(self) -> int:
        """Number of slots holding an item (never more than ``size``)."""
        return self._count

    def memo(self) -> dict[Any, Any]:
        """A scratch dict where readers keep values derived from the window's current content
        (module-input assembly keeps its gap-filled series there); emptied by every change of
        the content (``add`` placing an item, ``expire`` dropping one). A grid changes hourly
        while the modules reading it may run every second."""
        memo = self._memo
        if memo is None:
            memo = self._memo = {}
        return memo

    def slots(self) -> list[int]:
        """The ``size`` slots of the window, oldest first, ending at the newest slot seen
        (empty before the first item)."""
        newest = self._newest
        if newest is None:
            return []
        return list(range(newest - self._size + 1, newest + 1))

    def _start(self) -> int:
        """The ring row of the oldest slot."""
        newest = self._newest
        return 0 if newest is None else (newest + 1) % self._size

    def series(self, field: str) -> list[Any | None]:
        """``values[field]`` per slot, oldest first, exactly ``size`` long, None in gaps."""
        col = self._cols.get(field)
        if col is None:
            return [None] * self._size
        return col.read(self._start(), self._present)

    def latest(self) -> WindowItem | None:
        """The item of the newest slot (None when that slot is a gap or the window is empty)."""
        return self._latest

    def items(self) -> list[WindowItem | None]:
        """The item per slot, oldest first, exactly ``size`` long, None in gaps (see the class
        docstring: rebuilt, but for the newest)."""
        size = self._size
        newest = self._newest
        if newest is None:
            return [None] * size
        out: list[WindowItem | None] = []
        for slot in range(newest - size + 1, newest + 1):
            row = slot % size
            if not self._present[row]:
                out.append(None)
            elif slot == newest and self._latest is not None:
                out.append(self._latest)
            else:
                out.append(self._rebuild(row, slot))
        return out

    def all_items(self) -> list[WindowItem]:
        """Every item held, oldest slot first (adding them to a new window rebuilds it)."""
        return [it for it in self.items() if it is not None]

    def _rebuild(self, row: int, slot: int) -> StationItem:
        values = {f: col.get(row) for f, col in self._cols.items() if col.has(row)}
        ids = self._guns[row]
        gun_values: dict[str, tuple[Any, ...]] = NO_GUN_VALUES
        if ids:
            gun_values = {}
            for f, by_gun in self._gcols.items():
                cols = [by_gun.get(g) for g in ids]
                if all(c is not None and c.has(row) for c in cols):
                    gun_values[f] = tuple(c.get(row) for c in cols if c is not None)
        et = self._etimes[row]
        device, slot_list = self._extras.get(row, (None, None))
        sid = self._sids[row]
        assert sid is not None
        return StationItem(
            sid,
            self._times[row],
            values,
            None,
            None if et != et else et,
            slot,
            device,
            ids,
            gun_values,
            slot_list,
        )

    def _gun_union(self) -> tuple[str, ...]:
        union = self._gun_cache
        if union is not None:
            return union
        found: list[str] = []
        seen: set[str] = set()
        prev: tuple[str, ...] = ()
        present = self._present
        guns = self._guns
        newest = self._newest
        size = self._size
        if newest is not None:
            for slot in range(newest - size + 1, newest + 1):
                row = slot % size
                if not present[row]:
                    continue
                ids = guns[row]
                if ids == prev:
                    continue
                prev = ids
                for g in ids:
                    if g not in seen:
                        seen.add(g)
                        found.append(g)
        # Columns of guns no row holds any more hold nothing: free them.
        for by_gun in self._gcols.values():
            for g in [g for g in by_gun if g not in seen]:
                del by_gun[g]
        union = self._gun_cache = tuple(found)
        return union

    def gun_ids(self) -> list[str]:
        """The union of the gun ids of the items held, in first-seen order by slot."""
        return list(self._gun_union())

    def gun_series(self, field: str) -> list[list[Any | None]]:
        """One ``size``-long list per gun of ``gun_ids()`` (same order): the gun's value of
        ``gun_values[field]`` per slot, None where the slot, the field or the gun is missing."""
        union = self._gun_union()
        if not union:
            return []
        by_gun = self._gcols.get(field, {})
        start = self._start()
        present = self._present
        size = self._size
        out: list[list[Any | None]] = []
        for g in union:
            col = by_gun.get(g)
            out.append([None] * size if col is None else col.read(start, present))
        return out
