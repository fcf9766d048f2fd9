"""Issue 10 items 12-13 as an operator meets them: ``da-app run`` (sync and async) gets SIGTERM
while its broker is down, with runs in flight and offsets waiting to be committed. The process
must end within ``service.shutdown_timeout_seconds`` (systemd and Kubernetes give 30 s before
SIGKILL), with exit code 0 and its "service stopped" line, whatever the broker does; once the
broker is back a new process processes every record (nothing lost)."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.e2e_support import (
    OUT_LP,
    RT,
    TopicReader,
    ensure_topic,
    produce,
    results_of,
    rt_row,
    service_config,
    spawn_da_app,
    unique,
    write_yaml,
)
from tests.integration.kafka_fixtures import load_broker_module, unavailable

pytestmark = pytest.mark.timeout(420)

BOUND = 10.0
"""``shutdown_timeout_seconds`` of the services under test."""


def _private_broker() -> Any:
    module: Any = load_broker_module()
    port = int(module.free_ports(1)[0])
    try:
        return module.start_broker(detach=False, die_with_parent=True, port=port, timeout=180)
    except Exception as exc:  # no Java / jars here
        unavailable(f"private broker: {type(exc).__name__}: {exc}")


def _run(tmp_path: Path, cfg: Path, name: str, use_async: bool) -> subprocess.Popen[str]:
    callback = "tests.integration.e2e_callbacks:slow_echo"
    return spawn_da_app(tmp_path, cfg, name, callback, use_async=use_async)


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait(30)


def _rows(stations: list[str], hour: int) -> list[tuple[str, str | None, Any]]:
    return [(RT, s, {"realTimeData": [rt_row(s, hour, float(hour + 1))]}) for s in stations]


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_sigterm_while_the_broker_is_down_ends_the_process_within_the_bound(
    tmp_path: Path, use_async: bool
) -> None:
    broker = _private_broker()
    bootstrap = broker.bootstrap
    group = unique("sigterm-outage")
    cfg = write_yaml(
        tmp_path / "config.yaml",
        service_config(
            bootstrap,
            group,
            service={
                "adapter": "aiokafka" if use_async else "confluent",
                "health_port": 0,
                "metrics_port": 0,
                "shutdown_timeout_seconds": BOUND,
                "max_workers": 2,
            },
        ),
    )
    reader: TopicReader | None = None
    first: subprocess.Popen[str] | None = None
    second: subprocess.Popen[str] | None = None
    stations = [f"T{i}" for i in range(8)]
    try:
        for topic in (RT, OUT_LP):
            ensure_topic(bootstrap, topic)
        reader = TopicReader(bootstrap, OUT_LP)
        first = _run(tmp_path, cfg, "first", use_async)
        produce(bootstrap, _rows(stations, 0))
        reader.until(lambda recs: len(results_of(recs, set(stations))) >= 1, 120)
        # more records: runs (half a second each, two workers) are in flight and offsets
        # wait to be committed when the broker goes
        produce(bootstrap, _rows(stations, 1))
        broker.halt()
        began = time.monotonic()
        first.send_signal(signal.SIGTERM)
        code = first.wait(timeout=BOUND + 20)
        took = time.monotonic() - began
        log = (tmp_path / "first.out").read_text()
        assert code == 0, log[-3000:]
        assert took < BOUND + 5, f"stop took {took:.1f}s:\n{log[-3000:]}"
        assert "service stopped" in log, log[-3000:]

        # nothing lost: after the outage, a new process processes every record of hour 1
        broker.resume()
        second = _run(tmp_path, cfg, "second", use_async)

        def hour_one_everywhere(recs: list[Any]) -> bool:
            done = {r["station_id"] for r in results_of(recs, set(stations)) if 2.0 in r["window"]}
            return done == set(stations)

        reader.until(hour_one_everywhere, 180)
    finally:
        for proc in (first, second):
            if proc is not None:
                _stop(proc)
        if reader is not None:
            reader.close()
        broker.stop(timeout=10.0)
