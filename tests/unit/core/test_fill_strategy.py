"""Fill strategies (docs/internals.md, "Fill strategies"; SPEC §3) and their resolution."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from da_core.config import ModuleConfig, TopicConfig
from da_core.fill_strategy import FillResolver, FillResult, fill, fill_series

STRATEGIES = ("zero", "linear", "forward", "missing")

# ---------------------------------------------------------------- examples


def test_zero_fills_gaps_with_zero() -> None:
    assert fill([1.5, None, 2.5, None], "zero").values == [1.5, 0, 2.5, 0]


def test_linear_interpolates_between_the_nearest_known_neighbours() -> None:
    assert fill([0, None, None, 3], "linear").values == [0, 1.0, 2.0, 3]


def test_linear_holds_the_edges() -> None:
    assert fill([None, 2.0, None, 4.0, None, None], "linear").values == [
        2.0,
        2.0,
        3.0,
        4.0,
        4.0,
        4.0,
    ]


def test_forward_takes_the_previous_value_and_leading_gaps_the_first_known() -> None:
    assert fill([None, 1, None, None, 5, None], "forward").values == [1, 1, 1, 1, 5, 5]


def test_missing_leaves_gaps_as_none() -> None:
    assert fill([1, None, 3], "missing").values == [1, None, 3]


def test_mask_marks_exactly_the_gaps() -> None:
    assert fill([None, 1, None, 3], "linear").mask == [True, False, True, False]


def test_linear_falls_back_to_forward_for_non_numeric_series() -> None:
    assert fill(["a", None, "b", None], "linear").values == ["a", "a", "b", "b"]


def test_zero_falls_back_to_forward_for_non_numeric_series() -> None:
    assert fill([None, "x", None], "zero").values == ["x", "x", "x"]


def test_booleans_are_not_numbers_for_linear() -> None:
    assert fill([True, None, False], "linear").values == [True, True, False]


def test_a_series_mixing_numbers_and_text_is_not_numeric() -> None:
    assert fill([1, None, "3"], "zero").values == [1, 1, "3"]


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [("zero", [0, 0, 0]), ("linear", [None] * 3), ("forward", [None] * 3), ("missing", [None] * 3)],
)
def test_all_none_input(strategy: str, expected: list[Any]) -> None:
    r = fill([None, None, None], strategy)
    assert r.values == expected
    assert r.mask == [True, True, True]


def test_series_without_gaps_comes_back_as_is_with_an_all_false_mask() -> None:
    values = [1.0, 2.0, 3.0]
    r = fill(values, "linear")
    assert r.values is values
    assert r.mask == [False, False, False]
    assert r.filled == 0


def test_fill_never_writes_into_the_input_list() -> None:
    values: list[Any] = [1.0, None, 3.0]
    fill(values, "linear")
    assert values == [1.0, None, 3.0]


def test_fill_accepts_a_tuple_and_returns_a_list() -> None:
    assert fill((1, None), "forward") == FillResult([1, 1], [False, True])


def test_fill_of_an_empty_series_is_empty() -> None:
    assert fill([], "linear") == FillResult([], [])


def test_linear_between_extreme_values_stays_finite_and_between_them() -> None:
    values = fill([-1e308, None, 1e308], "linear").values
    assert math.isfinite(values[1])
    assert -1e308 <= values[1] <= 1e308


def test_fill_rejects_an_unknown_strategy() -> None:
    with pytest.raises(ValueError, match="spline"):
        fill([1, None], "spline")


# ---------------------------------------------------------------- properties

_number = st.one_of(
    st.integers(-(10**9), 10**9),
    st.floats(-1e12, 1e12, allow_nan=False, allow_infinity=False),
)
_numeric_series = st.lists(st.one_of(st.none(), _number), max_size=60)
_text_series = st.lists(st.one_of(st.none(), st.text(max_size=3)), max_size=30).filter(
    lambda v: any(x is not None for x in v)
)


def _known(values: list[Any]) -> list[int]:
    return [i for i, v in enumerate(values) if v is not None]


@settings(max_examples=300)
@given(_numeric_series, st.sampled_from(STRATEGIES))
def test_property_output_has_the_input_length_and_mask_marks_the_gaps(
    values: list[Any], strategy: str
) -> None:
    r = fill(values, strategy)
    assert len(r.values) == len(values)
    assert r.mask == [v is None for v in values]


@settings(max_examples=300)
@given(_numeric_series, st.sampled_from(STRATEGIES))
def test_property_known_values_are_untouched(values: list[Any], strategy: str) -> None:
    r = fill(values, strategy)
    assert all(r.values[i] is values[i] for i in _known(values))


@settings(max_examples=300)
@given(_numeric_series)
def test_property_linear_fills_every_gap_on_the_line_between_its_neighbours(
    values: list[Any],
) -> None:
    known = _known(values)
    out = fill(values, "linear").values
    for i, v in enumerate(values):
        if v is not None or not known:
            continue
        left = max((k for k in known if k < i), default=None)
        right = min((k for k in known if k > i), default=None)
        if left is None:
            assert right is not None
            assert out[i] == values[right]  # leading edge held
        elif right is None:
            assert out[i] == values[left]  # trailing edge held
        else:
            a, b = values[left], values[right]
            assert min(a, b) <= out[i] <= max(a, b)
            expected = a + (b - a) * (i - left) / (right - left)
            assert math.isclose(out[i], expected, rel_tol=1e-9, abs_tol=1e-6)


@settings(max_examples=300)
@given(_numeric_series)
def test_property_forward_fills_with_the_previous_known_value(values: list[Any]) -> None:
    known = _known(values)
    out = fill(values, "forward").values
    for i, v in enumerate(values):
        if v is None and known:
            prev = max((k for k in known if k < i), default=known[0])
            assert out[i] is values[prev]


@settings(max_examples=300)
@given(_numeric_series)
def test_property_zero_fills_every_gap_with_zero(values: list[Any]) -> None:
    out = fill(values, "zero").values
    assert all(out[i] == 0 for i, v in enumerate(values) if v is None)


@settings(max_examples=300)
@given(_numeric_series)
def test_property_missing_keeps_every_gap_none(values: list[Any]) -> None:
    r = fill(values, "missing")
    assert r.values == values


@settings(max_examples=300)
@given(_text_series, st.sampled_from(["zero", "linear"]))
def test_property_non_numeric_series_fill_like_forward(values: list[Any], strategy: str) -> None:
    assert fill(values, strategy) == fill(values, "forward")


@settings(max_examples=300)
@given(_numeric_series, st.sampled_from(STRATEGIES))
def test_property_fill_is_idempotent_on_its_own_output(values: list[Any], strategy: str) -> None:
    once = fill(values, strategy).values
    assert fill(once, strategy).values == once


# ---------------------------------------------------------------- FillResolver


def test_resolver_uses_the_default_without_overrides() -> None:
    assert FillResolver("zero").strategy_for("T", "f") == "zero"


def test_resolver_topic_override_beats_the_default() -> None:
    r = FillResolver("zero", topic_overrides={"T": "linear"})
    assert r.strategy_for("T", "f") == "linear"
    assert r.strategy_for("U", "f") == "zero"


def test_resolver_field_override_beats_the_topic_override() -> None:
    r = FillResolver("zero", topic_overrides={"T": "linear"}, field_overrides={"f": "forward"})
    assert r.strategy_for("T", "f") == "forward"
    assert r.strategy_for("T", "g") == "linear"


def test_resolver_topic_field_override_beats_the_field_override() -> None:
    r = FillResolver(
        "zero",
        field_overrides={"f": "forward"},
        topic_field_overrides={("T", "f"): "missing"},
    )
    assert r.strategy_for("T", "f") == "missing"
    assert r.strategy_for("U", "f") == "forward"


def test_resolver_fill_applies_the_resolved_strategy() -> None:
    r = FillResolver("zero", topic_overrides={"T": "forward"})
    assert r.fill("T", "f", [1, None]).values == [1, 1]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"default": "cubic"},
        {"default": "zero", "topic_overrides": {"T": "cubic"}},
        {"default": "zero", "field_overrides": {"f": "cubic"}},
        {"default": "zero", "topic_field_overrides": {("T", "f"): "cubic"}},
    ],
)
def test_resolver_rejects_an_unknown_strategy(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="cubic"):
        FillResolver(**kwargs)


def test_resolver_for_module_reads_module_and_topic_settings() -> None:
    topics = {
        "T": TopicConfig(
            name="T",
            fields=("a", "b", "c"),
            fill="linear",
            field_fill={"a": "missing"},
        ),
        "U": TopicConfig(name="U", fields=("a", "d"), alias="u"),
    }
    module = ModuleConfig(
        name="m",
        inputs=("T", "U"),
        fill_strategy="zero",
        field_fill={"b": "forward", "u_d": "missing"},
    )
    r = FillResolver.for_module(module, topics)
    assert r.strategy_for("T", "a") == "missing"  # the topic's field setting
    assert r.strategy_for("T", "b") == "forward"  # the module's field setting
    assert r.strategy_for("T", "c") == "linear"  # the topic's setting
    assert r.strategy_for("U", "a") == "zero"  # the module's default
    assert r.strategy_for("U", "d") == "missing"  # the module's setting by flat name


class _EqualsEverything:
    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = object.__hash__


@pytest.mark.parametrize("strategy", ["zero", "linear", "forward", "missing"])
def test_only_none_itself_is_a_gap_not_a_value_equal_to_none(strategy: str) -> None:
    odd = _EqualsEverything()
    values, mask, gaps = fill_series([odd, 2.0, odd], strategy)
    assert values[0] is odd
    assert values[2] is odd
    assert mask == [False, False, False]
    assert gaps is False
    values, mask, gaps = fill_series([odd, None, 3.0], strategy)
    assert mask == [False, True, False]
    assert gaps is True
    assert values[0] is odd
