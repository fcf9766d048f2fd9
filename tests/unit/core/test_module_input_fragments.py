"""Assembly keeps what each window contributes in the window's memo (latest values and
structures, per-device lists, each completed order second): a callback that scribbles over its
input must never reach a later input, and a memo must never outlive the content it was derived
from. Checked against an engine fed the same steps that never assembled in between."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from da_core.catalog import build_catalog
from da_core.codec import StdlibJsonCodec
from da_core.engine import Engine
from da_core.types import Record

T0 = 1_800_000_000.0
MODULE = "electricity_price"  # latest, global latest, per-device and order-second windows
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


_records = st.one_of(
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
