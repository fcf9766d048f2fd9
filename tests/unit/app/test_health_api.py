"""Issue 13 item 5: health asked of the running instance (``service.health()``,
``d_a.health_check()``), and ``version`` in ``/health``."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

import d_a
from da_app import instances
from da_app.services import AsyncDataAnalysisService, DataAnalysisService

GUIDE_SERVICE_KEYS = {"main_thread", "consumer_alive", "producer_alive", "station_count"}


def _service(module: str = "load_prediction", **kw: Any) -> DataAnalysisService:
    return DataAnalysisService(module_name=module, config={}, adapter="memory", **kw)


@pytest.fixture
def running() -> Iterator[DataAnalysisService]:
    svc = _service()
    svc.start(lambda sid, inp: None)
    try:
        yield svc
    finally:
        svc.stop()


def test_service_health_has_the_guide_shape_and_a_version(running: DataAnalysisService) -> None:
    running.add_station("S1")
    h = running.health()
    assert h["status"] == "healthy"
    assert set(h["service"]) == GUIDE_SERVICE_KEYS
    assert h["service"]["main_thread"] is True
    assert h["stations"] == {"S1": {"running": False}}
    assert h["version"] == d_a.__version__ != ""
    assert isinstance(h["timestamp"], float)


def test_a_stopped_service_is_unhealthy_with_reasons_and_unlisted() -> None:
    svc = _service()
    assert svc.health()["status"] == "unhealthy"
    svc.start(lambda sid, inp: None)
    assert instances.running_services() == [svc]
    svc.stop()
    h = svc.health()
    assert h["status"] == "unhealthy"
    assert h["reasons"] == ["engine loop not running"]
    assert instances.running_services() == []


def test_d_a_health_check_asks_the_running_service(running: DataAnalysisService) -> None:
    assert d_a.current_service() is running
    h = d_a.health_check()
    assert h["status"] == "healthy"
    assert set(h) >= {"status", "timestamp", "version", "service", "stations"}


def test_d_a_health_check_without_a_running_service_says_why() -> None:
    h = d_a.health_check()
    assert h["status"] == "unhealthy"
    assert h["reasons"] == ["no service is running in this process"]
    assert set(h["service"]) == GUIDE_SERVICE_KEYS


async def test_d_a_health_check_with_several_services_reports_each() -> None:
    sync = _service("load_prediction")
    asvc = AsyncDataAnalysisService(module_name="pv_prediction", config={}, adapter="memory")

    async def cb(sid: str, inp: dict[str, Any]) -> None:
        return None

    sync.start(lambda sid, inp: None)
    await asvc.start(cb)
    try:
        h = d_a.health_check()
        assert set(h["services"]) == {"load_prediction", "pv_prediction"}
        assert h["status"] == "healthy"
        assert asvc.health()["status"] == "healthy"
    finally:
        await asvc.stop()
        sync.stop()
    assert d_a.running_services() == []


def test_the_health_endpoint_carries_the_version() -> None:
    svc = _service(health_port=0)
    svc.start(lambda sid, inp: None)
    try:
        assert svc.liveness().body["version"] == d_a.__version__
    finally:
        svc.stop()


def test_the_health_endpoint_over_http_carries_the_version() -> None:
    from da_app.http import HealthServer

    svc = _service()
    svc.start(lambda sid, inp: None)
    server = HealthServer(svc, "127.0.0.1", 0)
    server.start()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/health", timeout=10) as r:
            body = json.loads(r.read())
        assert body["version"] == d_a.__version__
        assert body["status"] == "healthy"
    finally:
        server.stop()
        svc.stop()
