"""Hot reload: reload_config() and SIGHUP apply a new configuration and keep window data."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from da_adapters.memory import ManualClock, MemoryBroker
from da_app.services import AsyncDataAnalysisService, DataAnalysisService
from da_app.testing import Harness, load_sample
from da_core.errors import ConfigError
from da_core.types import TopicPartition
from tests.support.signals import default_sigint
from tests.support.waiting import async_wait_for, wait_for

from .conftest import NewHarness
from .helpers import PARAM, RT, echo_window, param, realtime
from .ops_support import free_port, http_get

ROOT = Path(__file__).resolve().parents[3]
METER = "SCHEDULE-DEVICE-METER"
WINDOW = "outputPowerPerStationAvg_window"
ADD_METER = {"TOPIC_DETAIL": {METER: {"modules": ["electricity_price", "load_prediction"]}}}


def _harness_with_history(new_harness: NewHarness, hours: int = 30) -> Harness:
    h = new_harness("load_prediction", echo_window)
    h.publish(PARAM, param("S1"))
    for hour in range(hours):
        h.publish(RT, realtime("S1", hour, float(hour + 1)), key="S1")
    h.run_until_idle()
    return h


def _window(h: Harness, sid: str) -> list[Any]:
    inputs = h.service.get_inputs(sid)
    assert inputs is not None, f"station {sid} lost"
    return list(inputs[WINDOW])


def _latest(h: Harness, sid: str) -> dict[str, Any]:
    """The station's result in the newest upload (batch ids increase)."""
    envelopes = sorted(h.published(h.engine.module.output), key=lambda e: str(e["batch_id"]))
    results: list[dict[str, Any]] = [
        r for e in envelopes for r in e["results"] if r["station_id"] == sid
    ]
    return results[-1]


def _meter(sid: str) -> dict[str, Any]:
    payload: dict[str, Any] = load_sample(METER)
    payload["stationId"] = sid
    return payload


def test_reload_shrinks_a_window_and_keeps_its_newest_data(
    new_harness: NewHarness,
    caplog: pytest.LogCaptureFixture,
) -> None:
    h = _harness_with_history(new_harness, 30)
    before = _window(h, "S1")
    assert len(before) == 168
    with caplog.at_level(logging.INFO, logger="da_app.services"):
        # (a reload replaces the whole configuration: the harness's "runs at once" is kept)
        h.service.reload_config(
            {"TOPIC_DETAIL": {RT: {"window_size": 24}}, "service": {"min_run_interval_seconds": 0}}
        )
    after = _window(h, "S1")
    assert after == before[-24:]
    assert after[-1] == 30.0
    assert (
        f"configuration reloaded: module load_prediction; {RT} window hourly_grid/168 -> "
        "hourly_grid/24" in caplog.text
    )
    h.publish(RT, realtime("S1", 30, 31.0), key="S1")
    h.run_until_idle()
    assert _latest(h, "S1")["window"] == [*before[-23:], 31.0]


def test_reload_adds_a_topic_and_resubscribes_without_losing_window_data(
    new_harness: NewHarness,
) -> None:
    h = _harness_with_history(new_harness, 5)
    for hour in range(5):  # S2 has no station parameters: not ready, its records are held
        h.publish(RT, realtime("S2", hour, float(hour + 100)), key="S2")
    h.run_until_idle()
    h.advance(10)  # the commit interval passes: S1's records are committed, S2's are held
    h.run_until_idle()
    s1, s2 = _window(h, "S1"), _window(h, "S2")
    records_in = h.engine.stats.records_in
    assert METER not in h.engine.topics

    h.service.reload_config(ADD_METER)
    h.run_until_idle()  # the group rebalanced: every partition was revoked and handed back

    assert METER in h.engine.topics
    assert {tp.topic for tp in h.runner.consumer.assignment()} >= {METER, PARAM, RT}
    assert (_window(h, "S1"), _window(h, "S2")) == (s1, s2)
    assert h.engine.stats.records_in == records_in  # S2's held records were not applied twice
    h.publish(METER, _meter("S1"), key="S1")
    h.publish(RT, realtime("S1", 5, 6.0), key="S1")
    h.run_until_idle()
    inputs = h.service.get_inputs("S1")
    assert inputs is not None
    assert inputs["meterPower"] == _meter("S1")["meterPower"]
    assert _latest(h, "S1")["window"][-6:] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    # S2's held records are still committed once S2 runs
    h.publish(PARAM, param("S2"))
    h.publish(METER, _meter("S2"), key="S2")
    h.run_until_idle()
    h.advance(10)
    h.run_until_idle()
    assert _latest(h, "S2")["window"][-5:] == [
        100.0,
        101.0,
        102.0,
        103.0,
        104.0,
    ]
    committed = h.committed()
    for p in range(3):
        tp = TopicPartition(RT, p)
        assert committed[tp] in (None, h.broker.high_watermark(tp))


def test_an_invalid_reload_is_rejected_and_the_old_configuration_stays(
    new_harness: NewHarness,
    caplog: pytest.LogCaptureFixture,
) -> None:
    h = _harness_with_history(new_harness, 3)
    catalog, settings = h.service.catalog, h.service.settings
    with (
        caplog.at_level(logging.ERROR, logger="da_app.services"),
        pytest.raises(ConfigError, match="window_size"),
    ):
        h.service.reload_config({"TOPIC_DETAIL": {RT: {"window_size": 0}}})
    assert "configuration reload rejected; the old configuration stays active" in caplog.text
    assert "window_size" in caplog.text
    assert h.service.catalog is catalog
    assert h.service.settings is settings
    assert h.engine.catalog.topics[RT].window_size == 168
    assert len(_window(h, "S1")) == 168
    h.service.reload_config()  # the old source is still the one re-read
    assert h.engine.catalog.topics[RT].window_size == 168


def test_reload_applies_commit_and_batch_policy(new_harness: NewHarness) -> None:
    h = _harness_with_history(new_harness, 1)
    h.service.reload_config(
        {
            "OFFSET_COMMIT_CONFIG": {"commit_batch_size": 7, "commit_interval_seconds": 2.0},
            "service": {"batch_timeout": 9.0},
        }
    )
    assert h.engine.ledger.policy.commit_batch_size == 7
    assert h.engine.ledger.policy.commit_interval_seconds == 2.0
    assert h.engine.collector.policy.timeout_seconds == 9.0


def test_reload_without_arguments_rereads_the_configuration_file(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(json.dumps({"service": {"adapter": "memory"}}))
    clock = ManualClock()
    svc = DataAnalysisService(config=cfg, broker=MemoryBroker(clock), clock=clock)
    assert svc.engine.catalog.topics[RT].window_size == 168
    cfg.write_text(
        json.dumps({"service": {"adapter": "memory"}, "topics": {RT: {"window_size": 48}}})
    )
    svc.reload_config()
    assert svc.engine.catalog.topics[RT].window_size == 48


async def test_the_async_service_reloads_from_another_thread_and_resubscribes() -> None:
    clock = ManualClock()
    broker = MemoryBroker(clock)
    svc = AsyncDataAnalysisService(
        module_name="load_prediction",
        config={},
        adapter="memory",
        broker=broker,
        clock=clock,
        group_id="reload-async",
        auto_offset_reset="earliest",
        poll_timeout=0.01,
    )
    await svc.start(echo_window)
    try:
        broker.produce(PARAM, json.dumps(param("A1")).encode())
        for hour in range(3):
            broker.produce(RT, json.dumps(realtime("A1", hour, hour + 1.0)).encode(), key=b"A1")
        await async_wait_for(
            lambda: svc.engine.stats.records_in == 4,
            what="4 records in",
            observe=lambda: svc.engine.stats.records_in,
        )
        before = svc.get_inputs("A1")
        assert before is not None
        await asyncio.to_thread(svc.reload_config, ADD_METER)
        runner = svc.runner
        assert runner is not None
        await async_wait_for(
            lambda: METER in {tp.topic for tp in runner.consumer.assignment()},
            what=f"{METER} assigned after the reload",
            observe=runner.consumer.assignment,
        )
        after = svc.get_inputs("A1")
        assert after is not None
        assert after[WINDOW] == before[WINDOW]
        assert svc.engine.stats.records_in == 4
    finally:
        await svc.stop()


# ---------------------------------------------------------------- SIGHUP on da-app run


def _wait_for_log(path: Path, needle: str, proc: subprocess.Popen[str], timeout: float = 30) -> str:
    """The log file's text once it holds ``needle``; fails at once if the process ended
    without logging it, else at ``timeout``."""

    def text() -> str:
        return path.read_text(encoding="utf-8") if path.exists() else ""

    def logged() -> str:
        if needle in (found := text()):
            return found
        if proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else ""
            raise AssertionError(f"{needle!r} not logged; log:\n{text()}\noutput:\n{out}")
        return ""

    return wait_for(logged, timeout, what=f"{needle!r} in the log", interval=0.02, observe=text)


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="POSIX signals")
@pytest.mark.timeout(120)
@pytest.mark.parametrize("flags", [[], ["--async"]], ids=["sync", "async"])
def test_sighup_reloads_da_app_run_and_sigterm_stops_it(tmp_path: Path, flags: list[str]) -> None:
    cfg = tmp_path / "config.yaml"
    log_file = tmp_path / "logs" / "app.log"
    port = free_port()
    base: dict[str, Any] = {"service": {"adapter": "memory", "health_port": port}}
    cfg.write_text(json.dumps(base))
    env = dict(os.environ)
    env.update(
        PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
        DATA_ANALYSIS_LOG=str(log_file),
        PYTHONUNBUFFERED="1",
    )
    env.pop("DATA_ANALYSIS_HEALTH_PORT")  # let the file's port apply
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "da_app",
            "run",
            "--config",
            str(cfg),
            "--callback",
            "tests.unit.app.helpers:echo_window",
            *flags,
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=default_sigint,
    )
    try:
        _wait_for_log(log_file, "service started: module load_prediction", proc)
        wait_for(lambda: _health(port) == 200, what="/health of da-app run")

        cfg.write_text(json.dumps({**base, "topics": {RT: {"window_size": 24}}}))
        proc.send_signal(signal.SIGHUP)
        text = _wait_for_log(log_file, "configuration reloaded", proc)
        assert f"{RT} window hourly_grid/168 -> hourly_grid/24" in text

        cfg.write_text(json.dumps({**base, "topics": {RT: {"window_size": 0}}}))
        proc.send_signal(signal.SIGHUP)
        text = _wait_for_log(log_file, "configuration reload rejected", proc)
        assert "window_size" in text.split("configuration reload rejected", 1)[1]
        assert proc.poll() is None
        assert _health(port) == 200

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        text = _wait_for_log(log_file, "service stopped: module load_prediction", proc)
        assert "received SIGTERM; stopping" in text
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


def _health(port: int) -> int:
    try:
        return http_get(f"http://127.0.0.1:{port}/health", timeout=2)[0]
    except OSError:
        return 0
