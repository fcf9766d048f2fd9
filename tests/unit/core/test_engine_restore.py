"""``Engine.restore``: replayed records rebuild windows without running, tracking or
dead-lettering anything, and live records that follow count nothing twice."""

from __future__ import annotations

from typing import Any

from da_core.catalog import default_catalog
from da_core.engine import Engine
from da_core.types import Record, TopicPartition
from tests.unit.core.test_engine import (
    CAL,
    ORDER,
    PARAM,
    RT,
    T0,
    Feed,
    ack_uploads,
    finish_all,
    make,
    param,
    realtime,
)
from tests.unit.core.test_routing import deliver, internal, rekey_engine, rt_many

OUT_LP = "MODULE-OUTPUT-LOAD_PREDICTION"


def comparable(inputs: dict[str, Any] | None) -> dict[str, Any]:
    """A module input without what depends on when it was assembled (ages, the timestamp)."""
    assert inputs is not None
    out = dict(inputs)
    out.pop("timestamp")
    dq = dict(out.pop("_data_quality"))
    dq.pop("topic_age_seconds")
    out["_data_quality"] = dq
    return out


def order(sid: str, serial: str, soc: float) -> dict[str, Any]:
    return {"stationId": sid, "transactionSerialNo": serial, "gunNo": "01", "soc": soc}


def envelope(sid: str, value: float) -> dict[str, Any]:
    return {
        "batch_id": "b",
        "module": "load_prediction",
        "results": [{"station_id": sid, "v": value}],
    }


def history(feed: Feed) -> list[Record]:
    """Parameters, a calendar, 30 hours, orders in three seconds, a dependency result."""
    recs = [feed.rec(PARAM, param("S1")), feed.rec(CAL, {"calendar": [{"date": "2026-11-27"}]})]
    recs += [feed.rec(RT, realtime("S1", f"{h:02d}", float(h)), ts=T0 + h) for h in range(0, 24)]
    recs += [feed.rec(ORDER, order("S1", f"T{i}", 10.0 + i), ts=T0 + 30 + i // 2) for i in range(6)]
    recs += [feed.rec(OUT_LP, envelope("S1", 1.0), ts=T0 + 40)]
    recs += [feed.rec(RT, realtime("S1", "10", 99.0), ts=T0 + 50)]  # replaces hour 10
    return recs


def test_restore_then_live_equals_live_only_at_every_split_point() -> None:
    feed = Feed()
    recs = history(feed)
    later = T0 + 60
    live = make(module="electricity_price")
    live.ingest(recs, later)
    live.tick(later)  # a live instance's clock completes the last order second
    expected = comparable(live.get_inputs("S1", later))
    for k in range(len(recs) + 1):
        eng = make(module="electricity_price")
        eng.restore(recs[:k], later)
        eng.finish_restore(later)
        eng.ingest(recs[k:], later)
        eng.tick(later)
        assert comparable(eng.get_inputs("S1", later)) == expected, f"split at {k}"


def test_restore_runs_nothing_tracks_nothing_and_dead_letters_nothing() -> None:
    feed = Feed()
    eng = make()
    recs = [feed.rec(PARAM, param("S1")), feed.rec(PARAM, b"not json")]
    recs += [feed.rec(RT, realtime("S1", "10", 1.0))]
    assert eng.restore(recs, T0) == 2
    assert eng.stats.records_restored == 2
    assert eng.stats.restore_skipped == 1
    assert eng.stats.bad_input == {}
    assert eng.take_dead_letters(T0) == []
    assert eng.take_runs(10, T0) == []
    assert eng.flush_offsets() == {}
    eng.tick(T0 + 100)
    assert eng.take_runs(10, T0 + 100) == []
    assert eng.finish_restore(T0 + 100) is None  # nothing live happened meanwhile
    assert eng.take_runs(10, T0 + 100) == []
    assert eng.station_status(T0)["S1"]["ready"] is True


def test_a_restoring_station_runs_after_the_restore_when_live_data_came_meanwhile() -> None:
    feed = Feed()
    eng = make()
    eng.restore([feed.rec(PARAM, param("S1")), feed.rec(RT, realtime("S1", "09", 1.0))], T0)
    # a live record of another partition (already live) reaches the restoring station
    eng.ingest([feed.rec(RT, realtime("S1", "10", 2.0), partition=1)], T0)
    eng.ingest([feed.rec(CAL, {"calendar": [{"date": "x"}]})], T0, tracked=False)
    assert eng.take_runs(10, T0) == []
    assert eng.flush_offsets() == {}  # the live record is held for the run to come
    eng.finish_restore(T0)
    (run,) = eng.take_runs(10, T0)
    assert run.module_input["outputPowerPerStationAvg_window"][-2:] == [1.0, 2.0]
    finish_all(eng, [run], T0)
    eng.tick(T0 + 10)
    ack_uploads(eng, T0 + 10)
    assert eng.flush_offsets() == {TopicPartition(RT, 1): 1}


def test_a_global_record_does_not_run_restoring_stations() -> None:
    feed = Feed()
    eng = make()
    eng.restore([feed.rec(PARAM, param("S1")), feed.rec(RT, realtime("S1", "09", 1.0))], T0)
    eng.ingest([feed.rec(CAL, {"calendar": [{"date": "x"}]})], T0, tracked=False)
    eng.finish_restore(T0)
    assert eng.take_runs(10, T0) == []  # re-read global data is not news for restored state


def test_order_seconds_complete_by_now_are_restored_complete_and_silent() -> None:
    feed = Feed()
    recs = [feed.rec(ORDER, order("S1", f"T{i}", float(i)), ts=T0 + i) for i in range(3)]
    live = make(module="station_guidance")
    live.ingest(recs, T0 + 2)
    live.tick(T0 + 10)
    eng = make(module="station_guidance")
    eng.restore(recs, T0 + 10)
    eng.finish_restore(T0 + 10)
    eng.tick(T0 + 10)
    assert eng.take_runs(10, T0 + 10) == []
    assert comparable(eng.get_inputs("S1", T0 + 10)) == comparable(live.get_inputs("S1", T0 + 10))


def test_revoke_drops_restored_stations_of_the_revoked_partitions() -> None:
    feed = Feed()
    eng = make()
    eng.restore([feed.rec(PARAM, param("S1"), partition=0)], T0)
    eng.restore([feed.rec(PARAM, param("S2"), partition=1)], T0)
    eng.partitions_revoked([TopicPartition(PARAM, 1)])
    assert eng.station_ids == ["S1"]
    assert eng.restoring == 1


def test_rekey_restores_internal_topics_and_never_splits_source_records() -> None:
    feed = Feed()
    eng = rekey_engine()
    source = feed.rec(RT, rt_many("S1", "S2"))
    assert eng.restore([source], T0) == 0
    assert eng.stats.restore_skipped == 1
    assert eng.take_forwards(T0) == []
    # the shares the first owner forwarded are what a new owner restores
    first = rekey_engine()
    first.ingest([feed.rec(PARAM, param("S1")), source], T0)
    shares = deliver(first, T0)
    assert {r.topic for r in shares} == {internal(PARAM), internal(RT)}
    assert eng.restore(shares, T0) == len(shares)
    assert sorted(eng.station_ids) == ["S1", "S2"]
    first.ingest(shares, T0)
    assert comparable(eng.get_inputs("S1", T0)) == comparable(first.get_inputs("S1", T0))


def test_a_station_without_storage_is_ready_by_default() -> None:
    feed = Feed()
    eng: Engine = make(module="operation_optimization")
    price = {"fee": [{"stationId": "S1", "sendTime": "2026-11-27 10:00:00", "flatElectricFee": 1}]}
    eng.ingest([feed.rec(PARAM, param("S1")), feed.rec("SCHEDULE-CAR-PRICE", price)], T0)
    (run,) = eng.take_runs(1, T0)
    dq = run.module_input["_data_quality"]
    assert "SCHEDULE-DEVICE-STORAGE" in dq["missing_topics"]
    assert default_catalog().topics["SCHEDULE-DEVICE-STORAGE"].optional


def test_restore_applies_only_what_live_intake_would_apply() -> None:
    # a bad station id and a record stamped far in the future are rejected live: replay skips
    # them the same way (no station appears, nothing is counted as restored)
    feed = Feed()
    bad_id = feed.rec(PARAM, param("S\n1"))
    future = feed.rec(PARAM, param("S2"), ts=T0 + 10 * 86_400)
    good = feed.rec(PARAM, param("S3"))
    eng = make(module="electricity_price")
    assert eng.restore([bad_id, future, good], T0) == 1
    eng.finish_restore(T0)
    assert eng.station_ids == ["S3"]
    assert eng.stats.restore_skipped == 2
