"""multi_consumer_mode: a backlogged topic cannot starve the others (SPEC §8), over both
runner shells (the ``harness`` fixture, ``tests/unit/app/conftest.py``)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from .conftest import Harnesses
from .shells import AnyHarness

METER = "SCHEDULE-DEVICE-METER"
STORAGE = "SCHEDULE-DEVICE-STORAGE"


def meter(sid: str, p: float) -> dict[str, Any]:
    return {"stationId": sid, "meterId": "M1", "meterPower": p, "rmeterLimitPower": 400.0}


def storage(sid: str) -> dict[str, Any]:
    return {"stationId": sid, "storageCode": "ST1", "batteryGroupSoc": 50}


def _harness(harness: Harnesses, multi: bool, seen: list[tuple[int, str]]) -> AnyHarness:
    config = {
        "KAFKA_CONFIG": {"consumer": {"max_poll_records": 20}},
        "modules": {"electricity_price": {"topics": [METER, STORAGE], "required_topics": []}},
    }

    def model(sid: str, inp: dict[str, Any]) -> None:
        seen.append((h.engine.stats.records_in, sid))

    h = harness("electricity_price", model, config=config, multi_consumer_mode=multi)
    return h


@pytest.mark.parametrize("multi", [True, False])
async def test_a_quiet_topic_is_served_while_a_burst_is_still_queued(
    harness: Harnesses, multi: bool
) -> None:
    seen: list[tuple[int, str]] = []
    h = _harness(harness, multi, seen)
    for i in range(2000):
        h.publish(METER, meter(f"B{i % 50}", float(i)), partition=0)
    h.publish(STORAGE, storage("QUIET"), partition=0)
    await h.run_until_idle(timeout=60)
    quiet = [n for n, sid in seen if sid == "QUIET"]
    assert quiet, "the quiet topic's station never ran"
    if multi:
        # per-topic quotas, and the burst topic paused once its buffer passes high water (2x
        # the quota): the quiet record is in within a few cycles, long before the burst is
        # through
        assert quiet[0] <= 4 * 20 + 1

    assert h.engine.stats.records_in == 2001


async def test_multi_consumer_mode_logs_per_topic_fetch_statistics(
    harness: Harnesses, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[tuple[int, str]] = []
    h = _harness(harness, True, seen)
    h.publish(METER, meter("S1", 1.0))
    h.publish(STORAGE, storage("S1"))
    with caplog.at_level(logging.DEBUG, logger="da_app.runner"):
        await h.run_until_idle()
    lines = [r.getMessage() for r in caplog.records if "多消费者拉取统计" in r.getMessage()]
    assert any(f"{METER}:1" in line and f"{STORAGE}:1" in line for line in lines)


async def test_multi_consumer_mode_is_on_by_default_for_three_or_more_topics(
    harness: Harnesses,
) -> None:
    h = harness("load_prediction", lambda s, i: None)  # PARAM, REALTIME, CALENDAR
    assert h.runner.flow.intake is not None
    h2 = harness("pv_prediction", lambda s, i: None)  # two topics
    assert h2.runner.flow.intake is None
