"""Sanitising decoded JSON values: field types, station/device ids, non-finite numbers.

A value that fails its field type comes back as ``BAD`` (the caller drops and counts it).
The checks use exact ``type(x) is ...`` tests first (what JSON decoders produce) and fall back
to ``isinstance`` for subclasses; ``bool`` is never a number.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

KIND_ANY: Final = 0
KIND_NUMBER: Final = 1
KIND_STRING: Final = 2
KIND_NUMBER_LIST: Final = 3
KIND_STRING_LIST: Final = 4
KIND_OBJECT: Final = 5

KINDS: Final[dict[str, int]] = {
    "any": KIND_ANY,
    "number": KIND_NUMBER,
    "string": KIND_STRING,
    "number_list": KIND_NUMBER_LIST,
    "string_list": KIND_STRING_LIST,
    "object": KIND_OBJECT,
}


AS_IS: Final[dict[int, frozenset[type]]] = {
    KIND_ANY: frozenset((str, int, float, bool, type(None))),
    KIND_NUMBER: frozenset((int, float)),
    KIND_STRING: frozenset((str,)),
}
"""Per kind, the exact types a field keeps unchanged (floats only when finite); other values
go through ``sanitize``."""


class _Bad:
    __slots__ = ()

    def __repr__(self) -> str:
        return "BAD"


BAD: Final[Any] = _Bad()
"""Marker for a value that must be dropped (and counted)."""

MISSING: Final[Any] = object()
"""Marker for an absent key (``dict.get(key, MISSING)``)."""


def kind_of(type_name: str) -> int:
    """The kind code of a ``field_types`` name (unknown names, rejected by config validation,
    behave as ``any``)."""
    return KINDS.get(type_name, KIND_ANY)


# ------------------------------------------------------------------------------ scalars


def number(v: Any) -> Any:
    """int (kept) or finite float; numeric strings become floats; anything else is ``BAD``."""
    t = type(v)
    if t is float:
        return v if v - v == 0.0 else BAD
    if t is int:
        return v
    if t is bool:
        return BAD
    if isinstance(v, str):
        if "_" in v:  # float() accepts "1_000"; a payload number never looks like that
            return BAD
        try:
            f = float(v)
        except ValueError:
            return BAD
        return f if f - f == 0.0 else BAD
    if isinstance(v, float):
        return float(v) if v - v == 0.0 else BAD
    if isinstance(v, int) and not isinstance(v, bool):
        return int(v)
    return BAD


def string(v: Any) -> Any:
    """str (kept); ints and finite floats become ``str(v)``; anything else is ``BAD``."""
    t = type(v)
    if t is str:
        return v
    if t is int:
        return str(v)
    if t is float:
        return str(v) if v - v == 0.0 else BAD
    if t is bool:
        return BAD
    if isinstance(v, str):
        return str(v)
    if isinstance(v, int) and not isinstance(v, bool):
        return str(int(v))
    if isinstance(v, float):
        return str(float(v)) if v - v == 0.0 else BAD
    return BAD


def _is_list(v: Any) -> bool:
    return type(v) is list or isinstance(v, list)


def number_list(v: Any, max_len: int) -> Any:
    """A list of numbers (each as ``number``) no longer than ``max_len``, else ``BAD``."""
    if not _is_list(v) or len(v) > max_len:
        return BAD
    for x in v:
        t = type(x)
        if t is float:
            if x - x != 0.0:
                return BAD
        elif t is not int:
            break
    else:
        return v  # already clean: no copy
    out = []
    for x in v:
        y = number(x)
        if y is BAD:
            return BAD
        out.append(y)
    return out


def string_list(v: Any, max_len: int) -> Any:
    """A list of strings (each as ``string``) no longer than ``max_len``, else ``BAD``."""
    if not _is_list(v) or len(v) > max_len:
        return BAD
    for x in v:
        if type(x) is not str:
            break
    else:
        return v
    out = []
    for x in v:
        y = string(x)
        if y is BAD:
            return BAD
        out.append(y)
    return out


def is_clean(v: Any, max_len: int) -> bool:
    """True when ``v`` holds no non-finite float and no list longer than ``max_len``, at any
    depth (iterative: no recursion limit whatever the nesting)."""
    stack = [v]
    pop = stack.pop
    push = stack.extend
    while stack:
        x = pop()
        t = type(x)
        if t is float:
            if x - x != 0.0:
                return False
        elif t is list:
            if len(x) > max_len:
                return False
            push(x)
        elif t is dict:
            push(x.values())
        elif t is str or t is int or t is bool or x is None:
            continue
        elif isinstance(x, float):
            if x - x != 0.0:
                return False
        elif isinstance(x, (list, tuple)):
            if len(x) > max_len:
                return False
            push(x)
        elif isinstance(x, dict):
            push(x.values())
    return True


def any_value(v: Any, max_len: int) -> Any:
    """Whatever JSON gives, except non-finite floats and over-long arrays anywhere inside."""
    t = type(v)
    if t is str or t is int or t is bool or v is None:
        return v
    if t is float:
        return v if v - v == 0.0 else BAD
    return v if is_clean(v, max_len) else BAD


def obj(v: Any, max_len: int) -> Any:
    """A JSON object, clean at every depth (see ``is_clean``), else ``BAD``."""
    if not (type(v) is dict or isinstance(v, dict)):
        return BAD
    return v if is_clean(v, max_len) else BAD


def sanitize(kind: int, v: Any, max_len: int) -> Any:
    """Sanitise ``v`` as a field of ``kind``; ``BAD`` when it must be dropped."""
    if kind == KIND_NUMBER:
        return number(v)
    if kind == KIND_STRING:
        return string(v)
    if kind == KIND_NUMBER_LIST:
        return number_list(v, max_len)
    if kind == KIND_STRING_LIST:
        return string_list(v, max_len)
    if kind == KIND_OBJECT:
        return obj(v, max_len)
    return any_value(v, max_len)


def scalar(kind: int, v: Any, max_len: int) -> Any:
    """Sanitise one element of a column (global topics) or a slot list: the field's kind for
    scalar kinds, ``any`` otherwise."""
    if kind == KIND_NUMBER:
        return number(v)
    if kind == KIND_STRING:
        return string(v)
    return sanitize(kind, v, max_len)


# ------------------------------------------------------------------------------ ids


def ident(v: Any) -> str | None:
    """A station or device id: str stripped, int via ``str()``; empty or other types → None."""
    t = type(v)
    if t is str:
        s = v.strip()
        return s or None
    if t is int:
        return str(v)
    if t is bool or v is None:
        return None
    if isinstance(v, str):
        return str(v).strip() or None
    if isinstance(v, int) and not isinstance(v, bool):
        return str(int(v))
    return None


def gun_ids(v: Any, max_len: int) -> tuple[str, ...] | None:
    """A list of gun ids (each as ``ident``); None when it is not one or an element is bad."""
    if not _is_list(v) or len(v) > max_len:
        return None
    for x in v:
        if type(x) is not str:
            break
    else:
        ids = tuple([x.strip() for x in v])
        return ids if all(ids) else None
    out: list[str] = []
    for x in v:
        s = ident(x)
        if s is None:
            return None
        out.append(s)
    return tuple(out)


Cleaner = Callable[[Any, int], Any]


def cleaner(kind: int) -> Cleaner:
    """The sanitiser of one kind as a ``(value, max_len) -> value | BAD`` function."""
    if kind == KIND_NUMBER_LIST:
        return number_list
    if kind == KIND_STRING_LIST:
        return string_list
    if kind == KIND_OBJECT:
        return obj
    if kind == KIND_NUMBER:
        return lambda v, _max_len: number(v)
    if kind == KIND_STRING:
        return lambda v, _max_len: string(v)
    return any_value
