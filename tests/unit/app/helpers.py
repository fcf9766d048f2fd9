"""Payload builders shared by the service tests."""

from __future__ import annotations

from typing import Any

PARAM = "SCHEDULE-STATION-PARAM"
RT = "SCHEDULE-STATION-REALTIME-DATA"
CAL = "SCHEDULE-ENVIRONMENT-CALENDAR"
OUT_LP = "MODULE-OUTPUT-LOAD_PREDICTION"


def param(*sids: str) -> list[dict[str, Any]]:
    return [
        {
            "stationId": s,
            "gridCapacity": 630.0,
            "stationLng": 1.0,
            "stationLat": 2.0,
            "gunNum": 2,
            "normalCap": 100.0,
            "powerNum": 1,
        }
        for s in sids
    ]


def rt_row(sid: str, hour: int, avg: float) -> dict[str, Any]:
    day, h = divmod(hour, 24)
    return {
        "stationId": sid,
        "sendTime": f"2026-11-{10 + day:02d} {h:02d}:00:00",
        "gunPower": {"gunNo": ["01"], "outputPowerPerGunAvg": [avg], "outputPowerPerGunMax": [avg]},
        "outputPowerPerStationAvg": avg,
        "outputPowerPerStationMax": avg,
    }


def realtime(sid: str, hour: int, avg: float) -> dict[str, Any]:
    return {"realTimeData": [rt_row(sid, hour, avg)]}


def echo_window(sid: str, inp: dict[str, Any]) -> dict[str, Any]:
    """A model that returns what it saw, so tests can check every input is reflected."""
    return {"window": list(inp["outputPowerPerStationAvg_window"])}
