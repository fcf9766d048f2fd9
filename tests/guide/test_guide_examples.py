"""The deployment guide's code examples, kept as written in this folder, run on the in-memory bus.

Scripts (``sync_main.py``, ``async_main.py``) run as real processes, as the guide starts them,
with a configuration that selects the in-memory bus (``examples/config.memory.yaml`` with the
health and metrics servers on ephemeral ports) and ``DA_MEMORY_SEED`` feeding the spec's sample
payloads; each is stopped with SIGINT (the guide's Ctrl-C) and must exit cleanly. Snippets run in
the test process or in a short subprocess. Where an example cannot work as written for a reason
issue 13 covers elsewhere, its test is a strict xfail naming the item, so it turns red (XPASS)
the day the item is fixed and the marker must go.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from da_app.services import AsyncDataAnalysisService, DataAnalysisService
from da_app.settings import Settings
from da_core.errors import ConfigError
from tests.support.signals import default_sigint

ROOT = Path(__file__).resolve().parents[2]
GUIDE = Path(__file__).resolve().parent
SAMPLES = ROOT / "src" / "da_app" / "samples"


def _guide(name: str) -> Any:
    """A guide module of this folder (untyped, as the guide wrote it)."""
    return importlib.import_module(f"tests.guide.{name}")


@pytest.fixture
def memory_config(tmp_path: Path) -> Path:
    """The examples' in-memory configuration, with no servers on the fixed ports 8080/8001."""
    raw = yaml.safe_load((ROOT / "examples" / "config.memory.yaml").read_text())
    raw.setdefault("service", {}).update(health_port=0, metrics_port=0)
    path = tmp_path / "config.memory.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _env(tmp_path: Path, config: Path | None, **extra: str) -> dict[str, str]:
    drop = ("PYTHONPATH", "LOG_LEVEL", "DATA_ANALYSIS_CONFIG")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(
        DA_MEMORY_SEED=str(SAMPLES),
        PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(GUIDE)]),
        PYTHONUNBUFFERED="1",
        DATA_ANALYSIS_LOG=str(tmp_path / "app.log"),
    )
    if config is not None:
        env["DATA_ANALYSIS_CONFIG"] = str(config)
    env.update(extra)
    return env


def _run_until_sigint(
    script: str,
    needles: list[str],
    tmp_path: Path,
    config: Path,
    timeout: float = 40.0,
    **env: str,
) -> str:
    """Start ``script`` as the guide does, wait until every needle was printed (or the process
    ended, or ``timeout``), then SIGINT it; returns its output; asserts exit code 0."""
    proc = subprocess.Popen(
        [sys.executable, str(GUIDE / script)],
        cwd=tmp_path,
        env=_env(tmp_path, config, **{k.upper(): v for k, v in env.items()}),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=default_sigint,
    )
    out: list[str] = []
    assert proc.stdout is not None
    os.set_blocking(proc.stdout.fileno(), False)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if line:
                out.append(line)
                if all(any(n in o for o in out) for n in needles):
                    break
            elif proc.poll() is not None:
                break
            else:
                time.sleep(0.02)  # polling a pipe, not waiting for an outcome
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=30)
        out.append(rest or "")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = "".join(out)
    assert proc.returncode == 0, text
    assert "Traceback" not in text, text
    return text


# ------------------------------------------------------------------ the start scripts


@pytest.mark.timeout(120)
def test_sync_main_runs_as_written_and_stops_on_ctrl_c(tmp_path: Path, memory_config: Path) -> None:
    text = _run_until_sigint(
        "sync_main.py", ["处理场站 S0001 的数据", "处理场站 S0002 的数据"], tmp_path, memory_config
    )
    assert "处理场站 S0001 的数据" in text
    assert "处理场站 S0002 的数据" in text


@pytest.mark.timeout(120)
def test_sync_main_honours_data_analysis_log_and_log_level(
    tmp_path: Path, memory_config: Path
) -> None:
    """Issue 13 item 2: the guide's start script configures logging with basicConfig; the
    service keeps that and adds the DATA_ANALYSIS_LOG file, at LOG_LEVEL (lower case too)."""
    text = _run_until_sigint(
        "sync_main.py", ["处理场站 S0001 的数据"], tmp_path, memory_config, log_level="info"
    )
    assert "处理场站 S0001 的数据" in text  # the console, as before
    log = (tmp_path / "app.log").read_text(encoding="utf-8")
    assert "INFO da_app.services service started: module load_prediction" in log
    assert "INFO root 处理场站 S0001 的数据" in log  # the script's own lines, its format
    assert log.startswith("[")


@pytest.mark.timeout(120)
def test_async_main_uploads_through_the_batch_upload_handler(
    tmp_path: Path, memory_config: Path
) -> None:
    text = _run_until_sigint(
        "async_main.py", ["send to MODULE-OUTPUT-LOAD_PREDICTION"], tmp_path, memory_config
    )
    assert "处理场站 S0001 的数据" in text
    assert "2 stations ['S0001', 'S0002']" in text  # one upload carried the whole batch
    assert "收到停止信号，正在关闭服务..." in text  # the guide's stop path ran


def test_the_batch_upload_handler_skips_an_empty_batch(caplog: pytest.LogCaptureFixture) -> None:
    batch_upload_handler = _guide("batch_upload_handler").batch_upload_handler

    with caplog.at_level(logging.INFO):
        asyncio.run(batch_upload_handler("b-1", []))
        asyncio.run(batch_upload_handler("b-2", [{"station_id": "S1", "x": 1}]))
    assert "b-1 批次没有有效结果，跳过上传" in caplog.text
    assert "send to MODULE-OUTPUT-LOAD_PREDICTION: batch b-2, 1 stations ['S1']" in caplog.text


# ------------------------------------------------------------------ configuration files


def test_the_configmap_config_py_loads() -> None:
    s = Settings.load(GUIDE / "config.py")
    assert s.kafka.consumer["bootstrap_servers"][0] == "kafka-broker-1:9092"
    assert s.kafka.consumer["group_id"] == "data_analysis_prod"
    assert s.catalog.output_topic_of("load_prediction") == "MODULE-OUTPUT-LOAD-PREDICTION"
    assert s.catalog.modules["electricity_price"].dependencies == (
        "pv_prediction",
        "evaluation_model",
        "SOH_model",
    )


def test_the_configmap_keeps_every_default_reader_of_station_param() -> None:
    """Its SCHEDULE-STATION-PARAM entry lists two modules; the three other default readers must
    keep the topic (merged with the defaults), or loading must refuse with a message."""
    try:
        s = Settings.load(GUIDE / "config.py")
    except ConfigError as exc:
        refused = str(exc)
    else:
        refused = ""
    if refused:
        assert "modules" in refused
        return
    for module in ("electricity_price", "SOH_model", "customer_mining"):
        assert "SCHEDULE-STATION-PARAM" in s.catalog.modules[module].inputs, module


def test_a_config_py_mounted_as_the_guide_mounts_it_is_used(tmp_path: Path) -> None:
    """Docker/Kubernetes: the package is installed, PYTHONPATH=/app, and the ConfigMap's
    config.py is mounted at /app/d_a/config.py."""
    app = tmp_path / "app"
    (app / "d_a").mkdir(parents=True)
    (app / "d_a" / "config.py").write_text((GUIDE / "config.py").read_text(encoding="utf-8"))
    env = _env(tmp_path, None)
    env.pop("DA_MEMORY_SEED")
    env["PYTHONPATH"] = os.pathsep.join([str(app), str(ROOT / "src")])
    proc = subprocess.run(
        [sys.executable, "-c", "from d_a.config import KAFKA_CONFIG; print(KAFKA_CONFIG)"],
        cwd=app,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "kafka-broker-1:9092" in proc.stdout, proc.stdout + proc.stderr


def test_the_kafka_and_offset_commit_section_loads() -> None:
    s = Settings.load(GUIDE / "kafka_config.py")
    assert s.kafka.consumer["group_id"] == "data_analysis_group"
    assert s.kafka.consumer["enable_auto_commit"] is False
    assert s.kafka.producer["compression_type"] == "gzip"


def test_the_window_snippet_sets_the_window_size() -> None:
    s = Settings.load(GUIDE / "window_config.py")
    assert s.catalog.topics["SCHEDULE-STATION-REALTIME-DATA"].window_size == 5


def test_the_window_snippet_as_written_is_refused_in_the_guides_terms() -> None:
    with pytest.raises(ConfigError) as exc:
        Settings.from_raw({"TOPIC_DETAIL": {"REAL-STATION-DATA": {"window_size": 5}}})
    assert "TOPIC_DETAIL['REAL-STATION-DATA']" in str(exc.value)


def test_the_performance_settings_are_service_arguments(memory_config: Path) -> None:
    performance = _guide("performance")

    svc = DataAnalysisService(
        module_name="load_prediction",
        config=str(memory_config),
        max_workers=performance.max_workers,
        data_expire_seconds=performance.data_expire_seconds,
    )
    assert svc.max_workers == 32
    assert svc.settings.catalog is not None


# ------------------------------------------------------------------ logging and monitoring


@pytest.mark.parametrize("level", ["INFO", "info"])
def test_the_logging_example_writes_the_guides_format(tmp_path: Path, level: str) -> None:
    env = _env(tmp_path, None, LOG_LEVEL=level)
    code = "import logging, logging_setup; logging.getLogger('da.test').info('你好 %s', 42)"
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    line = (tmp_path / "app.log").read_text(encoding="utf-8").strip()
    assert line.startswith("[")
    assert " INFO da.test 你好 42" in line
    assert " INFO da.test 你好 42" in proc.stderr  # and on the console


@pytest.fixture
def running_service(memory_config: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("DATA_ANALYSIS_CONFIG", str(memory_config))
    svc = DataAnalysisService(module_name="load_prediction", config=str(memory_config))
    svc.start(lambda sid, inp: None)
    try:
        yield svc
    finally:
        svc.stop()


def test_the_health_check_snippet_returns_the_documented_shape(
    memory_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    health_check = _guide("health_check").health_check

    monkeypatch.setenv("DATA_ANALYSIS_CONFIG", str(memory_config))
    health = health_check()
    assert set(health) == {"status", "timestamp", "service", "stations"}
    assert set(health["service"]) == {
        "main_thread",
        "consumer_alive",
        "producer_alive",
        "station_count",
    }
    assert health["status"] in ("healthy", "unhealthy")


def test_the_health_check_snippet_reports_the_running_service(running_service: Any) -> None:
    health_check = _guide("health_check").health_check

    assert running_service.get_service_status()["main_thread_alive"]
    assert health_check()["status"] == "healthy"


def test_get_lag_info_on_the_sync_service(running_service: Any) -> None:
    lag = running_service.consumer.get_lag_info()  # as the guide writes it
    assert isinstance(lag, dict)


async def test_get_lag_info_on_the_async_service_as_the_guide_writes_it(
    memory_config: Path,
) -> None:
    svc = AsyncDataAnalysisService(module_name="load_prediction", config=str(memory_config))

    async def cb(sid: str, inp: dict[str, Any]) -> None:
        return None

    await svc.start(cb)
    try:
        lag = svc.consumer.get_lag_info()  # as the guide writes it, without await
        assert isinstance(lag, dict)
    finally:
        await svc.stop()


def test_the_prometheus_snippet_registers_its_metrics_next_to_the_package(tmp_path: Path) -> None:
    """Run after importing the package, as the guide adds it to the package's __init__; its
    ``start_http_server(8001)`` is sent to an ephemeral port (tests share this machine)."""
    code = (
        "import d_a, prometheus_client\n"
        "real = prometheus_client.start_http_server\n"
        "def on_ephemeral(port, *a, **k):\n"
        "    print('asked for port', port)\n"
        "    return real(0, *a, **k)\n"
        "prometheus_client.start_http_server = on_ephemeral\n"
        "import prometheus_metrics\n"
        "prometheus_metrics.DATA_PROCESSED.inc()\n"
        "text = prometheus_client.generate_latest().decode()\n"
        "print([l for l in text.splitlines() if l.startswith('data_analysis_processed_total')])\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=_env(tmp_path, None),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "asked for port 8001" in proc.stdout
    assert "['data_analysis_processed_total 1.0']" in proc.stdout
