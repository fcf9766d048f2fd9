"""``da_core.restore_plan``: replay ranges and retention warnings, by example and by property."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from da_core.restore_plan import (
    EMPTY,
    ReplayRange,
    RestorePlan,
    RetentionGap,
    lookback_times,
    plan_restore,
)
from da_core.types import TopicPartition

NOW = 1_700_000_000.0
T = TopicPartition("REALTIME", 0)
P = TopicPartition("PARAMS", 0)
EXPIRIES: dict[str, float | None] = {"REALTIME": 3600.0, "PARAMS": None}


def _plan(
    tp: TopicPartition,
    committed: int | None,
    marks: tuple[int, int],
    answer: int | None = None,
) -> RestorePlan:
    return plan_restore(
        [tp],
        committed={tp: committed},
        watermarks={tp: marks},
        expiries=EXPIRIES,
        offsets_at_lookback={tp: answer} if tp.topic == "REALTIME" else {},
    )


def test_lookback_times_ask_now_minus_expiry_only_for_topics_that_expire() -> None:
    times = lookback_times([T, P, TopicPartition("OTHER", 1)], EXPIRIES, NOW)

    assert times == {T: NOW - 3600.0}


def test_an_expiring_topic_replays_from_the_lookback_answer_to_the_committed_offset() -> None:
    assert _plan(T, committed=80, marks=(0, 100), answer=30).ranges[T] == ReplayRange(30, 80)


def test_a_topic_that_never_expires_replays_from_the_low_watermark() -> None:
    assert _plan(P, committed=80, marks=(5, 100)).ranges[P] == ReplayRange(5, 80)


def test_no_record_as_recent_as_the_lookback_means_nothing_to_replay() -> None:
    assert _plan(T, committed=80, marks=(0, 100), answer=None).ranges[T].empty


def test_a_lookback_answer_past_the_committed_offset_means_nothing_to_replay() -> None:
    assert _plan(T, committed=80, marks=(0, 100), answer=90).ranges[T] == ReplayRange(80, 80)


@pytest.mark.parametrize("committed", [None, 101, 4])
def test_no_or_an_out_of_range_committed_offset_replays_nothing(committed: int | None) -> None:
    plan = _plan(T, committed=committed, marks=(5, 100), answer=10)

    assert plan.ranges[T] == EMPTY
    assert plan.to_replay == {}
    assert plan.gaps == ()


def test_a_partition_without_watermarks_is_planned_empty() -> None:
    plan = plan_restore(
        [T], committed={T: 3}, watermarks={}, expiries=EXPIRIES, offsets_at_lookback={}
    )

    assert plan.ranges == {T: EMPTY}


def test_a_log_that_starts_after_the_lookback_is_a_retention_gap() -> None:
    plan = _plan(T, committed=80, marks=(40, 100), answer=40)

    assert plan.ranges[T] == ReplayRange(40, 80)
    assert plan.gaps == (RetentionGap("REALTIME", (0,), 3600.0),)
    assert "may be shorter than its expiry" in plan.gaps[0].message


def test_records_older_than_the_lookback_retained_is_no_gap() -> None:
    assert _plan(T, committed=80, marks=(40, 100), answer=55).gaps == ()
    assert _plan(T, committed=80, marks=(0, 100), answer=0).gaps == ()


def test_a_deleted_record_of_a_topic_that_never_expires_is_a_gap() -> None:
    plan = _plan(P, committed=80, marks=(1, 100))

    assert plan.gaps == (RetentionGap("PARAMS", (0,), None),)
    assert "never expires" in plan.gaps[0].message


def test_gaps_are_one_per_topic_naming_its_partitions() -> None:
    tps = [TopicPartition("REALTIME", p) for p in (2, 0, 1)]
    plan = plan_restore(
        tps,
        committed=dict.fromkeys(tps, 50),
        watermarks={tps[0]: (10, 60), tps[1]: (10, 60), tps[2]: (0, 60)},
        expiries=EXPIRIES,
        offsets_at_lookback={tps[0]: 10, tps[1]: 10, tps[2]: 0},
    )

    assert plan.gaps == (RetentionGap("REALTIME", (0, 2), 3600.0),)
    assert len(plan.ranges) == 3
    assert plan.total == 40 + 40 + 50


def test_a_replay_range_refuses_start_after_end() -> None:
    with pytest.raises(ValueError, match="start <= end"):
        ReplayRange(5, 4)


# ------------------------------------------------------------------------------ properties

offsets = st.integers(min_value=0, max_value=1_000)


@st.composite
def partition_facts(draw: st.DrawFn) -> tuple[int | None, tuple[int, int], int | None, bool]:
    low = draw(offsets)
    high = draw(st.integers(min_value=low, max_value=low + 1_000))
    committed = draw(st.none() | st.integers(min_value=0, max_value=high + 50))
    answer = draw(st.none() | st.integers(min_value=low, max_value=high))
    expires = draw(st.booleans())
    return committed, (low, high), answer, expires


@given(st.lists(partition_facts(), min_size=1, max_size=6))
def test_ranges_stay_between_the_low_watermark_and_the_committed_offset(
    facts: list[tuple[int | None, tuple[int, int], int | None, bool]],
) -> None:
    tps = [TopicPartition("E" if f[3] else "N", i) for i, f in enumerate(facts)]
    plan = plan_restore(
        tps,
        committed={tp: f[0] for tp, f in zip(tps, facts, strict=True)},
        watermarks={tp: f[1] for tp, f in zip(tps, facts, strict=True)},
        expiries={"E": 60.0, "N": None},
        offsets_at_lookback={tp: f[2] for tp, f in zip(tps, facts, strict=True) if f[3]},
    )

    assert set(plan.ranges) == set(tps)
    for tp, (committed, (low, _high), _answer, _expires) in zip(tps, facts, strict=True):
        r = plan.ranges[tp]
        if r.empty:
            continue
        assert committed is not None
        assert r.end == committed  # never past the committed offset (live reads from there)
        assert r.start >= low  # never below the oldest retained record
    for tp, (committed, (low, _high), _answer, _expires) in zip(tps, facts, strict=True):
        if committed is None or committed <= low:
            assert plan.ranges[tp].empty


@given(offsets, st.integers(min_value=0, max_value=500), st.none() | offsets)
def test_a_topic_that_never_expires_replays_everything_retained_below_the_commit(
    low: int, extra: int, committed: int | None
) -> None:
    high = low + extra
    plan = plan_restore(
        [P],
        committed={P: committed},
        watermarks={P: (low, high)},
        expiries=EXPIRIES,
        offsets_at_lookback={},
    )

    if committed is not None and low <= committed <= high:
        assert plan.ranges[P] == ReplayRange(low, committed)
    else:
        assert plan.ranges[P].empty
