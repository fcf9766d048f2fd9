"""Issue 10 items 11-14 on the in-memory bus: the broker unreachable at start or later
(``MemoryBroker.go_down``/``come_up``): the loop retries with backoff, stays alive, says so
once in the log, on ``/ready`` and in metrics, commits nothing while it is down, and resumes
by itself with nothing lost."""

from __future__ import annotations

import logging

import pytest

from da_adapters.memory import ManualClock, MemoryBroker
from da_app.testing import AsyncHarness, Harness
from da_core.types import TopicPartition

from .helpers import PARAM, RT, echo_window, param, realtime


def _outage_lines(caplog: pytest.LogCaptureFixture) -> tuple[list[str], list[str]]:
    lost = [
        r.getMessage()
        for r in caplog.records
        if "unreachable" in r.getMessage() or "connection lost" in r.getMessage()
    ]
    back = [r.getMessage() for r in caplog.records if "connection restored" in r.getMessage()]
    return lost, back


def _subscribed(h: Harness) -> bool:
    return h.runner.subscribed


def _broker_reasons(h: Harness) -> list[str]:
    reasons: list[str] = h.service.readiness().body.get("reasons", [])
    return [r for r in reasons if "broker" in r and "unreachable" in r]


def test_a_broker_unreachable_at_start_is_retried_and_the_service_resumes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = ManualClock()
    broker = MemoryBroker(clock)
    broker.go_down()
    with caplog.at_level(logging.INFO, logger="da_app.runner"):
        # the set-up fails: rekey routing needs the broker's metadata
        h = Harness(
            "load_prediction", echo_window, broker=broker, clock=clock, station_routing="rekey"
        )
        assert not h.runner.subscribed
        h.step()  # a retry after the backoff, still down
        assert h.runner.stats.loops == 1  # the iteration counts for liveness
        ready = h.service.readiness()
        assert not ready.ok
        assert any("broker" in r and "unreachable" in r for r in ready.body["reasons"])
        h.broker.come_up()
        h.step()
        assert _subscribed(h)
    lost, back = _outage_lines(caplog)
    assert len(lost) == 1
    assert len(back) == 1
    assert h.runner.stats.broker_disconnects == 1
    h.publish(PARAM, param("S1"), partition=0)
    h.publish(RT, realtime("S1", 0, 7.0), partition=0)
    h.run_until_idle()
    h.advance(10)
    h.run_until_idle()
    assert [r["station_id"] for r in h.results()] == ["S1"]
    assert not _broker_reasons(h)
    h.stop()


def test_an_outage_mid_stream_commits_nothing_loses_nothing_and_is_reported_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    h = Harness(
        "load_prediction",
        echo_window,
        config={"OFFSET_COMMIT_CONFIG": {"commit_batch_size": 1}},
    )
    h.publish(PARAM, param("S1"), partition=0)
    h.publish(RT, realtime("S1", 0, 7.0), partition=0)
    h.broker.go_down()
    with caplog.at_level(logging.INFO, logger="da_app.runner"):
        for _ in range(20):
            h.step()
        assert h.runner.stats.broker_connected is False
        assert h.runner.stats.commit_failed_at is None  # no commit was even tried
        assert not h.service.readiness().ok
        assert _broker_reasons(h)
        h.broker.come_up()
        h.run_until_idle()
        h.advance(10)
        h.run_until_idle()
    lost, back = _outage_lines(caplog)
    assert (len(lost), len(back)) == (1, 1)
    assert [r["station_id"] for r in h.results()] == ["S1"]
    assert h.committed()[TopicPartition(RT, 0)] == 1
    assert not _broker_reasons(h)
    assert h.runner.stats.broker_disconnects == 1
    h.stop()


def test_the_memory_consumer_says_when_the_broker_is_down() -> None:
    h = Harness("load_prediction", echo_window)
    consumer = h.runner.consumer
    assert consumer.connected() is True
    h.broker.go_down()
    assert consumer.connected() is False
    h.broker.come_up()
    assert consumer.connected() is True
    h.stop()


async def test_the_async_service_starts_with_the_broker_down_and_resumes_when_it_is_back() -> None:
    """Issue 10 item 11 for the async service: its clients cannot connect at start (the memory
    consumer's start fails like aiokafka's bootstrap), yet ``start`` returns and the loop
    retries the whole set-up (the restore reader included) until the broker is back."""
    clock = ManualClock()
    broker = MemoryBroker(clock)
    broker.go_down()
    h = AsyncHarness("load_prediction", echo_window, broker=broker, clock=clock)

    def subscribed() -> bool:
        return h.runner.subscribed

    try:
        await h.start()  # returns although nothing could connect
        await h.step()
        assert not subscribed()
        ready = h.service.readiness()
        assert not ready.ok
        assert any("broker" in r and "unreachable" in r for r in ready.body["reasons"])
        broker.come_up()
        clock.advance(10)  # past the set-up backoff
        await h.step()
        assert subscribed()
        h.publish(PARAM, param("S1"), partition=0)
        h.publish(RT, realtime("S1", 0, 7.0), partition=0)
        await h.run_until_idle()
        h.advance(10)
        await h.run_until_idle()
        assert [r["station_id"] for r in h.results()] == ["S1"]
    finally:
        await h.stop()
