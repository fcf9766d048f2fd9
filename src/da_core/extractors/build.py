"""Building one ``StationItem`` from one source object (the per-item hot path)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from da_core.extractors.items import NO_GUN_VALUES, StationItem
from da_core.extractors.sanitize import (
    AS_IS,
    BAD,
    KIND_ANY,
    MISSING,
    gun_ids,
    ident,
    sanitize,
    scalar,
)

if TYPE_CHECKING:
    from da_core.extractors.plan import TopicPlan

_NOTHING: frozenset[type] = frozenset()
_new = tuple.__new__
"""``_new(StationItem, (...))`` builds an item without the NamedTuple's Python ``__new__``."""

Built = tuple[StationItem | None, int, "list[str] | None"]
"""(the item or None when unusable, fields dropped, expected keys that were absent)."""
Builder = Callable[["TopicPlan", dict[str, Any], str, float], Built]


def build_item(plan: TopicPlan, o: dict[str, Any], sid: str, rtime: float) -> Built:
    """Sanitise ``o``'s configured fields into an item; None when the window cannot use it."""
    if plan.has_extras:
        return _build_with_extras(plan, o, sid, rtime)
    values, bad, missing = _values(plan, o)
    item = _new(StationItem, (sid, rtime, values, o, None, None, None, (), NO_GUN_VALUES, None))
    return item, bad, missing


def build_result(plan: TopicPlan, o: dict[str, Any], sid: str, rtime: float) -> Built:
    """An envelope result: every key but ``station_id``, sanitised per ``field_types``."""
    kinds = plan.field_kinds
    max_len = plan.max_len
    skip = plan.station_key
    values: dict[str, Any] = {}
    bad = 0
    for k, v in o.items():
        if k == skip:
            continue
        s = sanitize(kinds.get(k, KIND_ANY), v, max_len)
        if s is BAD:
            bad += 1
        else:
            values[k] = s
    missing = [f for f, _, _ in plan.fields if f not in o] or None
    event_time = None
    if plan.time_key is not None and plan.time_key in o:
        event_time = plan.time_parser.parse(o[plan.time_key])
        bad += event_time is None
    item = _new(
        StationItem, (sid, rtime, values, o, event_time, None, None, (), NO_GUN_VALUES, None)
    )
    return item, bad, missing


def _values(
    plan: TopicPlan,
    o: dict[str, Any],
    _missing: Any = MISSING,
    _bad: Any = BAD,
    _float: type = float,
) -> tuple[dict[str, Any], int, list[str] | None]:
    """(sanitised configured fields, fields dropped, configured fields absent)."""
    values: dict[str, Any] = {}
    get = o.get
    missing: list[str] | None = None
    bad = 0
    for name, kind, as_is in plan.fields:
        v = get(name, _missing)
        if v is _missing:
            if missing is None:
                missing = [name]
            else:
                missing.append(name)
            continue
        t = type(v)
        # fast path: a type the field takes unchanged (a float must also be finite)
        if t in as_is and (t is not _float or v - v == 0.0):
            values[name] = v
            continue
        v = sanitize(kind, v, plan.max_len)
        if v is _bad:
            bad += 1
        else:
            values[name] = v
    return values, bad, missing


def _build_with_extras(plan: TopicPlan, o: dict[str, Any], sid: str, rtime: float) -> Built:
    get = o.get
    bad = 0
    absent: list[str] = []
    event_time: float | None = None
    slot: int | None = None
    key = plan.time_key
    if key is not None:
        tv = get(key, MISSING)
        if tv is MISSING:
            absent.append(key)
        else:
            event_time = plan.time_parser.parse(tv)
            if event_time is None:
                bad += 1
            elif plan.needs_slot:
                slot = int(event_time // 3600)
        if plan.needs_slot and slot is None:
            return None, bad, _absent_keys(plan, o)
    device: str | None = None
    key = plan.device_key
    if key is not None:
        dv = get(key, MISSING)
        if dv is MISSING:
            absent.append(key)
        else:
            device = ident(dv)
            if device is None:
                bad += 1
        if plan.needs_device and device is None:
            return None, bad, _absent_keys(plan, o)

    values, dropped, missing = _values(plan, o)
    bad += dropped
    if missing:
        absent.extend(missing)

    guns: tuple[str, ...] = ()
    gun_values: dict[str, tuple[Any, ...]] = NO_GUN_VALUES
    if plan.gun_fields:
        guns, gun_values, dropped = _guns(plan, o, absent)
        bad += dropped

    slot_list: tuple[Any, ...] | None = None
    if plan.slot_keys is not None:
        slot_list, dropped = _slot_list(plan, o)
        bad += dropped
        if slot_list is None:
            absent.append(plan.slot_name)

    item = _new(
        StationItem, (sid, rtime, values, o, event_time, slot, device, guns, gun_values, slot_list)
    )
    return item, bad, absent or None


def _absent_keys(plan: TopicPlan, o: dict[str, Any]) -> list[str] | None:
    """Expected top-level keys absent from ``o`` (for an item dropped before its fields)."""
    return [k for k in plan.expected if k not in o] or None


def _guns(
    plan: TopicPlan, o: dict[str, Any], absent: list[str]
) -> tuple[tuple[str, ...], dict[str, tuple[Any, ...]], int]:
    """(gun ids, per-gun arrays, fields dropped); names not found are added to ``absent``."""
    gun_key = plan.gun_key
    box: Any = o
    if gun_key is not None:
        box = o.get(gun_key, MISSING)
        if box is MISSING:
            absent.append(gun_key)
            absent.extend(plan.gun_names)
            return (), {}, 0
        if type(box) is not dict and not isinstance(box, dict):
            absent.extend(plan.gun_names)
            return (), {}, 1
    get = box.get
    bad = 0
    max_len = plan.max_len
    raw_ids = get(plan.gun_id_field, MISSING)
    ids: tuple[str, ...] | None = None
    if raw_ids is MISSING:
        absent.append(plan.gun_id_field)
    else:
        ids = gun_ids(raw_ids, max_len)
        if ids is None:
            bad += 1
    out: dict[str, tuple[Any, ...]] = {}
    for name, clean in plan.gun_fields:
        v = get(name, MISSING)
        if v is MISSING:
            absent.append(name)
            continue
        v = clean(v, max_len)
        if ids is not None and type(v) is list and len(v) == len(ids):
            out[name] = tuple(v)
        else:
            bad += 1
    return (ids or ()), out, bad


def _slot_list(plan: TopicPlan, o: dict[str, Any]) -> tuple[tuple[Any, ...] | None, int]:
    """(the N-slot tuple or None when no slot key is present, values dropped)."""
    keys = plan.slot_keys
    if not keys:  # size not configured: read prefix1, prefix2... until the first gap
        prefix = plan.slot_prefix
        found: list[str] = []
        while len(found) < plan.max_len:
            k = f"{prefix}{len(found) + 1}"
            if k not in o:
                break
            found.append(k)
        keys = tuple(found)
    kind = plan.slot_kind
    as_is = AS_IS.get(kind, _NOTHING)
    getter = plan.slot_getter
    if getter is not None:  # fast path: every key present, every value taken as it is
        try:
            got: tuple[Any, ...] = getter(o)
        except KeyError:
            pass
        else:
            types = set(map(type, got))
            if types <= as_is and (float not in types or _finite(got)):
                return got, 0
    get = o.get
    raw = [get(k, MISSING) for k in keys]
    bad = present = 0
    for i, v in enumerate(raw):
        if v is MISSING:
            raw[i] = None
            continue
        present += 1
        t = type(v)
        if t in as_is and (t is not float or v - v == 0.0):
            continue
        v = scalar(kind, v, plan.max_len)
        if v is BAD:
            bad += 1
            raw[i] = None
        else:
            raw[i] = v
    if not present:
        return None, 0
    return tuple(raw), bad


def _finite(values: tuple[Any, ...]) -> bool:
    """True when every float in ``values`` (all numbers or strings...) is finite."""
    total = sum(v for v in values if type(v) is float)
    return bool(total - total == 0.0)
