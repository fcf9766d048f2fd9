"""Issue 10 items 11-13 on a real broker of the test's own (never the shared one): the broker
unreachable at start, then restarted in the middle of a stream on the same port and data
directory; every record is processed, nothing crashes, and a stop stays bounded."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from da_app.services import DataAnalysisService
from tests.integration.e2e_support import RT, produce, rt_row, service_config, unique
from tests.integration.kafka_fixtures import load_broker_module, unavailable
from tests.support.waiting import wait_for

pytestmark = pytest.mark.timeout(420)


@pytest.fixture
def closed_port() -> int:
    """A port of 127.0.0.1 nothing listens on (yet), for a private broker started later (the
    test stops that broker by PID in its ``finally``)."""
    module: Any = load_broker_module()
    return int(module.free_ports(1)[0])


def _start_private_broker(port: int) -> Any:
    module: Any = load_broker_module()
    try:
        return module.start_broker(detach=False, die_with_parent=True, port=port, timeout=180)
    except Exception as exc:  # no Java / jars here
        unavailable(f"private broker: {type(exc).__name__}: {exc}")


def test_sync_service_survives_an_unreachable_start_and_a_broker_restart(
    closed_port: int,
) -> None:
    bootstrap = f"127.0.0.1:{closed_port}"
    seen: set[str] = set()
    lock = threading.Lock()

    def callback(station_id: str, _inputs: dict[str, Any]) -> dict[str, Any]:
        with lock:
            seen.add(station_id)
        return {"ok": True}

    cfg = service_config(
        bootstrap,
        unique("outage"),
        service={"health_port": 0, "metrics_port": 0, "shutdown_timeout_seconds": 10.0},
    )
    svc = DataAnalysisService(module_name="load_prediction", config=cfg, adapter="confluent")
    broker: Any = None
    try:
        svc.start(callback)  # the broker is not there: the service must stay up and say so

        def unreachable_named() -> bool:
            reasons = svc.readiness().body.get("reasons", [])
            return any(bootstrap in r and "unreachable" in r for r in reasons)

        wait_for(unreachable_named, 60, what="/ready naming the unreachable broker")
        assert svc.runner is not None
        assert svc.runner.alive
        assert svc.liveness().ok

        broker = _start_private_broker(closed_port)
        first = [f"A{i}" for i in range(10)]
        produce(bootstrap, [(RT, sid, {"realTimeData": [rt_row(sid, 0, 1.0)]}) for sid in first])
        wait_for(lambda: set(first) <= seen, 120, what="stations before the restart")

        broker.halt()  # mid-stream outage: the loop must not block nor exit
        assert svc.runner.alive
        broker.resume()
        second = [f"B{i}" for i in range(10)]
        produce(bootstrap, [(RT, sid, {"realTimeData": [rt_row(sid, 1, 2.0)]}) for sid in second])
        wait_for(lambda: set(second) <= seen, 120, what="stations after the restart")
        assert svc.runner.stats.broker_disconnects >= 1
        assert svc.runner.stats.broker_connected is True

        broker.halt()  # a stop during an outage ends within the configured bound
        began = time.monotonic()
        svc.stop()
        assert time.monotonic() - began < 15.0
    finally:
        svc.stop()
        if broker is not None:
            broker.stop(timeout=10.0)
