"""Issue 12 target 1: a station's runs start at least ``min_run_interval`` apart; updates in
between coalesce into one run that starts when the interval has passed, and no update is left
without a run that saw it."""

from __future__ import annotations

import itertools

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from da_core.catalog import default_catalog
from da_core.engine import Engine, StationRun

from .test_engine import PARAM, RT, T0, Feed, finish_all, make, param, realtime


def _engine(gap: float) -> Engine:
    cat = default_catalog()
    m = cat.module("load_prediction")
    cat = cat.replace_module(attrs.evolve(m, trigger=attrs.evolve(m.trigger, min_run_interval=gap)))
    return make(cat)


def test_updates_within_the_interval_coalesce_into_one_run_when_it_has_passed() -> None:
    eng, feed = _engine(1.0), Feed()
    eng.ingest([feed.rec(PARAM, param("S1")), feed.rec(RT, realtime("S1", "10", 1.0))], T0)
    (first,) = eng.take_runs(10, T0)
    finish_all(eng, [first], T0)
    for i in range(5):  # five updates in the next 0.9 s: no run yet
        now = T0 + 0.1 + i * 0.2
        eng.ingest([feed.rec(RT, realtime("S1", "10", float(i + 2)))], now)
        eng.tick(now)
        assert eng.take_runs(10, now) == []
    assert eng.runnable == 0
    eng.tick(T0 + 1.0)
    (second,) = eng.take_runs(10, T0 + 1.0)  # exactly one, with the newest value
    assert second.module_input["outputPowerPerStationAvg"] == 6.0
    finish_all(eng, [second], T0 + 1.0)
    eng.tick(T0 + 5.0)
    assert eng.take_runs(10, T0 + 5.0) == []  # nothing new: no run


def test_a_station_idle_for_longer_than_the_interval_runs_at_once() -> None:
    eng, feed = _engine(1.0), Feed()
    eng.ingest([feed.rec(PARAM, param("S1")), feed.rec(RT, realtime("S1", "10", 1.0))], T0)
    finish_all(eng, eng.take_runs(10, T0), T0)
    eng.ingest([feed.rec(RT, realtime("S1", "11", 2.0))], T0 + 3.0)
    (run,) = eng.take_runs(10, T0 + 3.0)
    assert run.module_input["outputPowerPerStationAvg"] == 2.0


def test_the_interval_holds_one_station_and_not_the_others() -> None:
    eng, feed = _engine(1.0), Feed()
    eng.ingest([feed.rec(PARAM, param("S1") + param("S2"))], T0)
    eng.ingest([feed.rec(RT, realtime("S1", "10", 1.0))], T0)
    finish_all(eng, eng.take_runs(10, T0), T0)
    eng.ingest(
        [feed.rec(RT, realtime("S1", "10", 2.0)), feed.rec(RT, realtime("S2", "10", 3.0))], T0
    )
    assert [r.station_id for r in eng.take_runs(10, T0 + 0.5)] == ["S2"]


def test_zero_runs_a_station_as_soon_as_it_is_dirty() -> None:
    eng, feed = _engine(0.0), Feed()
    eng.ingest([feed.rec(PARAM, param("S1")), feed.rec(RT, realtime("S1", "10", 1.0))], T0)
    finish_all(eng, eng.take_runs(10, T0), T0)
    eng.ingest([feed.rec(RT, realtime("S1", "10", 2.0))], T0)
    assert len(eng.take_runs(10, T0)) == 1


@settings(max_examples=60, deadline=None)
@given(
    gap=st.sampled_from([0.0, 0.5, 1.0, 2.5]),
    steps=st.lists(
        st.tuples(
            st.floats(min_value=0.0, max_value=1.5),  # time to the next step
            st.booleans(),  # an update of S1 at this step
            st.booleans(),  # the running run (if any) finishes at this step
        ),
        min_size=1,
        max_size=40,
    ),
)
def test_runs_start_at_least_the_interval_apart_and_every_update_is_seen(
    gap: float, steps: list[tuple[float, bool, bool]]
) -> None:
    eng, feed = _engine(gap), Feed()
    eng.ingest([feed.rec(PARAM, param("S1"))], T0)
    now = T0
    value = 0.0
    starts: list[float] = []
    seen: list[float] = []
    running: StationRun | None = None

    def step(now: float, finish: bool) -> None:
        nonlocal running
        if running is not None and finish:
            finish_all(eng, [running], now)
            running = None
        eng.tick(now)
        for run in eng.take_runs(10, now):
            assert running is None, "two runs of one station at once"
            starts.append(now)
            seen.append(run.module_input["outputPowerPerStationAvg"])
            running = run

    for dt, update, finish in steps:
        now += dt
        if update:
            value += 1.0
            eng.ingest([feed.rec(RT, realtime("S1", "10", value))], now)
        step(now, finish)
    for _ in range(3):  # then time passes and the last run finishes: nothing is left behind
        now += gap + 1.0
        step(now, True)

    assert all(b - a >= gap - 1e-9 for a, b in itertools.pairwise(starts)), starts
    if value:
        assert seen
        assert seen[-1] == value  # the newest update was seen by a run
    assert eng.runnable == 0
