"""Triggers and batches through the sync service on the in-memory bus (SPEC §4, §5)."""

from __future__ import annotations

import threading
from typing import Any

from da_app.testing import Harness

from .helpers import CAL, PARAM, RT, echo_window, param, realtime, rt_row


def test_a_thousand_stations_are_processed_by_four_workers() -> None:
    ids = [f"S{i:04d}" for i in range(1000)]
    before = set(threading.enumerate())  # count only the threads this service starts
    h = Harness("load_prediction", echo_window, max_workers=4)
    h.publish(PARAM, param(*ids))
    h.publish(RT, {"realTimeData": [rt_row(s, 0, 1.0) for s in ids]})
    h.run_until_idle(timeout=60)
    started = set(threading.enumerate()) - before
    h.stop()
    assert {r["station_id"] for r in h.results()} == set(ids)
    assert h.runner.max_workers == 4
    assert len(started) <= 4, sorted(t.name for t in started)  # no thread per station


def test_burst_while_running_gives_one_more_run_not_a_hundred() -> None:
    started = threading.Event()
    gate = threading.Event()
    calls: list[float] = []

    def model(sid: str, inp: dict[str, Any]) -> dict[str, Any]:
        calls.append(inp["outputPowerPerStationAvg"])
        started.set()
        gate.wait(10)
        return {"ok": True}

    h = Harness("load_prediction", model)
    h.publish(PARAM, param("S1"))
    h.publish(RT, realtime("S1", 0, 0.0), key="S1")
    while not started.is_set():
        h.step()
    for i in range(1, 101):
        h.publish(RT, realtime("S1", 0, float(i)), key="S1")
    for _ in range(20):
        h.step()
    gate.set()
    h.run_until_idle()
    assert calls == [0.0, 100.0]


def test_station_waits_for_required_topics_before_its_first_run() -> None:
    runs: list[str] = []
    h = Harness("load_prediction", lambda s, i: runs.append(s))
    h.publish(PARAM, param("S1"))
    h.publish(CAL, {"calendar": [{"date": "2026-11-28", "isHoliday": 0, "isWeekend": 1}]})
    h.run_until_idle()
    assert runs == []
    assert h.service.get_station_status()["S1"]["ready"] is False
    h.publish(RT, realtime("S1", 0, 1.0))
    h.run_until_idle()
    assert runs == ["S1"]


def test_no_two_runs_of_one_station_overlap() -> None:
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

    h = Harness("load_prediction", model, max_workers=8)
    h.publish(PARAM, param("A", "B"))
    for i in range(50):
        h.publish(RT, {"realTimeData": [rt_row("A", i % 24, i), rt_row("B", i % 24, i)]})
        h.step()
    h.run_until_idle()
    assert overlap == []


def test_default_upload_publishes_one_envelope_per_batch() -> None:
    h = Harness("load_prediction", lambda s, i: None if s == "S2" else {"v": 1})
    h.publish(PARAM, param("S1", "S2"))
    h.publish(RT, {"realTimeData": [rt_row("S1", 0, 1.0), rt_row("S2", 0, 1.0)]})
    h.run_until_idle()
    (env,) = h.published("MODULE-OUTPUT-LOAD_PREDICTION")
    assert env["module"] == "load_prediction"
    assert env["batch_id"].startswith("load_prediction-")
    assert env["stations_count"] == 1
    assert env["results"] == [{"v": 1, "station_id": "S1"}]


def test_custom_batch_upload_handler_replaces_the_default_upload() -> None:
    got: list[tuple[str, list[dict[str, Any]]]] = []

    async def handler(batch_id: str, results: list[dict[str, Any]]) -> None:
        got.append((batch_id, results))

    h = Harness("load_prediction", lambda s, i: {"v": s}, batch_upload_handler=handler)
    h.publish(PARAM, param("S1", "S2"))
    h.publish(RT, {"realTimeData": [rt_row("S1", 0, 1.0), rt_row("S2", 0, 1.0)]})
    h.run_until_idle()
    assert h.published("MODULE-OUTPUT-LOAD_PREDICTION") == []
    (_batch_id, results) = got[0]
    assert sorted(r["station_id"] for r in results) == ["S1", "S2"]
    assert all(r["v"] == r["station_id"] for r in results)
    assert len(got) == 1


def test_batch_times_out_and_late_result_goes_to_the_next_batch() -> None:
    gate = threading.Event()

    def model(sid: str, inp: dict[str, Any]) -> dict[str, Any]:
        if sid == "SLOW":
            gate.wait(10)
        return {"v": sid}

    h = Harness("load_prediction", model)
    h.publish(PARAM, param("FAST", "SLOW"))
    h.publish(RT, {"realTimeData": [rt_row("FAST", 0, 1.0), rt_row("SLOW", 0, 1.0)]})
    for _ in range(30):
        h.step()
    h.advance(6)  # past batch_timeout (5 s)
    for _ in range(30):
        h.step()
    first = h.published("MODULE-OUTPUT-LOAD_PREDICTION")
    assert [r["station_id"] for r in first[0]["results"]] == ["FAST"]
    assert h.engine.stats.batches_timed_out == 1
    gate.set()
    h.run_until_idle()
    h.advance(6)
    h.run_until_idle()
    envs = h.published("MODULE-OUTPUT-LOAD_PREDICTION")
    stations = [r["station_id"] for e in envs for r in e["results"]]
    assert sorted(stations) == ["FAST", "SLOW"]  # the late result once, never twice


def test_result_handler_is_called_per_station_run() -> None:
    calls: list[tuple[str, Any]] = []
    h = Harness(
        "load_prediction",
        lambda s, i: {"v": 1},
        result_handler=lambda s, i, r: calls.append((s, r)),
    )
    h.publish(PARAM, param("S1"))
    h.publish(RT, realtime("S1", 0, 1.0))
    h.run_until_idle()
    assert calls == [("S1", {"v": 1})]


def test_global_calendar_reaches_running_and_new_stations_without_being_committed() -> None:
    seen: dict[str, Any] = {}

    def model(sid: str, inp: dict[str, Any]) -> None:
        seen[sid] = inp["calendar_isWeekend"]

    h = Harness("load_prediction", model)
    h.publish(PARAM, param("S1"))
    h.publish(RT, realtime("S1", 0, 1.0))
    h.run_until_idle()
    assert seen == {"S1": None}
    h.publish(CAL, {"calendar": [{"date": "2026-11-28", "isHoliday": 0, "isWeekend": 1}]})
    h.run_until_idle()
    assert seen == {"S1": [1]}  # an existing station runs again with the global value
    h.publish(PARAM, param("S2"))
    h.publish(RT, realtime("S2", 0, 1.0))
    h.run_until_idle()
    assert seen["S2"] == [1]  # a new station gets it too
    # global topics are read in full by every instance, outside the group: never committed
    assert all(v is None for tp, v in h.committed().items() if tp.topic == CAL)
