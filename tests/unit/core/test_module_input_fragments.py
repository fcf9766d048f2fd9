"""Assembly keeps what each window contributes in the window's memo (latest values and
structures, per-device lists, each completed order second): a callback that scribbles over its
input must never reach a later input, and a memo must never outlive the content it was derived
from. Checked against an engine fed the same steps that never assembled in between."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta, timezone
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from da_core.catalog import build_catalog
from da_core.codec import StdlibJsonCodec
from da_core.engine import Engine
from da_core.station_window import HourlyGridWindow
from da_core.types import Record

T0 = 1_800_000_000.0
MODULE = "electricity_price"  # latest, global latest, per-device, order-second and grid windows
SID = "S1"


def _order(gun: str, soc: float) -> tuple[str, Any]:
    return (
        "SCHEDULE-CAR-ORDER",
        {"stationId": SID, "gunNo": gun, "soc": soc, "transactionSerialNo": f"TX-{gun}"},
    )


def _param(cap: float) -> tuple[str, Any]:
    return ("SCHEDULE-STATION-PARAM", [{"stationId": SID, "gridCapacity": cap, "gunNum": 2}])


def _storage(device: str, soc: float) -> tuple[str, Any]:
    return (
        "SCHEDULE-DEVICE-STORAGE",
        {"stationId": SID, "storageCode": device, "batteryGroupSoc": soc, "maxTemperature": 30},
    )


def _meter(power: float) -> tuple[str, Any]:
    return ("SCHEDULE-DEVICE-METER", {"stationId": SID, "meterId": "M1", "meterPower": power})


def _price(fee: float) -> tuple[str, Any]:
    row: dict[str, Any] = {"stationId": SID, "sharpElectricFee": fee, "lossRate": 1}
    row.update({f"feeNo{i}": "03" if i % 2 else "01" for i in range(1, 49)})
    return ("SCHEDULE-CAR-PRICE", {"fee": [row]})


def _calendar(day: int) -> tuple[str, Any]:
    rows = [{"date": f"2027-01-{d:02d}", "isHoliday": d % 2, "isWeekend": 0} for d in (day, 9)]
    return ("SCHEDULE-ENVIRONMENT-CALENDAR", {"calendar": rows})


def _realtime(last_hour: int, hours: int, power: float, guns: int) -> tuple[str, Any]:
    """``hours`` hourly REALTIME rows ending ``last_hour`` hours after T0's hour (10 or more
    are written to the grid column by column)."""
    base = datetime.fromtimestamp(T0, tz=timezone.utc).replace(minute=0, second=0)
    rows = []
    for h in range(last_hour - hours + 1, last_hour + 1):
        ids = [f"0{g + 1}" for g in range(guns)]
        rows.append(
            {
                "stationId": SID,
                "sendTime": (base + timedelta(hours=h)).strftime("%Y-%m-%d %H:%M:%S"),
                "outputPowerPerStationAvg": power + h,
                "outputPowerPerStationMax": int(power) + h,
                "gunPower": {
                    "gunNo": ids,
                    "outputPowerPerGunAvg": [power / (g + 1) for g in range(guns)],
                    "outputPowerPerGunMax": [h * 10 + g for g in range(guns)],
                },
            }
        )
    return ("SCHEDULE-STATION-REALTIME-DATA", {"realTimeData": rows})


_records = st.one_of(
    st.builds(
        _realtime,
        st.integers(-3, 1),
        st.sampled_from([1, 2, 10, 30]),
        st.floats(0, 500),
        st.integers(0, 3),
    ),
    st.builds(_order, st.sampled_from(["01", "02", "03"]), st.floats(0, 100)),
    st.builds(_param, st.sampled_from([400.0, 630.0])),
    st.builds(_storage, st.sampled_from(["B", "A", "C"]), st.integers(0, 100)),
    st.builds(_meter, st.integers(0, 500)),
    st.builds(_price, st.sampled_from([1.25, 0.9])),
    st.builds(_calendar, st.integers(1, 8)),
)
# (seconds after the previous step, -seconds of lateness per record, records); a step may
# also jump far ahead so that data expires (the engine's data_expire_seconds)
_steps = st.lists(
    st.tuples(
        st.sampled_from([0.0, 0.3, 1.0, 1.0, 2.5, 2.5, 4000.0]),
        st.lists(st.tuples(st.sampled_from([0.0, 0.0, 1.0, 2.0]), _records), max_size=5),
    ),
    min_size=1,
    max_size=12,
)


def _scribble(value: Any) -> None:
    """Change every list and dict of the input in place, at every depth."""
    if isinstance(value, dict):
        for v in list(value.values()):
            _scribble(v)
        if value:
            value.pop(next(iter(value)))
        value["scribbled"] = True
    elif isinstance(value, list):
        for v in value:
            _scribble(v)
        if value:
            value[0] = "x"
        value.append("x")


def _engine() -> Engine:
    return Engine(build_catalog({}), MODULE, StdlibJsonCodec())


def _replayed(history: list[tuple[list[Record], float]]) -> Engine:
    """An engine fed the same steps that never assembled in between."""
    eng = _engine()
    for batch, now in history:
        eng.ingest(batch, now)
        eng.tick(now)
        eng.sweep(now)
    return eng


@settings(max_examples=80, deadline=None)
@given(_steps)
def test_a_scribbled_input_never_reaches_a_later_one_and_no_memo_outlives_its_content(
    steps: list[tuple[float, list[tuple[float, tuple[str, Any]]]]],
) -> None:
    warm = _engine()
    history: list[tuple[list[Record], float]] = []
    now = T0
    offset = 0
    for gap, recs in steps:
        now += gap
        batch = []
        for late, (topic, payload) in recs:
            offset += 1
            value = json.dumps(payload).encode()
            batch.append(Record(topic, 0, offset, value, SID.encode(), now - late))
        history.append((batch, now))
        warm.ingest(batch, now)
        warm.tick(now)
        warm.sweep(now)
        first = warm.get_inputs(SID, now)
        assert first == _replayed(history).get_inputs(SID, now)
        if first is None:
            continue
        pristine = copy.deepcopy(first)
        _scribble(first)
        again = warm.get_inputs(SID, now)
        assert again == pristine
        _scribble(again)


def test_a_late_order_joins_its_memoised_second() -> None:
    warm = _engine()
    recs = [
        Record("SCHEDULE-CAR-ORDER", 0, i, json.dumps(p).encode(), b"S1", T0 + t)
        for i, (t, (_topic, p)) in enumerate(
            [(0.1, _order("01", 10.0)), (1.2, _order("01", 20.0)), (2.2, _order("02", 5.0))]
        )
    ]
    warm.ingest(recs, T0 + 2.3)
    before = warm.get_inputs(SID, T0 + 2.3)
    assert before is not None
    assert before["order_soc_window"] == [[10.0], [20.0]]
    late = Record(
        "SCHEDULE-CAR-ORDER", 0, 9, json.dumps(_order("03", 30.0)[1]).encode(), b"S1", T0 + 1.5
    )
    warm.ingest([late], T0 + 2.4)
    after = warm.get_inputs(SID, T0 + 2.4)
    assert after is not None
    assert after["order_soc_window"] == [[10.0], [20.0, 30.0]]
    assert after["order_soc"] == [20.0, 30.0]
    assert [o["gunNo"] for o in after["car_order"]["orders"]] == ["01", "03"]


def test_a_grid_read_again_and_again_shares_its_values_and_one_read_once_keeps_numbers() -> None:
    """A grid's filled series are memoised packed (machine numbers) for a station read once
    per content, and as value objects once read ``_HOT_READS`` times: later inputs then share
    the float objects (lists stay fresh), and so does the memo of the grid's next content."""
    warm = _engine()
    topic, payload = _realtime(0, 10, 100.0, 2)
    warm.ingest([Record(topic, 0, 1, json.dumps(payload).encode(), SID.encode(), T0)], T0)
    window = warm._store.stations[SID].windows[topic]
    assert isinstance(window, HourlyGridWindow)
    reads = [warm.get_inputs(SID, T0) for _ in range(2)]
    assert not _hot(window)
    reads.append(warm.get_inputs(SID, T0))
    assert _hot(window)  # the third read turned the memo into objects
    fourth, fifth = warm.get_inputs(SID, T0), warm.get_inputs(SID, T0)
    assert fourth is not None
    assert fifth is not None
    name = "outputPowerPerStationAvg_window"
    assert fourth[name] is not fifth[name]
    assert all(a is b for a, b in zip(fourth[name], fifth[name], strict=True))
    assert all(r == fourth for r in reads)
    topic, payload = _realtime(0, 1, 7.0, 2)  # a newer record of the newest hour
    warm.ingest([Record(topic, 0, 2, json.dumps(payload).encode(), SID.encode(), T0 + 1)], T0 + 1)
    a, b = warm.get_inputs(SID, T0 + 1), warm.get_inputs(SID, T0 + 1)
    assert a is not None
    assert b is not None
    assert a[name][-1] == 7.0
    assert all(x is y for x, y in zip(a[name], b[name], strict=True))


def _hot(window: HourlyGridWindow) -> bool:
    return window.hot
