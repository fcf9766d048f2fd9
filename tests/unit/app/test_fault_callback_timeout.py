"""Issue 10 item 10 / SPEC §7: a callback that never returns times out
(``service.callback_timeout_seconds``), is counted (``errors_total{error_type="timeout"}``) and
retried by policy; its sync worker is reported stuck (``/ready`` 503 once all are); ``stop()``
stays bounded and the process exits. ``SystemExit``/``KeyboardInterrupt`` raised by a user
callable fail the run (``callback_exit``) and never escape a worker or the event loop."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from typing import Any

import pytest

from da_adapters.memory import ManualClock, MemoryBroker
from da_app.metrics import build_registry
from da_app.services import AsyncDataAnalysisService, DataAnalysisService
from da_app.testing import Harness
from tests.support.waiting import async_wait_for, wait_for

from .helpers import OUT_LP, PARAM, RT, param, rt_row

LP = "load_prediction"
TIMEOUT = {"service": {"callback_timeout_seconds": 5}}


def _feed(publish: Any, *sids: str) -> None:
    publish(PARAM, param(*sids))
    publish(RT, {"realTimeData": [rt_row(s, 1, 5.0) for s in sids]})


def _hanging(hang: set[str], release: threading.Event, calls: Counter[str]) -> Any:
    def model(sid: str, inp: dict[str, Any]) -> dict[str, Any]:
        calls[sid] += 1
        if sid in hang and calls[sid] == 1:
            release.wait(30)
        return {"ok": sid}

    return model


def _uploaded(h: Harness) -> list[str]:
    return sorted(r["station_id"] for r in h.results())


def test_a_hung_callback_times_out_is_counted_retried_and_its_worker_reported_stuck() -> None:
    release, calls = threading.Event(), Counter[str]()
    h = Harness(LP, _hanging({"S1"}, release, calls), config=TIMEOUT, max_workers=2)
    try:
        _feed(h.publish, "S1", "S2", "S3")
        wait_for(lambda: h.step() >= 0 and h.engine.stats.runs_ok == 2, what="S2 and S3 done")
        h.advance(6)  # past the 5 s run timeout of the service clock
        wait_for(lambda: h.step() >= 0 and _uploaded(h) == ["S2", "S3"], what="the batch")
        assert h.engine.stats.run_faults == {"timeout": 1}
        assert h.runner.stuck_workers == 1
        assert h.service.get_service_status()["stuck_workers"] == 1
        assert h.service.liveness().body["stuck_workers"] == 1
        ready = h.service.readiness()
        assert ready.body["stuck_workers"] == 1
        assert not any("all 2 workers" in r for r in ready.body.get("reasons", []))
        registry = build_registry(h.service, process=False)
        errors = {"error_type": "timeout"}
        assert registry.get_sample_value("data_analysis_errors_total", errors) == 1
        assert registry.get_sample_value("data_analysis_stuck_workers") == 1
        # retried by the station's policy (callback_retry_delay 1 s) on the free worker
        h.advance(2)
        wait_for(lambda: h.step() >= 0 and calls["S1"] == 2, what="S1's retry")
        h.advance(10)
        wait_for(lambda: h.step() >= 0 and "S1" in _uploaded(h), what="S1's retried result")
    finally:
        release.set()
    wait_for(lambda: h.step() >= 0 and h.runner.stuck_workers == 0, what="the late return")
    assert h.runner.core.watch.late_returns == 1
    assert _uploaded(h).count("S1") == 1  # the late result was discarded
    h.stop()


def test_all_workers_stuck_makes_ready_fail_and_the_rest_runs_once_they_return() -> None:
    release, calls = threading.Event(), Counter[str]()
    sids = {"S1", "S2", "S3"}
    h = Harness(LP, _hanging(sids, release, calls), config=TIMEOUT, max_workers=2)
    try:
        _feed(h.publish, *sorted(sids))
        wait_for(lambda: h.step() >= 0 and sum(calls.values()) == 2, what="two hang")
        h.advance(6)
        wait_for(lambda: h.step() >= 0 and h.runner.stuck_workers == 2, what="two stuck")
        (waiting,) = sids - set(calls)  # no free worker for the third station
        reasons = h.service.readiness().body["reasons"]
        assert "all 2 workers stuck in callbacks that timed out" in reasons
    finally:
        release.set()
    wait_for(lambda: h.step() >= 0 and calls[waiting] == 1, what="the third runs at last")
    wait_for(lambda: h.step() >= 0 and h.runner.stuck_workers == 0, what="workers back")
    h.stop()


def test_stop_is_bounded_with_a_hung_callback() -> None:
    release = threading.Event()
    clock = ManualClock()
    broker = MemoryBroker(clock)
    svc = DataAnalysisService(
        module_name=LP,
        config={},
        adapter="memory",
        broker=broker,
        clock=clock,
        group_id="hung-stop",
        auto_offset_reset="earliest",
        poll_timeout=0.01,
        drain_timeout=0.5,
    )
    started = threading.Event()

    def model(sid: str, inp: dict[str, Any]) -> None:
        started.set()
        release.wait(60)

    try:
        svc.start(model)
        _feed(lambda t, p: broker.produce(t, json.dumps(p).encode()), "S1")
        assert started.wait(10)
        t0 = time.monotonic()
        svc.stop()
        assert time.monotonic() - t0 < 0.5 + 5
        assert svc.runner is not None
        assert not svc.runner.alive
    finally:
        release.set()


def test_a_sync_service_with_a_hung_callback_exits_after_stop() -> None:
    script = textwrap.dedent(
        """
        import json, threading
        from da_adapters.memory import ManualClock, MemoryBroker
        from da_app.services import DataAnalysisService
        clock = ManualClock(); broker = MemoryBroker(clock); started = threading.Event()
        svc = DataAnalysisService(module_name="load_prediction", config={}, adapter="memory",
            broker=broker, clock=clock, group_id="g", auto_offset_reset="earliest",
            poll_timeout=0.01, drain_timeout=0.5)
        def model(sid, inp):
            started.set()
            threading.Event().wait()  # never returns
        svc.start(model)
        broker.produce("SCHEDULE-STATION-PARAM", json.dumps([{"stationId": "S1",
            "gridCapacity": 1.0, "stationLng": 1.0, "stationLat": 2.0, "gunNum": 1,
            "normalCap": 1.0, "powerNum": 1}]).encode())
        broker.produce("SCHEDULE-STATION-REALTIME-DATA", json.dumps({"realTimeData": [{
            "stationId": "S1", "sendTime": "2026-11-10 01:00:00",
            "outputPowerPerStationAvg": 1.0, "outputPowerPerStationMax": 1.0}]}).encode())
        assert started.wait(10)
        svc.stop()
        print("stopped")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "stopped" in done.stdout


@pytest.mark.parametrize("exit_exc", [SystemExit, KeyboardInterrupt])
def test_a_callback_raising_an_exit_fails_the_run_with_callback_exit(
    exit_exc: type[BaseException],
) -> None:
    def model(sid: str, inp: dict[str, Any]) -> dict[str, Any]:
        if sid == "S1":
            raise exit_exc("bye")
        return {"ok": sid}

    h = Harness(LP, model)
    _feed(h.publish, "S1", "S2")
    h.run_until_idle()
    assert _uploaded(h) == ["S2"]
    assert h.engine.stats.run_faults == {"callback_exit": 1}
    assert h.service.get_station_status()["S1"]["running"] is False
    assert h.engine.running == 0
    h.stop()


def test_handlers_raising_an_exit_never_escape_a_worker() -> None:
    uploads: list[int] = []

    def handler(sid: str, inp: dict[str, Any], result: Any) -> None:
        raise SystemExit(3)

    def upload(batch_id: str, results: list[dict[str, Any]]) -> None:
        uploads.append(len(results))
        if len(uploads) == 1:
            raise KeyboardInterrupt

    h = Harness(LP, lambda s, i: {"ok": s}, result_handler=handler, batch_upload_handler=upload)
    _feed(h.publish, "S1")
    h.run_until_idle()
    assert h.runner.stats.result_handler_errors == 1
    assert h.engine.stats.upload_failures == 1
    h.advance(1)  # the upload's backoff
    h.run_until_idle()
    assert uploads == [1, 1]
    assert h.engine.stats.uploads_ok == 1
    h.stop()


def _async_service(group: str, config: dict[str, Any]) -> tuple[Any, MemoryBroker, ManualClock]:
    clock = ManualClock()
    broker = MemoryBroker(clock)
    svc = AsyncDataAnalysisService(
        module_name=LP,
        config=config,
        adapter="memory",
        broker=broker,
        clock=clock,
        group_id=group,
        auto_offset_reset="earliest",
        poll_timeout=0.01,
        drain_timeout=0.5,
    )
    return svc, broker, clock


def _async_uploaded(broker: MemoryBroker) -> list[str]:
    return sorted(
        r["station_id"]
        for rec in broker.records(OUT_LP)
        for r in json.loads(rec.value or b"{}")["results"]
    )


async def test_async_callback_is_cancelled_at_the_timeout_and_retried() -> None:
    svc, broker, clock = _async_service("t-async", {"service": {"callback_timeout_seconds": 0.3}})
    calls = Counter[str]()
    never = asyncio.Event()

    async def model(sid: str, inp: dict[str, Any]) -> dict[str, Any]:
        calls[sid] += 1
        if sid == "S1" and calls[sid] == 1:
            await never.wait()
        return {"ok": sid}

    await svc.start(model)
    _feed(lambda t, p: broker.produce(t, json.dumps(p).encode()), "S1", "S2")
    stats = svc.engine.stats
    await async_wait_for(lambda: stats.run_faults.get("timeout") == 1, what="S1 timed out")
    assert svc.stuck_workers() == 0  # cancelled: no worker stays stuck
    await async_wait_for(lambda: _async_uploaded(broker) == ["S2"], what="S2 uploaded")

    clock.advance(1.1)  # the retry delay (1 s) is of the service clock
    await async_wait_for(lambda: stats.runs_ok == 2, what="S1's retry done")
    clock.advance(6)  # the batch of the retry times out
    await async_wait_for(
        lambda: "S1" in _async_uploaded(broker), what="S1's retry uploaded", observe=lambda: calls
    )
    assert svc.engine.stats.run_faults == {"timeout": 1}
    assert svc.runner is not None
    assert svc.runner.alive
    await svc.stop()


async def test_async_service_with_a_hung_sync_callback_reports_it_stuck() -> None:
    svc, broker, clock = _async_service("t-async-sync", TIMEOUT)
    release, calls = threading.Event(), Counter[str]()
    await svc.start(_hanging({"S1"}, release, calls))
    try:
        _feed(lambda t, p: broker.produce(t, json.dumps(p).encode()), "S1", "S2")
        await async_wait_for(lambda: calls["S1"] == 1, what="S1 hangs")
        await async_wait_for(lambda: svc.engine.stats.runs_ok == 1, what="S2 done")
        clock.advance(6)
        await async_wait_for(lambda: svc.stuck_workers() == 1, what="S1's worker stuck")
        assert svc.engine.stats.run_faults == {"timeout": 1}
        assert svc.get_service_status()["stuck_workers"] == 1
        assert svc.liveness().ok  # /health stays 200
    finally:
        release.set()
    await async_wait_for(lambda: svc.stuck_workers() == 0, what="the late return")
    await svc.stop()


async def test_async_callbacks_raising_an_exit_leave_the_event_loop_running() -> None:
    svc, broker, _ = _async_service("t-async-exit", {})

    async def model(sid: str, inp: dict[str, Any]) -> dict[str, Any]:
        if sid == "S1":
            raise SystemExit(1)
        if sid == "S2":
            raise KeyboardInterrupt
        return {"ok": sid}

    await svc.start(model)
    _feed(lambda t, p: broker.produce(t, json.dumps(p).encode()), "S1", "S2", "S3")
    await async_wait_for(lambda: _async_uploaded(broker) == ["S3"], what="S3 uploaded")
    assert svc.engine.stats.run_faults == {"callback_exit": 2}
    assert svc.runner is not None
    assert svc.runner.alive
    await svc.stop()
