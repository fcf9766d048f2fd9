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

Layout: ``base`` (the item protocol and shared helpers), one module per kind (``latest``,
``hourly_grid``, ``second_snapshot``, ``per_device``) and ``factory`` (``Window``,
``make_window``). Every public name is re-exported here: import from ``da_core.station_window``.
"""

from da_core.station_window.base import SECONDS_PER_SLOT, ItemT, WindowItem
from da_core.station_window.factory import Window, make_window
from da_core.station_window.hourly_grid import HourlyGridWindow
from da_core.station_window.latest import LatestWindow
from da_core.station_window.per_device import PerDeviceWindow
from da_core.station_window.second_snapshot import SecondSnapshotWindow

__all__ = [
    "SECONDS_PER_SLOT",
    "HourlyGridWindow",
    "ItemT",
    "LatestWindow",
    "PerDeviceWindow",
    "SecondSnapshotWindow",
    "Window",
    "WindowItem",
    "make_window",
]
