"""``read_run``: whether a record's items for one grid can be written column by column, and
their values laid out per column if so.

A 168-hour REALTIME history message is such a run: consecutive slots, one tuple of distinct gun
ids, the same value and gun fields in every hour. Writing it as slices of typed columns
(``HourlyGridWindow._add_run``) costs a few C-level passes instead of a dozen Python calls per
hour.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from operator import attrgetter, itemgetter
from typing import Any

import attrs

from da_core.station_window.base import WindowItem

_NONE = {None}
_slot_of = attrgetter("slot")
_guns_of = attrgetter("gun_ids")
_device_of = attrgetter("device")
_slot_list_of = attrgetter("slot_list")
_values_of = attrgetter("values")
_gun_values_of = attrgetter("gun_values")
_time_of = attrgetter("time")
_station_of = attrgetter("station_id")


@attrs.frozen(slots=True)
class Run:
    """The last ``min(len(items), size)`` items of a run (those a grid of ``size`` keeps), per
    column: ``values[field]`` and ``gun_values[field][gun index]`` are lists aligned with
    ``times``; ``event_times`` has NaN for None."""

    first_slot: int
    gun_ids: tuple[str, ...]
    times: list[float]
    event_times: list[float]
    station_ids: list[str]
    values: dict[str, list[Any]]
    gun_values: dict[str, list[tuple[Any, ...]]]


def read_run(items: Sequence[WindowItem], size: int) -> Run | None:
    """The run ``items`` form, or None if they are not one: slots consecutive (none None), the
    same gun ids without repeats, the same value fields and gun fields in every item, every gun
    field as long as the ids (or no guns and no gun fields), no ``device`` or ``slot_list``."""
    n = len(items)
    if not n:
        return None
    first = items[0]
    s0 = first.slot
    if s0 is None or list(map(_slot_of, items)) != list(range(s0, s0 + n)):
        return None
    ids = first.gun_ids
    g = len(ids)
    if list(map(_guns_of, items)).count(ids) != n or len(set(ids)) != g:
        return None
    if set(map(_device_of, items)) != _NONE or set(map(_slot_list_of, items)) != _NONE:
        return None
    m = min(n, size)
    kept = items[n - m :] if m < n else items
    fields = tuple(first.values)
    gun_fields = tuple(first.gun_values) if g else ()
    if list(map(len, map(_values_of, kept))).count(len(fields)) != m:
        return None  # some item has other fields
    if g and list(map(len, map(_gun_values_of, kept))).count(len(gun_fields)) != m:
        return None
    try:
        values = {f: list(map(itemgetter(f), map(_values_of, kept))) for f in fields}
        per_field = {f: list(map(itemgetter(f), map(_gun_values_of, kept))) for f in gun_fields}
    except KeyError:
        return None  # some item lacks a field the first has
    for rows in per_field.values():
        if list(map(len, rows)).count(g) != m:
            return None  # a gun field of another length than the ids
    gun_values = {f: list(zip(*rows, strict=True)) for f, rows in per_field.items()}
    event_times = [math.nan if it.event_time is None else it.event_time for it in kept]
    return Run(
        first_slot=s0,
        gun_ids=ids,
        times=list(map(_time_of, kept)),
        event_times=event_times,
        station_ids=list(map(_station_of, kept)),
        values=values,
        gun_values=gun_values,
    )
