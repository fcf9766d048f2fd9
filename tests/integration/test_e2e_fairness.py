"""A burst on one topic does not starve the others, with and without multi_consumer_mode."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from da_app.services import DataAnalysisService
from tests.integration.e2e_support import ensure_topic, produce, service_config, unique
from tests.support.waiting import wait_for


def _specs(burst: str, quiet: str) -> dict[str, Any]:
    return {
        burst: {"fields": ["meterPower"], "window_size": 1},
        quiet: {"fields": ["batteryGroupSoc"], "window_size": 1},
    }


@pytest.mark.timeout(180)
@pytest.mark.parametrize("routing", ["rekey", "direct"])
@pytest.mark.parametrize("multi", [True, False])
def test_burst_does_not_starve_a_quiet_topic(
    kafka_bootstrap: str, multi: bool, routing: str
) -> None:
    burst, quiet = unique("BURST"), unique("QUIET")
    group = unique("fair")
    cfg = service_config(kafka_bootstrap, group, TOPIC_DETAIL=_specs(burst, quiet))
    cfg["KAFKA_CONFIG"]["consumer"]["max_poll_records"] = 100
    cfg["modules"]["load_prediction"].update(topics=[burst, quiet], required_topics=[])
    for t in (burst, quiet):
        ensure_topic(kafka_bootstrap, t)
    total = 30_000
    produce(
        kafka_bootstrap,
        (
            (burst, f"B{i % 200}", {"stationId": f"B{i % 200}", "meterPower": i})
            for i in range(total)
        ),
    )
    quiet_seen_at: list[int] = []
    ran = threading.Event()
    svc = DataAnalysisService(
        module_name="load_prediction",
        config=cfg,
        adapter="confluent",
        poll_timeout=0.05,
        multi_consumer_mode=multi,
        station_routing=routing,
    )

    def model(sid: str, inp: dict[str, Any]) -> None:
        if sid == "Q1":
            # items applied to stations: with rekey routing, only the second stage counts
            quiet_seen_at.append(svc.engine.stats.items_in)
            ran.set()

    # The quiet record lands behind the whole burst, before the service starts: how early it
    # gets in depends on the intake only, not on how fast the service started.
    produce(kafka_bootstrap, [(quiet, "Q1", {"stationId": "Q1", "batteryGroupSoc": 50})])
    svc.start(model)
    try:
        assert ran.wait(60), "the quiet topic's station never ran"
        # the quiet record got in while 90% of the burst was still waiting
        assert quiet_seen_at[0] < total // 10, quiet_seen_at
    finally:
        svc.stop()


@pytest.mark.timeout(120)
def test_get_lag_info_reports_real_offsets(kafka_bootstrap: str) -> None:
    topic = unique("LAG")
    group = unique("lag")
    cfg = service_config(kafka_bootstrap, group, TOPIC_DETAIL={topic: {"fields": ["meterPower"]}})
    cfg["modules"]["load_prediction"].update(topics=[topic], required_topics=[])
    ensure_topic(kafka_bootstrap, topic)
    produce(
        kafka_bootstrap,
        [(topic, f"S{i}", {"stationId": f"S{i}", "meterPower": i}) for i in range(30)],
    )
    svc = DataAnalysisService(
        module_name="load_prediction", config=cfg, adapter="confluent", poll_timeout=0.05
    )
    svc.start(lambda s, i: {"ok": True})
    try:

        def settled() -> bool:
            parts = svc.consumer.get_lag_info().get(topic, [])
            return len(parts) == 3 and all(
                p["committed"] is not None and p["committed"] == p["high_watermark"] for p in parts
            )

        wait_for(settled, 20.0, what="every partition committed up to its end", interval=0.1)
        parts = svc.consumer.get_lag_info()[topic]
        assert sum(p["high_watermark"] for p in parts) == 30
        assert all(p["committed"] == p["high_watermark"] == p["current_offset"] for p in parts), (
            parts
        )
        assert all(p["lag"] == 0 for p in parts)
    finally:
        svc.stop()
