"""Issue 12: ``service.gc_threshold`` sets the cyclic garbage collector's thresholds when a
service starts (with the interpreter's defaults a 10,000-station service spent about a third
of its time in full collections); None leaves them alone; bad values are refused."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import pytest

from da_app.services import DataAnalysisService
from da_app.settings import Settings
from da_core.errors import ConfigError


@pytest.fixture
def thresholds() -> Iterator[tuple[int, int, int]]:
    old = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield gc.get_threshold()
    gc.set_threshold(*old)


def _start_and_stop(service: dict[str, Any]) -> None:
    svc = DataAnalysisService(
        config={"service": {"adapter": "memory", "health_port": 0, "metrics_port": 0, **service}}
    )
    svc.start(lambda sid, inp: None)
    svc.stop()


def test_a_started_service_sets_the_default_thresholds(thresholds: Any) -> None:
    _start_and_stop({})
    assert gc.get_threshold() == (100_000, 20, 100)


def test_configured_thresholds_are_set(thresholds: Any) -> None:
    _start_and_stop({"gc_threshold": [5000, 15, 30]})
    assert gc.get_threshold() == (5000, 15, 30)


def test_none_leaves_the_thresholds_alone(thresholds: Any) -> None:
    _start_and_stop({"gc_threshold": None})
    assert gc.get_threshold() == (700, 10, 10)


@pytest.mark.parametrize("bad", [[0, 10, 10], [1000, 10], "fast", [1000, -1, 10], [True, 1, 1]])
def test_bad_thresholds_are_refused(bad: Any) -> None:
    with pytest.raises(ConfigError, match="gc_threshold"):
        Settings.from_raw({"service": {"gc_threshold": bad}}, environ={})
