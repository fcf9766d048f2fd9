"""``SecondSnapshotWindow``: the items of one second form a snapshot; a second completes when
a later second arrives or when the clock passes its end plus a grace."""

from __future__ import annotations

from typing import Any, Generic

from da_core.station_window.base import ItemT, _check_size


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
        "_memo",
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
        # Per completed second, values readers derived from its items (see ``second_memo``).
        self._memo: dict[int, Any] | None = None

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
            if self._memo is not None:
                self._memo.pop(sec, None)
        else:
            return
        if self._last_time is None or item.time > self._last_time:
            self._last_time = item.time

    def _complete(self, sec: int, items: list[ItemT]) -> None:
        last = self._last_completed
        if last is None or sec > last:
            self._last_completed = sec
            if last is not None:  # else nothing is held (no second completed, or all expired)
                self._forget(last - self._size + 1, min(sec - last, self._size))
        self._done[sec] = items
        if self._memo is not None:
            self._memo.pop(sec, None)

    def _forget(self, first: int, count: int) -> None:
        """Forget the ``count`` oldest seconds of the window that begins at ``first`` (and their
        memo entries): everything held is within that window, so only those seconds are
        looked up, one when the seconds come one after the other."""
        done = self._done
        memo = self._memo
        for old in range(first, first + count):
            done.pop(old, None)
            if memo is not None:
                memo.pop(old, None)

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

    def second_items(self, second: int) -> list[ItemT]:
        """The items of one completed second in arrival order (a fresh list; empty when the
        second had none or is not held)."""
        return list(self._done.get(second, ()))

    def second_memo(self) -> dict[int, Any]:
        """Per completed second, a scratch value where readers keep what they derive from that
        second's items (module-input assembly keeps the per-field values there): an entry is
        dropped when its second's items change (a late item joins it) and when the second
        leaves the window; ``expire`` empties it. A completed second seldom changes, and each
        appears in ``size`` consecutive snapshots."""
        memo = self._memo
        if memo is None:
            memo = self._memo = {}
        return memo

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
        self._memo = None
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
