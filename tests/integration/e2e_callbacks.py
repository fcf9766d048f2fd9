"""Callbacks the end-to-end tests load by import path (``da-app run --callback``)."""

from __future__ import annotations

import time
from typing import Any


def echo_window(station_id: str, module_input: dict[str, Any]) -> dict[str, Any]:
    """Returns every value of the REALTIME window, so tests can check each input is reflected."""
    return {"window": [v for v in module_input["outputPowerPerStationAvg_window"] if v]}


def echo_params(station_id: str, module_input: dict[str, Any]) -> dict[str, Any]:
    """The REALTIME window's values and the station's grid capacity (its parameters): the
    restore tests check both survive a restart."""
    return {
        "window": [v for v in module_input["outputPowerPerStationAvg_window"] if v],
        "grid": module_input.get("gridCapacity"),
    }


def slow_echo(station_id: str, module_input: dict[str, Any]) -> dict[str, Any]:
    """``echo_window`` after half a second: runs are still in flight when a test stops the
    broker or the service."""
    time.sleep(0.5)
    return echo_window(station_id, module_input)
