"""Issue 10's input-side faults, in both station routings, through the public harness: bad
strings, deep nesting, future timestamps, split-stage counts, non-finite numbers in raw
structures, bounded identifiers and the station bound (SPEC §7)."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from da_app.testing import Harness
from da_core.types import TopicPartition

from .helpers import PARAM, RT, param, rt_row

ROUTINGS = ["direct", "rekey"]
_OPEN: list[Harness] = []


@pytest.fixture(autouse=True)
def _stop_harnesses() -> Iterator[None]:
    """Every harness a test made is stopped at its teardown (the leak check is strict)."""
    yield
    while _OPEN:
        _OPEN.pop().stop()


def harness(routing: str, model: Any = None, **service: Any) -> Harness:
    h = Harness(
        "load_prediction",
        model or echo_station,
        station_routing=routing,
        config={"SERVICE_CONFIG": service} if service else None,
    )
    _OPEN.append(h)
    return h


def echo_station(sid: str, inp: dict[str, Any]) -> dict[str, Any]:
    return {"sid": sid, "window": list(inp["outputPowerPerStationAvg_window"])}


def ascii_json(payload: Any) -> bytes:
    """JSON with ASCII escapes: a lone surrogate travels as ``\\ud800``, as a producer sends."""
    return json.dumps(payload, ensure_ascii=True).encode()


def many(*rows: Any) -> dict[str, Any]:
    return {"realTimeData": list(rows)}


def result_ids(h: Harness) -> list[str]:
    return sorted(r["station_id"] for r in h.results())


def reasons(h: Harness) -> list[str]:
    return [headers["da.reason"] for headers, _ in h.dead_letters()]


def all_committed(h: Harness, topic: str = RT) -> bool:
    """Every record of ``topic`` committed (PARAM records stay held by stations that never
    ran, as they should)."""
    committed = h.committed()
    return all(
        committed.get(TopicPartition(topic, p)) == n
        for p in range(h.broker.partition_count(topic))
        for n in (len(h.broker.records(topic, p)),)
        if n
    )


def settle(h: Harness) -> None:
    h.run_until_idle()
    h.advance(10)
    h.run_until_idle()


def non_finite(value: Any) -> list[Any]:
    """Every non-finite number anywhere in ``value``."""
    found: list[Any] = []
    stack = [value]
    while stack:
        x = stack.pop()
        if isinstance(x, float) and not math.isfinite(x):
            found.append(x)
        elif isinstance(x, dict):
            stack.extend(x.values())
        elif isinstance(x, (list, tuple)):
            stack.extend(x)
    return found


# ------------------------------------------------------------------ 1. unencodable strings


@pytest.mark.parametrize("routing", ROUTINGS)
@pytest.mark.parametrize(
    "bad_row",
    [
        {**rt_row("S2", 0, 2.0), "stationId": "S\ud800"},
        {**rt_row("S2", 0, 2.0), "note": "x\ud800y"},
        {**rt_row("S2", 0, 2.0), "gunPower": {"gunNo": ["01"], "\udfff": [1]}},
    ],
    ids=["station-id", "value", "key"],
)
def test_a_lone_surrogate_anywhere_dead_letters_the_record_as_bad_string(
    routing: str, bad_row: dict[str, Any]
) -> None:
    h = harness(routing)
    h.publish(PARAM, param("S1", "S2", "S3"), partition=0)
    h.publish(RT, ascii_json(many(rt_row("S1", 0, 1.0), bad_row)), partition=0)
    h.publish(RT, ascii_json(many(rt_row("S1", 1, 3.0), rt_row("S3", 1, 4.0))), partition=0)
    settle(h)
    assert reasons(h) == ["bad_string"]
    assert h.engine.stats.bad_input == {"bad_string": 1}
    assert result_ids(h)[-2:] == ["S1", "S3"]  # the records around it still run
    assert all_committed(h)


# ------------------------------------------------------------------ 2. nesting too deep


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def test_nesting_past_the_encoder_in_a_multi_station_message_is_too_deep_under_rekey() -> None:
    h = harness("rekey")
    h.publish(PARAM, param("S1", "S2"), partition=0)
    deep = {**rt_row("S2", 0, 2.0), "deep": nested(300)}
    h.publish(RT, many(rt_row("S1", 0, 1.0), deep), partition=0)
    h.publish(RT, many(rt_row("S1", 1, 3.0), rt_row("S2", 1, 4.0)), partition=0)
    settle(h)
    assert reasons(h) == ["too_deep"]
    assert result_ids(h)[-2:] == ["S1", "S2"]
    assert all_committed(h)


@pytest.mark.parametrize("routing", ROUTINGS)
def test_nesting_past_the_decoder_is_dead_lettered_as_not_json(routing: str) -> None:
    h = harness(routing)
    h.publish(PARAM, param("S1"), partition=0)
    row = json.dumps(rt_row("S1", 0, 2.0)).encode()
    deep = row[:-1] + b', "deep": ' + b"[" * 1100 + b"1" + b"]" * 1100 + b"}"
    h.publish(RT, b'{"realTimeData": [' + deep + b"]}", partition=0)
    settle(h)
    assert reasons(h) == ["not_json"]  # no decoder of the service reads it
    assert all_committed(h)


# ------------------------------------------------------------------ 4. future timestamps


@pytest.mark.parametrize("routing", ROUTINGS)
def test_a_record_time_beyond_the_clock_skew_is_dead_lettered_as_future_timestamp(
    routing: str,
) -> None:
    h = harness(routing, max_clock_skew_seconds=60)
    h.publish(PARAM, param("S1"), partition=0)
    h.publish(RT, many(rt_row("S1", 0, 1.0)), partition=0, timestamp=h.clock.time() + 3600)
    h.publish(RT, many(rt_row("S1", 1, 2.0)), partition=0, timestamp=h.clock.time() + 30)
    settle(h)
    assert reasons(h) == ["future_timestamp"]
    assert [r["window"][-1] for r in h.results()] == [2.0]  # never entered a window
    assert all_committed(h)


@pytest.mark.parametrize("routing", ROUTINGS)
def test_a_future_send_time_is_skipped_and_never_wipes_the_realtime_history(routing: str) -> None:
    h = harness(routing)
    h.publish(PARAM, param("S1", "S2"), partition=0)
    h.publish(RT, many(*(rt_row("S1", hour, 10.0 + hour) for hour in range(3))), partition=0)
    settle(h)
    future = {**rt_row("S1", 0, 99.0), "sendTime": "2099-01-01 00:00:00"}
    h.publish(RT, many(future, rt_row("S2", 3, 5.0)), partition=0)
    h.publish(RT, many(rt_row("S1", 3, 13.0)), partition=0)
    settle(h)
    s1 = [[v for v in r["window"] if v] for r in h.results() if r["station_id"] == "S1"]
    assert [10.0, 11.0, 12.0, 13.0] in s1  # the history was kept, the real hour used
    assert not any(99.0 in w for w in s1)
    assert "S2" in result_ids(h)  # the good element of the same message was used
    assert h.engine.stats.future_items == 1
    assert h.dead_letters() == []
    only_future = many({**rt_row("S1", 0, 1.0), "sendTime": "2099-01-01 00:00:00"})
    h.publish(RT, only_future, partition=0)
    settle(h)
    assert reasons(h) == ["future_timestamp"]
    assert all_committed(h)


# ------------------------------------------------------------------ 5. split-stage counts


def test_rekey_reports_the_counts_direct_reports() -> None:
    figures = []
    for routing in ROUTINGS:
        h = harness(routing)
        h.publish(PARAM, param("S1", "S2"), partition=0)
        bad_time = {**rt_row("S2", 0, 1.0), "sendTime": "yesterday"}
        no_id = {k: v for k, v in rt_row("S1", 0, 1.0).items() if k != "stationId"}
        h.publish(RT, many(rt_row("S1", 0, 1.0), no_id, None, bad_time), partition=0)
        settle(h)
        stats = h.engine.stats
        figures.append((stats.skipped_items, stats.bad_fields))
    assert figures == [(3, 1), (3, 1)]


# ------------------------------------------------------------------ 7. non-finite numbers in raw


@pytest.mark.parametrize("routing", ROUTINGS)
def test_non_finite_numbers_never_reach_the_model_inside_raw_structures(routing: str) -> None:
    seen: list[dict[str, Any]] = []

    def model(sid: str, inp: dict[str, Any]) -> dict[str, Any]:
        seen.append(inp)
        return {"ok": True}

    h = harness(routing, model)
    row = {**param("S1", "S2")[0], "extra": {"deep": [1.0, 2.0], "x": 0.5}}
    text = json.dumps([row, param("S2")[0]]).replace('"x": 0.5', '"x": NaN')
    text = text.replace('"normalCap": 100.0', '"normalCap": Infinity', 1)
    h.publish(PARAM, text.encode(), partition=0)
    h.publish(RT, many(rt_row("S1", 0, 1.0), rt_row("S2", 0, 2.0)), partition=0)
    settle(h)
    assert seen
    assert all(non_finite(inp) == [] for inp in seen)
    s1 = next(inp for inp in seen if inp["station_id"] == "S1")
    assert s1["station_param"]["extra"] == {"deep": [1.0, 2.0]}
    assert "normalCap" not in s1["station_param"]
    assert h.engine.stats.bad_fields == 2  # normalCap (a field) and extra.x (raw only)


# ------------------------------------------------------------------ 8. identifiers


@pytest.mark.parametrize("routing", ROUTINGS)
@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ({**rt_row("S2", 0, 1.0), "stationId": "S" * 129}, "bad_station_id"),
        ({**rt_row("S2", 0, 1.0), "stationId": "S2\nINFO forged line"}, "bad_station_id"),
        (
            {
                **rt_row("S2", 0, 1.0),
                "gunPower": {
                    "gunNo": ["0\x1b[2J"],
                    "outputPowerPerGunAvg": [1.0],
                    "outputPowerPerGunMax": [1.0],
                },
            },
            "bad_id",
        ),
    ],
    ids=["too-long", "newline", "gun-control-char"],
)
def test_bad_identifiers_are_dead_lettered_and_logged_escaped(
    routing: str, row: dict[str, Any], reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    h = harness(routing)
    h.publish(PARAM, param("S1", "S2"), partition=0)
    with caplog.at_level(logging.INFO):
        h.publish(RT, many(rt_row("S1", 0, 1.0), row), partition=0)
        h.publish(RT, many(rt_row("S1", 1, 2.0)), partition=0)
        settle(h)
    assert reasons(h) == [reason]
    assert "S1" in result_ids(h)
    assert all_committed(h)
    for rec in caplog.records:
        text = rec.getMessage()
        assert "\n" not in text, text
        assert "\x1b" not in text, text


def test_an_id_bound_is_a_setting() -> None:
    h = harness("direct", max_id_length=4)
    h.publish(PARAM, param("S1", "S12345"), partition=0)
    settle(h)
    assert reasons(h) == ["bad_station_id"]


# ------------------------------------------------------------------ 9. the station bound


@pytest.mark.parametrize("routing", ROUTINGS)
def test_stations_beyond_max_stations_are_refused_counted_and_logged_once_a_minute(
    routing: str, caplog: pytest.LogCaptureFixture
) -> None:
    h = harness(routing, max_stations=2)
    with caplog.at_level(logging.WARNING, logger="da_core.engine"):
        h.publish(PARAM, param("S1", "S2", "S3", "S4"), partition=0)
        for i in range(5):
            h.publish(PARAM, param(f"X{i}"), partition=0)
        h.publish(RT, many(rt_row("S1", 0, 1.0), rt_row("S2", 0, 2.0)), partition=0)
        settle(h)
    assert sorted(h.engine.station_ids) == ["S1", "S2"]
    assert h.engine.stats.stations_refused == {"station_limit": 7}
    # records that brought no station in are dead-lettered; under rekey a record is split
    # first, so the shares of S3 and S4 are two more such records
    assert reasons(h) == ["station_limit"] * (5 if routing == "direct" else 7)
    assert result_ids(h) == ["S1", "S2"]
    warnings = [r for r in caplog.records if "stations refused" in r.getMessage()]
    assert len(warnings) == 1
    assert "station_limit=" in warnings[0].getMessage()
    assert all_committed(h)


@pytest.mark.parametrize("routing", ROUTINGS)
def test_an_allow_list_file_keeps_only_its_stations(routing: str, tmp_path: Path) -> None:
    path = tmp_path / "stations.txt"
    path.write_text("# the stations of this site\nS1\n\nS2\n")
    h = harness(routing, station_allow_list=str(path))
    h.publish(PARAM, param("S1", "S2", "EVIL"), partition=0)
    h.publish(PARAM, param("EVIL2"), partition=0)
    h.publish(RT, many(rt_row("S1", 0, 1.0), rt_row("S2", 0, 2.0)), partition=0)
    settle(h)
    assert sorted(h.engine.station_ids) == ["S1", "S2"]
    assert h.engine.stats.stations_refused == {"station_not_allowed": 2}
    assert reasons(h) == ["station_not_allowed"] * (1 if routing == "direct" else 2)
    assert all_committed(h)
