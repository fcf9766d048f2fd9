"""``ReferenceGrid``: the hourly grid as it was before it went columnar (items kept as they are,
three lists shifted per slot), kept as the oracle of the differential tests of
``da_core.station_window.HourlyGridWindow`` (``test_hourly_grid_columns.py``). Not production
code: nothing under ``src/`` imports it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from itertools import repeat
from typing import Any, Generic

from da_core.station_window.base import SECONDS_PER_SLOT, ItemT, WindowItem, _check_size

_NO_VALUES: dict[str, Any] = {}
_dict_get: Callable[..., Any] = dict.get


def _as_dict(mapping: Mapping[str, Any]) -> dict[str, Any]:
    return mapping if type(mapping) is dict else dict(mapping)


def _gun_rows(item: WindowItem) -> dict[str, tuple[Any, ...]]:
    n = len(item.gun_ids)
    rows = item.gun_values
    if not n or not rows:
        return _NO_VALUES
    for v in rows.values():
        if len(v) != n:
            return {f: v for f, v in rows.items() if len(v) == n}
    return _as_dict(rows)


class ReferenceGrid(Generic[ItemT]):
    """Items keyed by hour slot: exactly ``size`` slots ending at the newest slot seen.

    Invariants: the slots held are ``newest - size + 1 .. newest``; at most one item per slot,
    the one with the greatest ``item.time`` (ties: the later arrival); an item whose slot is
    older than the window when it arrives is ignored; the newest slot only moves forward (until
    everything expires, which resets the window). An item without a ``slot`` is placed by its
    record time (``int(item.time // 3600)``).

    Storage: three lists of exactly ``size`` entries aligned to the slots (item, its ``values``,
    its ``gun_values``), so reads are C-level ``map``s and advancing the newest slot by k is one
    ``del``/``extend`` of k pointers.
    """

    __slots__ = (
        "_count",
        "_gun_cache",
        "_guns",
        "_items",
        "_last_time",
        "_memo",
        "_min_time",
        "_newest",
        "_size",
        "_values",
    )

    def __init__(self, size: int) -> None:
        self._size = _check_size(size)
        self._items: list[ItemT | None] = [None] * size
        self._values: list[dict[str, Any]] = [_NO_VALUES] * size
        self._guns: list[dict[str, tuple[Any, ...]]] = [_NO_VALUES] * size
        self._newest: int | None = None
        self._count = 0
        self._last_time: float | None = None
        # A lower bound of the oldest item.time held (exact after expire), so that ``expire`` is
        # O(1) when nothing is old enough.
        self._min_time: float | None = None
        # (union gun ids, every held item's gun_ids is the union or empty), computed on demand.
        self._gun_cache: tuple[tuple[str, ...], bool] | None = None
        # Values derived from the content by readers (see ``memo``); None after any change.
        self._memo: dict[Any, Any] | None = None

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

    def add(self, item: ItemT) -> None:
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
        idx = slot - newest + size - 1
        if idx < 0:
            return  # older than the window
        items = self._items
        old = items[idx]
        t = item.time
        if old is None:
            self._count += 1
        elif t < old.time:
            return  # the slot already holds a newer item
        items[idx] = item
        self._memo = None
        values = item.values
        self._values[idx] = values if type(values) is dict else dict(values)  # _as_dict
        self._guns[idx] = _gun_rows(item)
        if self._last_time is None or t > self._last_time:
            self._last_time = t
        if self._min_time is None or t < self._min_time:
            self._min_time = t
        cache = self._gun_cache
        if cache is not None and not (
            item.gun_ids == cache[0] and (old is None or old.gun_ids == cache[0])
        ):
            self._gun_cache = None

    def _advance(self, k: int) -> None:
        """Move the window k slots forward, dropping the k oldest slots."""
        self._memo = None
        size = self._size
        if k >= size:
            if self._count:
                self._items = [None] * size
                self._values = [_NO_VALUES] * size
                self._guns = [_NO_VALUES] * size
                self._count = 0
                self._gun_cache = None
                self._last_time = self._min_time = None
            return
        items = self._items
        if k == 1:  # the next hour: the common case (a history message adds its hours in order)
            dropped = items[0]
            del items[0]
            items.append(None)
            values = self._values
            del values[0]
            values.append(_NO_VALUES)
            guns = self._guns
            del guns[0]
            guns.append(_NO_VALUES)
            if dropped is None:
                return
            gone = [dropped]
        else:
            gone = [it for it in items[:k] if it is not None]
            del items[:k]
            items.extend(repeat(None, k))
            del self._values[:k]
            self._values.extend(repeat(_NO_VALUES, k))
            del self._guns[:k]
            self._guns.extend(repeat(_NO_VALUES, k))
        if gone:
            self._count -= len(gone)
            self._gun_cache = None
            # _min_time may stay a lower bound; _last_time must stay exact.
            last = self._last_time
            if last is not None and any(it.time >= last for it in gone):
                self._recompute_times()

    def _recompute_times(self) -> None:
        times = [it.time for it in self._items if it is not None]
        self._last_time = max(times) if times else None
        self._min_time = min(times) if times else None

    def expire(self, now: float, ttl: float) -> None:
        cutoff = now - ttl
        if self._min_time is None or self._min_time >= cutoff:
            return
        items = self._items
        for i, it in enumerate(items):
            if it is not None and it.time < cutoff:
                items[i] = None
                self._values[i] = _NO_VALUES
                self._guns[i] = _NO_VALUES
                self._count -= 1
        self._gun_cache = None
        self._memo = None
        self._recompute_times()
        if not self._count:
            self._newest = None  # nothing left: the next item starts a fresh grid

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

    def series(self, field: str) -> list[Any | None]:
        """``values[field]`` per slot, oldest first, exactly ``size`` long, None in gaps."""
        return list(map(_dict_get, self._values, repeat(field)))

    def items(self) -> list[ItemT | None]:
        """The item per slot, oldest first, exactly ``size`` long, None in gaps."""
        return list(self._items)

    def all_items(self) -> list[ItemT]:
        """Every item held, oldest slot first (adding them to a new window rebuilds it)."""
        return [it for it in self._items if it is not None]

    def latest(self) -> ItemT | None:
        """The item of the newest slot (None when that slot is a gap or the window is empty)."""
        return self._items[-1]

    def _gun_union(self) -> tuple[tuple[str, ...], bool]:
        cache = self._gun_cache
        if cache is not None:
            return cache
        union: list[str] = []
        seen: set[str] = set()
        prev: tuple[str, ...] = ()
        for it in self._items:
            if it is None:
                continue
            ids = it.gun_ids
            if ids == prev:
                continue
            prev = ids
            for g in ids:
                if g not in seen:
                    seen.add(g)
                    union.append(g)
        guns = tuple(union)
        aligned = all(it is None or not it.gun_ids or it.gun_ids == guns for it in self._items)
        self._gun_cache = (guns, aligned)
        return self._gun_cache

    def gun_ids(self) -> list[str]:
        """The union of the gun ids of the items held, in first-seen order by slot."""
        return list(self._gun_union()[0])

    def gun_series(self, field: str) -> list[list[Any | None]]:
        """One ``size``-long list per gun of ``gun_ids()`` (same order): the gun's value of
        ``gun_values[field]`` per slot, None where the slot, the field or the gun is missing."""
        guns, aligned = self._gun_union()
        n = len(guns)
        if not n:
            return []
        gaps: tuple[None, ...] = (None,) * n
        rows: list[tuple[Any, ...]]
        if aligned:
            # Every row is the union's length: add() keeps only gun fields as long as gun_ids.
            rows = list(map(_dict_get, self._guns, repeat(field), repeat(gaps)))
            return list(map(list, zip(*rows, strict=False)))
        # Slots whose guns differ from the union (or are out of order) are re-aligned by id.
        rows = []
        for it, by_field in zip(self._items, self._guns, strict=True):
            vals = by_field.get(field)
            if it is None or vals is None:
                rows.append(gaps)
            elif it.gun_ids == guns and len(vals) == n:
                rows.append(vals)
            else:
                by_gun = dict(zip(it.gun_ids, vals, strict=False))
                rows.append(tuple(map(by_gun.get, guns)))
        return list(map(list, zip(*rows, strict=True)))
