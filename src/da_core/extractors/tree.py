"""Cleaning decoded records as trees: the checks that make every value of a record safe to
encode again (rekey shares, output, log lines) and keep non-finite numbers from the model.

A JSON decoder can give values that no encoder of the loop writes back: lone surrogate escapes
(``"\\ud800"``), nesting deeper than the encoder's limit, non-finite numbers (``NaN``,
``Infinity``, ``1e400``) and integers beyond 64 bits. Two walks (iterative: no recursion limit)
take care of them:

* ``check_tree`` runs on the whole decoded value before it is split: it reports the first
  string (key or value) that cannot be encoded (``BAD_STRING``) or the first container deeper
  than ``max_depth`` (``TOO_DEEP``), which make the record bad input, and turns integers
  outside ``[-2**63, 2**64)`` into floats (``inf`` beyond the float range) in place, so that
  the field sanitisers judge them as numbers;
* ``drop_non_finite`` runs on each item's ``raw`` after the split (the field sanitisers have
  judged the configured fields on the original values): it removes every non-finite number
  in place (a key of an object is deleted; an element of an array becomes None so that arrays
  stay aligned) and returns how many it removed outside the configured fields, which the
  sanitisers have already counted.

A codec that vouches for what it decoded (``loads_checked``; orjson's own decoder refuses all
of the above but depth) spares both walks; see ``extract``.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Final

from da_core.limits import BAD_STRING, TOO_DEEP, safe_text

INT_MIN: Final = -(2**63)
INT_END: Final = 2**64
"""Integers in ``[INT_MIN, INT_END)`` are kept as they are (what 64-bit encoders write)."""


def _bad_string(s: str) -> bool:
    if s.isascii():
        return False
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _as_float(v: int) -> float:
    try:
        return float(v)
    except OverflowError:
        return float("inf") if v > 0 else float("-inf")


def check_tree(value: Any, max_depth: int) -> tuple[str | None, str]:
    """(reason, detail) of the first string that cannot be encoded or the first container
    deeper than ``max_depth`` in ``value``; (None, "") when there is none. Integers beyond 64
    bits become floats in place. Depth counts containers: ``[]`` is at depth 1, ``[[]]``'s
    inner array at 2."""
    t = type(value)
    if t is str:
        if _bad_string(value):
            return BAD_STRING, f"a string that cannot be encoded: {safe_text(value)}"
        return None, ""
    if t is not dict and t is not list:
        return None, ""
    stack: list[tuple[Any, int]] = [(value, 1)]
    pop = stack.pop
    push = stack.append
    while stack:
        node, depth = pop()
        if depth > max_depth:
            return TOO_DEEP, f"nesting deeper than {max_depth} levels"
        pairs = node.items() if type(node) is dict else enumerate(node)
        big: list[Any] = []
        for k, v in pairs:
            if type(k) is str and _bad_string(k):
                return BAD_STRING, f"a key that cannot be encoded: {safe_text(k)}"
            tv = type(v)
            if tv is str:
                if _bad_string(v):
                    return BAD_STRING, f"a string that cannot be encoded: {safe_text(v)}"
            elif tv is dict or tv is list:
                push((v, depth + 1))
            elif tv is int and not INT_MIN <= v < INT_END:
                big.append(k)
        for k in big:
            node[k] = _as_float(node[k])
    return None, ""


def drop_non_finite(raw: Any, judged: Collection[str], judged_prefix: str = "") -> int:
    """Remove every non-finite number from ``raw`` (one item's source object, or a global
    item's list of them) in place; returns how many were removed outside the top-level keys
    ``judged`` (or starting with ``judged_prefix``, when not empty): those the field
    sanitisers read, and counted when they dropped them. Elements of arrays are not counted
    (an array that holds one is dropped and counted by its field's sanitiser)."""
    counted = 0
    stack: list[tuple[Any, bool]] = []
    if type(raw) is dict:
        counted += _strip_dict(raw, stack, judged, judged_prefix)
    elif type(raw) is list:  # a global item: the list of source objects
        for i, element in enumerate(raw):
            te = type(element)
            if te is dict:
                counted += _strip_dict(element, stack, judged, judged_prefix)
            elif te is list:
                stack.append((element, True))
            elif te is float and element - element != 0.0:
                raw[i] = None
    while stack:
        node, count = stack.pop()
        if type(node) is dict:
            n = _strip_dict(node, stack, (), "", nested_count=count)
            counted += n
        else:
            for i, v in enumerate(node):
                tv = type(v)
                if tv is float:
                    if v - v != 0.0:
                        node[i] = None
                elif tv is dict or tv is list:
                    stack.append((v, count))
    return counted


def _strip_dict(
    node: dict[Any, Any],
    stack: list[tuple[Any, bool]],
    judged: Collection[str],
    prefix: str,
    *,
    nested_count: bool = True,
) -> int:
    """Strip one object; push its containers; return the removals to count."""
    gone: list[Any] = []
    counted = 0
    for k, v in node.items():
        tv = type(v)
        count = nested_count and not (k in judged or (prefix and str(k).startswith(prefix)))
        if tv is float:
            if v - v != 0.0:
                gone.append(k)
                counted += count
        elif tv is dict or tv is list:
            stack.append((v, count))
    for k in gone:
        del node[k]
    return counted
