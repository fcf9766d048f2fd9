"""Module-input assembly keeps a grid's gap-filled series in the window's memo while the grid
is unchanged: the module inputs must be the very ones a cold assembly gives, and every list
handed out must be a fresh one."""

from __future__ import annotations

import copy
import json
import time
from typing import Any

import pytest

from da_core.catalog import build_catalog
from da_core.codec import StdlibJsonCodec
from da_core.engine import Engine
from da_core.types import Record

T0 = 1_800_000_000.0  # 2027-01-15 08:00 UTC
HOUR = 3600.0
RT = "SCHEDULE-STATION-REALTIME-DATA"
PARAM = "SCHEDULE-STATION-PARAM"
ORDER = "SCHEDULE-CAR-ORDER"


def _send_time(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:00:00", time.gmtime(t))


def _rt_row(sid: str, t: float, avg: float | None, guns: list[str]) -> dict[str, Any]:
    row: dict[str, Any] = {
        "stationId": sid,
        "sendTime": _send_time(t),
        "gunPower": {
            "gunNo": guns,
            "outputPowerPerGunAvg": [avg or 0.0] * len(guns),
            "outputPowerPerGunMax": [(avg or 0.0) * 2] * len(guns),
        },
        "outputPowerPerStationMax": 99.0,
    }
    if avg is not None:
        row["outputPowerPerStationAvg"] = avg
    return row


class Feed:
    def __init__(self) -> None:
        self.offset = 0

    def rec(self, topic: str, payload: Any, ts: float) -> Record:
        self.offset += 1
        return Record(topic, 0, self.offset, json.dumps(payload).encode(), None, ts)


def _script(sid: str) -> list[tuple[float, list[tuple[str, Any]]]]:
    """(time, records) steps: history with gaps, a missing field, a new hour, a replaced
    hour, a gun that appears later."""
    param = [{"stationId": sid, "gridCapacity": 630.0, "gunNum": 2}]
    history = [
        _rt_row(sid, T0 - h * HOUR, None if h % 5 == 0 else float(h), ["01", "02"])
        for h in range(1, 30)
        if h % 7 != 3
    ]
    return [
        (T0, [(PARAM, param), (RT, {"realTimeData": history})]),
        (T0 + 60, [(RT, {"realTimeData": [_rt_row(sid, T0, 5.0, ["01", "02"])]})]),
        (T0 + 120, [(RT, {"realTimeData": [_rt_row(sid, T0, 6.5, ["01", "02"])]})]),
        (T0 + HOUR, [(RT, {"realTimeData": [_rt_row(sid, T0 + HOUR, 7.0, ["02", "03"])]})]),
        (T0 + 3 * HOUR, [(RT, {"realTimeData": [_rt_row(sid, T0 + 3 * HOUR, None, ["01"])]})]),
    ]


def _catalog(strategy: str) -> Any:
    return build_catalog({"modules": {"load_prediction": {"fill_strategy": strategy}}})


def _engine(strategy: str, steps: list[tuple[float, list[tuple[str, Any]]]]) -> Engine:
    eng = Engine(_catalog(strategy), "load_prediction", StdlibJsonCodec())
    feed = Feed()
    for now, recs in steps:
        eng.ingest([feed.rec(t, p, now) for t, p in recs], now)
    return eng


@pytest.mark.parametrize("strategy", ["zero", "linear", "forward", "missing"])
def test_memoised_grid_inputs_equal_cold_ones_after_every_change(strategy: str) -> None:
    sid = "S1"
    steps = _script(sid)
    warm = _engine(strategy, [])
    feed = Feed()
    for i, (now, recs) in enumerate(steps):
        warm.ingest([feed.rec(t, p, now) for t, p in recs], now)
        first = warm.get_inputs(sid, now)
        again = warm.get_inputs(sid, now)  # from the memo
        expected = _engine(strategy, steps[: i + 1]).get_inputs(sid, now)  # no memo
        assert expected is not None
        assert first == expected
        assert again == expected
        assert again is not None
        assert list(again) == list(expected)  # same key order
        assert list(again["station_realtime_data"]) == list(expected["station_realtime_data"])
    # expiry changes the grid as well (REALTIME entries live two hours)
    later = steps[-1][0] + 2 * HOUR - 30
    warm.sweep(later)
    cold = _engine(strategy, steps)
    cold.sweep(later)
    assert warm.get_inputs(sid, later) == cold.get_inputs(sid, later)


def test_every_list_of_a_memoised_grid_is_a_fresh_one() -> None:
    now = _script("S1")[0][0]
    eng = _engine("linear", _script("S1")[:1])
    first = eng.get_inputs("S1", now)
    assert first is not None
    pristine = copy.deepcopy(first)
    grid = first["station_realtime_data"]
    # a callback scribbling over its input must not reach the next station run
    first["outputPowerPerStationAvg_window"].append("x")
    first["outputPowerPerGunAvg_window"][0][0] = "x"
    first["outputPowerPerGunAvg"].append("x")
    first["_fill_mask"]["outputPowerPerStationAvg_window"][0] = "x"
    grid["slots"].clear()
    grid["gunNo"].append("x")
    second = eng.get_inputs("S1", now)
    assert second == pristine
    # within one input, the structure and the flat names share their lists, as when cold
    assert (
        second["station_realtime_data"]["outputPowerPerStationAvg"]
        is (second["outputPowerPerStationAvg_window"])
    )
    assert (
        second["station_realtime_data"]["outputPowerPerGunMax"]
        is (second["outputPowerPerGunMax_window"])
    )


def test_orders_of_one_second_push_one_deadline_and_the_second_still_completes() -> None:
    eng = Engine(build_catalog({}), "station_guidance", StdlibJsonCodec())
    feed = Feed()
    orders = [
        feed.rec("SCHEDULE-CAR-ORDER", {"stationId": "S1", "gunNo": g, "soc": 50.0}, T0 + 0.1 * i)
        for i, g in enumerate(["01", "02", "03"])
    ]
    eng.ingest(orders, T0 + 0.3)
    assert len(eng._snapshot_heap) == 1
    eng.tick(T0 + 2.5)  # the second ends at T0 + 1, plus the 1 s grace
    inputs = eng.get_inputs("S1", T0 + 2.5)
    assert inputs is not None
    assert [o["gunNo"] for o in inputs["car_order"]["orders"]] == ["01", "02", "03"]
    # the next second opens a new deadline
    later = feed.rec("SCHEDULE-CAR-ORDER", {"stationId": "S1", "gunNo": "01"}, T0 + 3.2)
    eng.ingest([later], T0 + 3.3)
    assert [d for d, _ in eng._snapshot_heap] == [T0 + 5.0]


def test_order_seconds_list_each_field_per_order_and_an_empty_second_as_empty() -> None:
    """The order window's per-field lists: one entry per order of the second, in arrival order,
    None where an order lacks the field; a second without orders contributes empty lists."""
    eng = Engine(build_catalog({}), "station_guidance", StdlibJsonCodec())
    feed = Feed()
    eng.ingest([feed.rec(ORDER, {"stationId": "S1", "gunNo": "01", "soc": 40.0}, T0 + 0.2)], T0)
    two = [
        feed.rec(ORDER, {"stationId": "S1", "gunNo": "02", "soc": 61.5}, T0 + 2.1),
        feed.rec(ORDER, {"stationId": "S1", "gunNo": "01"}, T0 + 2.4),
    ]
    eng.ingest(two, T0 + 2.5)
    eng.tick(T0 + 4.5)  # second T0 + 2 completes; T0 + 1 had no orders
    got = eng.get_inputs("S1", T0 + 4.5)
    assert got is not None
    assert got["order_soc"] == [61.5, None]
    assert got["order_gunNo"] == ["02", "01"]
    assert got["order_soc_window"] == [[], [61.5, None]]
    assert got["order_gunNo_window"] == [[], ["02", "01"]]
    window = got["car_order"]["window"]
    assert [w["second"] for w in window] == [int(T0) + 1, int(T0) + 2]
    assert window[0]["orders"] == []
    assert [o["gunNo"] for o in window[1]["orders"]] == ["02", "01"]
    assert got["car_order"]["orders"] == window[1]["orders"]
    assert got["car_order"]["orders"] is not window[1]["orders"]
    # the next read hands out the same values in fresh lists
    again = eng.get_inputs("S1", T0 + 4.6)
    assert again is not None
    assert again["order_soc_window"] == got["order_soc_window"]
    assert again["order_soc_window"][1] is not got["order_soc_window"][1]


def test_every_list_and_dict_of_an_order_snapshot_is_a_fresh_one() -> None:
    """A callback scribbling over the order parts of its input (the latest per-field lists,
    each second's list of the windows, the orders' dicts) must not reach the next run, and
    the latest list is not the window's newest one."""
    eng = Engine(build_catalog({}), "station_guidance", StdlibJsonCodec())
    feed = Feed()
    eng.ingest([feed.rec(ORDER, {"stationId": "S1", "gunNo": "01", "soc": 40.0}, T0 + 1.2)], T0)
    eng.ingest([feed.rec(ORDER, {"stationId": "S1", "gunNo": "02", "soc": 55.0}, T0 + 2.2)], T0)
    eng.tick(T0 + 4.5)
    first = eng.get_inputs("S1", T0 + 4.5)
    assert first is not None
    pristine = copy.deepcopy(first)
    assert first["order_soc"] == [55.0]
    assert first["order_soc_window"] == [[40.0], [55.0]]
    assert first["order_soc"] is not first["order_soc_window"][-1]
    first["order_soc"].append("x")
    first["order_soc_window"][0].append("x")
    first["order_soc_window"][1][0] = "x"
    first["order_gunNo_window"].clear()
    first["car_order"]["orders"][0]["soc"] = "x"
    first["car_order"]["window"][0]["orders"][0]["gunNo"] = "x"
    first["car_order"]["window"].clear()
    second = eng.get_inputs("S1", T0 + 4.6)
    assert second is not None
    second["timestamp"] = pristine["timestamp"]
    second["_data_quality"] = pristine["_data_quality"]
    assert second == pristine
