"""``PerDeviceWindow``: the newest item per device id of one (station, topic)."""

from __future__ import annotations

from typing import Any, Generic

from da_core.station_window.base import ItemT


class PerDeviceWindow(Generic[ItemT]):
    """The newest item per ``item.device`` (by ``item.time``, ties: the later arrival).

    An item without a device id is kept under ``""``. Devices expire individually.
    """

    __slots__ = ("_devices", "_last_time", "_memo")

    def __init__(self) -> None:
        self._devices: dict[str, ItemT] = {}  # kept sorted by device id
        self._last_time: float | None = None
        # Values derived from the content by readers (see ``memo``); None after any change.
        self._memo: dict[Any, Any] | None = None

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
        self._memo = None
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
            self._memo = None
            for d in old:
                del devices[d]
            self._last_time = max((it.time for it in devices.values()), default=None)

    def memo(self) -> dict[Any, Any]:
        """A scratch dict where readers keep values derived from the current content (module
        input assembly keeps the topic's part of the input there); emptied by every change of
        the content."""
        memo = self._memo
        if memo is None:
            memo = self._memo = {}
        return memo

    def is_empty(self) -> bool:
        return not self._devices

    def held(self) -> int:
        """Number of devices held."""
        return len(self._devices)
