"""Issue 10 item 3 / SPEC §7: a callback result that is not JSON fails that station's run with
reason ``bad_result``; the rest of the batch is uploaded, over both services and both output
modes, and with a custom ``batch_upload_handler`` (results are validated the same way)."""

from __future__ import annotations

import json
import logging
from decimal import Decimal
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from da_adapters.memory import ManualClock, MemoryBroker
from da_app.metrics import build_registry
from da_app.services import AsyncDataAnalysisService
from da_app.testing import Harness
from tests.support.waiting import async_wait_for

from .helpers import OUT_LP, PARAM, RT, param, realtime


def _self_referencing() -> dict[str, Any]:
    d: dict[str, Any] = {}
    d["me"] = d
    return d


BAD_RESULTS: list[tuple[str, Any]] = [
    ("object", lambda: {"x": object()}),
    ("bytes", lambda: {"x": b"raw"}),
    ("decimal", lambda: {"x": Decimal("1.5")}),
    ("int_2_64", lambda: {"x": 2**64}),
    ("tuple_key", lambda: {(1, 2): 3}),
    ("self_reference", _self_referencing),
    ("lone_surrogate", lambda: {"x": "\ud800"}),
    ("top_level_object", lambda: object()),
]


def _model(make_bad: Any) -> Any:
    def model(sid: str, inp: dict[str, Any]) -> Any:
        return make_bad() if sid == "S1" else {"ok": sid}

    return model


def _feed(publish: Any) -> None:
    publish(PARAM, param("S1", "S2"))
    publish(
        RT,
        {
            "realTimeData": realtime("S1", 1, 5.0)["realTimeData"]
            + realtime("S2", 1, 6.0)["realTimeData"]
        },
    )


def _error_metric(registry: CollectorRegistry, error_type: str) -> float | None:
    return registry.get_sample_value("data_analysis_errors_total", {"error_type": error_type})


@pytest.mark.parametrize("output_mode", ["batch", "station"])
@pytest.mark.parametrize(("name", "make_bad"), BAD_RESULTS, ids=[n for n, _ in BAD_RESULTS])
def test_a_result_that_is_not_json_fails_that_run_and_the_rest_is_uploaded(
    name: str, make_bad: Any, output_mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    h = Harness("load_prediction", _model(make_bad), output_mode=output_mode)
    _feed(h.publish)
    with caplog.at_level(logging.ERROR, logger="da_core.engine"):
        h.run_until_idle()
    assert [r["station_id"] for r in h.results()] == ["S2"]
    stats = h.engine.stats
    assert stats.run_faults == {"bad_result": 1}
    assert stats.runs_ok == 1
    station = h.service.get_station_status()["S1"]
    assert station["errors"] == 1
    assert "bad_result" in station["last_error"]
    lines = [r.getMessage() for r in caplog.records if "not JSON" in r.getMessage()]
    assert len(lines) == 1
    assert "S1" in lines[0]
    assert "bad_result" in lines[0]
    registry = build_registry(h.service, process=False)
    assert _error_metric(registry, "bad_result") == 1
    assert registry.get_sample_value("data_analysis_runs_total", {"outcome": "error"}) == 1
    assert h.service.get_service_status()["run_faults"] == {"bad_result": 1}
    assert h.runner.alive is False  # driven step by step; the loop never died
    h.stop()


def test_the_envelope_splices_each_result_encoded_once() -> None:
    h = Harness("load_prediction", _model(lambda: {"x": 1}))
    _feed(h.publish)
    h.run_until_idle()
    (record,) = h.broker.records(OUT_LP)
    envelope = json.loads(record.value or b"")
    assert list(envelope) == ["batch_id", "module", "timestamp", "stations_count", "results"]
    assert envelope["stations_count"] == 2
    assert sorted(r["station_id"] for r in envelope["results"]) == ["S1", "S2"]
    h.stop()


def test_with_a_batch_upload_handler_results_are_validated_the_same_way() -> None:
    got: list[tuple[str, list[dict[str, Any]]]] = []
    h = Harness(
        "load_prediction",
        _model(lambda: {"x": Decimal("2")}),
        batch_upload_handler=lambda bid, rs: got.append((bid, list(rs))),
    )
    _feed(h.publish)
    h.run_until_idle()
    assert [[r["station_id"] for r in rs] for _, rs in got] == [["S2"]]
    assert got[0][1] == [{"station_id": "S2", "ok": "S2"}]
    assert h.engine.stats.run_faults == {"bad_result": 1}
    h.stop()


async def test_async_service_fails_the_run_with_bad_result_and_uploads_the_rest() -> None:
    clock = ManualClock()
    broker = MemoryBroker(clock)
    svc = AsyncDataAnalysisService(
        module_name="load_prediction",
        config={},
        adapter="memory",
        broker=broker,
        clock=clock,
        group_id="bad-result",
        auto_offset_reset="earliest",
        poll_timeout=0.01,
    )

    async def model(sid: str, inp: dict[str, Any]) -> Any:
        return {"x": b"raw"} if sid == "S1" else {"ok": sid}

    await svc.start(model)
    _feed(lambda t, p: broker.produce(t, json.dumps(p).encode()))

    def uploaded() -> list[str]:
        return [
            r["station_id"]
            for rec in broker.records(OUT_LP)
            for r in json.loads(rec.value or b"{}")["results"]
        ]

    await async_wait_for(lambda: uploaded() == ["S2"], what="S2's result", observe=uploaded)
    assert svc.runner is not None
    assert svc.runner.alive
    assert svc.engine.stats.run_faults == {"bad_result": 1}
    await svc.stop()
