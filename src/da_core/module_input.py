"""Module-input assembly: one station's windows → the dict a module's callback receives.

Layout (stable; documented in docs/module-input.md):

* ``station_id``, ``module``, ``timestamp`` (the ``now`` of assembly);
* every configured field of every input topic under its flat name (``alias_`` + field when the
  topic has an alias): its latest value, and ``<name>_window`` (exactly ``window_size``
  entries, oldest first, gap-filled) when the topic's window is longer than 1. For topics with
  many items at once (per-device, per-second orders, global lists) the latest value is the list
  of the items' values;
* one named structure per input topic under its ``structure_key`` (``station_param``,
  ``station_realtime_data``, ``car_order``, ``device_storage``…);
* ``dependencies``: ``{module: latest result (without station_id)}`` for each dependency that has
  published a result for this station;
* ``_data_quality``: available / missing / stale topics, availability ratio, per-topic age;
* ``_fill_mask``: ``{<name>_window: [bool]}`` for each window series in which gaps were filled.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import attrs

from da_core.config import Catalog, TopicConfig
from da_core.extractors import StationItem
from da_core.fill_strategy import FillResolver, fill_series
from da_core.slot_text import slot_texts
from da_core.station_window import (
    HourlyGridWindow,
    LatestWindow,
    PerDeviceWindow,
    SecondSnapshotWindow,
    Window,
)


@attrs.frozen(slots=True)
class DependencyResult:
    """The latest result a dependency published for one station."""

    module: str
    values: Mapping[str, Any]
    time: float


@attrs.frozen(slots=True)
class TopicPlan:
    """What one input topic contributes to a module's input (precomputed once per module)."""

    topic: TopicConfig
    field_names: tuple[tuple[str, str], ...]
    window_names: tuple[tuple[str, str, str], ...]
    """Per field: ``(field, flat name, flat name + "_window")``."""
    flat_names: tuple[str, ...]
    """Per field its flat name (``field_names``' second column, for ``zip`` in C)."""
    series_names: tuple[str, ...]
    """Per field its flat name + ``"_window"`` (``window_names``' third column)."""
    gun_names: tuple[tuple[str, str], ...]
    fill_of: Mapping[str, str]
    freshness: float | None
    expire: float
    name: str
    """``topic.name``."""
    structure_key: str
    """``topic.structure_key`` (a property that builds the name on every call)."""
    slot_keys: tuple[str, ...]
    """The ``slot_list_prefix`` 1..``slot_list_size`` keys that the slot list replaces."""


@attrs.frozen(slots=True)
class ModuleInputPlan:
    """Everything assembly needs to know about one module, computed once from the catalog."""

    module: str
    topics: tuple[TopicPlan, ...]
    global_topics: tuple[TopicPlan, ...]
    dependencies: tuple[str, ...]
    expire_seconds: float

    @classmethod
    def build(cls, catalog: Catalog, module: str) -> ModuleInputPlan:
        m = catalog.module(module)
        resolver = FillResolver(
            default=m.fill_strategy,
            topic_overrides={n: t.fill for n, t in catalog.topics.items() if t.fill},
            field_overrides=dict(m.field_fill),
        )
        plans: list[TopicPlan] = []
        for name in m.inputs:
            t = catalog.topics[name]
            fill_of = {
                f: t.field_fill.get(f) or resolver.strategy_for(name, f) for f in t.all_fields()
            }
            plans.append(
                TopicPlan(
                    topic=t,
                    field_names=tuple((f, t.flat_name(f)) for f in t.fields),
                    window_names=tuple(
                        (f, t.flat_name(f), t.flat_name(f) + "_window") for f in t.fields
                    ),
                    flat_names=tuple(t.flat_name(f) for f in t.fields),
                    series_names=tuple(t.flat_name(f) + "_window" for f in t.fields),
                    gun_names=tuple((f, t.flat_name(f)) for f in t.gun_fields),
                    fill_of=fill_of,
                    freshness=t.freshness_seconds,
                    expire=catalog.expire_of(name),
                    name=t.name,
                    structure_key=t.structure_key,
                    slot_keys=tuple(
                        f"{t.slot_list_prefix}{i}" for i in range(1, t.slot_list_size + 1)
                    ),
                )
            )
        return cls(
            module=module,
            topics=tuple(p for p in plans if not p.topic.is_global),
            global_topics=tuple(p for p in plans if p.topic.is_global),
            dependencies=m.dependencies,
            expire_seconds=catalog.data_expire_seconds,
        )

    @property
    def topic_names(self) -> tuple[str, ...]:
        return tuple(p.topic.name for p in (*self.topics, *self.global_topics))


def assemble(
    plan: ModuleInputPlan,
    station_id: str,
    windows: Mapping[str, Window],
    global_windows: Mapping[str, Window],
    dependencies: Mapping[str, DependencyResult],
    now: float,
) -> dict[str, Any]:
    """Build the module input of one station. Pure: reads the windows, changes nothing."""
    out: dict[str, Any] = {"station_id": station_id, "module": plan.module, "timestamp": now}
    masks: dict[str, list[bool]] = {}
    available: list[str] = []
    missing: list[str] = []
    stale: list[str] = []
    ages: dict[str, float | None] = {}
    expire = plan.expire_seconds
    for p in plan.topics:
        w = windows.get(p.name)
        _topic_quality(p, w, now, expire, available, missing, stale, ages)
        _add_topic(out, masks, p, w)
    for p in plan.global_topics:
        w = global_windows.get(p.name)
        _topic_quality(p, w, now, expire, available, missing, stale, ages, is_global=True)
        _add_topic(out, masks, p, w)
    deps: dict[str, Any] = {}
    for d in plan.dependencies:
        r = dependencies.get(d)
        if r is not None:
            deps[d] = dict(r.values)
            ages[f"dependency:{d}"] = round(now - r.time, 3)
    out["dependencies"] = deps
    total = len(plan.topics) + len(plan.global_topics)
    out["_data_quality"] = {
        "available_topics": available,
        "missing_topics": missing,
        "stale_topics": stale,
        "availability_ratio": (len(available) / total) if total else 1.0,
        "topic_age_seconds": ages,
        "dependencies_available": sorted(deps),
        "dependencies_missing": [d for d in plan.dependencies if d not in deps],
    }
    if masks:
        out["_fill_mask"] = masks
    return out


def _topic_quality(
    p: TopicPlan,
    w: Window | None,
    now: float,
    expire: float,
    available: list[str],
    missing: list[str],
    stale: list[str],
    ages: dict[str, float | None],
    *,
    is_global: bool = False,
) -> None:
    name = p.name
    last = None if w is None or w.is_empty() else w.last_time
    if last is None:
        missing.append(name)
        ages[name] = None
        return
    age = now - last
    ages[name] = round(age, 3)
    # Global values (a yearly calendar) do not expire with the station data.
    limit = p.freshness if p.freshness is not None else (None if is_global else p.expire)
    if limit is not None and age > limit:
        stale.append(name)
    else:
        available.append(name)


def _add_topic(
    out: dict[str, Any], masks: dict[str, list[bool]], p: TopicPlan, w: Window | None
) -> None:
    if isinstance(w, HourlyGridWindow):
        _add_grid(out, masks, p, w)
    elif isinstance(w, SecondSnapshotWindow):
        _add_snapshots(out, masks, p, w)
    elif isinstance(w, PerDeviceWindow):
        _add_devices(out, p, w)
    elif isinstance(w, LatestWindow):
        _add_latest(out, masks, p, w)
    else:  # no data yet: every name still appears, so callbacks can rely on the keys
        _add_absent(out, p)


def _add_absent(out: dict[str, Any], p: TopicPlan) -> None:
    t = p.topic
    size = t.window_size
    for _f, name in (*p.field_names, *p.gun_names):
        out[name] = None
        if size > 1 and t.window in ("latest", "hourly_grid", "second_snapshot"):
            out[name + "_window"] = [None] * size
    out[p.structure_key] = None


def _add_devices(out: dict[str, Any], p: TopicPlan, w: PerDeviceWindow[StationItem]) -> None:
    """Per field the list of the devices' values, and ``{device: raw}``; derived once per
    content of the window (its memo), every list and dict handed out a fresh one."""
    memo = w.memo()
    parts = memo.get(id(p))
    if parts is None or parts[0] is not p:
        devices = w.devices()
        items = devices.values()
        parts = memo[id(p)] = (
            p,
            tuple((name, tuple([it.values.get(f) for it in items])) for f, name in p.field_names),
            tuple((dev, it.raw) for dev, it in devices.items()),
        )
    _, fields, raws = parts
    for name, values in fields:
        out[name] = list(values)
    out[p.structure_key] = {dev: dict(raw) for dev, raw in raws}


def _add_latest(
    out: dict[str, Any], masks: dict[str, list[bool]], p: TopicPlan, w: LatestWindow[StationItem]
) -> None:
    """The latest values, their windows and the structure, from the window's memo
    (``_latest_parts``) while the window is unchanged; every list and dict handed out is a
    fresh one (values themselves are shared, as the item holds them)."""
    memo = w.memo()
    parts = memo.get(id(p))
    if parts is None or parts[0] is not p:
        parts = memo[id(p)] = _latest_parts(p, w)
    _, flat, lists, windows, structure, slot_names, slot_list = parts
    out.update(flat)
    for name, values in lists:
        out[name] = list(values)
    for name, values, mask in windows:
        out[name] = list(values)
        if mask is not None:
            masks[name] = list(mask)
    if structure is None:
        out[p.structure_key] = None
    elif type(structure) is tuple:  # a global topic's rows, shared by every station
        out[p.structure_key] = [dict(r) if type(r) is dict else r for r in structure]
    else:
        structure = dict(structure)
        if slot_list is not None:
            slot_name, flat_slot_name = slot_names
            structure[slot_name] = list(slot_list)
            out[flat_slot_name] = list(slot_list)
        out[p.structure_key] = structure


_LatestParts = tuple[
    TopicPlan,
    dict[str, Any],
    tuple[tuple[str, tuple[Any, ...]], ...],
    tuple[tuple[str, tuple[Any, ...], tuple[bool, ...] | None], ...],
    Any,
    tuple[str, str],
    tuple[Any, ...] | None,
]


def _latest_parts(p: TopicPlan, w: LatestWindow[StationItem]) -> _LatestParts:
    """What ``_add_latest`` hands out, computed once per content of the window: ``(plan,
    {flat name: latest value}, per-row lists of a global topic, (window name, filled series,
    mask or None) per field, the structure (a dict without the slot keys, the rows of a global
    topic as a tuple, or None), (slot list name, its flat name), the slot list or None)``."""
    t = p.topic
    items = w.items()
    latest = items[-1] if items else None
    slot_names = (t.slot_list_name or "", t.flat_name(t.slot_list_name or ""))
    if t.is_global:
        raw = latest.raw if latest is not None else None
        rows = raw if isinstance(raw, list) else ([raw] if raw is not None else [])
        lists = tuple(
            (name, tuple([r.get(f) if isinstance(r, dict) else None for r in rows]))
            for f, name in p.field_names
        )
        return p, {}, lists, (), tuple(rows), slot_names, None
    flat: dict[str, Any] = {
        name: (latest.values.get(f) if latest is not None else None) for f, name in p.field_names
    }
    windows = []
    size = t.window_size
    if size > 1:
        pad = [None] * (size - len(items))
        for f, _name, wname in p.window_names:
            strategy = p.fill_of[f]
            values, mask, gaps = fill_series(pad + [it.values.get(f) for it in items], strategy)
            keep = tuple(mask) if gaps or strategy == "missing" else None
            windows.append((wname, tuple(values), keep))
    if latest is None:
        return p, flat, (), tuple(windows), None, slot_names, None
    structure = dict(latest.raw)
    slot_list = None
    if t.slot_list_name and latest.slot_list is not None:
        for key in p.slot_keys:
            structure.pop(key, None)
        slot_list = tuple(latest.slot_list)
    return p, flat, (), tuple(windows), structure, slot_names, slot_list


def _add_grid(
    out: dict[str, Any],
    masks: dict[str, list[bool]],
    p: TopicPlan,
    w: HourlyGridWindow,
) -> None:
    """The grid's names and structure; every list handed out is a fresh one.

    A grid changes hourly. Its parts (``_grid_parts``) are memoised in the window once read
    ``_HOT_READS`` times in one content, and from the first read of every later content of a
    window found so (``w.hot``): a station read every second then shares the tuples of value
    objects instead of rebuilding its series per run, while a station read once an hour (a
    history model) keeps no copy of its 168-hour series beside the grid's machine numbers
    (about 40 KB per station)."""
    memo = w.memo()
    entry = memo.get(id(p))  # the parts, or how often this content was read without them
    if type(entry) is tuple and entry[0] is p:
        parts: _GridParts = entry
    else:
        reads = entry + 1 if type(entry) is int else 1
        parts = _grid_parts(p, w)
        if w.hot or reads >= _HOT_READS:
            w.hot = True  # kept across changes: the next content is memoised from its first read
            memo[id(p)] = parts
        else:
            memo[id(p)] = reads
    _, slots, fields, guns, gun_fields = parts
    structure: dict[str, Any] = {"slots": list(slots)}
    for f, name, latest, filled, mask in fields:
        out[name] = latest
        values = list(filled)
        out[name + "_window"] = values
        if mask is not None:
            masks[name + "_window"] = list(mask)
        structure[f] = values
    structure[p.topic.gun_id_field] = list(guns)
    for f, name, per_gun, gapped, latest_per_gun in gun_fields:
        filled_guns = [list(series) for series in per_gun]
        out[name + "_window"] = filled_guns
        if gapped is not None:
            masks[name + "_window"] = list(gapped)
        out[name] = list(latest_per_gun)
        structure[f] = filled_guns
    out[p.structure_key] = structure


_GridParts = tuple[
    TopicPlan,
    tuple[str, ...],
    tuple[tuple[str, str, Any, tuple[Any, ...], tuple[bool, ...] | None], ...],
    tuple[str, ...],
    tuple[
        tuple[str, str, tuple[tuple[Any, ...], ...], tuple[bool, ...] | None, tuple[Any, ...]],
        ...,
    ],
]

_HOT_READS = 3
"""Reads of one grid content after which its parts are memoised (see ``_add_grid``)."""


def _grid_parts(p: TopicPlan, w: HourlyGridWindow) -> _GridParts:
    """Everything ``_add_grid`` reads of the window, computed once per content of the grid:
    ``(plan, slot texts, per field (field, name, latest value, filled series, mask or None),
    union guns, per gun field (field, name, filled series per gun, gap flags per gun or None,
    latest value per gun))``. A mask is kept where gaps were filled or the strategy is
    ``missing``; gap flags where any gun's series had a gap."""
    latest = w.latest()
    newest = w.newest_slot
    slots = () if newest is None else slot_texts(newest, w.size)
    fill_of = p.fill_of
    fields = []
    for f, name in p.field_names:
        strategy = fill_of[f]
        values, mask, gaps = fill_series(w.series(f), strategy)
        keep = tuple(mask) if gaps or strategy == "missing" else None
        fields.append(
            (f, name, latest.values.get(f) if latest is not None else None, tuple(values), keep)
        )
    guns = tuple(w.gun_ids())
    latest_guns = {g: i for i, g in enumerate(latest.gun_ids)} if latest else {}
    gun_fields = []
    for f, name in p.gun_names:
        strategy = fill_of[f]
        per_gun = []
        gapped = []
        for series in w.gun_series(f):
            values, _mask, gaps = fill_series(series, strategy)
            per_gun.append(tuple(values))
            gapped.append(gaps)
        lv = latest.gun_values.get(f) if latest is not None else None
        latest_per_gun = tuple(
            (lv[latest_guns[g]] if lv is not None and g in latest_guns else None) for g in guns
        )
        flags = tuple(gapped) if any(gapped) else None
        gun_fields.append((f, name, tuple(per_gun), flags, latest_per_gun))
    return p, slots, tuple(fields), guns, tuple(gun_fields)


def _add_snapshots(
    out: dict[str, Any],
    masks: dict[str, list[bool]],
    p: TopicPlan,
    w: SecondSnapshotWindow[StationItem],
) -> None:
    """The last completed second's values, their per-second windows and the snapshot
    structure. What each completed second contributes is derived once and kept in the window's
    ``second_memo`` (a second appears in ``size`` consecutive snapshots); every list and dict
    handed out is a fresh one. The copies are made with ``map`` over the memo's tuples: this
    runs for every order reader's every run."""
    last = w.last_completed
    if last is None:
        _add_absent(out, p)
        return
    memo = w.second_memo()
    series = p.topic.window_size > 1
    per_second = []  # per second of the window: its fresh list of values per field
    window = []  # the structure's window: per second, its orders
    part: Any = None  # a second's (plan, per-field values, raw orders): ``_second_part``
    for s in range(last - w.size + 1, last + 1):
        part = memo.get(s)
        if part is None or part[0] is not p:
            part = memo[s] = _second_part(p, w.second_items(s))
        if series:
            per_second.append(list(map(list, part[1])))
        window.append({"second": s, "orders": list(map(dict, part[2]))})
    newest = part  # the last completed second's
    # per field: the newest second's values, and one list per second of the window
    out.update(zip(p.flat_names, map(list, newest[1]), strict=True))
    if series:
        out.update(zip(p.series_names, map(list, zip(*per_second, strict=True)), strict=True))
    out[p.structure_key] = {
        "second": last,
        "orders": list(map(dict, newest[2])),
        "window": window,
    }


def _second_part(
    p: TopicPlan, items: list[StationItem]
) -> tuple[TopicPlan, tuple[tuple[Any, ...], ...], tuple[Any, ...]]:
    """``(plan, per field the values of the second's items in arrival order, their raw
    dicts)``: what one completed second contributes to every snapshot it appears in."""
    fields = p.topic.fields
    values: tuple[tuple[Any, ...], ...]
    if len(items) == 1:  # the common case: one order per station and second
        values = tuple(zip(map(items[0].values.get, fields), strict=True))
    elif items:
        rows = [[it.values.get(f) for f in fields] for it in items]
        values = tuple(zip(*rows, strict=True))
    else:
        values = ((),) * len(fields)
    return p, values, tuple([it.raw for it in items])


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
