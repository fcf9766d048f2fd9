"""Helpers for the end-to-end tests against the real broker: configs, producing, reading."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import yaml
from confluent_kafka import Consumer, Producer, TopicPartition

from tests.support.signals import default_sigint
from tests.support.waiting import wait_for

RT = "SCHEDULE-STATION-REALTIME-DATA"
PARAM = "SCHEDULE-STATION-PARAM"
OUT_LP = "MODULE-OUTPUT-LOAD_PREDICTION"
DLQ = "DATA-ANALYSIS-DEAD-LETTER"
ROOT = Path(__file__).resolve().parents[2]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def kafka_config(bootstrap: str, group: str) -> dict[str, Any]:
    return {
        "bootstrap_servers": bootstrap,
        "consumer": {
            "group_id": group,
            "auto_offset_reset": "earliest",
            "session_timeout_ms": 6000,
            "heartbeat_interval_ms": 500,
            "max_poll_records": 500,
        },
        "producer": {"acks": "all", "linger_ms": 5},
    }


def service_config(bootstrap: str, group: str, **extra: Any) -> dict[str, Any]:
    """A config for load_prediction whose stations run on REALTIME alone (restarted
    instances have no window state, so readiness must not wait for a one-off topic)."""
    cfg: dict[str, Any] = {
        "KAFKA_CONFIG": kafka_config(bootstrap, group),
        "OFFSET_COMMIT_CONFIG": {"commit_interval_seconds": 0.5, "commit_batch_size": 50},
        "modules": {"load_prediction": {"required_topics": [RT], "batch_timeout": 2.0}},
    }
    cfg.update(extra)
    return cfg


def write_yaml(path: Path, cfg: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return path


def rt_row(sid: str, hour: int, avg: float) -> dict[str, Any]:
    day, h = divmod(hour, 24)
    return {
        "stationId": sid,
        "sendTime": f"2026-10-{1 + day:02d} {h:02d}:00:00",
        "gunPower": {"gunNo": ["01"], "outputPowerPerGunAvg": [avg], "outputPowerPerGunMax": [avg]},
        "outputPowerPerStationAvg": avg,
        "outputPowerPerStationMax": avg,
    }


def produce(bootstrap: str, items: Iterable[tuple[str, str | None, Any]]) -> int:
    """Produce (topic, key, payload) items (payload: JSON-able or bytes); waits for acks."""
    p = Producer({"bootstrap.servers": bootstrap, "partitioner": "murmur2_random", "acks": "all"})
    errors: list[str] = []
    n = 0
    for topic, key, payload in items:
        value = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        p.produce(
            topic,
            value,
            key=key.encode() if key else None,
            on_delivery=lambda err, _m: errors.append(str(err)) if err else None,
        )
        n += 1
        p.poll(0)
    p.flush(30)
    assert not errors, errors[:3]
    return n


def ensure_topic(bootstrap: str, topic: str, partitions: int = 3) -> None:
    """Create ``topic`` unless it exists (as auto-creation would, with 3 partitions)."""
    from confluent_kafka.admin import AdminClient

    from tests.integration.kafka_fixtures import create_topic, wait_for_topic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    found = admin.list_topics(timeout=10).topics.get(topic)
    if found is not None and found.error is None:
        wait_for_topic(admin, topic, len(found.partitions))
        return
    try:
        create_topic(bootstrap, topic, partitions)
    except Exception:  # created meanwhile by someone else: fine once it is ready
        wait_for_topic(admin, topic, partitions)


class TopicReader:
    """Reads a topic from the beginning with a private consumer (no group commits)."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": unique("reader"),
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
            }
        )
        ensure_topic(bootstrap, topic)
        md = self.consumer.list_topics(topic, timeout=10)
        parts = md.topics[topic].partitions
        self.consumer.assign([TopicPartition(topic, p, 0) for p in parts])
        self.records: list[Any] = []

    def read(self, timeout: float = 0.5) -> list[Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msgs = self.consumer.consume(500, 0.1)
            for m in msgs:
                if m.error() is None:
                    self.records.append(m)
        return self.records

    def until(self, predicate: Callable[[list[Any]], bool], timeout: float = 60.0) -> list[Any]:
        wait_for(
            lambda: predicate(self.read(0.3)),
            timeout,
            what=f"a condition on {self.topic}",
            interval=0,
            observe=lambda: f"{len(self.records)} records",
        )
        return self.records

    def close(self) -> None:
        self.consumer.close()


def results_of(records: list[Any], stations: set[str]) -> list[dict[str, Any]]:
    """Station results (batch or station envelopes) for the given stations."""
    out: list[dict[str, Any]] = []
    for m in records:
        try:
            env = json.loads(m.value())
        except (TypeError, ValueError):
            continue
        for r in env.get("results", env.get("stations", [])):
            if isinstance(r, dict) and r.get("station_id") in stations:
                out.append(r)
    return out


def committed(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int | None]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        tps = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
        return {tp.partition: (tp.offset if tp.offset >= 0 else None) for tp in tps}
    finally:
        c.close()


def spawn_da_app(
    tmp_path: Path,
    config: Path,
    name: str,
    callback: str,
    *,
    use_async: bool = False,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[str]:
    """``da-app run --config CONFIG --callback CALLBACK [--async]`` as a child in ``tmp_path``
    with the default signal dispositions; its output goes to ``tmp_path/NAME.out``. ``env``
    adds to this process's environment (``PYTHONPATH`` finds ``src``, the tests and the
    examples)."""
    full = dict(os.environ)
    full.update(
        PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT), str(ROOT / "examples")]),
        PYTHONUNBUFFERED="1",
    )
    full.update(env or {})
    out = open(tmp_path / f"{name}.out", "w")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "da_app",
            "run",
            "--config",
            str(config),
            "--callback",
            callback,
            *(["--async"] if use_async else []),
        ],
        cwd=tmp_path,
        env=full,
        stdout=out,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=default_sigint,
    )
