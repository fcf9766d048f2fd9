"""Triggers and batches through the service on the in-memory bus (SPEC §4, §5), over both
runner shells (the ``harness`` fixture, ``tests/unit/app/conftest.py``)."""

from __future__ import annotations

import threading
from typing import Any

from da_app.runtime import SyncRunner

from .conftest import Harnesses
from .helpers import CAL, OUT_LP, PARAM, RT, echo_window, param, realtime, rt_row
from .shells import step_until


async def test_a_thousand_stations_are_processed_by_four_workers(harness: Harnesses) -> None:
    ids = [f"S{i:04d}" for i in range(1000)]
    before = set(threading.enumerate())  # count only the threads this service starts
    h = harness("load_prediction", echo_window, max_workers=4)
    h.publish(PARAM, param(*ids))
    h.publish(RT, {"realTimeData": [rt_row(s, 0, 1.0) for s in ids]})
    await h.run_until_idle(timeout=60)
    started = set(threading.enumerate()) - before
    await h.stop()
    assert {r["station_id"] for r in h.results()} == set(ids)
    if isinstance(h.runner, SyncRunner):
        assert h.runner.max_workers == 4
    assert len(started) <= 4, sorted(t.name for t in started)  # no thread per station


async def test_burst_while_running_gives_one_more_run_not_a_hundred(harness: Harnesses) -> None:
    started = threading.Event()
    gate = threading.Event()
    calls: list[float] = []

    def model(sid: str, inp: dict[str, Any]) -> dict[str, Any]:
        calls.append(inp["outputPowerPerStationAvg"])
        started.set()
        gate.wait(10)
        return {"ok": True}

    h = harness("load_prediction", model)
    h.publish(PARAM, param("S1"))
    h.publish(RT, realtime("S1", 0, 0.0), key="S1")
    await step_until(h, started.is_set, what="the first run to start")
    for i in range(1, 101):
        h.publish(RT, realtime("S1", 0, float(i)), key="S1")
    await step_until(h, h.caught_up, what="the burst to be read while the first run blocks")
    gate.set()
    await h.run_until_idle()
    assert calls == [0.0, 100.0]


async def test_station_waits_for_required_topics_before_its_first_run(
    harness: Harnesses,
) -> None:
    runs: list[str] = []
    h = harness("load_prediction", lambda s, i: runs.append(s))
    h.publish(PARAM, param("S1"))
    h.publish(CAL, {"calendar": [{"date": "2026-11-28", "isHoliday": 0, "isWeekend": 1}]})
    await h.run_until_idle()
    assert runs == []
    assert h.service.get_station_status()["S1"]["ready"] is False
    h.publish(RT, realtime("S1", 0, 1.0))
    await h.run_until_idle()
    assert runs == ["S1"]


async def test_no_two_runs_of_one_station_overlap(harness: Harnesses) -> None:
    active: dict[str, int] = {}
    overlap: list[str] = []
    lock = threading.Lock()

    def model(sid: str, inp: dict[str, Any]) -> None:
        with lock:
            active[sid] = active.get(sid, 0) + 1
            if active[sid] > 1:
                overlap.append(sid)
        threading.Event().wait(0.001)
        with lock:
            active[sid] -= 1

    h = harness("load_prediction", model, max_workers=8)
    h.publish(PARAM, param("A", "B"))
    for i in range(50):
        h.publish(RT, {"realTimeData": [rt_row("A", i % 24, i), rt_row("B", i % 24, i)]})
        await h.step()
    await h.run_until_idle()
    assert overlap == []


async def test_default_upload_publishes_one_envelope_per_batch(harness: Harnesses) -> None:
    h = harness("load_prediction", lambda s, i: None if s == "S2" else {"v": 1})
    h.publish(PARAM, param("S1", "S2"))
    h.publish(RT, {"realTimeData": [rt_row("S1", 0, 1.0), rt_row("S2", 0, 1.0)]})
    await h.run_until_idle()
    (env,) = h.published(OUT_LP)
    assert env["module"] == "load_prediction"
    assert env["batch_id"].startswith("load_prediction-")
    assert env["stations_count"] == 1
    assert env["results"] == [{"v": 1, "station_id": "S1"}]


async def test_custom_batch_upload_handler_replaces_the_default_upload(
    harness: Harnesses,
) -> None:
    got: list[tuple[str, list[dict[str, Any]]]] = []

    async def handler(batch_id: str, results: list[dict[str, Any]]) -> None:
        got.append((batch_id, results))

    h = harness("load_prediction", lambda s, i: {"v": s}, batch_upload_handler=handler)
    h.publish(PARAM, param("S1", "S2"))
    h.publish(RT, {"realTimeData": [rt_row("S1", 0, 1.0), rt_row("S2", 0, 1.0)]})
    await h.run_until_idle()
    assert h.published(OUT_LP) == []
    (_batch_id, results) = got[0]
    assert sorted(r["station_id"] for r in results) == ["S1", "S2"]
    assert all(r["v"] == r["station_id"] for r in results)
    assert len(got) == 1


async def test_batch_times_out_and_late_result_goes_to_the_next_batch(
    harness: Harnesses,
) -> None:
    gate = threading.Event()

    def model(sid: str, inp: dict[str, Any]) -> dict[str, Any]:
        if sid == "SLOW":
            gate.wait(10)
        return {"v": sid}

    h = harness("load_prediction", model)
    h.publish(PARAM, param("FAST", "SLOW"))
    h.publish(RT, {"realTimeData": [rt_row("FAST", 0, 1.0), rt_row("SLOW", 0, 1.0)]})
    stats = h.engine.stats
    await step_until(
        h, lambda: stats.runs_started == 2 and stats.runs_ok == 1, what="FAST done, SLOW running"
    )
    h.advance(6)  # past batch_timeout (5 s)
    await step_until(h, lambda: h.published(OUT_LP), what="the timed-out batch's upload")
    first = h.published(OUT_LP)
    assert [r["station_id"] for r in first[0]["results"]] == ["FAST"]
    assert stats.batches_timed_out == 1
    gate.set()
    await h.run_until_idle()
    h.advance(6)
    await h.run_until_idle()
    envs = h.published(OUT_LP)
    stations = [r["station_id"] for e in envs for r in e["results"]]
    assert sorted(stations) == ["FAST", "SLOW"]  # the late result once, never twice


async def test_result_handler_is_called_per_station_run(harness: Harnesses) -> None:
    calls: list[tuple[str, Any]] = []
    h = harness(
        "load_prediction",
        lambda s, i: {"v": 1},
        result_handler=lambda s, i, r: calls.append((s, r)),
    )
    h.publish(PARAM, param("S1"))
    h.publish(RT, realtime("S1", 0, 1.0))
    await h.run_until_idle()
    assert calls == [("S1", {"v": 1})]


async def test_global_calendar_reaches_running_and_new_stations_without_being_committed(
    harness: Harnesses,
) -> None:
    seen: dict[str, Any] = {}

    def model(sid: str, inp: dict[str, Any]) -> None:
        seen[sid] = inp["calendar_isWeekend"]

    h = harness("load_prediction", model)
    h.publish(PARAM, param("S1"))
    h.publish(RT, realtime("S1", 0, 1.0))
    await h.run_until_idle()
    assert seen == {"S1": None}
    h.publish(CAL, {"calendar": [{"date": "2026-11-28", "isHoliday": 0, "isWeekend": 1}]})
    await h.run_until_idle()
    assert seen == {"S1": [1]}  # an existing station runs again with the global value
    h.publish(PARAM, param("S2"))
    h.publish(RT, realtime("S2", 0, 1.0))
    await h.run_until_idle()
    assert seen["S2"] == [1]  # a new station gets it too
    # global topics are read in full by every instance, outside the group: never committed
    assert all(v is None for tp, v in h.committed().items() if tp.topic == CAL)
