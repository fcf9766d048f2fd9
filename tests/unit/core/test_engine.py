"""The engine's state machine, driven directly: records, time and completions in; work out."""

from __future__ import annotations

import json
from typing import Any

import attrs
import pytest

from da_core.catalog import default_catalog
from da_core.codec import StdlibJsonCodec
from da_core.config import Catalog
from da_core.engine import Engine, StationRun
from da_core.types import Record, TopicPartition

T0 = 1_800_000_000.0
PARAM = "SCHEDULE-STATION-PARAM"
RT = "SCHEDULE-STATION-REALTIME-DATA"
CAL = "SCHEDULE-ENVIRONMENT-CALENDAR"
ORDER = "SCHEDULE-CAR-ORDER"


class Feed:
    """Builds records with increasing offsets per partition."""

    def __init__(self) -> None:
        self.offsets: dict[tuple[str, int], int] = {}

    def rec(self, topic: str, payload: Any, *, partition: int = 0, ts: float = T0) -> Record:
        key = (topic, partition)
        off = self.offsets.get(key, 0)
        self.offsets[key] = off + 1
        value = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        return Record(topic, partition, off, value, None, ts)


def param(sid: str, cap: float = 630.0) -> list[dict[str, Any]]:
    return [
        {
            "stationId": sid,
            "gridCapacity": cap,
            "stationLng": 1.0,
            "stationLat": 2.0,
            "gunNum": 2,
            "normalCap": 100.0,
            "powerNum": 1,
        }
    ]


def realtime(sid: str, hour: str, avg: float) -> dict[str, Any]:
    return {
        "realTimeData": [
            {
                "stationId": sid,
                "sendTime": f"2026-11-27 {hour}:00:00",
                "gunPower": {
                    "gunNo": ["01"],
                    "outputPowerPerGunAvg": [avg],
                    "outputPowerPerGunMax": [avg],
                },
                "outputPowerPerStationAvg": avg,
                "outputPowerPerStationMax": avg,
            }
        ]
    }


def make(catalog: Catalog | None = None, module: str = "load_prediction") -> Engine:
    return Engine(catalog or default_catalog(), module, StdlibJsonCodec())


def finish_all(eng: Engine, runs: list[StationRun], now: float, result: Any = "auto") -> None:
    for r in runs:
        eng.finish_run(r, now, result={"ok": r.station_id} if result == "auto" else result)


def ack_uploads(eng: Engine, now: float) -> list[Any]:
    ups = eng.take_uploads(now)
    for u in ups:
        eng.upload_done(u.upload_id, True, now)
    return ups


def test_station_runs_once_its_required_topics_are_present() -> None:
    eng, feed = make(), Feed()
    eng.ingest([feed.rec(PARAM, param("S1"))], T0)
    assert eng.take_runs(10, T0) == []
    eng.ingest([feed.rec(RT, realtime("S1", "10", 5.0))], T0)
    runs = eng.take_runs(10, T0)
    assert [r.station_id for r in runs] == ["S1"]
    assert runs[0].module_input["gridCapacity"] == 630.0


def test_updates_while_running_coalesce_into_one_more_run() -> None:
    eng, feed = make(), Feed()
    eng.ingest([feed.rec(PARAM, param("S1")), feed.rec(RT, realtime("S1", "10", 1.0))], T0)
    (first,) = eng.take_runs(10, T0)
    for i in range(100):
        eng.ingest([feed.rec(RT, realtime("S1", "10", float(i)))], T0)
        assert eng.take_runs(10, T0) == []  # never a second concurrent run of one station
    eng.finish_run(first, T0, result={"x": 1})
    second = eng.take_runs(10, T0)
    assert len(second) == 1
    assert second[0].module_input["outputPowerPerStationAvg"] == 99.0
    eng.finish_run(second[0], T0, result={"x": 2})
    assert eng.take_runs(10, T0) == []


def test_batch_uploads_one_envelope_with_station_ids_and_skips_none_results() -> None:
    eng, feed = make(), Feed()
    recs = [
        feed.rec(PARAM, param("S1") + param("S2")),
        feed.rec(RT, realtime("S1", "10", 1.0)),
        feed.rec(RT, realtime("S2", "10", 2.0)),
    ]
    eng.ingest(recs, T0)
    runs = eng.take_runs(10, T0)
    for r in runs:
        eng.finish_run(r, T0, result=None if r.station_id == "S2" else {"v": 1})
    eng.tick(T0)
    (up,) = eng.take_uploads(T0)
    assert up.results == [{"v": 1, "station_id": "S1"}]
    env = json.loads(up.records[0].value)
    assert env["module"] == "load_prediction"
    assert env["stations_count"] == 1
    assert up.records[0].key == up.batch_id.encode()
    assert up.records[0].topic == "MODULE-OUTPUT-LOAD_PREDICTION"


def test_offsets_commit_only_after_upload_is_acknowledged() -> None:
    eng, feed = make(), Feed()
    eng.ingest([feed.rec(PARAM, param("S1")), feed.rec(RT, realtime("S1", "10", 1.0))], T0)
    finish_all(eng, eng.take_runs(10, T0), T0)
    eng.tick(T0)
    (up,) = eng.take_uploads(T0)
    assert eng.flush_offsets() == {}
    eng.upload_done(up.upload_id, True, T0)
    assert eng.flush_offsets() == {TopicPartition(PARAM, 0): 1, TopicPartition(RT, 0): 1}


def test_failed_upload_commits_nothing_and_is_retried_with_backoff() -> None:
    eng, feed = make(), Feed()
    eng.ingest([feed.rec(PARAM, param("S1")), feed.rec(RT, realtime("S1", "10", 1.0))], T0)
    finish_all(eng, eng.take_runs(10, T0), T0)
    eng.tick(T0)
    (up,) = eng.take_uploads(T0)
    eng.upload_done(up.upload_id, False, T0, "broker down")
    assert eng.flush_offsets() == {}
    assert eng.take_uploads(T0) == []  # backoff
    (retry,) = eng.take_uploads(T0 + 60)
    assert retry.batch_id == up.batch_id
    assert retry.attempt == 1
    eng.upload_done(retry.upload_id, True, T0 + 60)
    assert eng.flush_offsets() == {TopicPartition(PARAM, 0): 1, TopicPartition(RT, 0): 1}


def test_bad_record_goes_to_dead_letter_and_commits_after_its_ack() -> None:
    eng, feed = make(), Feed()
    eng.ingest([feed.rec(RT, b"{not json")], T0)
    (dl,) = eng.take_dead_letters()
    headers = dict(dl.record.headers)
    assert headers["da.reason"] == b"not_json"
    assert headers["da.topic"] == RT.encode()
    assert dl.record.topic == "DATA-ANALYSIS-DEAD-LETTER"
    assert eng.stats.bad_input == {"not_json": 1}
    assert eng.flush_offsets() == {}
    eng.dead_letter_done(dl.dl_id, True, T0)
    assert eng.flush_offsets() == {TopicPartition(RT, 0): 1}


def test_commit_never_passes_a_record_still_in_flight() -> None:
    eng, feed = make(), Feed()
    eng.ingest([feed.rec(PARAM, param("S1") + param("S2"))], T0)
    eng.ingest([feed.rec(RT, realtime("S1", "10", 1.0))], T0)  # RT offset 0: S1
    eng.ingest([feed.rec(RT, realtime("S2", "10", 1.0))], T0)  # RT offset 1: S2
    runs = {r.station_id: r for r in eng.take_runs(10, T0)}
    eng.finish_run(runs["S2"], T0, result={"v": 2})
    eng.tick(T0)
    ack_uploads(eng, T0)
    # S2's record (offset 1) is done but S1's (offset 0) is in flight: nothing on RT commits
    assert TopicPartition(RT, 0) not in eng.flush_offsets()
    eng.finish_run(runs["S1"], T0, result={"v": 1})
    eng.tick(T0)
    ack_uploads(eng, T0)
    assert eng.flush_offsets()[TopicPartition(RT, 0)] == 2


def test_failing_callback_holds_records_and_retries_after_delay() -> None:
    eng, feed = make(), Feed()
    eng.ingest([feed.rec(PARAM, param("S1")), feed.rec(RT, realtime("S1", "10", 1.0))], T0)
    (run,) = eng.take_runs(10, T0)
    eng.finish_run(run, T0, error=ValueError("model broke"))
    assert eng.stats.runs_failed == {"ValueError": 1}
    eng.tick(T0)
    ack_uploads(eng, T0)
    assert eng.flush_offsets() == {}
    assert eng.take_runs(10, T0) == []
    eng.tick(T0 + 1.0)
    (retry,) = eng.take_runs(10, T0 + 1.0)
    eng.finish_run(retry, T0 + 1.0, result={"ok": True})
    eng.tick(T0 + 1.0)
    ack_uploads(eng, T0 + 1.0)
    assert eng.flush_offsets() == {TopicPartition(PARAM, 0): 1, TopicPartition(RT, 0): 1}


def test_global_topic_applies_to_existing_and_new_stations() -> None:
    eng, feed = make(), Feed()
    eng.ingest([feed.rec(PARAM, param("S1")), feed.rec(RT, realtime("S1", "10", 1.0))], T0)
    finish_all(eng, eng.take_runs(10, T0), T0)
    cal = {"calendar": [{"date": "2026-11-28", "isHoliday": 0, "isWeekend": 1}]}
    eng.ingest([feed.rec(CAL, cal)], T0)
    eng.tick(T0)
    (again,) = eng.take_runs(10, T0)
    assert again.module_input["calendar_isWeekend"] == [1]
    eng.ingest([feed.rec(PARAM, param("S9")), feed.rec(RT, realtime("S9", "10", 1.0))], T0)
    (new,) = eng.take_runs(10, T0)
    assert new.station_id == "S9"
    assert new.module_input["environment_calendar"] == cal["calendar"]


def test_dependency_results_appear_per_dependency() -> None:
    eng, feed = make(module="operation_optimization"), Feed()
    env = {
        "batch_id": "load_prediction-000001",
        "module": "load_prediction",
        "timestamp": T0,
        "stations_count": 1,
        "results": [{"station_id": "S1", "next_hour_kw": 42.0}],
    }
    eng.ingest([feed.rec("MODULE-OUTPUT-LOAD_PREDICTION", env)], T0)
    inputs = eng.get_inputs("S1", T0)
    assert inputs is not None
    assert inputs["dependencies"] == {"load_prediction": {"next_hour_kw": 42.0}}


def test_car_order_second_completes_by_the_clock_without_a_later_order() -> None:
    cat = default_catalog()
    m = attrs.evolve(cat.module("station_guidance"), dependencies=())
    eng = make(cat.replace_module(m), "station_guidance")
    feed = Feed()
    order = {"stationId": "S1", "gunNo": "01", "soc": 50.0, "transactionSerialNo": "T1"}
    eng.ingest([feed.rec(ORDER, order, ts=T0 + 0.2)], T0 + 0.3)
    eng.tick(T0 + 2.5)  # second T0 ends at T0+1, plus 1 s grace
    runs = eng.take_runs(10, T0 + 2.5)
    assert runs, "the completed second must trigger a run"
    assert runs[-1].module_input["order_soc"] == [50.0]


def test_data_quality_reports_available_missing_and_stale_topics() -> None:
    eng, feed = make(), Feed()
    eng.ingest([feed.rec(PARAM, param("S1"), ts=T0 - 100_000)], T0)  # parameters never expire
    eng.ingest([feed.rec(RT, realtime("S1", "10", 1.0), ts=T0 - 8000)], T0)  # hourly: 2 h
    q = eng.get_inputs("S1", T0)
    assert q is not None
    dq = q["_data_quality"]
    assert dq["available_topics"] == [PARAM]
    assert dq["stale_topics"] == [RT]
    assert dq["missing_topics"] == [CAL]
    assert dq["availability_ratio"] == 1 / 3
    assert dq["topic_age_seconds"][RT] == 8000.0


def test_expired_station_is_evicted_and_its_held_records_released() -> None:
    cat = default_catalog()
    lp = cat.module("load_prediction")
    cat = cat.replace_module(
        attrs.evolve(lp, readiness=attrs.evolve(lp.readiness, required_topics=(RT,)))
    )
    eng, feed = make(cat), Feed()
    eng.ingest([feed.rec(RT, realtime("S1", "10", 1.0), ts=T0)], T0)
    (run,) = eng.take_runs(1, T0)
    eng.finish_run(run, T0, error=RuntimeError("broken"))  # held again for the retry
    assert eng.flush_offsets() == {}
    assert eng.sweep(T0 + 7199) == 0
    assert eng.sweep(T0 + 7201) == 1
    assert len(eng) == 0
    assert eng.flush_offsets() == {TopicPartition(RT, 0): 1}


def test_a_station_that_is_not_ready_releases_its_records_at_once() -> None:
    eng, feed = make(), Feed()
    eng.ingest([feed.rec(RT, realtime("S1", "10", 1.0), ts=T0)], T0)  # no parameters yet
    assert eng.flush_offsets() == {TopicPartition(RT, 0): 1}
    assert eng.stats.refs_released_unready == 1
    eng.ingest([feed.rec(PARAM, param("S1"), ts=T0)], T0)  # ready now: held until it ran
    assert TopicPartition(PARAM, 0) not in eng.flush_offsets()
    (run,) = eng.take_runs(1, T0)
    assert run.module_input["outputPowerPerStationAvg"] == 1.0  # the window kept the hour


def test_many_stations_queue_without_limit_and_run_in_bounded_slices() -> None:
    eng, feed = make(), Feed()
    ids = [f"S{i}" for i in range(1000)]
    eng.ingest([feed.rec(PARAM, [p for s in ids for p in param(s)])], T0)
    eng.ingest(
        [feed.rec(RT, {"realTimeData": [realtime(s, "10", 1.0)["realTimeData"][0] for s in ids]})],
        T0,
    )
    seen: set[str] = set()
    while True:
        runs = eng.take_runs(4, T0)
        if not runs:
            break
        assert len(runs) <= 4
        seen.update(r.station_id for r in runs)
        finish_all(eng, runs, T0)
    assert seen == set(ids)


def test_revoke_drops_stations_fed_only_by_revoked_partitions() -> None:
    eng, feed = make(), Feed()
    eng.ingest(
        [feed.rec(PARAM, param("S1"), partition=0), feed.rec(PARAM, param("S2"), partition=1)], T0
    )
    eng.partitions_revoked([TopicPartition(PARAM, 1)])
    assert eng.station_ids == ["S1"]


@pytest.mark.parametrize("mode", ["batch", "station"])
def test_output_mode_decides_record_keys(mode: str) -> None:
    cat = default_catalog()
    cat = cat.replace_module(attrs.evolve(cat.module("load_prediction"), output_mode=mode))
    eng, feed = make(cat), Feed()
    eng.ingest(
        [
            feed.rec(PARAM, param("S1") + param("S2")),
            feed.rec(RT, realtime("S1", "10", 1)),
            feed.rec(RT, realtime("S2", "10", 1)),
        ],
        T0,
    )
    finish_all(eng, eng.take_runs(10, T0), T0)
    eng.tick(T0)
    (up,) = eng.take_uploads(T0)
    keys = sorted(r.key for r in up.records if r.key is not None)
    if mode == "station":
        assert keys == [b"S1", b"S2"]
    else:
        assert keys == [up.batch_id.encode()]
