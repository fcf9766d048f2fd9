"""Typed columns: a window's values as machine numbers, not one Python object each.

A ``Column`` holds one value per row of a ring of ``size`` rows: a number in an ``array('d')``
plus one kind byte per row saying what the row holds, so that a value comes back as the very
type it went in as (``int`` stays ``int``, ``bool`` stays ``bool``):

* ``ABSENT``: no value;
* ``FLOAT``: a ``float`` (``nums[row]``);
* ``INT``: an ``int`` that a double holds exactly (|v| <= 2**53; ``int(nums[row])``);
* ``OBJECT``: anything else (``objs[row]``: strings, bools, big ints, lists, dicts).

A REALTIME hour costs 9 bytes per value here instead of a 24-byte float object, an 8-byte
pointer and a share of a dict or tuple.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from itertools import compress
from typing import Any

ABSENT = 0
FLOAT = 1
INT = 2
OBJECT = 3

_EXACT = 2**53
"""Integers up to this magnitude survive a round trip through a double."""

_FLOAT: set[type] = {float}
_NUMBER: set[type] = {float, int}
_KIND_OF: dict[type, int] = {float: FLOAT, int: INT}
_FLOATS = bytes([FLOAT]) * 512


class Column:
    """One field's values, one row per ring position (see the module docstring)."""

    __slots__ = ("kinds", "nums", "objs")

    def __init__(self, size: int) -> None:
        self.kinds = bytearray(size)
        self.nums = array("d", bytes(8 * size))
        self.objs: dict[int, Any] = {}

    def put(self, row: int, value: Any) -> None:
        t = type(value)
        if t is float:
            self.nums[row] = value
            kind = FLOAT
        elif t is int and -_EXACT <= value <= _EXACT:
            self.nums[row] = value
            kind = INT
        else:
            self.objs[row] = value
            self.kinds[row] = OBJECT
            return
        if self.kinds[row] == OBJECT:
            del self.objs[row]
        self.kinds[row] = kind

    def put_run(self, start: int, values: Sequence[Any]) -> None:
        """``put`` each of ``values`` in rows ``start, start + 1, ...`` (within the ring): a run
        of floats and exact ints is written as two slices, anything else value by value."""
        n = len(values)
        end = start + n
        kinds = self.kinds
        if self.objs and OBJECT in kinds[start:end]:
            for row in range(start, end):
                self.objs.pop(row, None)
        types = set(map(type, values))
        if types <= _FLOAT:
            kinds[start:end] = _FLOATS[:n] if n <= len(_FLOATS) else bytes([FLOAT]) * n
            self.nums[start:end] = array("d", values)
            return
        if types <= _NUMBER and all(-_EXACT <= v <= _EXACT for v in values if type(v) is int):
            kinds[start:end] = bytes(map(_KIND_OF.__getitem__, map(type, values)))
            self.nums[start:end] = array("d", values)
            return
        for row, v in zip(range(start, end), values, strict=True):
            kinds[row] = ABSENT  # the objects were let go above
            self.put(row, v)

    def clear_run(self, start: int, end: int) -> None:
        """``clear`` rows ``start`` to ``end - 1``."""
        if self.objs:
            for row in range(start, end):
                self.objs.pop(row, None)
        self.kinds[start:end] = bytes(end - start)

    def clear(self, row: int) -> None:
        if self.kinds[row] == OBJECT:
            del self.objs[row]
        self.kinds[row] = ABSENT

    def get(self, row: int) -> Any:
        """The value of ``row`` as it was put (None when absent)."""
        kind = self.kinds[row]
        if kind == FLOAT:
            return self.nums[row]
        if kind == INT:
            return int(self.nums[row])
        if kind == OBJECT:
            return self.objs[row]
        return None

    def has(self, row: int) -> bool:
        return self.kinds[row] != ABSENT

    def read(self, start: int, present: bytes | bytearray) -> list[Any]:
        """Every row's value, from ring position ``start`` round to ``start - 1``; None where
        the row is absent here or ``present[row]`` is 0 (the row holds no item; ``present``
        holds only 0 and 1).

        The work in Python is per run of gaps and per row that is not a float, not per row: a
        grid still filling up (a new station, hours not yet seen) reads almost as fast as a
        full one."""
        kinds = self.kinds
        nums: list[Any] = self.nums.tolist()
        size = len(kinds)
        floats = kinds.count(FLOAT)
        if floats == size and present.count(1) == size:
            return nums[start:] + nums[:start] if start else nums
        has = kinds.translate(_HAS)  # 1 where the row holds a value of any kind
        keep = (int.from_bytes(has, "little") & int.from_bytes(present, "little")).to_bytes(
            size, "little"
        )
        _blank(nums, keep)
        if floats + kinds.count(ABSENT) < size:  # ints and objects: their own rows only
            objs = self.objs
            for row in compress(range(size), kinds.translate(_TYPED)):
                if keep[row]:
                    nums[row] = int(nums[row]) if kinds[row] == INT else objs[row]
        return nums[start:] + nums[:start] if start else nums


_HAS = bytes([0, 1, 1, 1]) + bytes(252)
"""``bytes.translate`` table: a kind byte to 1 when the row holds a value."""
_TYPED = bytes([0, 0, 1, 1]) + bytes(252)
"""``bytes.translate`` table: a kind byte to 1 when the row's value is not a float (an int or
an object, which ``read`` makes from ``nums`` or takes from ``objs``)."""


def _blank(values: list[Any], keep: bytes) -> None:
    """Set ``values[i]`` to None wherever ``keep[i]`` is 0, a slice per run of zeros."""
    size = len(keep)
    gap = keep.find(0)
    while gap != -1:
        end = keep.find(1, gap)
        if end == -1:
            end = size
        values[gap:end] = [None] * (end - gap)
        gap = keep.find(0, end)
