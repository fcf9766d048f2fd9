"""``LatestWindow``: the last ``size`` items of one (station, topic) by arrival."""

from __future__ import annotations

from typing import Any, Generic

from da_core.station_window.base import ItemT, _check_size


class LatestWindow(Generic[ItemT]):
    """The last ``size`` items by arrival (not by record time: the newest *arrival* wins)."""

    __slots__ = ("_items", "_last_time", "_memo", "_size")

    def __init__(self, size: int = 1) -> None:
        self._size = _check_size(size)
        self._items: list[ItemT] = []
        self._last_time: float | None = None
        # Values derived from the content by readers (see ``memo``); None after any change.
        self._memo: dict[Any, Any] | None = None

    @property
    def size(self) -> int:
        return self._size

    @property
    def last_time(self) -> float | None:
        """The newest ``item.time`` held, or None when empty."""
        return self._last_time

    def add(self, item: ItemT) -> None:
        self._memo = None
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
            self._memo = None
            items[:] = [it for it in items if it.time >= cutoff]
            self._last_time = max((it.time for it in items), default=None)

    def memo(self) -> dict[Any, Any]:
        """A scratch dict where readers keep values derived from the current content (module
        input assembly keeps the topic's part of the input there); emptied by every change of
        the content. Station parameters and prices change rarely; a module may run every
        second."""
        memo = self._memo
        if memo is None:
            memo = self._memo = {}
        return memo

    def is_empty(self) -> bool:
        return not self._items

    def held(self) -> int:
        """Number of items held (never more than ``size``)."""
        return len(self._items)
