"""Results enter a batch through ``Engine.finish_run``: encoded once there (a value that is not
JSON fails the run with reason ``bad_result``) and spliced into the upload's envelope."""

from __future__ import annotations

import json
from typing import Any

from da_core.catalog import default_catalog
from da_core.codec import StdlibJsonCodec
from da_core.engine import Engine

from .test_engine import PARAM, RT, T0, Feed, param, realtime


class CountingCodec(StdlibJsonCodec):
    """Counts how often each station's result dict is encoded (alone or inside another)."""

    def __init__(self) -> None:
        self.result_encodes = 0

    def dumps(self, value: Any) -> bytes:
        if isinstance(value, dict) and "model" in value:
            self.result_encodes += 1
        if isinstance(value, dict) and any(
            isinstance(r, dict) and "model" in r for r in value.get("results", ())
        ):
            self.result_encodes += len(value["results"])
        return super().dumps(value)


def _engine(codec: StdlibJsonCodec) -> tuple[Engine, list[Any]]:
    eng = Engine(default_catalog(), "load_prediction", codec)
    feed = Feed()
    eng.ingest([feed.rec(PARAM, param("S1") + param("S2"))], T0)
    rt = realtime("S1", "01", 5.0)["realTimeData"] + realtime("S2", "01", 6.0)["realTimeData"]
    eng.ingest([feed.rec(RT, {"realTimeData": rt})], T0)
    eng.tick(T0)
    return eng, eng.take_runs(10, T0)


def test_each_result_is_encoded_once_and_reused_by_the_upload() -> None:
    codec = CountingCodec()
    eng, runs = _engine(codec)
    for r in runs:
        eng.finish_run(r, T0, result={"model": r.station_id})
    eng.tick(T0)
    (up,) = eng.take_uploads(T0)
    assert codec.result_encodes == 2
    (rec,) = up.records
    envelope = json.loads(rec.value or b"")
    assert sorted(envelope["results"], key=lambda r: r["station_id"]) == [
        {"station_id": "S1", "model": "S1"},
        {"station_id": "S2", "model": "S2"},
    ]
    assert up.results == envelope["results"]


def test_a_result_that_is_not_json_fails_the_run_with_bad_result() -> None:
    eng, runs = _engine(StdlibJsonCodec())
    for r in runs:
        eng.finish_run(r, T0, result={"x": {1, 2}.__iter__()} if r.station_id == "S1" else {"v": 1})
    eng.tick(T0)
    (up,) = eng.take_uploads(T0)
    assert [r["station_id"] for r in up.results] == ["S2"]
    assert eng.stats.run_faults == {"bad_result": 1}
    assert eng.stats.runs_failed == {}
    assert eng.station_status(T0)["S1"]["errors"] == 1
