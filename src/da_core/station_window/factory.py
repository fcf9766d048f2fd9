"""``Window`` (any window kind) and ``make_window``: the window a topic's configuration asks
for."""

from __future__ import annotations

from typing import Any

from da_core.config import TopicConfig
from da_core.errors import ConfigError
from da_core.station_window.hourly_grid import HourlyGridWindow
from da_core.station_window.latest import LatestWindow
from da_core.station_window.per_device import PerDeviceWindow
from da_core.station_window.second_snapshot import SecondSnapshotWindow

Window = LatestWindow[Any] | HourlyGridWindow | SecondSnapshotWindow[Any] | PerDeviceWindow[Any]
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
