"""Gap filling for window series (the guide's 补全策略), and which strategy applies where.

``fill(values, strategy)`` returns a ``FillResult`` of the same length as ``values``, whose
``mask[i]`` is True exactly where ``values[i]`` was a gap (None). Known values are never changed
(the very same objects are returned). Strategies:

* ``zero``: gaps become ``0`` (cumulative values).
* ``linear``: a gap between two known values takes the straight line between its nearest known
  neighbours (``left + (right - left) / (r - l) * (i - l)``); leading gaps take the first known
  value and trailing gaps the last (edges held, never resampled or stretched).
* ``forward``: a gap takes the previous known value; leading gaps take the first known value.
* ``missing``: gaps stay None; the mask says where.

A series is numeric when every known value is an ``int`` or a ``float`` (``bool`` is not a
number here); ``zero`` and ``linear`` fill non-numeric series like ``forward``. An all-None
series becomes all zeros under ``zero`` and stays all None otherwise.

Cost: C-level passes for the mask and the type check, then Python work per run of gaps (plus
per filled element for ``linear``), never per known element; a series without gaps is returned
as is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import compress, repeat
from math import isfinite
from operator import is_, not_
from typing import Any, NamedTuple

import attrs

from da_core.config import FILL_NAMES, ModuleConfig, TopicConfig

_NUMERIC_TYPES = frozenset({int, float})
_NONE_TYPE = type(None)
_STRATEGIES = frozenset(FILL_NAMES)
_new = tuple.__new__


class FillResult(NamedTuple):
    """A filled series. ``values`` has the input's length (it is the input list itself when
    there was no gap or the strategy is ``missing``); ``mask[i]`` is True where the input had a
    gap. Immutable (a ``NamedTuple``: assembly fills several series per module input)."""

    values: list[Any]
    mask: list[bool]

    @property
    def filled(self) -> int:
        """Number of gaps (entries the strategy was applied to)."""
        return self.mask.count(True)


def _check(strategy: str, where: str) -> str:
    if strategy not in FILL_NAMES:
        raise ValueError(f"{where}: {strategy!r} is not one of {', '.join(FILL_NAMES)}")
    return strategy


def _gap_runs(mask: list[bool], gaps: int) -> list[tuple[int, int]]:
    """The half-open ranges ``[start, end)`` of consecutive gaps, in order.

    Walks whichever is fewer, the gaps or the known entries (found at C speed), so a nearly
    full and a nearly empty series both cost Python work per run, not per entry.
    """
    n = len(mask)
    runs: list[tuple[int, int]] = []
    if gaps * 2 <= n:
        start = prev = -2
        for i in compress(range(n), mask):
            if i != prev + 1:
                if start >= 0:
                    runs.append((start, prev + 1))
                start = i
            prev = i
        runs.append((start, prev + 1))
    else:
        prev = -1
        for k in compress(range(n), map(not_, mask)):
            if k > prev + 1:
                runs.append((prev + 1, k))
            prev = k
        if prev < n - 1:
            runs.append((prev + 1, n))
    return runs


def _is_numeric(values: Sequence[Any]) -> bool:
    types = set(map(type, values))
    types.discard(_NONE_TYPE)
    return types <= _NUMERIC_TYPES


def _line(left: Any, right: Any, count: int) -> list[Any]:
    """``count`` points strictly between ``left`` and ``right``, evenly spaced."""
    span = count + 1
    step = (right - left) / span
    if isfinite(step):
        return [left + step * k for k in range(1, span)]
    # (right - left) overflowed: weigh the ends instead, which cannot.
    return [left * (1 - k / span) + right * (k / span) for k in range(1, span)]


def fill(values: Sequence[Any | None], strategy: str) -> FillResult:
    """Fill the gaps (None) of ``values`` with ``strategy`` (see the module docstring).

    Raises ``ValueError`` for an unknown strategy.
    """
    out, mask, _ = fill_series(values, strategy)
    return _new(FillResult, (out, mask))


def fill_series(values: Sequence[Any | None], strategy: str) -> tuple[list[Any], list[bool], bool]:
    """``fill`` as ``(values, mask, gaps)`` where ``gaps`` is True when any entry was a gap
    (module-input assembly's hot path: no result object, no second pass over the mask)."""
    if strategy not in _STRATEGIES:
        _check(strategy, "fill strategy")
    n = len(values)
    if None not in values:  # no element is None (``in`` checks identity before equality)
        return (values if type(values) is list else list(values)), [False] * n, False
    mask = list(map(is_, values, repeat(None)))
    if not any(mask):  # an element equal to None without being None
        return (values if type(values) is list else list(values)), mask, False
    if strategy == "missing":
        return (values if type(values) is list else list(values)), mask, True
    gaps = mask.count(True)
    if gaps == n:
        return ([0] * n if strategy == "zero" else list(values)), mask, True
    if strategy != "forward" and not _is_numeric(values):
        strategy = "forward"
    out = list(values)  # never write into the caller's list
    for start, end in _gap_runs(mask, gaps):
        count = end - start
        if strategy == "zero":
            out[start:end] = [0] * count
        elif start == 0:
            out[start:end] = [out[end]] * count  # leading gaps: the first known value
        elif end == n or strategy == "forward":
            out[start:end] = [out[start - 1]] * count
        else:
            out[start:end] = _line(out[start - 1], out[end], count)
    return out, mask, True


@attrs.frozen(slots=True)
class FillResolver:
    """Which strategy fills ``field`` of ``topic``; the most specific setting wins:
    ``topic_field_overrides[(topic, field)]`` > ``field_overrides[field]`` >
    ``topic_overrides[topic]`` > ``default``.

    Every strategy name is checked on construction (``ValueError`` naming the setting).
    ``for_module`` builds the resolver of one module from its configuration.
    """

    default: str
    topic_overrides: Mapping[str, str] = attrs.field(factory=dict)
    field_overrides: Mapping[str, str] = attrs.field(factory=dict)
    topic_field_overrides: Mapping[tuple[str, str], str] = attrs.field(factory=dict)

    def __attrs_post_init__(self) -> None:
        _check(self.default, "default fill strategy")
        for topic, s in self.topic_overrides.items():
            _check(s, f"fill strategy of topic {topic}")
        for field, s in self.field_overrides.items():
            _check(s, f"fill strategy of field {field}")
        for (topic, field), s in self.topic_field_overrides.items():
            _check(s, f"fill strategy of {topic}.{field}")

    def strategy_for(self, topic: str, field: str) -> str:
        """The strategy for ``field`` of ``topic``."""
        s = self.topic_field_overrides.get((topic, field))
        if s is None:
            s = self.field_overrides.get(field)
        if s is None:
            s = self.topic_overrides.get(topic, self.default)
        return s

    def fill(self, topic: str, field: str, values: Sequence[Any | None]) -> FillResult:
        """``fill(values, self.strategy_for(topic, field))``."""
        return fill(values, self.strategy_for(topic, field))

    @classmethod
    def for_module(cls, module: ModuleConfig, topics: Mapping[str, TopicConfig]) -> FillResolver:
        """The resolver of one module: default ``module.fill_strategy``; topic overrides from
        each input topic's ``fill``; field overrides from the module's ``field_fill`` (keyed
        by field name; a key that is an input topic's aliased flat name, e.g. ``order_soc``,
        applies to that topic's field); topic-field overrides from each topic's ``field_fill``.
        """
        topic_overrides: dict[str, str] = {}
        field_overrides = dict(module.field_fill)
        topic_field: dict[tuple[str, str], str] = {}
        for name in module.inputs:
            t = topics.get(name)
            if t is None:
                continue
            if t.fill is not None:
                topic_overrides[name] = t.fill
            for field in t.all_fields():
                s = t.field_fill.get(field)
                if s is None and t.flat_name(field) != field:
                    s = module.field_fill.get(t.flat_name(field))
                if s is not None:
                    topic_field[name, field] = s
        return cls(module.fill_strategy, topic_overrides, field_overrides, topic_field)
