"""The whole-record checks of the extractors (``da_core.extractors.tree``) and the intake
limits' helpers (``da_core.limits``)."""

from __future__ import annotations

import math
from typing import Any

import pytest

from da_core.catalog import DEFAULT_TOPICS
from da_core.codec import StdlibJsonCodec
from da_core.extractors import extract
from da_core.extractors.tree import check_tree, drop_non_finite
from da_core.limits import MAX_NESTING, IntakeLimits, safe_text
from da_core.types import Record

RT = {t.name: t for t in DEFAULT_TOPICS}["SCHEDULE-STATION-REALTIME-DATA"]


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth - 1):
        value = [value]
    return [value]


def test_check_tree_finds_lone_surrogates_in_keys_and_values_and_bounds_depth() -> None:
    assert check_tree({"a": ["ok", "é", "😀"]}, 10) == (None, "")
    assert check_tree({"a": ["x\ud800"]}, 10)[0] == "bad_string"
    assert check_tree({"\udfff": 1}, 10)[0] == "bad_string"
    assert check_tree(nested(10), 10) == (None, "")
    assert check_tree(nested(11), 10)[0] == "too_deep"


def test_check_tree_turns_integers_beyond_64_bits_into_floats() -> None:
    value = {"a": [2**70, -(2**80), 10**400], "b": 5}
    assert check_tree(value, 10) == (None, "")
    assert value == {"a": [float(2**70), float(-(2**80)), math.inf], "b": 5}


def test_drop_non_finite_counts_only_outside_the_judged_fields() -> None:
    raw = {"f": math.nan, "g": {"x": math.inf, "y": 1}, "h": [1.0, -math.inf]}
    assert drop_non_finite(raw, {"f"}) == 1  # g.x; f was the sanitiser's; h's element: not
    assert raw == {"g": {"y": 1}, "h": [1.0, None]}


def test_a_stdlib_decoded_record_past_max_nesting_is_too_deep() -> None:
    row = (
        b'{"stationId": "S1", "sendTime": "2026-11-10 00:00:00", "x": '
        + b"[" * (MAX_NESTING + 5)
        + b"]" * (MAX_NESTING + 5)
        + b"}"
    )
    rec = Record(RT.name, 0, 0, b'{"realTimeData": [' + row + b"]}", None, 0.0)
    ex = extract(RT, rec, StdlibJsonCodec())
    assert ex.rejection is not None
    assert ex.rejection.reason == "too_deep"


@pytest.mark.parametrize(
    ("value", "problem"),
    [("S1", None), ("站点-7", None), ("S" * 129, "129 characters"), ("a\nb", "non-printable")],
)
def test_ids_are_bounded_and_printable(value: str, problem: str | None) -> None:
    found = IntakeLimits().id_problem(value)
    assert (found is None) if problem is None else (found is not None and problem in found)


def test_safe_text_escapes_and_cuts() -> None:
    assert safe_text("a\nb\ud800") == "'a\\nb\\ud800'"
    assert safe_text("x" * 100, 10).endswith("(100 characters)")
