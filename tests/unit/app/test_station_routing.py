"""Station routing on the in-memory bus: several instances of one module keep each station's
data on one instance (rekey), and ``direct`` refuses to share a group (SPEC §8); over both
runner shells (the ``harness`` fixture, ``tests/unit/app/conftest.py``)."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from da_adapters.memory import ManualClock, MemoryBroker
from da_app.settings import Settings
from da_core.errors import ConfigError
from da_core.types import TopicPartition
from tests.support.waiting import async_wait_for

from .conftest import Harnesses
from .helpers import PARAM, RT, param, rt_row
from .shells import AnyHarness, step_until

GROUP = "lp-group"
STATIONS = [f"S{i:02d}" for i in range(20)]


def _many(hour: int, stations: list[str], base: float) -> dict[str, Any]:
    """One REALTIME message carrying an hourly row of every station (many per message)."""
    return {"realTimeData": [rt_row(s, hour, base + i) for i, s in enumerate(stations)]}


class Served:
    """Which instance produced a result for which station, and the values it saw."""

    def __init__(self) -> None:
        self.by: dict[str, set[str]] = {}
        self.values: dict[str, set[float]] = {}
        self._lock = threading.Lock()

    def handler(self, name: str) -> Any:
        def record(sid: str, inp: dict[str, Any], result: Any) -> None:
            with self._lock:
                self.by.setdefault(name, set()).add(sid)
                self.values.setdefault(sid, set()).update(v for v in result["window"] if v)

        return record


def echo(sid: str, inp: dict[str, Any]) -> dict[str, Any]:
    return {"window": list(inp["outputPowerPerStationAvg_window"])}


def _harness(
    harness: Harnesses,
    broker: MemoryBroker,
    clock: ManualClock,
    served: Served,
    name: str,
    routing: str,
    config: dict[str, Any] | None = None,
) -> AnyHarness:
    return harness(
        "load_prediction",
        echo,
        result_handler=served.handler(name),
        broker=broker,
        clock=clock,
        group_id=GROUP,
        station_routing=routing,
        config=config,
    )


async def settle(*harnesses: AnyHarness, timeout: float = 20.0) -> None:
    """Step every instance in turn until none has had anything to do for three rounds."""
    quiet = 0
    for h in harnesses:
        h.runner.core.request_global_refresh()  # global topics created since the last settle

    async def round_is_quiet() -> bool:
        nonlocal quiet
        activity = 0
        for h in harnesses:
            activity += await h.step()
        idle = activity == 0
        for h in harnesses:
            idle = idle and h.runner.quiescent() and await h.caught_up()
        quiet = quiet + 1 if idle else 0
        return quiet >= 3

    await async_wait_for(round_is_quiet, timeout, what="the instances to settle", interval=0)


@pytest.fixture
def bus() -> tuple[MemoryBroker, ManualClock]:
    clock = ManualClock()
    broker = MemoryBroker(clock)
    broker.create_topic(PARAM, 4)
    broker.create_topic(RT, 4)
    return broker, clock


async def test_two_rekey_instances_split_multi_station_topics_by_station(
    harness: Harnesses, bus: tuple[MemoryBroker, ManualClock]
) -> None:
    broker, clock = bus
    served = Served()
    a = _harness(harness, broker, clock, served, "a", "rekey")
    b = _harness(harness, broker, clock, served, "b", "rekey")
    await settle(a, b)
    internal = a.engine.internal_topics[RT]
    assert broker.partition_count(internal) == 4  # the largest source count
    # every message carries many stations; keys say nothing about them
    broker.produce(PARAM, as_json(param(*STATIONS)))
    for hour in range(3):
        broker.produce(RT, as_json(_many(hour, STATIONS, 100.0 * (hour + 1))))
    await settle(a, b)

    assert served.by["a"] | served.by["b"] == set(STATIONS)
    assert served.by["a"]
    assert served.by["b"]
    assert not served.by["a"] & served.by["b"]  # no station served by both
    for i, s in enumerate(STATIONS):  # each station saw its whole window on its one instance
        assert {100.0 + i, 200.0 + i, 300.0 + i} <= served.values[s], s
    for h in (a, b):
        assert h.runner.stats.refused is None
        assert h.engine.stats.records_forwarded > 0


async def test_a_crashed_rekey_instance_hands_its_stations_over_without_losing_input(
    harness: Harnesses, bus: tuple[MemoryBroker, ManualClock]
) -> None:
    broker, clock = bus
    served = Served()
    # Readiness on REALTIME alone: windows live in memory, so the new owner of a station has
    # only what was not committed yet (parameters sent once are a cold-start matter).
    cfg = {"modules": {"load_prediction": {"required_topics": [RT]}}}
    a = _harness(harness, broker, clock, served, "a", "rekey", cfg)
    b = _harness(harness, broker, clock, served, "b", "rekey", cfg)
    await settle(a, b)
    broker.produce(RT, as_json(_many(0, STATIONS, 100.0)))
    await settle(a, b)
    first_a = set(served.by["a"])
    broker.produce(RT, as_json(_many(1, STATIONS, 200.0)))
    await a.step()  # a reads part of the new data (maybe forwards it) and dies before finishing
    await a.crash()
    clock.advance(1)
    await settle(b)
    assert served.by["b"] >= first_a  # b took a's stations over
    for i, s in enumerate(STATIONS):
        assert 200.0 + i in served.values[s], s  # nothing read by a before its crash is lost


async def test_direct_routing_refuses_to_share_a_group(
    harness: Harnesses, bus: tuple[MemoryBroker, ManualClock]
) -> None:
    broker, clock = bus
    served = Served()
    a = _harness(harness, broker, clock, served, "a", "direct")
    await settle(a)
    assert a.runner.stats.refused is None  # alone it holds every partition
    b = _harness(harness, broker, clock, served, "b", "direct")

    def refused() -> list[AnyHarness]:
        return [h for h in (a, b) if h.runner.stats.refused is not None]

    async def both_stepped() -> bool:
        await b.step()
        return bool(refused())

    await step_until(a, both_stepped, what="an instance to refuse the shared group")
    (first, *_) = refused()
    problem = first.runner.stats.refused
    assert problem is not None
    assert "station_routing: rekey" in problem
    assert GROUP in problem
    assert not first.runner.alive


async def test_single_direct_instance_reads_sources_without_internal_topics(
    harness: Harnesses, bus: tuple[MemoryBroker, ManualClock]
) -> None:
    broker, clock = bus
    served = Served()
    a = _harness(harness, broker, clock, served, "a", "direct")
    broker.produce(PARAM, as_json(param("S1", "S2")))
    broker.produce(RT, as_json(_many(0, ["S1", "S2"], 5.0)))
    await settle(a)
    assert served.by["a"] == {"S1", "S2"}
    assert not any(t.endswith(".by-station") for t in broker.topics())
    status = a.service.get_service_status()
    assert (status["station_routing"], status["internal_topics"], status["refused"]) == (
        "direct",
        [],
        None,
    )


async def test_rekey_commits_sources_once_forwarded_and_internal_topics_once_uploaded(
    harness: Harnesses, bus: tuple[MemoryBroker, ManualClock]
) -> None:
    broker, clock = bus
    served = Served()
    a = _harness(harness, broker, clock, served, "a", "rekey")
    broker.produce(PARAM, as_json(param("S1", "S2")), partition=0)
    broker.produce(RT, as_json(_many(0, ["S1", "S2"], 5.0)), partition=0)
    await settle(a)
    clock.advance(10)  # the commit interval
    await settle(a)
    committed = a.committed()
    assert committed[TopicPartition(PARAM, 0)] == 1
    assert committed[TopicPartition(RT, 0)] == 1
    internal = a.engine.internal_topics[RT]
    shares = broker.records(internal)
    assert sorted(r.key for r in shares if r.key) == [b"S1", b"S2"]
    for p in {r.partition for r in shares}:  # every share's run was uploaded: committed
        tp = TopicPartition(internal, p)
        assert committed[tp] == broker.high_watermark(tp)
    status = a.service.get_service_status()
    assert status["station_routing"] == "rekey"
    assert internal in status["internal_topics"]
    assert status["records_forwarded"] == 2


def test_routing_defaults_and_validation() -> None:
    s = Settings.from_raw({})
    assert s.routing_mode("memory") == "direct"
    assert s.routing_mode("confluent") == "rekey"
    assert s.routing_mode("aiokafka") == "rekey"
    forced = Settings.from_raw({"SERVICE_CONFIG": {"station_routing": "direct"}})
    assert forced.routing_mode("confluent") == "direct"
    with pytest.raises(ConfigError, match="station_routing"):
        Settings.from_raw({"SERVICE_CONFIG": {"station_routing": "sometimes"}})
    with pytest.raises(ConfigError, match="rekey_partitions"):
        Settings.from_raw({"SERVICE_CONFIG": {"rekey_partitions": 0}})
    with pytest.raises(ConfigError, match="topic"):
        Settings.from_raw({"SERVICE_CONFIG": {"rekey_topic_template": "fixed-name"}})


def as_json(payload: Any) -> bytes:
    return json.dumps(payload).encode()
