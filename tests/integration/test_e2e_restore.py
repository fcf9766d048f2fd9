"""State restore against the real broker (issue 11): SIGKILLed instances come back with
every station's parameters and history, commits reach the end of every partition with the
default readiness rules, and a surviving instance takes a killed one's stations over."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from tests.integration.e2e_support import (
    OUT_LP,
    TopicReader,
    committed,
    kafka_config,
    produce,
    results_of,
    rt_row,
    spawn_da_app,
    unique,
    write_yaml,
)
from tests.integration.kafka_fixtures import create_topic
from tests.support.waiting import wait_for

PARTITIONS = 3
HOURS = 24


@pytest.fixture
def output() -> Iterator[list[TopicReader]]:
    readers: list[TopicReader] = []
    yield readers
    for r in readers:
        r.close()


def _config(bootstrap: str, group: str, rt: str, params: str, routing: str) -> dict[str, Any]:
    """load_prediction on private topics with the default readiness (parameters and
    REALTIME both required)."""
    return {
        "KAFKA_CONFIG": kafka_config(bootstrap, group),
        "OFFSET_COMMIT_CONFIG": {"commit_interval_seconds": 0.5, "commit_batch_size": 50},
        "SERVICE_CONFIG": {"station_routing": routing},
        "TOPIC_DETAIL": {
            rt: {
                "extractor": "wrapped",
                "wrapper_key": "realTimeData",
                "window": "hourly_grid",
                "window_size": 168,
                "time_key": "sendTime",
                "fields": ["outputPowerPerStationAvg"],
                "expire_seconds": 7200,
            },
            params: {"extractor": "array", "fields": ["gridCapacity"], "expire_seconds": "never"},
        },
        "modules": {"load_prediction": {"topics": [rt, params], "batch_timeout": 1.0}},
    }


def _run(
    tmp_path: Path, cfg: Path, name: str, instance: str, *, use_async: bool = False
) -> subprocess.Popen[str]:
    return spawn_da_app(
        tmp_path,
        cfg,
        name,
        "tests.integration.e2e_callbacks:echo_params",
        use_async=use_async,
        env={"DATA_ANALYSIS_CONFIG": str(cfg), "DA_INSTANCE_ID": instance},
    )


def _ends(bootstrap: str, topics: list[str]) -> dict[tuple[str, int], int]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("marks")})
    try:
        return {
            (t, p): c.get_watermark_offsets(TopicPartition(t, p), timeout=10)[1]
            for t in topics
            for p in range(PARTITIONS)
        }
    finally:
        c.close()


def _committed_to_the_end(bootstrap: str, group: str, topics: list[str]) -> bool:
    ends = _ends(bootstrap, topics)
    for t in topics:
        for p, off in committed(bootstrap, group, t, PARTITIONS).items():
            if (off or 0) != ends[(t, p)]:
                return False
    return True


def _history(bootstrap: str, rt: str, params: str, stations: list[str], idle: list[str]) -> None:
    items: list[tuple[str, str | None, Any]] = []
    for s in [*stations, *idle]:  # idle stations have parameters only: never ready
        items.append((params, s, [{"stationId": s, "gridCapacity": 630.0}]))
    for h in range(HOURS):
        for i, s in enumerate(stations):
            items.append((rt, s, {"realTimeData": [rt_row(s, h, _value(h, i))]}))
    produce(bootstrap, items)


def _value(hour: int, i: int) -> float:
    return float(hour * 100 + i + 1)


def _complete(results: list[dict[str, Any]], stations: list[str], hours: int) -> bool:
    """Every station has a result with its parameters and every hour up to ``hours``."""
    for i, s in enumerate(stations):
        want = {_value(h, i) for h in range(hours)}
        if not any(
            r["station_id"] == s and r.get("grid") == 630.0 and want <= set(r["window"])
            for r in results
        ):
            return False
    return True


@pytest.mark.timeout(420)
@pytest.mark.parametrize("service", ["sync", "async"])
def test_sigkill_three_times_every_station_runs_again_with_parameters_and_history(
    kafka_bootstrap: str, tmp_path: Path, output: list[TopicReader], service: str
) -> None:
    group, rt, params = unique("restore"), unique("RT-restore"), unique("PARAM-restore")
    for t in (rt, params):
        create_topic(kafka_bootstrap, t, PARTITIONS)
    cfg = write_yaml(
        tmp_path / "config.yaml", _config(kafka_bootstrap, group, rt, params, "direct")
    )
    reader = TopicReader(kafka_bootstrap, OUT_LP)
    output.append(reader)
    prefix = unique("r")
    stations = [f"{prefix}-{i}" for i in range(10)]
    idle = [f"{prefix}-idle-{i}" for i in range(3)]
    _history(kafka_bootstrap, rt, params, stations, idle)
    hours = HOURS
    for cycle in range(4):
        proc = _run(tmp_path, cfg, f"run{cycle}", "restore-0", use_async=service == "async")
        try:
            # after a restart, results of the new hour carry the parameters sent once
            # before the first kill and the whole history
            seen_from = len(reader.records)

            def fresh(rs: list[Any], n: int = seen_from, h: int = hours) -> bool:
                return _complete(results_of(rs[n:], set(stations)), stations, h)

            reader.until(fresh, 120)
            wait_for(
                lambda: _committed_to_the_end(kafka_bootstrap, group, [rt, params]),
                60,
                what="committed offsets at the end of every partition",
            )
        finally:
            proc.send_signal(signal.SIGKILL if cycle < 3 else signal.SIGINT)
            proc.wait(60)
        if cycle < 3:
            produce(
                kafka_bootstrap,
                [
                    (rt, s, {"realTimeData": [rt_row(s, hours, _value(hours, i))]})
                    for i, s in enumerate(stations)
                ],
            )
            hours += 1
    log = (tmp_path / "run3.out").read_text(encoding="utf-8")
    assert "restore: done" in log
    assert "first run" in log


@pytest.mark.timeout(300)
def test_the_survivor_of_two_instances_takes_over_with_parameters_and_history(
    kafka_bootstrap: str, tmp_path: Path, output: list[TopicReader]
) -> None:
    group, rt, params = unique("survive"), unique("RT-survive"), unique("PARAM-survive")
    for t in (rt, params):
        create_topic(kafka_bootstrap, t, PARTITIONS)
    cfg = write_yaml(tmp_path / "config.yaml", _config(kafka_bootstrap, group, rt, params, "rekey"))
    reader = TopicReader(kafka_bootstrap, OUT_LP)
    output.append(reader)
    prefix = unique("v")
    stations = [f"{prefix}-{i}" for i in range(12)]
    a = _run(tmp_path, cfg, "a", "survive-a")
    b = _run(tmp_path, cfg, "b", "survive-b")
    try:
        _history(kafka_bootstrap, rt, params, stations, [])
        reader.until(lambda rs: _complete(results_of(rs, set(stations)), stations, HOURS), 120)
        a.send_signal(signal.SIGKILL)
        a.wait(30)
        seen_from = len(reader.records)
        produce(
            kafka_bootstrap,
            [
                (rt, s, {"realTimeData": [rt_row(s, HOURS, _value(HOURS, i))]})
                for i, s in enumerate(stations)
            ],
        )
        reader.until(
            lambda rs: _complete(results_of(rs[seen_from:], set(stations)), stations, HOURS + 1),
            120,
        )
    finally:
        for proc in (a, b):
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                proc.wait(60)
    assert "restore: done" in (tmp_path / "b.out").read_text(encoding="utf-8")
