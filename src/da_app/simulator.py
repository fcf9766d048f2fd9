"""Simulated stations publishing all 13 SCHEDULE-* topics at realistic relative rates.

Rates in simulated seconds: orders ~1 Hz per charging gun, meter/gun every 5 s, hosts and
storage every 10 s, errors every 10 min, PV every 15 min, REALTIME hourly (the first message
of a station carries 7 days of history), weather daily; parameters, calendar and prices once
at start. The simulated clock runs ``acceleration`` times faster than the wall clock, and the
whole service (batch timeouts, expiry) runs on it, so hours pass in seconds.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

SEND = "%Y-%m-%d %H:%M:%S"


class ScaledClock:
    """``time()`` = start + elapsed wall time × ``acceleration`` (never decreasing)."""

    def __init__(self, start: float, acceleration: float = 1.0) -> None:
        self._start = start
        self._t0 = time.monotonic()
        self.acceleration = acceleration

    def time(self) -> float:
        return self._start + (time.monotonic() - self._t0) * self.acceleration


def _fmt(t: float) -> str:
    return time.strftime(SEND, time.gmtime(t))


class StationSimulator:
    """Generates (topic, key, payload) messages for ``stations`` stations up to a sim time."""

    def __init__(
        self, stations: int, start: float, seed: int = 7, bad_ratio: float = 0.001
    ) -> None:
        self.ids = [f"S{i:05d}" for i in range(1, stations + 1)]
        self.rng = random.Random(seed)
        self.start = start
        self.bad_ratio = bad_ratio
        self._next: dict[tuple[str, str], float] = {}
        self._hour_sent: dict[str, int] = {}
        self._guns = {s: 2 + self.rng.randrange(3) for s in self.ids}
        self._base_load = {s: 40 + self.rng.random() * 120 for s in self.ids}
        self.sent = 0
        self.bad_sent = 0
        self.bad_by_topic: Counter[str] = Counter()
        """Corrupted records sent, by topic (their sum is ``bad_sent``)."""

    def initial(self) -> Iterator[tuple[str, str | None, Any]]:
        """Messages sent once at start: parameters, calendar, prices, weather, 7-day history."""
        for chunk in range(0, len(self.ids), 50):
            yield (
                "SCHEDULE-STATION-PARAM",
                None,
                [self._param(s) for s in self.ids[chunk : chunk + 50]],
            )
        day = int(self.start // 86400) * 86400
        yield (
            "SCHEDULE-ENVIRONMENT-CALENDAR",
            None,
            {
                "calendar": [
                    {
                        "date": time.strftime("%Y-%m-%d", time.gmtime(day + i * 86400)),
                        "isHoliday": 0,
                        "isWeekend": int(time.gmtime(day + i * 86400).tm_wday >= 5),
                    }
                    for i in range(7)
                ]
            },
        )
        yield "SCHEDULE-CAR-PRICE", None, {"fee": [self._price(s) for s in self.ids]}
        yield (
            "SCHEDULE-ENVIRONMENT-WEATHER",
            None,
            {"weather": [self._weather(s) for s in self.ids]},
        )
        hour = int(self.start // 3600)
        for s in self.ids:
            history = [self._realtime(s, h) for h in range(hour - 167, hour + 1)]
            yield "SCHEDULE-STATION-REALTIME-DATA", s, {"realTimeData": history}
            self._hour_sent[s] = hour

    def until(self, now: float) -> Iterator[tuple[str, str | None, Any]]:
        """Every periodic message due up to simulated time ``now``."""
        hour = int(now // 3600)
        for s in self.ids:
            if self._hour_sent.get(s, hour) < hour:
                self._hour_sent[s] = hour
                yield (
                    "SCHEDULE-STATION-REALTIME-DATA",
                    s,
                    {"realTimeData": [self._realtime(s, hour)]},
                )
            for topic, period, make in self._periodic:
                key = (s, topic)
                due = self._next.get(key)
                if due is None:
                    due = now + self.rng.random() * period
                    self._next[key] = due
                while due <= now:
                    for payload in make(self, s, due):
                        yield topic, s, payload
                    due += period
                self._next[key] = due

    def maybe_corrupt(self, value: bytes, topic: str = "") -> bytes:
        """``value``, or with probability ``bad_ratio`` its first half (counted per topic)."""
        if self.rng.random() < self.bad_ratio:
            self.bad_sent += 1
            self.bad_by_topic[topic] += 1
            return value[: len(value) // 2]  # truncated JSON: bad input for the dead-letter topic
        return value

    # ------------------------------------------------------------------ payloads

    def _param(self, s: str) -> dict[str, Any]:
        n = self._guns[s]
        return {
            "stationId": s,
            "stationLng": 114.0 + self.rng.random(),
            "stationLat": 22.5,
            "gunNum": n,
            "gridCapacity": 630.0,
            "normalCap": 186.8,
            "powerNum": 1,
            "power": {"powerIds": [f"PW-{s}-1"]},
            "hostCode": [f"H-{s}-01"],
        }

    def _realtime(self, s: str, hour: int) -> dict[str, Any]:
        base = self._base_load[s]
        hod = hour % 24
        shape = 0.4 + 0.6 * max(0.0, 1 - abs(hod - 14) / 10)
        guns = [f"{g + 1:02d}" for g in range(self._guns[s])]
        per = [round(base * shape / len(guns) * (0.5 + self.rng.random()), 2) for _ in guns]
        return {
            "stationId": s,
            "hostCode": f"H-{s}-01",
            "sendTime": _fmt(hour * 3600),
            "gunPower": {
                "gunNo": guns,
                "outputPowerPerGunAvg": per,
                "outputPowerPerGunMax": [round(p * 1.6, 2) for p in per],
            },
            "outputPowerPerStationAvg": round(sum(per), 2),
            "outputPowerPerStationMax": round(sum(per) * 1.6, 2),
        }

    def _price(self, s: str) -> dict[str, Any]:
        fee: dict[str, Any] = {
            "stationId": s,
            "hostCode": f"H-{s}-01",
            "dialNo": "2100",
            "sendTime": _fmt(self.start - 3600),
            "sharpElectricFee": 1.25,
            "sharpServerFee": 0.6,
            "peakElectricFee": 0.98,
            "peakServerFee": 0.6,
            "flatElectricFee": 0.65,
            "flatServerFee": 0.6,
            "ebbElectricFee": 0.32,
            "ebbServerFee": 0.6,
            "otherElectricFee": 0.0,
            "otherServerFee": 0.0,
            "lossRate": 1,
        }
        for i in range(1, 49):
            fee[f"feeNo{i}"] = "03" if i <= 16 else ("01" if 20 < i <= 24 or 38 < i <= 44 else "02")
        return fee

    def _weather(self, s: str) -> dict[str, Any]:
        return {
            "stationId": s,
            "weatherSituationYesterday": "晴",
            "seasonTomorrow": "冬",
            "weatherSituationTomorrow": self.rng.choice(["晴", "多云", "小雨"]),
        }

    def _orders(self, s: str, t: float) -> list[dict[str, Any]]:
        out = []
        for g in range(self._guns[s]):
            if (int(t // 600) + g) % 3 == 0:  # each gun charges one 10-minute slot in three
                out.append(
                    {
                        "stationId": s,
                        "transactionSerialNo": f"TX-{s}-{int(t // 600)}-{g}",
                        "hostCode": f"H-{s}-01",
                        "gunNo": f"{g + 1:02d}",
                        "terminalMaxOutElectric": 250.0,
                        "startChargeTime": _fmt(t - t % 600),
                        "endChargeTime": "2070-01-02 08:00:01",
                        "beginSOC": 20.0,
                        "soc": round(20 + (t % 600) / 10, 2),
                        "terminalRequireVoltage": 750.0,
                        "terminalRequireElectric": 230.0,
                        "outputPower": 150.0 + 20 * g,
                        "carProducerCode": "BYD",
                        "batteryNominalTotalCapacity": 111.1,
                    }
                )
        return out

    _periodic: ClassVar[
        list[tuple[str, float, Callable[[StationSimulator, str, float], list[Any]]]]
    ] = []


def _meter(sim: StationSimulator, s: str, t: float) -> list[Any]:
    return [
        {
            "stationId": s,
            "meterId": f"M-{s}-1",
            "meterPower": round(sim._base_load[s], 1),
            "rmeterLimitPower": 400.0,
        }
    ]


def _gun(sim: StationSimulator, s: str, t: float) -> list[Any]:
    guns = [f"{g + 1:02d}" for g in range(sim._guns[s])]
    return [
        {
            "stationId": s,
            "hostCode": f"H-{s}-01",
            "gunNo": guns,
            "status": ["1" if (int(t // 600) + i) % 3 == 0 else "0" for i in range(len(guns))],
            "sendTime": _fmt(t),
        }
    ]


def _dcdc(sim: StationSimulator, s: str, t: float) -> list[Any]:
    return [
        {
            "stationId": s,
            "hostCode": f"H-{s}-01",
            "dcWorkStatus": ["00", "01"],
            "dcdcPower": [round(sim.rng.random() * 30, 1), round(sim.rng.random() * 30, 1)],
        }
    ]


def _acdc(sim: StationSimulator, s: str, t: float) -> list[Any]:
    return [{"stationId": s, "hostCode": f"H-{s}-01", "acPower": round(sim.rng.random() * 90, 1)}]


def _storage(sim: StationSimulator, s: str, t: float) -> list[Any]:
    return [
        {
            "stationId": s,
            "storageCode": f"ST-{s}-A",
            "hostCode": f"H-{s}-01",
            "batteryGroupSoc": 40 + int(t // 60) % 50,
            "batteryGroupSoh": 97,
            "batteryGroupElectric": 11.2,
            "batteryGroupOutPower": 4.0,
            "maxTemperature": 31.5,
            "minTemperature": 24.0,
        }
    ]


def _error(sim: StationSimulator, s: str, t: float) -> list[Any]:
    return [
        {
            "stationId": s,
            "hostError": [],
            "acError": [],
            "dcError": ["D07"] if sim.rng.random() < 0.1 else [],
            "terminalError": [],
            "storageError": [],
        }
    ]


def _pv(sim: StationSimulator, s: str, t: float) -> list[Any]:
    return [
        {
            "stationId": s,
            "pvId": "PV01",
            "pvPreDcPower": [round(max(0.0, 6 - abs(h - 12)), 1) for h in range(24)],
        }
    ]


StationSimulator._periodic = [
    ("SCHEDULE-CAR-ORDER", 1.0, lambda sim, s, t: sim._orders(s, t)),
    ("SCHEDULE-DEVICE-METER", 5.0, _meter),
    ("SCHEDULE-DEVICE-GUN", 5.0, _gun),
    ("SCHEDULE-DEVICE-HOST-DCDC", 10.0, _dcdc),
    ("SCHEDULE-DEVICE-HOST-ACDC", 10.0, _acdc),
    ("SCHEDULE-DEVICE-STORAGE", 10.0, _storage),
    ("SCHEDULE-DEVICE-ERROR", 600.0, _error),
    ("SCHEDULE-DEVICE-PV", 900.0, _pv),
]


def encode(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False).encode("utf-8")
