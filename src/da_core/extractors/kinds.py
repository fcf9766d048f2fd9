"""The five extractor kinds: how one decoded value is split into per-station items.

* ``object``: one JSON object carrying the station key.
* ``array``: a JSON array of such objects.
* ``wrapped``: an object whose ``wrapper_key`` holds such an array.
* ``global``: one item for every station (``GLOBAL_STATION``); ``values`` holds one column
  (a list aligned with ``raw``) per configured field when the payload is a list.
* ``envelope``: a module result envelope, split by each result's ``station_id``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from da_core.extractors.build import Builder, _build_with_extras, _values, build_item, build_result
from da_core.extractors.items import (
    MISSING_STATION_ID,
    NO_GUN_VALUES,
    TOO_LARGE,
    WRONG_SHAPE,
    Extraction,
    StationItem,
    reject,
)
from da_core.extractors.rows import tally, tally_rows
from da_core.extractors.sanitize import BAD, MISSING, ident, scalar
from da_core.types import GLOBAL_STATION

if TYPE_CHECKING:
    from da_core.extractors.plan import TopicPlan

_new = tuple.__new__
"""``_new(Extraction, (...))``: a NamedTuple without its Python ``__new__`` (hot path)."""


def describe(value: Any) -> str:
    """A JSON-ish name of a value's type, for rejection details."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return f"an array of {len(value)}"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _is_dict(v: Any) -> bool:
    return type(v) is dict or isinstance(v, dict)


def _is_list(v: Any) -> bool:
    return type(v) is list or isinstance(v, list)


def split_object(plan: TopicPlan, value: Any, rtime: float) -> Extraction:
    if type(value) is not dict and not isinstance(value, dict):
        return reject(WRONG_SHAPE, f"expected a JSON object, got {describe(value)}")
    key = plan.station_key
    s = value.get(key)
    sid = (s.strip() or None) if type(s) is str else ident(s)
    if sid is None:
        return reject(
            MISSING_STATION_ID, f"no usable {key!r} (got {describe(value.get(key, None))})"
        )
    if plan.has_extras:
        item, bad, missing = _build_with_extras(plan, value, sid, rtime)
        if item is None:
            return reject(WRONG_SHAPE, plan.unusable_detail)
    else:  # build_item's common case, inlined: one object per record is the hot path
        values, bad, missing = _values(plan, value)
        item = _new(
            StationItem, (sid, rtime, values, value, None, None, None, (), NO_GUN_VALUES, None)
        )
    expected = plan.expected_set
    seen = expected if missing is None else expected.difference(missing)
    return _new(Extraction, ((item,), None, bad, seen, 0))


def split_array(plan: TopicPlan, value: Any, rtime: float) -> Extraction:
    if not _is_list(value):
        return reject(WRONG_SHAPE, f"expected a JSON array, got {describe(value)}")
    return _split_list(plan, value, rtime, build_item)


def split_wrapped(plan: TopicPlan, value: Any, rtime: float) -> Extraction:
    inner = _unwrap(plan, value)
    if not _is_list(inner):
        return _wrong_wrapper(plan, value, inner)
    return _split_list(plan, inner, rtime, build_item)


def split_envelope(plan: TopicPlan, value: Any, rtime: float) -> Extraction:
    inner = _unwrap(plan, value)
    if not _is_list(inner):
        return _wrong_wrapper(plan, value, inner)
    return _split_list(plan, inner, rtime, build_result)


def split_global(plan: TopicPlan, value: Any, rtime: float) -> Extraction:
    inner = value
    if plan.wrapper_key is not None:
        inner = _unwrap(plan, value)
        if inner is MISSING:
            return _wrong_wrapper(plan, value, inner)
    if _is_list(inner):
        n = len(inner)
        if n > plan.max_items:
            return _too_large(plan, n)
        return _columns(plan, inner, rtime)
    if _is_dict(inner):
        item, bad, missing = build_item(plan, inner, GLOBAL_STATION, rtime)
        if item is None:
            return reject(WRONG_SHAPE, plan.unusable_detail)
        expected = plan.expected_set
        seen = expected if missing is None else expected.difference(missing)
        return Extraction((item,), None, bad, seen, 0)
    if plan.wrapper_key is not None:
        return _wrong_wrapper(plan, value, inner)
    return reject(WRONG_SHAPE, f"expected a JSON array or object, got {describe(value)}")


# ------------------------------------------------------------------------------ helpers


def _unwrap(plan: TopicPlan, value: Any) -> Any:
    """``value[wrapper_key]``, or ``MISSING`` when value is not an object holding it."""
    if not _is_dict(value):
        return MISSING
    return value.get(plan.wrapper_key, MISSING)


def _wrong_wrapper(plan: TopicPlan, value: Any, inner: Any) -> Extraction:
    key = plan.wrapper_key
    if inner is MISSING:
        got = describe(value) if not _is_dict(value) else f"an object without {key!r}"
    else:
        got = f"{describe(inner)} under {key!r}"
    return reject(WRONG_SHAPE, f"expected a JSON object whose {key!r} holds an array, got {got}")


def _too_large(plan: TopicPlan, n: int) -> Extraction:
    return reject(TOO_LARGE, f"{n} items, more than max_items={plan.max_items}")


def _split_list(plan: TopicPlan, lst: list[Any], rtime: float, build: Builder) -> Extraction:
    n = len(lst)
    if n > plan.max_items:
        return _too_large(plan, n)
    if n == 0:
        return Extraction()
    if build is build_item and plan.fast_rows:
        items, bad, skipped, with_id, objects, seen_fields = tally_rows(plan, lst, rtime)
    else:
        items, bad, skipped, with_id, objects, seen_fields = tally(plan, lst, rtime, build)
    if not items:
        if objects == 0:
            return reject(WRONG_SHAPE, f"expected JSON objects, got {n} non-object element(s)")
        if with_id == 0:
            return reject(
                MISSING_STATION_ID,
                f"none of {objects} object(s) carries a usable {plan.station_key!r}",
            )
        return reject(WRONG_SHAPE, plan.unusable_detail)
    return _new(Extraction, (tuple(items), None, bad, seen_fields, skipped))


def _columns(plan: TopicPlan, lst: list[Any], rtime: float) -> Extraction:
    """One global item whose values are one list per configured field, aligned with ``lst``
    (None where an element lacks the field, is not an object or holds a bad value)."""
    objects = [o if _is_dict(o) else None for o in lst]
    n_objects = sum(o is not None for o in objects)
    if lst and not n_objects:
        return reject(WRONG_SHAPE, f"expected JSON objects, got {len(lst)} non-object element(s)")
    values: dict[str, Any] = {}
    seen: set[str] = set()
    bad = 0
    max_len = plan.max_len
    for name, kind, _ in plan.fields:
        column: list[Any] = []
        present = False
        for o in objects:
            v = MISSING if o is None else o.get(name, MISSING)
            if v is MISSING:
                column.append(None)
                continue
            present = True
            s = scalar(kind, v, max_len)
            if s is BAD:
                bad += 1
                column.append(None)
            else:
                column.append(s)
        if present:
            values[name] = column
            seen.add(name)
    item = StationItem(GLOBAL_STATION, rtime, values, lst)
    return Extraction((item,), None, bad, frozenset(seen), len(lst) - n_objects)
