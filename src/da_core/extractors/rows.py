"""Splitting a list of objects into items: the per-record loop, with a fast path for the rows
of hourly topics (a 7-day REALTIME history is 168 of them in one record).

``tally`` is the generic loop: one ``build`` call per object. ``tally_rows`` is the loop of
plans that ``fast_rows`` accepts (a time key; no device key, no slot list; every field of a
kind with types taken unchanged; gun fields, every one a ``number_list``). An element takes its fast
path when its time string is already memoised as valid by the topic's ``TimeParser``, every
configured field is present with a type taken unchanged (floats finite), the gun box is an
object holding the gun id list and every gun field, and every gun field is a list of exactly
as many ints and finite floats as there are gun ids: its item is then the one
``build._build_with_extras`` would give (nothing dropped, nothing absent). Any other element
is built by ``_build_with_extras`` itself.

Gun ids are cleaned once per record, not once per element: the last id list made only of
exact strings is kept with its cleaned tuple, and a later element whose list equals it (again
only exact strings) shares that tuple. The memo lives in one call, during which the decoded
value is not changed: nothing outlives the record.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from da_core.extractors.build import Builder, _build_with_extras
from da_core.extractors.items import StationItem
from da_core.extractors.sanitize import (
    AS_IS,
    KIND_ANY,
    KIND_NUMBER_LIST,
    MISSING,
    gun_ids,
    ident,
)

if TYPE_CHECKING:
    from da_core.config import TopicConfig
    from da_core.extractors.plan import TopicPlan

Tally = tuple[list[StationItem], int, int, int, int, "frozenset[str]"]
"""(items, fields dropped, elements skipped, objects with a station id, objects, seen keys)."""

_new = tuple.__new__
_SECONDS_PER_SLOT = 3600


def fast_rows(topic: TopicConfig, field_kinds: dict[str, int]) -> bool:
    """Whether ``tally_rows`` may split this topic's lists (see the module docstring)."""
    return (
        topic.time_key is not None
        and topic.device_key is None
        and not topic.slot_list_prefix
        and bool(topic.gun_fields)
        and all(field_kinds.get(f, KIND_ANY) in AS_IS for f in topic.fields)
        and all(field_kinds.get(f) == KIND_NUMBER_LIST for f in topic.gun_fields)
    )


def tally(plan: TopicPlan, lst: list[Any], rtime: float, build: Builder) -> Tally:
    """Build an item of every object of ``lst`` that carries a station id."""
    key = plan.station_key
    expected = plan.expected_set
    items: list[StationItem] = []
    append = items.append
    bad = skipped = with_id = objects = 0
    all_seen = False
    seen: set[str] = set()
    for o in lst:
        if type(o) is not dict and not isinstance(o, dict):
            skipped += 1
            continue
        objects += 1
        s = o.get(key)
        sid = (s.strip() or None) if type(s) is str else ident(s)
        if sid is None:
            skipped += 1
            continue
        with_id += 1
        item, b, missing = build(plan, o, sid, rtime)
        bad += b
        if missing is None:
            all_seen = True
        elif not all_seen:
            seen.update(expected.difference(missing))
        if item is None:
            skipped += 1
        else:
            append(item)
    return items, bad, skipped, with_id, objects, expected if all_seen else frozenset(seen)


def tally_rows(plan: TopicPlan, lst: list[Any], rtime: float) -> Tally:
    """``tally`` with ``_build_with_extras`` for a ``fast_rows`` plan, each element that
    allows it built on the fast path (see the module docstring). One long loop on purpose:
    its body runs once per hour of history."""
    key = plan.station_key
    expected = plan.expected_set
    items: list[StationItem] = []
    append = items.append
    bad = skipped = with_id = objects = 0
    all_seen = False
    seen: set[str] = set()
    missing_ = MISSING
    times = plan.time_parser.memo
    time_key = plan.time_key
    by_slot = plan.needs_slot
    fields = plan.row_fields
    gun_key = plan.gun_key
    id_field = plan.gun_id_field
    gun_names = plan.row_gun_names
    max_len = plan.max_len
    memo_raw: list[str] | None = None  # the last id list of exact strings
    memo_ids: tuple[str, ...] = ()  # and its cleaned ids
    for o in lst:
        if type(o) is not dict and not isinstance(o, dict):
            skipped += 1
            continue
        objects += 1
        get = o.get
        s = get(key)
        sid = (s.strip() or None) if type(s) is str else ident(s)
        if sid is None:
            skipped += 1
            continue
        with_id += 1
        item: StationItem | None = None
        tv = get(time_key, missing_)
        et = times.get(tv) if type(tv) is str else None
        if et is not None:
            values: dict[str, Any] | None = {}
            for name, as_is in fields:
                v = get(name, missing_)
                t = type(v)
                if t in as_is and (t is not float or v - v == 0.0):
                    values[name] = v  # type: ignore[index]
                else:
                    values = None
                    break
            box = o if gun_key is None else get(gun_key, missing_)
            if values is not None and type(box) is dict:
                bget = box.get
                raw = bget(id_field, missing_)
                ids: tuple[str, ...] | None = None
                if type(raw) is list and raw == memo_raw:
                    ids = memo_ids
                    for x in raw:
                        if type(x) is not str:
                            ids = None
                            break
                if ids is None:
                    ids = gun_ids(raw, max_len) if raw is not missing_ else None
                    if ids is not None and all(type(x) is str for x in raw):
                        memo_raw, memo_ids = raw, ids
                if ids is not None:
                    n = len(ids)
                    out: dict[str, tuple[Any, ...]] | None = {}
                    for name in gun_names:
                        v = bget(name, missing_)
                        if type(v) is not list or len(v) != n:
                            out = None
                            break
                        for x in v:
                            t = type(x)
                            if t is float:
                                if x - x != 0.0:
                                    break
                            elif t is not int:
                                break
                        else:
                            out[name] = tuple(v)  # type: ignore[index]
                            continue
                        out = None
                        break
                    if out is not None:
                        slot = int(et // _SECONDS_PER_SLOT) if by_slot else None
                        item = _new(
                            StationItem,
                            (sid, rtime, values, o, et, slot, None, ids, out, None),
                        )
        if item is not None:
            all_seen = True
            append(item)
            continue
        item, b, missing = _build_with_extras(plan, o, sid, rtime)
        bad += b
        if missing is None:
            all_seen = True
        elif not all_seen:
            seen.update(expected.difference(missing))
        if item is None:
            skipped += 1
        else:
            append(item)
    return items, bad, skipped, with_id, objects, expected if all_seen else frozenset(seen)
