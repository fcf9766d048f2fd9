"""Intake applies one record's items station by station in runs: counts, refusals and window
contents are those of applying each item on its own."""

from __future__ import annotations

import calendar
import json
from typing import Any

import attrs

from da_core.catalog import default_catalog
from da_core.codec import StdlibJsonCodec
from da_core.engine import Engine
from da_core.limits import IntakeLimits
from da_core.types import Record

T0 = 1_800_000_000.0
RT = "SCHEDULE-STATION-REALTIME-DATA"


def row(sid: str, hour: int, avg: float) -> dict[str, Any]:
    return {
        "stationId": sid,
        "sendTime": f"2027-01-15 {hour:02d}:00:00",
        "gunPower": {"gunNo": ["01"], "outputPowerPerGunAvg": [avg]},
        "outputPowerPerStationAvg": avg,
    }


def engine(max_stations: int = 100) -> Engine:
    cat = default_catalog()
    cat = attrs.evolve(cat, limits=IntakeLimits(max_stations=max_stations)).validate()
    return Engine(cat, "load_prediction", StdlibJsonCodec())


def ingest(eng: Engine, *rows: dict[str, Any]) -> None:
    value = json.dumps({"realTimeData": list(rows)}).encode()
    eng.ingest([Record(RT, 0, 0, value, None, T0)], T0)


def grid(eng: Engine, sid: str) -> list[tuple[int | None, Any]]:
    """(slot, station average) of each hour the station's grid holds, oldest first."""
    window = eng._store.stations[sid].windows[RT]
    return [(it.slot, it.values["outputPowerPerStationAvg"]) for it in window.all_items()]


def hours(*pairs: tuple[int, float]) -> list[tuple[int | None, Any]]:
    base = calendar.timegm((2027, 1, 15, 0, 0, 0)) // 3600
    return [(base + h, avg) for h, avg in pairs]


def test_interleaved_stations_count_and_fill_as_item_by_item() -> None:
    eng = engine()
    ingest(eng, row("S1", 1, 1.0), row("S1", 2, 2.0), row("S2", 1, 5.0), row("S1", 3, 3.0))
    assert sorted(eng.station_ids) == ["S1", "S2"]
    assert eng.stats.items_in == 4
    assert grid(eng, "S1") == hours((1, 1.0), (2, 2.0), (3, 3.0))
    assert grid(eng, "S2") == hours((1, 5.0))


def test_a_later_row_of_the_same_hour_in_a_run_replaces_the_earlier_one() -> None:
    eng = engine()
    ingest(eng, row("S1", 1, 1.0), row("S1", 1, 9.0))
    assert grid(eng, "S1") == hours((1, 9.0))
    assert eng.stats.items_in == 2


def test_every_item_of_a_refused_station_is_counted() -> None:
    eng = engine(max_stations=1)
    ingest(eng, row("S1", 1, 1.0), row("S2", 1, 2.0), row("S2", 2, 2.0), row("S1", 2, 1.0))
    assert eng.station_ids == ["S1"]
    assert eng.stats.stations_refused == {"station_limit": 2}
    assert eng.stats.items_in == 2
    assert grid(eng, "S1") == hours((1, 1.0), (2, 1.0))
