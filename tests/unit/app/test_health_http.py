"""/health, /ready and /status over real HTTP, on a service running on the in-memory bus."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import urllib.error
import urllib.request
from typing import Any

import pytest

from da_adapters.memory import ManualClock, MemoryBroker
from da_app import http as health_http
from da_app.health import ProbeInput, liveness, readiness
from da_app.http import HealthServer
from da_app.main import main
from da_app.services import AsyncDataAnalysisService, DataAnalysisService
from tests.support.waiting import async_wait_for

from .helpers import OUT_LP, PARAM, RT, echo_window, param, realtime
from .ops_support import free_port, http_get, ops_service, wait_for


def test_a_healthy_service_answers_200_on_health_ready_and_status() -> None:
    with ops_service(echo_window) as ops:
        ops.feed(["S1", "S2"], range(3))
        wait_for(lambda: ops.service.engine.stats.uploads_ok >= 1, what="an upload")
        code, body = ops.get("/health")
        assert (code, body["status"], body["main_thread_alive"]) == (200, "healthy", True)
        code, body = ops.get("/ready")
        assert (code, body["status"]) == (200, "ready")
        assert body["assigned_partitions"] > 0
        assert "reasons" not in body
        code, doc = ops.get("/status")
        assert code == 200
        assert doc["service"]["module"] == "load_prediction"
        assert doc["service"]["station_count"] == 2
        assert set(doc["stations"]) == {"S1", "S2"}
        assert doc["stations"]["S1"]["runs"] >= 1
        assert RT in doc["lag"]
        assert {p["partition"] for p in doc["lag"][RT]} == {0, 1, 2}
        assert all("lag" in p for p in doc["lag"][RT])
        assert doc["health"] == {"live": True, "ready": True, "reasons": []}
        assert doc["data_availability"]["stations_missing_topic"][RT] == 0


def test_status_can_leave_the_station_table_out() -> None:
    with ops_service(echo_window) as ops:
        ops.feed(["S1"], range(1))
        wait_for(lambda: len(ops.service.engine) == 1, what="the station")
        code, doc = ops.get("/status?stations=0")
        assert code == 200
        assert doc["stations"] == {}
        assert doc["service"]["station_count"] == 1


def test_sustained_upload_failure_makes_ready_fail_while_health_stays_ok() -> None:
    with ops_service(echo_window, drain_timeout=0.5) as ops:
        ops.broker.reject_topic(OUT_LP)
        ops.feed(["S1"], range(2))
        wait_for(lambda: ops.service.engine.upload_failing_since is not None, what="a failure")
        code, _ = ops.get("/ready")
        assert code == 200  # failing, but not yet for longer than the limit (30 s)
        ops.clock.advance(31)
        wait_for(ops.loop_caught_up, what="the loop to see the new time")
        code, body = ops.get("/ready")
        assert (code, body["status"]) == (503, "not_ready")
        assert any("uploads failing" in r for r in body["reasons"])
        assert body["pending_uploads"] >= 1
        code, body = ops.get("/health")
        assert (code, body["status"]) == (200, "healthy")
        code, doc = ops.get("/status")
        assert code == 200
        assert doc["health"]["ready"] is False
        assert doc["service"]["upload_failing_since"] is not None
        ops.broker.accept_topic(OUT_LP)
        ops.clock.advance(31)  # past the retry backoff
        wait_for(lambda: ops.service.engine.upload_failing_since is None, what="recovery")
        assert ops.get("/ready")[0] == 200


def test_a_stuck_engine_loop_fails_health_and_status_times_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(health_http, "STATUS_TIMEOUT", 0.2)
    with ops_service(echo_window) as ops:
        runner = ops.service.runner
        assert runner is not None
        wait_for(lambda: runner.stats.loops > 0, what="the first loop")
        with runner._lock:  # the loop blocks at its next iteration
            ops.clock.advance(31)
            code, body = ops.get("/health")
            assert (code, body["status"]) == (503, "unhealthy")
            assert any("engine loop stuck" in r for r in body["reasons"])
            assert ops.get("/ready")[0] == 503
            code, body = ops.get("/status")
            assert code == 503
            assert "status unavailable" in body["error"]
        wait_for(ops.loop_caught_up, what="the loop to resume")
        assert ops.get("/health")[0] == 200


def test_a_stopped_service_answers_503_on_health_and_ready_and_still_reports_status() -> None:
    with ops_service(echo_window) as ops:
        ops.feed(["S1"], range(2))
        wait_for(lambda: ops.service.engine.stats.uploads_ok >= 1, what="an upload")
        ops.service.stop()
        code, body = ops.get("/health")
        assert (code, body["status"]) == (503, "unhealthy")
        assert body["reasons"] == ["engine loop not running"]
        code, body = ops.get("/ready")
        assert code == 503
        assert "engine loop not running" in body["reasons"]
        code, doc = ops.get("/status")
        assert code == 200
        assert doc["service"]["main_thread_alive"] is False
        assert doc["service"]["consumer_alive"] is False
        assert set(doc["stations"]) == {"S1"}
        assert doc["health"]["live"] is False


def test_a_dead_engine_loop_fails_the_liveness_probe() -> None:
    with ops_service(echo_window) as ops:
        runner = ops.service.runner
        assert runner is not None
        runner.abandon()  # the loop thread is gone; nobody called stop()
        code, body = ops.get("/health")
        assert code == 503
        assert body["reasons"] == ["engine loop not running"]


def test_unknown_paths_answer_404() -> None:
    with ops_service(echo_window) as ops:
        code, body = ops.get("/nope")
        assert code == 404
        assert "no such endpoint" in body["error"]


def test_the_service_starts_and_stops_its_servers_on_the_configured_ports() -> None:
    clock = ManualClock()
    hp, mp = free_port(), free_port()
    svc = DataAnalysisService(
        module_name="load_prediction",
        config={"service": {"health_port": 1, "metrics_port": 2}},  # the arguments win
        adapter="memory",
        broker=MemoryBroker(clock),
        clock=clock,
        poll_timeout=0.01,
        health_port=hp,
        metrics_port=mp,
    )
    svc.start(echo_window)
    try:
        health, metrics = svc.health_server, svc.metrics_server
        assert health is not None
        assert metrics is not None
        assert (health.port, metrics.port) == (hp, mp)
        assert http_get(f"http://127.0.0.1:{hp}/health")[0] == 200
        code, text = http_get(f"http://127.0.0.1:{mp}/metrics")
        assert code == 200
        assert "data_analysis_processed_total" in text
    finally:
        svc.stop()
    assert svc.health_server is None
    assert svc.metrics_server is None
    for port in (hp, mp):
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_one_listener_serves_health_ready_status_and_metrics_when_the_ports_are_equal() -> None:
    clock = ManualClock()
    port = free_port()
    svc = DataAnalysisService(
        config={},
        adapter="memory",
        broker=MemoryBroker(clock),
        clock=clock,
        poll_timeout=0.01,
        health_port=port,
        metrics_port=port,
    )
    svc.start(echo_window)
    try:
        assert svc.health_server is not None
        assert svc.metrics_server is svc.health_server
        base = f"http://127.0.0.1:{port}"
        assert http_get(base + "/health")[0] == 200
        assert http_get(base + "/ready")[0] == 200
        code, doc = http_get(base + "/status")
        assert (code, doc["service"]["module"]) == (200, "load_prediction")
        code, text = http_get(base + "/metrics")
        assert code == 200
        assert "data_analysis_processed_total" in text
        assert http_get(base + "/")[1] == {
            "endpoints": ["/health", "/ready", "/status", "/metrics"]
        }
    finally:
        svc.stop()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_the_metrics_listener_answers_the_probes_too() -> None:
    with ops_service(echo_window) as ops:
        assert http_get(ops.metrics.url.removesuffix("/metrics") + "/health")[0] == 200
        assert "data_analysis_info" in http_get(ops.health.url + "/metrics")[1]


def test_only_get_is_answered() -> None:
    with ops_service(echo_window) as ops:
        req = urllib.request.Request(ops.health.url + "/health", data=b"x", method="POST")
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=10)
        assert err.value.code == 405


def test_a_server_on_an_ipv6_host_answers_when_the_host_has_ipv6() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    with ops_service(echo_window) as ops:
        try:
            server = HealthServer(ops.service, "::1", 0).start()
        except OSError as exc:  # IPv6 built in but not configured on this host
            pytest.skip(f"::1 cannot be bound: {exc}")
        try:
            assert server.url.startswith("http://[::1]:")
            assert http_get(server.url + "/health")[0] == 200
        finally:
            server.stop()


def test_ports_from_the_environment_start_the_servers(monkeypatch: pytest.MonkeyPatch) -> None:
    hp = free_port()
    monkeypatch.setenv("DATA_ANALYSIS_HEALTH_PORT", str(hp))
    clock = ManualClock()
    svc = DataAnalysisService(
        config={}, adapter="memory", broker=MemoryBroker(clock), clock=clock, poll_timeout=0.01
    )
    assert svc.settings.service.health_port == hp
    assert svc.settings.service.health_host == "127.0.0.1"
    svc.start(echo_window)
    try:
        assert http_get(f"http://127.0.0.1:{hp}/ready")[0] == 200
        assert svc.metrics_server is None  # DATA_ANALYSIS_METRICS_PORT=0 (tests/conftest.py)
    finally:
        svc.stop()


def test_a_taken_port_is_logged_and_the_service_runs_without_that_server(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        clock = ManualClock()
        svc = DataAnalysisService(
            config={},
            adapter="memory",
            broker=MemoryBroker(clock),
            clock=clock,
            poll_timeout=0.01,
            health_port=port,
        )
        with caplog.at_level(logging.ERROR, logger="da_app.services"):
            svc.start(echo_window)
        try:
            assert svc.health_server is None
            assert svc.runner is not None
            assert svc.runner.alive
            assert f"health endpoint not started: cannot bind 127.0.0.1:{port}" in caplog.text
        finally:
            svc.stop()


async def test_the_async_service_answers_status_from_its_event_loop() -> None:
    clock = ManualClock()
    broker = MemoryBroker(clock)
    svc = AsyncDataAnalysisService(
        module_name="load_prediction",
        config={},
        adapter="memory",
        broker=broker,
        clock=clock,
        group_id="ops-async",
        auto_offset_reset="earliest",
        poll_timeout=0.01,
    )
    server = HealthServer(svc, "127.0.0.1", 0).start()
    await svc.start(echo_window)
    try:
        broker.produce(PARAM, json.dumps(param("A1")).encode())
        broker.produce(RT, json.dumps(realtime("A1", 0, 3.0)).encode(), key=b"A1")
        await async_wait_for(lambda: svc.engine.stats.uploads_ok, what="an upload")
        # the loop must keep running while the server thread waits for it: never block it
        code, doc = await asyncio.to_thread(http_get, server.url + "/status")
        assert code == 200
        assert set(doc["stations"]) == {"A1"}
        assert RT in doc["lag"]
        assert (await asyncio.to_thread(http_get, server.url + "/ready"))[0] == 200
        await svc.stop()
        assert (await asyncio.to_thread(http_get, server.url + "/health"))[0] == 503
    finally:
        await svc.stop()
        server.stop()


# ---------------------------------------------------------------- probe rules without servers


def _probe(**changes: Any) -> ProbeInput:
    values: dict[str, Any] = {
        "module": "m",
        "now": 1000.0,
        "started": True,
        "loop_alive": True,
        "last_loop_at": 999.0,
        "started_at": 900.0,
        "consumer_alive": True,
        "producer_alive": True,
        "subscribed": True,
        "last_poll_error": None,
        "upload_failing_since": None,
        "pending_uploads": 0,
        "stuck_seconds": 30.0,
        "upload_failing_seconds": 30.0,
    }
    values.update(changes)
    return ProbeInput(**values)


def test_liveness_uses_the_start_time_before_the_first_loop_iteration() -> None:
    assert liveness(_probe(last_loop_at=None, started_at=990.0)).ok
    assert not liveness(_probe(last_loop_at=None, started_at=900.0)).ok


def test_a_service_never_started_is_neither_live_nor_ready() -> None:
    p = _probe(started=False, loop_alive=False)
    assert liveness(p).body["reasons"] == ["service not started"]
    assert not readiness(p).ok


def test_readiness_names_each_reason() -> None:
    p = _probe(
        consumer_alive=False,
        last_poll_error="KafkaError: broker down",
        producer_alive=False,
        subscribed=False,
        upload_failing_since=900.0,
        pending_uploads=3,
    )
    reasons = readiness(p).body["reasons"]
    assert reasons == [
        "consumer not subscribed",
        "consumer not connected: KafkaError: broker down",
        "producer not connected",
        "uploads failing for 100.0s (limit 30s); 3 pending",
    ]


def test_a_member_without_partitions_is_still_ready() -> None:
    probe = readiness(_probe(), assignment=[])
    assert probe.ok
    assert probe.body["assigned_partitions"] == 0


# ---------------------------------------------------------------- da-app status


def test_da_app_status_prints_health_throughput_lag_and_stations(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with ops_service(echo_window) as ops:
        ops.feed(["S1", "S2"], range(3))
        wait_for(lambda: ops.service.engine.stats.uploads_ok >= 1, what="an upload")
        assert main(["status", "--url", ops.health.url]) == 0
        out = capsys.readouterr().out
        assert "module load_prediction   adapter memory   group ops" in out
        assert "health: live, ready" in out
        assert "records in 7" in out
        assert "records/s" in out
        rt_rows = [line for line in out.splitlines() if line.startswith(RT)]
        assert len(rt_rows) == 4  # three partitions and the topic's total
        station_rows = [line for line in out.splitlines() if line.startswith(("S1 ", "S2 "))]
        assert len(station_rows) == 2
        assert main(["status", "--url", ops.health.url, "--json"]) == 0
        doc = json.loads(capsys.readouterr().out)
        assert doc["service"]["station_count"] == 2
        ops.service.stop()
        assert main(["status", "--url", ops.health.url]) == 3
        out = capsys.readouterr().out
        assert "health: NOT LIVE, NOT READY" in out
        assert "engine loop not running" in out


def test_da_app_status_reports_an_unreachable_instance(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["status", "--url", f"http://127.0.0.1:{free_port()}"]) == 1
    assert "cannot reach" in capsys.readouterr().err


def test_the_health_server_serves_requests_in_parallel() -> None:
    with ops_service(echo_window) as ops:
        results: list[int] = []

        def hit() -> None:
            results.append(ops.get("/health")[0])

        threads = [threading.Thread(target=hit) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert results == [200] * 8
