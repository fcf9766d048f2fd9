"""Per (station, topic) windows: what a station keeps of one topic between runs.

Four kinds (``TopicConfig.window``), built by ``make_window``:

* ``LatestWindow``: the last ``size`` items by arrival.
* ``HourlyGridWindow``: one item per hour slot, exactly ``size`` slots ending at the newest
  slot seen; a newer item for a slot replaces it, a message carrying fewer hours never wipes
  the others.
* ``SecondSnapshotWindow``: all items of one second form one snapshot; a second completes when
  a later second arrives or when the clock passes its end plus a grace.
* ``PerDeviceWindow``: the newest item per device id.

Every window has ``add(item)``, ``expire(now, ttl)`` (drop items whose ``time < now - ttl``),
``is_empty()``, ``held()`` (entries held: a memory measure) and ``last_time`` (the newest
``item.time`` held, or None). Times are float seconds since the epoch; windows never read the
clock. Windows are typed against the small ``WindowItem`` protocol (the attributes they read of
an extractor's ``StationItem``) and are generic in the item type, so callers get their own item
type back.

These objects exist once per (station, topic) (about 10^5 in a large deployment) and ``add``
runs for every extracted item, so they are plain ``__slots__`` classes that allocate nothing
per add in the steady state, and the grid's read methods run at C speed (``map`` over aligned
lists) rather than per-slot Python.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from itertools import repeat
from typing import Any, Generic, Protocol, TypeVar

from da_core.config import TopicConfig
from da_core.errors import ConfigError

SECONDS_PER_SLOT = 3600
"""An hourly grid slot is ``int(event_time // 3600)``."""


class WindowItem(Protocol):
    """The attributes of an extracted item (``extractors.StationItem``) that windows read."""

    @property
    def station_id(self) -> str: ...
    @property
    def time(self) -> float: ...
    @property
    def values(self) -> Mapping[str, Any]: ...
    @property
    def raw(self) -> Any: ...
    @property
    def event_time(self) -> float | None: ...
    @property
    def slot(self) -> int | None: ...
    @property
    def device(self) -> str | None: ...
    @property
    def gun_ids(self) -> tuple[str, ...]: ...
    @property
    def gun_values(self) -> Mapping[str, tuple[Any, ...]]: ...


ItemT = TypeVar("ItemT", bound=WindowItem)

# Shared read-only placeholder for a grid slot without an item: ``dict.get`` on it gives the
# default, which lets ``series``/``gun_series`` map over whole lists without a per-slot branch.
# Never mutated.
_NO_VALUES: dict[str, Any] = {}
_dict_get: Callable[..., Any] = dict.get


def _check_size(size: int) -> int:
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise ValueError(f"window size must be an integer >= 1 (got {size!r})")
    return size


def _as_dict(mapping: Mapping[str, Any]) -> dict[str, Any]:
    # StationItem documents plain dicts; anything else is copied once so reads can use dict.get.
    return mapping if type(mapping) is dict else dict(mapping)


def _gun_rows(item: WindowItem) -> dict[str, tuple[Any, ...]]:
    """``item.gun_values`` restricted to fields as long as ``item.gun_ids`` (as StationItem
    promises), so that ``gun_series`` can transpose rows without checking them."""
    n = len(item.gun_ids)
    rows = item.gun_values
    if not n or not rows:
        return _NO_VALUES
    for v in rows.values():
        if len(v) != n:
            return {f: v for f, v in rows.items() if len(v) == n}
    return _as_dict(rows)


class LatestWindow(Generic[ItemT]):
    """The last ``size`` items by arrival (not by record time: the newest *arrival* wins)."""

    __slots__ = ("_items", "_last_time", "_size")

    def __init__(self, size: int = 1) -> None:
        self._size = _check_size(size)
        self._items: list[ItemT] = []
        self._last_time: float | None = None

    @property
    def size(self) -> int:
        return self._size

    @property
    def last_time(self) -> float | None:
        """The newest ``item.time`` held, or None when empty."""
        return self._last_time

    def add(self, item: ItemT) -> None:
        items = self._items
        t = item.time
        if len(items) < self._size:
            items.append(item)
            if self._last_time is None or t > self._last_time:
                self._last_time = t
            return
        # Full. Windows of this kind are short (1 by default): shifting a few pointers is
        # cheaper than a deque, which costs ~600 bytes per window even when empty.
        dropped = items.pop(0)
        items.append(item)
        last = self._last_time
        if last is None or t >= last:
            self._last_time = t
        elif dropped.time == last:
            self._last_time = max(it.time for it in items)

    def items(self) -> list[ItemT]:
        """The items held, oldest arrival first."""
        return list(self._items)

    def all_items(self) -> list[ItemT]:
        """Every item held, in an order that rebuilds this state when added to a new window."""
        return list(self._items)

    def latest(self) -> ItemT | None:
        """The newest arrival, or None when empty."""
        return self._items[-1] if self._items else None

    def expire(self, now: float, ttl: float) -> None:
        cutoff = now - ttl
        items = self._items
        if items and min(it.time for it in items) < cutoff:
            items[:] = [it for it in items if it.time >= cutoff]
            self._last_time = max((it.time for it in items), default=None)

    def is_empty(self) -> bool:
        return not self._items

    def held(self) -> int:
        """Number of items held (never more than ``size``)."""
        return len(self._items)


class HourlyGridWindow(Generic[ItemT]):
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


class SecondSnapshotWindow(Generic[ItemT]):
    """Items grouped by whole second (``int(item.time)``); each completed second is a snapshot.

    The *open* second is the newest second holding items. It completes when an item of a later
    second arrives, or when ``advance(now)`` sees ``now >= second + 1 + grace``; the last
    completed second is then that second, and ``snapshots()`` covers it and the ``size - 1``
    seconds before it (empty where a second had no items). An item of a second older than the
    open one belongs to a second that is already complete: it joins that second's snapshot when
    the second is within the ``size`` kept (becoming the last completed second when it is newer
    than that), and is ignored when older. At most ``size`` completed seconds are kept.
    """

    __slots__ = (
        "_done",
        "_grace",
        "_last_completed",
        "_last_time",
        "_open",
        "_open_items",
        "_size",
    )

    def __init__(self, size: int, grace: float = 1.0) -> None:
        self._size = _check_size(size)
        if grace < 0:
            raise ValueError(f"snapshot grace must be >= 0 seconds (got {grace!r})")
        self._grace = grace
        self._open: int | None = None
        self._open_items: list[ItemT] = []
        self._last_completed: int | None = None
        # Completed seconds with items, all within last_completed - size + 1 .. last_completed.
        self._done: dict[int, list[ItemT]] = {}
        self._last_time: float | None = None

    @property
    def size(self) -> int:
        return self._size

    @property
    def last_time(self) -> float | None:
        """The newest ``item.time`` held, or None when empty."""
        return self._last_time

    @property
    def open_second(self) -> int | None:
        return self._open

    @property
    def last_completed(self) -> int | None:
        return self._last_completed

    def add(self, item: ItemT) -> None:
        t = item.time
        sec = int(t)
        open_sec = self._open
        if open_sec is None or sec > open_sec:
            last = self._last_completed
            if open_sec is None and last is not None and sec <= last:
                self._late(sec, item)
                return
            if open_sec is not None:
                self._complete(open_sec, self._open_items)
            self._open = sec
            self._open_items = [item]
        elif sec == open_sec:
            self._open_items.append(item)
        else:
            self._late(sec, item)
            return
        if self._last_time is None or t > self._last_time:
            self._last_time = t

    def _late(self, sec: int, item: ItemT) -> None:
        last = self._last_completed
        if last is None or sec > last:
            self._complete(sec, [item])  # complete already: a later second has arrived
        elif sec > last - self._size:
            self._done.setdefault(sec, []).append(item)
        else:
            return
        if self._last_time is None or item.time > self._last_time:
            self._last_time = item.time

    def _complete(self, sec: int, items: list[ItemT]) -> None:
        last = self._last_completed
        if last is None or sec > last:
            self._last_completed = sec
            lo = sec - self._size + 1
            done = self._done
            for old in [s for s in done if s < lo]:
                del done[old]
        self._done[sec] = items

    def advance(self, now: float) -> bool:
        """Complete the open second when ``now >= second + 1 + grace``; True when it did."""
        open_sec = self._open
        if open_sec is None or now < open_sec + 1 + self._grace:
            return False
        self._complete(open_sec, self._open_items)
        self._open = None
        self._open_items = []
        return True

    def deadline(self) -> float | None:
        """When the open second completes by the clock (None when no second is open)."""
        return None if self._open is None else self._open + 1 + self._grace

    def snapshots(self) -> list[tuple[int, list[ItemT]]]:
        """``size`` entries ``(second, items in arrival order)`` for the seconds
        ``last_completed - size + 1 .. last_completed`` (empty lists for seconds without items);
        an empty list when no second has completed yet."""
        last = self._last_completed
        if last is None:
            return []
        get = self._done.get
        return [(s, list(get(s, ()))) for s in range(last - self._size + 1, last + 1)]

    def all_items(self) -> list[ItemT]:
        """Every item held, oldest second first. Added to a new window they rebuild this one,
        except that the newest completed second is open again until ``advance`` or a later
        item completes it."""
        done = self._done
        out = [it for s in sorted(done) for it in done[s]]
        out.extend(self._open_items)
        return out

    def expire(self, now: float, ttl: float) -> None:
        cutoff = now - ttl
        oldest = min(self._done, default=self._open)
        if oldest is None or oldest >= cutoff:
            return  # every item held is at least as new as its second
        if self._open_items:
            self._open_items = [it for it in self._open_items if it.time >= cutoff]
            if not self._open_items:
                self._open = None
        for sec in list(self._done):
            kept = [it for it in self._done[sec] if it.time >= cutoff]
            if kept:
                self._done[sec] = kept
            else:
                del self._done[sec]
        times = [it.time for it in self._open_items]
        times.extend(it.time for items in self._done.values() for it in items)
        self._last_time = max(times) if times else None
        if self._last_time is None:
            self._last_completed = None  # nothing left: no snapshot to report

    def is_empty(self) -> bool:
        return self._last_time is None

    def held(self) -> int:
        """Number of seconds holding items: completed ones (at most ``size``) plus the open one."""
        return len(self._done) + (self._open is not None)


class PerDeviceWindow(Generic[ItemT]):
    """The newest item per ``item.device`` (by ``item.time``, ties: the later arrival).

    An item without a device id is kept under ``""``. Devices expire individually.
    """

    __slots__ = ("_devices", "_last_time")

    def __init__(self) -> None:
        self._devices: dict[str, ItemT] = {}  # kept sorted by device id
        self._last_time: float | None = None

    @property
    def last_time(self) -> float | None:
        """The newest ``item.time`` held, or None when empty."""
        return self._last_time

    def add(self, item: ItemT) -> None:
        device = item.device if item.device is not None else ""
        devices = self._devices
        old = devices.get(device)
        if old is None:
            tail = next(reversed(devices), None)
            devices[device] = item
            if tail is not None and device < tail:
                self._devices = dict(sorted(devices.items()))
        elif item.time < old.time:
            return
        else:
            devices[device] = item
        if self._last_time is None or item.time > self._last_time:
            self._last_time = item.time

    def devices(self) -> dict[str, ItemT]:
        """The newest item per device, sorted by device id."""
        return dict(self._devices)

    def all_items(self) -> list[ItemT]:
        """Every item held, by device id (adding them to a new window rebuilds it)."""
        return list(self._devices.values())

    def expire(self, now: float, ttl: float) -> None:
        cutoff = now - ttl
        devices = self._devices
        old = [d for d, it in devices.items() if it.time < cutoff]
        if old:
            for d in old:
                del devices[d]
            self._last_time = max((it.time for it in devices.values()), default=None)

    def is_empty(self) -> bool:
        return not self._devices

    def held(self) -> int:
        """Number of devices held."""
        return len(self._devices)


Window = (
    LatestWindow[Any] | HourlyGridWindow[Any] | SecondSnapshotWindow[Any] | PerDeviceWindow[Any]
)
"""Any window (narrow with ``isinstance`` for the kind-specific reads)."""


def make_window(topic: TopicConfig) -> Window:
    """The window a topic's configuration asks for (``window``, ``window_size``,
    ``snapshot_grace_seconds``)."""
    kind = topic.window
    if kind == "latest":
        return LatestWindow(topic.window_size)
    if kind == "hourly_grid":
        return HourlyGridWindow(topic.window_size)
    if kind == "second_snapshot":
        return SecondSnapshotWindow(topic.window_size, topic.snapshot_grace_seconds)
    if kind == "per_device":
        return PerDeviceWindow()
    raise ConfigError(
        f"topics.{topic.name}.window: {kind!r} is not one of "
        "latest, hourly_grid, second_snapshot, per_device"
    )
