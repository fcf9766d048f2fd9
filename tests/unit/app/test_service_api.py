"""The services' station API: get_inputs, add_station, remove_station, statuses, over both
runner shells (the ``harness`` fixture, ``tests/unit/app/conftest.py``)."""

from __future__ import annotations

from typing import Any

from da_core.types import TopicPartition

from .conftest import Harnesses
from .helpers import PARAM, RT, echo_window, param, realtime


async def test_get_inputs_shows_what_the_callback_would_get_now(harness: Harnesses) -> None:
    h = harness("load_prediction", echo_window)
    assert h.service.get_inputs("S1") is None
    h.publish(PARAM, param("S1"))
    await h.run_until_idle()
    inputs = h.service.get_inputs("S1")
    assert inputs is not None
    assert inputs["gridCapacity"] == 630.0
    assert inputs["_data_quality"]["missing_topics"] == [RT, "SCHEDULE-ENVIRONMENT-CALENDAR"]


async def test_add_station_makes_it_known_before_any_data(harness: Harnesses) -> None:
    h = harness("load_prediction", echo_window)
    assert h.service.add_station("NEW") is True
    assert h.service.add_station("NEW") is False
    status = h.service.get_station_status()["NEW"]
    assert status["running"] is False
    assert status["ready"] is False
    assert h.service.get_service_status()["station_count"] == 1


async def test_remove_station_forgets_it_and_releases_its_held_records(harness: Harnesses) -> None:
    def failing(sid: str, inp: dict[str, Any]) -> None:
        raise RuntimeError("model broken")

    # a failed run holds its records again for the retry (a not-ready station holds none)
    h = harness(
        "load_prediction",
        failing,
        config={
            "modules": {
                "load_prediction": {"required_topics": [PARAM], "callback_retry_delay": 3600}
            }
        },
    )
    h.publish(PARAM, param("S1"), partition=0)
    await h.run_until_idle()
    h.advance(10)
    await h.run_until_idle()
    assert h.committed()[TopicPartition(PARAM, 0)] is None
    assert h.service.get_station_status()["S1"]["held_records"] == 1
    assert h.service.remove_station("S1") is True
    assert h.service.remove_station("S1") is False
    assert "S1" not in h.service.get_station_status()
    h.advance(10)
    await h.run_until_idle()
    assert h.committed()[TopicPartition(PARAM, 0)] == 1


async def test_a_station_that_is_not_ready_holds_no_record(harness: Harnesses) -> None:
    h = harness("load_prediction", echo_window)
    h.publish(PARAM, param("S1"), partition=0)  # S1 lacks REALTIME: not ready
    await h.run_until_idle()
    h.advance(10)
    await h.run_until_idle()
    assert h.committed()[TopicPartition(PARAM, 0)] == 1
    assert h.service.get_station_status()["S1"]["held_records"] == 0
    assert h.service.get_inputs("S1") is not None  # the window keeps the parameters


async def test_service_status_has_the_guide_keys(harness: Harnesses) -> None:
    h = harness("load_prediction", echo_window)
    h.publish(PARAM, param("S1"))
    h.publish(RT, realtime("S1", 0, 1.0))
    await h.run_until_idle()
    status = h.service.get_service_status()
    for key in ("main_thread_alive", "consumer_alive", "producer_alive", "station_count"):
        assert key in status
    assert status["station_count"] == 1
    assert status["consumer_alive"] is True
    assert status["runs_started"] == 1
