"""Every row of SPEC §7's bad-input table, on the in-memory bus, over both runner shells (the
``harness`` fixture, ``tests/unit/app/conftest.py``)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from da_app.services import DataAnalysisService
from da_core.errors import ConfigError
from da_core.types import TopicPartition

from .conftest import Harnesses
from .helpers import PARAM, RT, echo_window, param, realtime, rt_row

BAD_VALUES = [
    (b"\xff\xfe\x00bad", "not_utf8"),
    (b"{not json", "not_json"),
    (b'"just a string"', "wrong_shape"),
    (b'{"realTimeData": [{"sendTime": "2026-11-10 01:00:00"}]}', "missing_station_id"),
]


@pytest.mark.parametrize(("value", "reason"), BAD_VALUES)
async def test_bad_record_is_dead_lettered_counted_logged_once_and_committed(
    harness: Harnesses, value: bytes, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    h = harness("load_prediction", echo_window)
    h.publish(PARAM, param("S1"), partition=0)
    with caplog.at_level(logging.WARNING, logger="da_core.engine"):
        h.publish(RT, value, partition=0)
        await h.run_until_idle()
    (dead,) = h.dead_letters()
    headers, payload = dead
    assert headers["da.reason"] == reason
    assert headers["da.topic"] == RT
    assert headers["da.offset"] == "0"
    assert payload == value
    assert h.engine.stats.bad_input == {reason: 1}
    lines = [r for r in caplog.records if "bad input" in r.getMessage()]
    assert len(lines) == 1
    assert RT in lines[0].getMessage()
    # the service keeps running: a good record after the bad one is processed
    h.publish(RT, realtime("S1", 1, 5.0), partition=0)
    await h.run_until_idle()
    assert [r["station_id"] for r in h.results()] == ["S1"]
    h.advance(10)
    await h.run_until_idle()
    assert h.committed()[TopicPartition(RT, 0)] == 2


async def test_field_of_wrong_type_or_nan_is_missing_and_the_rest_is_used(
    harness: Harnesses,
) -> None:
    seen: list[dict[str, Any]] = []

    def model(sid: str, inp: dict[str, Any]) -> None:
        seen.append(inp)

    h = harness("load_prediction", model)
    h.publish(PARAM, param("S1"), partition=0)
    row = rt_row("S1", 0, 3.0)
    row["outputPowerPerStationMax"] = "lots"
    h.publish(RT, b'{"realTimeData": [' + _json(row).replace(b"3.0,", b"NaN,", 1) + b"]}")
    await h.run_until_idle()
    assert seen, "the record's good fields still make a run"
    inp = seen[-1]
    assert inp["outputPowerPerStationMax"] is None
    assert inp["outputPowerPerStationAvg"] is None  # NaN treated as missing
    assert inp["station_realtime_data"]["gunNo"] == ["01"]
    assert h.engine.stats.bad_fields == 2
    assert h.dead_letters() == []


async def test_callback_that_raises_is_counted_and_retried_without_killing_the_service(
    harness: Harnesses,
) -> None:
    calls: list[str] = []

    def flaky(sid: str, inp: dict[str, Any]) -> dict[str, Any]:
        calls.append(sid)
        if len(calls) == 1:
            raise RuntimeError("model crashed")
        return {"ok": True}

    h = harness("load_prediction", flaky)
    h.publish(PARAM, param("S1"))
    h.publish(RT, realtime("S1", 0, 1.0))
    await h.run_until_idle()
    assert h.engine.stats.runs_failed == {"RuntimeError": 1}
    assert h.service.get_station_status()["S1"]["errors"] == 1
    h.advance(1.5)  # the retry delay
    await h.run_until_idle()
    assert calls == ["S1", "S1"]
    assert [r["station_id"] for r in h.results()] == ["S1"]


async def test_offset_out_of_range_resets_per_policy_and_is_logged(
    harness: Harnesses, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = {"modules": {"load_prediction": {"required_topics": [RT]}}}
    h1 = harness("load_prediction", echo_window, group_id="g-oor", config=cfg)
    h1.publish(PARAM, param("S1"), partition=0)
    h1.publish(RT, realtime("S1", 0, 1.0), partition=0)
    await h1.run_until_idle()
    await h1.stop()  # commits RT[0] at 1
    for hour in range(1, 4):
        h1.publish(RT, realtime("S1", hour, 10.0 + hour), partition=0)
    h1.broker.delete_records_before(TopicPartition(RT, 0), 3)  # offsets 1, 2 are gone
    h2 = harness(
        "load_prediction",
        echo_window,
        broker=h1.broker,
        clock=h1.clock,
        group_id="g-oor",
        config=cfg,
    )
    with caplog.at_level(logging.WARNING):
        await h2.run_until_idle()
    lines = [r.getMessage() for r in caplog.records if "out of range" in r.getMessage()]
    assert lines
    assert "g-oor" in lines[0]
    assert any(13.0 in r["window"] for r in h2.results())


def test_invalid_configuration_refuses_to_start_naming_the_key() -> None:
    with pytest.raises(ConfigError, match="window_size"):
        DataAnalysisService(
            module_name="load_prediction",
            config={"TOPIC_DETAIL": {RT: {"window_size": 0}}},
            adapter="memory",
        )
    with pytest.raises(ConfigError, match="unknown module 'nope'"):
        DataAnalysisService(module_name="nope", config={}, adapter="memory")


def _json(v: Any) -> bytes:
    import json

    return json.dumps(v).encode()
