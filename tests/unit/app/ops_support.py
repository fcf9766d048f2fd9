"""Running services on the in-memory bus with their health and metrics servers, for the
operations tests: real HTTP on 127.0.0.1, ephemeral ports, a manual clock."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from da_adapters.memory import ManualClock, MemoryBroker
from da_app.http import HealthServer
from da_app.metrics import MetricsServer
from da_app.runtime import Callback
from da_app.services import DataAnalysisService
from tests.support import waiting

from .helpers import PARAM, RT, param, realtime


def http_get(url: str, timeout: float = 10.0) -> tuple[int, Any]:
    """``(status, decoded JSON or text)``; HTTP errors are answers, not exceptions."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            status, raw, ctype = resp.status, resp.read(), resp.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        status, raw, ctype = exc.code, exc.read(), exc.headers.get("Content-Type", "")
    text = raw.decode("utf-8")
    return status, json.loads(text) if "json" in ctype else text


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    """``tests.support.waiting.wait_for`` with a default ``what`` (the operations tests'
    older signature)."""
    waiting.wait_for(predicate, timeout, what=what)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Ops:
    """A started sync service with a health server and a metrics server on ephemeral ports."""

    def __init__(self, callback: Callback, **kwargs: Any) -> None:
        self.clock = ManualClock()
        self.broker = MemoryBroker(self.clock)
        options: dict[str, Any] = {
            "module_name": "load_prediction",
            "config": {},
            "adapter": "memory",
            "broker": self.broker,
            "clock": self.clock,
            "group_id": "ops",
            "auto_offset_reset": "earliest",
            "poll_timeout": 0.01,
        }
        options.update(kwargs)
        self.service = DataAnalysisService(**options)
        self.health = HealthServer(self.service, "127.0.0.1", 0).start()
        self.metrics = MetricsServer(self.service, "127.0.0.1", 0).start()
        self.service.start(callback)

    def get(self, path: str) -> tuple[int, Any]:
        return http_get(self.health.url + path)

    def scrape(self) -> str:
        status, text = http_get(self.metrics.url)
        assert status == 200
        assert isinstance(text, str)
        return text

    def feed(self, stations: list[str], hours: range) -> None:
        self.broker.produce(PARAM, json.dumps(param(*stations)).encode())
        for hour in hours:
            for s in stations:
                value = json.dumps(realtime(s, hour, float(hour + 1))).encode()
                self.broker.produce(RT, value, key=s.encode())

    def loop_caught_up(self) -> bool:
        """The loop completed an iteration at the clock's current time."""
        r = self.service.runner
        return r is not None and r.stats.last_loop_at >= self.clock.time()

    def close(self) -> None:
        self.service.stop()
        self.health.stop()
        self.metrics.stop()


@contextmanager
def ops_service(callback: Callback, **kwargs: Any) -> Iterator[Ops]:
    ops = Ops(callback, **kwargs)
    try:
        yield ops
    finally:
        ops.close()
