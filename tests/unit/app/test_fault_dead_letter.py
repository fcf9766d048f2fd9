"""Issue 10 item 6 / SPEC §7: a dead letter the broker refuses (a bad record larger than the
producer's ``message.max.bytes``) is retried with backoff and a bound
(``service.dead_letter_max_attempts``), then given up: its record is released (the partition's
commits advance), with an ERROR line naming topic/partition/offset and reason, a metric, and
degraded health while it fails. Over both services."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from da_adapters.memory import ManualClock, MemoryBroker
from da_app.metrics import build_registry
from da_app.services import AsyncDataAnalysisService
from da_app.testing import Harness
from da_core.types import TopicPartition
from tests.support.waiting import async_wait_for

from .helpers import PARAM, RT, echo_window, param, realtime

DLQ = "DATA-ANALYSIS-DEAD-LETTER"
TOO_LARGE = "Broker: Message size too large"
CONFIG = {"service": {"dead_letter_max_attempts": 3}}


def test_a_failing_dead_letter_is_bounded_then_released_with_an_error_and_a_metric(
    caplog: pytest.LogCaptureFixture,
) -> None:
    h = Harness("load_prediction", echo_window, config=CONFIG)
    h.broker.fail_next_produce(DLQ, TOO_LARGE, count=100)
    h.publish(PARAM, param("S1"), partition=0)
    h.publish(RT, b"{not json" + b" " * 1000, partition=0)  # offset 0: the bad record
    h.publish(RT, realtime("S1", 1, 5.0), partition=0)  # offset 1: a good one behind it
    with caplog.at_level(logging.ERROR, logger="da_core.engine"):
        h.run_until_idle()
        assert h.engine.stats.dead_letter_failures == 1
        assert [r["station_id"] for r in h.results()] == ["S1"]
        # degraded while it fails: /ready 503 with the reason; /health says so (its status
        # is the loop's: the harness drives the loop itself, so it is not "running" here)
        ready, live = h.service.readiness(), h.service.liveness()
        assert not ready.ok
        assert any("dead letters failing" in r for r in ready.body["reasons"])
        assert live.body["degraded"] == [r for r in ready.body["reasons"] if "dead" in r]
        assert h.service.get_service_status()["dead_letters_failing"] == 1
        # no busy loop: without time passing, nothing is retried
        for _ in range(50):
            h.step()
        assert h.engine.stats.dead_letter_failures == 1
        h.advance(10)
        h.run_until_idle()
        assert h.committed()[TopicPartition(RT, 0)] is None  # the bad record holds the partition
        for _ in range(2):
            h.advance(1)
            h.run_until_idle()
    stats = h.engine.stats
    assert stats.dead_letter_failures == 3  # bounded: three attempts, never a fourth
    assert stats.dead_letters_lost == 1
    assert stats.dead_letters == 0
    assert h.dead_letters() == []
    h.advance(10)
    h.run_until_idle()
    assert h.committed()[TopicPartition(RT, 0)] == 2  # released: the commits advanced past it
    (line,) = [r for r in caplog.records if "giving up" in r.getMessage()]
    message = line.getMessage()
    assert f"{RT}[0]@0" in message
    assert "not_json" in message
    assert not any("dead" in r for r in h.service.readiness().body.get("reasons", []))
    assert "degraded" not in h.service.liveness().body
    registry = build_registry(h.service, process=False)
    assert registry.get_sample_value("data_analysis_dead_letter_failures_total") == 3
    errors = {"error_type": "dead_letter_lost"}
    assert registry.get_sample_value("data_analysis_errors_total", errors) == 1
    assert registry.get_sample_value("data_analysis_dead_letters_failing") == 0
    h.stop()


def test_a_dead_letter_that_succeeds_on_a_retry_is_not_lost() -> None:
    h = Harness("load_prediction", echo_window, config=CONFIG)
    h.broker.fail_next_produce(DLQ, TOO_LARGE, count=2)
    h.publish(RT, b"{not json", partition=0)
    h.run_until_idle()
    for _ in range(2):
        h.advance(1)
        h.run_until_idle()
    assert h.engine.stats.dead_letters == 1
    assert h.engine.stats.dead_letters_lost == 0
    assert h.engine.dead_letters_failing == 0
    assert len(h.dead_letters()) == 1
    assert not any("dead" in r for r in h.service.readiness().body.get("reasons", []))
    h.stop()


def test_the_bound_is_a_validated_setting() -> None:
    from da_app.settings import Settings
    from da_core.errors import ConfigError

    assert Settings.from_raw({}).service.dead_letter_max_attempts == 10
    with pytest.raises(ConfigError, match="dead_letter_max_attempts"):
        Settings.from_raw({"service": {"dead_letter_max_attempts": 0}})


async def test_async_service_gives_up_a_failing_dead_letter_and_commits_past_it() -> None:
    clock = ManualClock()
    broker = MemoryBroker(clock)
    broker.fail_next_produce(DLQ, TOO_LARGE, count=100)
    svc = AsyncDataAnalysisService(
        module_name="load_prediction",
        config=CONFIG,
        adapter="memory",
        broker=broker,
        clock=clock,
        group_id="dlq-async",
        auto_offset_reset="earliest",
        poll_timeout=0.01,
    )
    await svc.start(echo_window)
    broker.produce(PARAM, json.dumps(param("S1")).encode(), partition=0)
    broker.produce(RT, b"{not json", partition=0)
    stats = svc.engine.stats

    def attempts() -> int:
        return stats.dead_letter_failures

    await async_wait_for(lambda: attempts() == 1, what="the first failed attempt", observe=attempts)
    assert not svc.readiness().ok
    live = svc.liveness()
    assert live.ok
    assert live.body["degraded"]
    for n in (2, 3):
        clock.advance(1)
        await async_wait_for(lambda n=n: attempts() == n, what=f"attempt {n}", observe=attempts)  # type: ignore[misc]
    assert stats.dead_letters_lost == 1
    assert svc.readiness().ok

    def committed() -> Any:
        clock.advance(1)  # the commit interval is of the service's clock
        return broker.committed("dlq-async", [TopicPartition(RT, 0)])[TopicPartition(RT, 0)]

    await async_wait_for(committed, what="a commit past the bad record")
    assert committed() == 1
    await svc.stop()
