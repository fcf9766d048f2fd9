"""End to end against the real broker: the guide's examples, hard crashes, failed uploads,
dead letters and two instances sharing a group (SPEC §6–§8)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from da_app.services import DataAnalysisService
from tests.integration.e2e_support import (
    DLQ,
    OUT_LP,
    ROOT,
    RT,
    TopicReader,
    committed,
    produce,
    results_of,
    rt_row,
    service_config,
    spawn_da_app,
    unique,
    write_yaml,
)
from tests.support.signals import default_sigint
from tests.support.waiting import wait_for

SAMPLES = ROOT / "src" / "da_app" / "samples"
ADAPTERS = ["confluent", "aiokafka"]


def _env(tmp_path: Path, config: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATA_ANALYSIS_CONFIG=str(config),
        PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT), str(ROOT / "examples")]),
        PYTHONUNBUFFERED="1",
        DATA_ANALYSIS_LOG=str(tmp_path / "app.log"),
    )
    return env


@pytest.fixture
def output() -> Iterator[list[TopicReader]]:
    readers: list[TopicReader] = []
    yield readers
    for r in readers:
        r.close()


def _publish_samples(bootstrap: str, prefix: str) -> set[str]:
    """Every topic's sample payload, with station ids made unique to this test."""
    items = []
    for path in sorted(SAMPLES.glob("SCHEDULE-*.json")):
        text = path.read_text(encoding="utf-8").replace('"S000', f'"{prefix}S000')
        items.append((path.stem, None, text.encode()))
    produce(bootstrap, items)
    return {f"{prefix}S0001", f"{prefix}S0002"}


@pytest.mark.timeout(180)
@pytest.mark.parametrize("script", ["sync_main.py", "async_main.py"])
def test_guide_examples_process_samples_and_publish_results(
    kafka_bootstrap: str, tmp_path: Path, script: str, output: list[TopicReader]
) -> None:
    group = unique("example")
    cfg = write_yaml(tmp_path / "config.yaml", service_config(kafka_bootstrap, group))
    reader = TopicReader(kafka_bootstrap, OUT_LP)
    output.append(reader)
    prefix = unique("ex") + "-"
    stations = _publish_samples(kafka_bootstrap, prefix)
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "examples" / script)],
        cwd=tmp_path,
        env=_env(tmp_path, cfg),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=default_sigint,
    )
    try:
        records = reader.until(
            lambda rs: {r["station_id"] for r in results_of(rs, stations)} == stations, 90
        )
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    got = results_of(records, stations)
    assert {r["station_id"] for r in got} == stations
    if script == "async_main.py":  # the guide's batch upload handler's own payload shape
        assert any("stations" in json.loads(m.value()) for m in records)


def _run_service(tmp_path: Path, cfg: Path, name: str) -> subprocess.Popen[str]:
    return spawn_da_app(
        tmp_path,
        cfg,
        name,
        "tests.integration.e2e_callbacks:echo_window",
        env=_env(tmp_path, cfg),
    )


@pytest.mark.timeout(300)
def test_sigkill_mid_stream_three_times_loses_no_input_record(
    kafka_bootstrap: str, tmp_path: Path, output: list[TopicReader]
) -> None:
    group = unique("crash")
    cfg = write_yaml(tmp_path / "config.yaml", service_config(kafka_bootstrap, group))
    reader = TopicReader(kafka_bootstrap, OUT_LP)
    output.append(reader)
    prefix = unique("k")
    stations = [f"{prefix}-{i}" for i in range(8)]
    hours = 120
    sent: dict[str, set[float]] = {s: set() for s in stations}
    items = []
    for h in range(hours):
        for i, s in enumerate(stations):
            v = float(h * 1000 + i + 1)
            sent[s].add(v)
            items.append((RT, s, {"realTimeData": [rt_row(s, h, v)]}))
    done = threading.Event()

    def feed() -> None:  # paced over ~25 s, so the kills land mid-stream
        for k in range(0, len(items), 10):
            produce(kafka_bootstrap, items[k : k + 10])
            time.sleep(0.25)
        done.set()

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    kills = 0
    mid_stream = 0
    seen_before = 0
    for cycle in range(3):
        proc = _run_service(tmp_path, cfg, f"crash{cycle}")

        def progressed(rs: list[Any], n: int = seen_before) -> bool:
            return len(results_of(rs, set(stations))) > n

        try:
            reader.until(progressed, 90)
        finally:
            mid_stream += not done.is_set()
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
            kills += 1
        seen_before = len(results_of(reader.records, set(stations)))
    feeder.join(120)
    assert done.is_set()
    final = _run_service(tmp_path, cfg, "final")

    def complete(rs: list[Any]) -> bool:
        got: dict[str, set[float]] = {s: set() for s in stations}
        for r in results_of(rs, set(stations)):
            got[r["station_id"]].update(r["window"])
        return all(sent[s] <= got[s] for s in stations)

    try:
        records = reader.until(complete, 120)
    finally:
        final.send_signal(signal.SIGINT)
        final.wait(60)
    assert kills == 3
    assert mid_stream >= 1, "no kill landed while records were still being produced"
    results = results_of(records, set(stations))
    # duplicates are bounded by the commit policy: at most what was uncommitted at each kill
    latest_seen: dict[str, float] = {}
    repeats = 0
    for r in results:
        top = max(r["window"])
        if latest_seen.get(r["station_id"], -1.0) >= top:
            repeats += 1
        latest_seen[r["station_id"]] = max(top, latest_seen.get(r["station_id"], -1.0))
    assert repeats <= kills * (50 + 500)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("adapter", ADAPTERS)
@pytest.mark.parametrize("routing", ["rekey", "direct"])
def test_failed_upload_commits_nothing(kafka_bootstrap: str, adapter: str, routing: str) -> None:
    group = unique("failup")
    cfg = service_config(
        kafka_bootstrap, group, MODULE_OUTPUT_TOPICS={"load_prediction": "bad topic name!"}
    )
    cfg["SERVICE_CONFIG"] = {"station_routing": routing}
    topic = unique("RT-failup")
    cfg["TOPIC_DETAIL"] = {topic: _rt_topic_spec()}
    cfg["modules"]["load_prediction"].update(topics=[topic], required_topics=[topic])
    s = unique("fu")
    produce(kafka_bootstrap, [(topic, s, {"realTimeData": [rt_row(s, 0, 1.0)]})])
    svc = _start(cfg, adapter)
    try:
        assert _wait(lambda: svc.engine.stats.upload_failures >= 2, 60)
        assert svc.engine.stats.uploads_ok == 0
        assert svc.get_service_status()["upload_failing_since"] is not None
        if routing == "direct":
            assert set(committed(kafka_bootstrap, group, topic, 3).values()) == {None}
        else:
            # the re-keying stage is done with the source record once its share is
            # acknowledged; the module's own input, the share, stays uncommitted
            internal = svc.engine.internal_topics[topic]
            assert set(committed(kafka_bootstrap, group, internal, 3).values()) == {None}
            assert _wait(
                lambda: (
                    sum(v or 0 for v in committed(kafka_bootstrap, group, topic, 3).values()) == 1
                ),
                30,
            )
    finally:
        _stop(svc)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("adapter", ADAPTERS)
def test_bad_input_through_kafka_reaches_the_dead_letter_topic(
    kafka_bootstrap: str, adapter: str, output: list[TopicReader]
) -> None:
    group = unique("dlq")
    topic = unique("RT-dlq")
    cfg = service_config(kafka_bootstrap, group, TOPIC_DETAIL={topic: _rt_topic_spec()})
    cfg["modules"]["load_prediction"].update(topics=[topic], required_topics=[topic])
    reader = TopicReader(kafka_bootstrap, DLQ)
    output.append(reader)
    marker = unique("garbage").encode()
    produce(kafka_bootstrap, [(topic, "k", b"{not json " + marker)])
    svc = _start(cfg, adapter)
    try:
        records = reader.until(lambda rs: any(marker in (m.value() or b"") for m in rs), 60)
        (dead,) = [m for m in records if marker in (m.value() or b"")]
        headers = {k: v.decode() for k, v in dead.headers() or []}
        assert headers["da.reason"] == "not_json"
        assert headers["da.topic"] == topic
        assert _wait(lambda: svc.engine.stats.dead_letters == 1, 30)
        assert _wait(
            lambda: sum(v or 0 for v in committed(kafka_bootstrap, group, topic, 3).values()) == 1,
            30,
        )
    finally:
        _stop(svc)


def _assigned(svc: Any) -> int:
    r = svc.runner if hasattr(svc, "runner") else svc.svc.runner
    return 0 if r is None else len(r.consumer.assignment())


@pytest.mark.timeout(240)
@pytest.mark.parametrize("adapter", ADAPTERS)
def test_two_instances_split_stations_and_one_takes_over_when_the_other_stops(
    kafka_bootstrap: str, adapter: str
) -> None:
    """Every message carries many stations and no key: only the re-keying stage can keep
    each station's data on one instance."""
    group = unique("pair")
    topic = unique("RT-pair")
    params = unique("PARAM-pair")
    cfg = service_config(
        kafka_bootstrap,
        group,
        TOPIC_DETAIL={topic: _rt_topic_spec(), params: _param_topic_spec()},
    )
    cfg["modules"]["load_prediction"].update(topics=[topic, params], required_topics=[topic])
    from tests.integration.kafka_fixtures import create_topic

    create_topic(kafka_bootstrap, topic, 6)
    create_topic(kafka_bootstrap, params, 6)
    stations = [unique("p") for _ in range(24)]
    served: dict[str, set[str]] = {"a": set(), "b": set()}
    seen: dict[str, set[float]] = {s: set() for s in stations}
    grid: dict[str, set[float]] = {s: set() for s in stations}
    lock = threading.Lock()

    def handler(name: str) -> Any:
        def record(sid: str, inp: dict[str, Any], result: Any) -> None:
            with lock:
                served[name].add(sid)
                seen[sid].update(v for v in result["window"] if v)
                if inp.get("gridCapacity"):
                    grid[sid].add(inp["gridCapacity"])

        return record

    def many(hour: int) -> dict[str, Any]:
        rows = [rt_row(s, hour, 100.0 * (hour + 1) + i) for i, s in enumerate(stations)]
        return {"realTimeData": rows}

    a = _start(cfg, adapter, result_handler=handler("a"))
    b = _start(cfg, adapter, result_handler=handler("b"))
    try:
        # 6 source partitions of each topic plus 6 of each internal topic, split in two
        assert _wait(lambda: _assigned(a) == _assigned(b) == 12, 90)
        param_rows = [
            {"stationId": s, "gridCapacity": 630.0 + i, "stationLng": 1.0}
            for i, s in enumerate(stations)
        ]
        produce(kafka_bootstrap, [(params, None, param_rows), (topic, None, many(0))])
        produce(kafka_bootstrap, [(topic, None, many(1))])
        assert _wait(lambda: served["a"] | served["b"] == set(stations), 90)
        assert _wait(
            lambda: all({100.0 + i, 200.0 + i} <= seen[s] for i, s in enumerate(stations)), 60
        )
        assert served["a"]
        assert served["b"]
        assert not served["a"] & served["b"]  # no station served by both
        # the parameters reached each station's one instance with its own value
        assert _wait(lambda: all(grid[s] == {630.0 + i} for i, s in enumerate(stations)), 30)
        _stop(a)
        before_b = set(served["b"])
        produce(kafka_bootstrap, [(topic, None, many(2))])
        assert _wait(lambda: served["b"] >= set(stations), 90)  # b took a's stations over
        assert served["b"] - before_b == served["a"]
        assert _wait(lambda: all(300.0 + i in seen[s] for i, s in enumerate(stations)), 60)
        status = b.get_service_status()
        assert status["station_routing"] == "rekey"
        assert status["refused"] is None
    finally:
        _stop(a)
        _stop(b)


@pytest.mark.timeout(180)
def test_direct_routing_refuses_a_second_instance(kafka_bootstrap: str) -> None:
    group = unique("direct")
    topic = unique("RT-direct")
    cfg = service_config(kafka_bootstrap, group, TOPIC_DETAIL={topic: _rt_topic_spec()})
    cfg["modules"]["load_prediction"].update(topics=[topic], required_topics=[topic])
    cfg["SERVICE_CONFIG"] = {"station_routing": "direct"}
    from tests.integration.kafka_fixtures import create_topic

    create_topic(kafka_bootstrap, topic, 4)
    a = _start(cfg, "confluent")
    b = None
    try:
        assert _wait(lambda: _assigned(a) == 4, 60)
        b = _start(cfg, "confluent")
        assert _wait(
            lambda: any(s.get_service_status()["refused"] for s in (a, b) if s is not None), 60
        )
        refused = [s for s in (a, b) if s.get_service_status()["refused"]]
        message = refused[0].get_service_status()["refused"]
        assert "station_routing: rekey" in message
        assert group in message
        assert _wait(lambda: not refused[0].get_service_status()["main_thread_alive"], 30)
    finally:
        _stop(a)
        if b is not None:
            _stop(b)


def _rt_topic_spec() -> dict[str, Any]:
    return {
        "extractor": "wrapped",
        "wrapper_key": "realTimeData",
        "window": "hourly_grid",
        "window_size": 168,
        "time_key": "sendTime",
        "fields": ["outputPowerPerStationAvg", "outputPowerPerStationMax"],
    }


def _param_topic_spec() -> dict[str, Any]:
    return {
        "extractor": "array",
        "fields": ["gridCapacity", "stationLng"],
    }


def _start(cfg: dict[str, Any], adapter: str, **kwargs: Any) -> DataAnalysisService:
    if adapter == "aiokafka":
        return _AsyncInThread(cfg, **kwargs)  # type: ignore[return-value]
    svc = DataAnalysisService(
        module_name="load_prediction", config=cfg, adapter=adapter, poll_timeout=0.05
    )
    from tests.integration.e2e_callbacks import echo_window

    svc.start(echo_window, result_handler=kwargs.get("result_handler"))
    return svc


def _stop(svc: Any) -> None:
    svc.stop()


def _wait(predicate: Any, timeout: float) -> bool:
    """``wait_for`` under the name the tests use: true, or the test fails at the deadline."""
    wait_for(predicate, timeout, what="the condition", interval=0.05)
    return True


class _AsyncInThread:
    """The async service on its own event loop thread, with the sync service's test surface."""

    def __init__(self, cfg: dict[str, Any], **kwargs: Any) -> None:
        import asyncio

        from da_app.services import AsyncDataAnalysisService
        from tests.integration.e2e_callbacks import echo_window

        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self.svc = AsyncDataAnalysisService(
            module_name="load_prediction", config=cfg, adapter="aiokafka", poll_timeout=0.05
        )
        asyncio.run_coroutine_threadsafe(
            self.svc.start(echo_window, result_handler=kwargs.get("result_handler")), self._loop
        ).result(60)
        self.engine = self.svc.engine
        self._stopped = False

    def get_service_status(self) -> dict[str, Any]:
        return self.svc.get_service_status()

    def stop(self) -> None:
        import asyncio

        if self._stopped:
            return
        self._stopped = True
        asyncio.run_coroutine_threadsafe(self.svc.stop(), self._loop).result(60)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
