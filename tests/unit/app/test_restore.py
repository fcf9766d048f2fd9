"""Restore on the in-memory bus: a restarted instance rebuilds its stations' windows from the
log before going live, so its next module input equals that of an instance that never
crashed; commits reach the end of every partition whatever stations are ready."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from prometheus_client import generate_latest

from da_adapters.memory import ManualClock, MemoryBroker
from da_app.metrics import build_registry
from da_app.services import AsyncDataAnalysisService
from da_app.testing import Harness, load_sample
from da_core.types import TopicPartition
from tests.support.waiting import async_wait_for

from .helpers import CAL, PARAM, RT, param, realtime

MODULE = "electricity_price"
SID = "S0001"
PV_OUT = "MODULE-OUTPUT-PV_PREDICTION"
ORDER, PRICE = "SCHEDULE-CAR-ORDER", "SCHEDULE-CAR-PRICE"
STORAGE, METER = "SCHEDULE-DEVICE-STORAGE", "SCHEDULE-DEVICE-METER"

Inputs = list[tuple[str, dict[str, Any]]]


def recorder() -> tuple[Inputs, Callable[[str, dict[str, Any]], dict[str, Any]]]:
    seen: Inputs = []

    def model(sid: str, inp: dict[str, Any]) -> dict[str, Any]:
        seen.append((sid, inp))
        return {"n": len(inp["outputPowerPerStationAvg_window"])}

    return seen, model


def comparable(inp: dict[str, Any]) -> dict[str, Any]:
    """A module input without what depends on when it was assembled (ages, timestamp)."""
    out = dict(inp)
    out.pop("timestamp")
    dq = dict(out.pop("_data_quality"))
    dq.pop("topic_age_seconds")
    out["_data_quality"] = dq
    return out


def last_input(seen: Inputs, sid: str = SID) -> dict[str, Any]:
    return next(inp for s, inp in reversed(seen) if s == sid)


def history(publish: Callable[..., None], clock: ManualClock) -> None:
    """Parameters, the calendar, 24 hours, a price, storage, a meter, orders of two seconds
    and a dependency's result for S0001 (every kind of window); S0002 has parameters only."""
    publish(PARAM, param(SID), key=SID)
    publish(PARAM, param("S0002"), key="S0002")
    publish(CAL, load_sample(CAL))
    for hour in range(24):
        publish(RT, realtime(SID, hour, float(hour)), key=SID)
    for topic in (PRICE, STORAGE, METER):
        publish(topic, load_sample(topic), key=SID)
    for second in range(2):
        order = dict(load_sample(ORDER), soc=50.0 + second)
        publish(ORDER, order, key=SID)
        clock.advance(1)
    publish(PV_OUT, {"results": [{"station_id": SID, "pv": [1.0, 2.0]}]}, key=SID)


def settle(*hs: Harness) -> None:
    """Run to idle, let batches time out and commits fall due, run to idle again."""
    for h in hs:
        h.run_until_idle()
    hs[0].advance(6)
    for h in hs:
        h.run_until_idle()


@pytest.mark.parametrize("routing", ["direct", "rekey"])
def test_a_restarted_instance_gives_the_same_next_input_as_one_that_never_crashed(
    routing: str,
) -> None:
    clock = ManualClock()
    broker = MemoryBroker(clock)
    kept_seen, kept_model = recorder()
    crashed_seen, crashed_model = recorder()

    def harness(group: str, model: Callable[..., Any]) -> Harness:
        return Harness(
            MODULE, model, broker=broker, clock=clock, group_id=group, station_routing=routing
        )

    kept = harness("kept", kept_model)
    crashed = harness("crashed", crashed_model)
    history(kept.publish, clock)
    settle(kept, crashed)
    assert comparable(last_input(crashed_seen)) == comparable(last_input(kept_seen))
    crashed.crash()

    seen, model = recorder()
    restarted = harness("crashed", model)
    restarted.run_until_idle()
    assert seen == []  # restored data runs nothing by itself
    stats = restarted.runner.stats
    assert stats.restore_records > 0
    assert stats.restore_done == stats.restore_total > 0
    assert restarted.engine.get_inputs(SID, clock.time()) is not None

    kept.publish(RT, realtime(SID, 24, 24.0), key=SID)  # one new hour
    settle(kept, restarted)
    new, old = last_input(seen), last_input(kept_seen)
    assert comparable(new) == comparable(old)
    assert new["gridCapacity"] == 630.0
    assert new["outputPowerPerStationAvg_window"][-25:] == [float(h) for h in range(25)]
    assert new["dependencies"]["pv_prediction"] == {"pv": [1.0, 2.0]}
    assert new["_data_quality"]["missing_topics"] == []
    # the restarted instance ran once, for the new record only
    assert [s for s, _ in seen] == [SID]
    restarted.stop()
    kept.stop()


def test_a_revoked_partition_is_restored_by_its_new_owner_and_dropped_by_the_old() -> None:
    clock = ManualClock()
    broker = MemoryBroker(clock)
    first_seen, first_model = recorder()
    first = Harness(MODULE, first_model, broker=broker, clock=clock, group_id="g")
    history(first.publish, clock)
    settle(first)
    second_seen, second_model = recorder()
    second = Harness(MODULE, second_model, broker=broker, clock=clock, group_id="g")
    settle(first, second)
    owner, other = (second, first) if SID in second.engine.station_ids else (first, second)
    assert SID not in other.engine.station_ids
    owner_seen = second_seen if owner is second else first_seen
    owner_seen.clear()
    first.publish(RT, realtime(SID, 24, 24.0), key=SID)
    settle(first, second)
    inp = last_input(owner_seen)
    assert inp["gridCapacity"] == 630.0
    assert inp["outputPowerPerStationAvg_window"][-25:] == [float(h) for h in range(25)]
    first.stop()
    second.stop()


def test_commits_reach_the_end_of_every_partition_with_the_default_readiness() -> None:
    clock = ManualClock()
    broker = MemoryBroker(clock)
    seen: Inputs = []
    h = Harness(
        "operation_optimization", lambda s, i: seen.append((s, i)), broker=broker, clock=clock
    )
    # S1 has parameters and a price but no storage: it runs; S2 lacks a price: never ready
    h.publish(PARAM, param("S1"), key="S1")
    h.publish(PRICE, {"fee": [dict(load_sample(PRICE)["fee"][0], stationId="S1")]}, key="S1")
    h.publish(PARAM, param("S2"), key="S2")
    h.publish(ORDER, dict(load_sample(ORDER), stationId="S2"), key="S2")
    for i in range(10):
        h.publish(ORDER, dict(load_sample(ORDER), stationId="S2", soc=float(i)), key="S2")
        clock.advance(1)
    settle(h)
    settle(h)
    committed = h.committed()
    for tp, offset in committed.items():
        assert offset == broker.high_watermark(tp) or broker.high_watermark(tp) == 0, tp
    assert sum(c or 0 for tp, c in committed.items() if tp.topic == ORDER) == 11
    assert {s for s, _ in seen} == {"S1"}
    assert STORAGE in last_input(seen, "S1")["_data_quality"]["missing_topics"]
    h.stop()


async def test_the_async_service_restores_before_going_live() -> None:
    clock = ManualClock()
    broker = MemoryBroker(clock)

    def publish(topic: str, payload: Any, *, key: str | None = None) -> None:
        broker.produce(topic, json.dumps(payload).encode(), key=key.encode() if key else None)

    history(publish, clock)

    def service() -> AsyncDataAnalysisService:
        return AsyncDataAnalysisService(
            module_name=MODULE,
            config={},
            adapter="memory",
            broker=broker,
            clock=clock,
            group_id="async",
            auto_offset_reset="earliest",
            poll_timeout=0.01,
        )

    first_seen, first_model = recorder()
    svc = service()
    await svc.start(first_model)
    await async_wait_for(lambda: any(s == SID for s, _ in first_seen), 10, what="first run")
    await svc.stop()  # drains and commits
    tps = [TopicPartition(t, p) for t in (PARAM, RT) for p in range(3)]
    assert {tp: c or 0 for tp, c in broker.committed("async", tps).items()} == {
        tp: broker.high_watermark(tp) for tp in tps
    }

    seen, model = recorder()
    svc = service()
    await svc.start(model)
    stats = svc.runner_stats()
    assert stats is not None
    await async_wait_for(lambda: not stats.restoring and stats.restore_done > 0, 10, what="restore")
    assert seen == []  # restored data (and the re-read calendar) run nothing
    publish(RT, realtime(SID, 24, 24.0), key=SID)
    await async_wait_for(lambda: bool(seen), 10, what="a run after the new hour")
    inp = last_input(seen)
    assert inp["gridCapacity"] == 630.0
    assert inp["outputPowerPerStationAvg_window"][-25:] == [float(h) for h in range(25)]
    assert inp["dependencies"]["pv_prediction"] == {"pv": [1.0, 2.0]}
    await svc.stop()
    assert asyncio.get_running_loop().is_running()


def test_ready_says_restoring_and_live_records_wait_for_the_end_of_the_restore() -> None:
    clock = ManualClock()
    broker = MemoryBroker(clock)
    first = Harness(MODULE, recorder()[1], broker=broker, clock=clock, group_id="g")
    history(first.publish, clock)
    settle(first)
    first.crash()

    seen, model = recorder()
    h = Harness(MODULE, model, broker=broker, clock=clock, group_id="g")
    h.runner.core.restore.batch = 1  # one record per loop iteration: a restore of many steps
    h.step()
    ready = h.service.readiness()
    assert not ready.ok
    (reason,) = [r for r in ready.body["reasons"] if r.startswith("restoring")]
    assert reason.endswith(" partitions")
    h.publish(RT, realtime(SID, 24, 24.0), key=SID)  # live, while its partition restores
    for _ in range(3):
        h.step()
    assert seen == []
    assert h.runner.core.restore.active
    h.run_until_idle()
    reasons = h.service.readiness().body["reasons"]  # the harness steps: no loop thread
    assert not [r for r in reasons if r.startswith("restoring")]
    ((_sid, inp),) = seen  # one run, with the restored history and the live hour
    assert inp["outputPowerPerStationAvg_window"][-25:] == [float(x) for x in range(25)]
    text = generate_latest(build_registry(h.service, process=False)).decode()
    for name in (
        "data_analysis_restore_records_total",
        "data_analysis_restore_seconds",
        'data_analysis_restore_partitions{state="restored"}',
        "data_analysis_first_run_seconds",
    ):
        assert name in text
    stats = h.runner.stats
    assert stats.restore_done == stats.restore_total
    assert stats.restore_seconds is not None
    assert stats.first_run_seconds is not None
    h.stop()


def test_a_retention_gap_is_warned_about_once_at_start(caplog: pytest.LogCaptureFixture) -> None:
    clock = ManualClock()
    broker = MemoryBroker(clock)
    first = Harness("load_prediction", recorder()[1], broker=broker, clock=clock, group_id="g")
    first.publish(PARAM, param(SID), key=SID)
    first.publish(RT, realtime(SID, 0, 0.0), key=SID)
    settle(first)
    first.crash()
    for p in range(broker.partition_count(PARAM)):
        tp = TopicPartition(PARAM, p)
        broker.delete_records_before(tp, broker.high_watermark(tp))  # retention deleted them
    caplog.set_level("WARNING", logger="da_app.runner")
    h = Harness("load_prediction", recorder()[1], broker=broker, clock=clock, group_id="g")
    h.run_until_idle()
    gaps = [r.getMessage() for r in caplog.records if "never expires" in r.getMessage()]
    assert len(gaps) == 1
    assert PARAM in gaps[0]
    h.stop()
