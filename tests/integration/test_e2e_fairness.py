"""A burst on one topic does not starve the others: within a quota in multi_consumer_mode (the
fairness mechanism, SPEC section 8), in the client's fetch order without it."""

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


BURST = 30_000
"""Records of the backlogged topic, all produced before the quiet one's single record."""


def _quiet_applied_after(kafka_bootstrap: str, multi: bool, routing: str) -> int | None:
    """Run a service over a backlog of ``BURST`` records on one topic and one record on a
    quiet topic produced behind it; returns how many items had been applied to stations when
    the quiet station ran (with rekey routing, only the second stage counts), or None when it
    did not run within 60 seconds."""
    burst, quiet = unique("BURST"), unique("QUIET")
    group = unique("fair")
    cfg = service_config(kafka_bootstrap, group, TOPIC_DETAIL=_specs(burst, quiet))
    cfg["KAFKA_CONFIG"]["consumer"]["max_poll_records"] = 100
    cfg["modules"]["load_prediction"].update(topics=[burst, quiet], required_topics=[])
    for t in (burst, quiet):
        ensure_topic(kafka_bootstrap, t)
    produce(
        kafka_bootstrap,
        (
            (burst, f"B{i % 200}", {"stationId": f"B{i % 200}", "meterPower": i})
            for i in range(BURST)
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
            quiet_seen_at.append(svc.engine.stats.items_in)
            ran.set()

    # The quiet record lands behind the whole burst, before the service starts: how early it
    # gets in depends on the intake only, not on how fast the service started.
    produce(kafka_bootstrap, [(quiet, "Q1", {"stationId": "Q1", "batteryGroupSoc": 50})])
    svc.start(model)
    try:
        return quiet_seen_at[0] if ran.wait(60) else None
    finally:
        svc.stop()


@pytest.mark.timeout(180)
@pytest.mark.parametrize("routing", ["rekey", "direct"])
def test_burst_does_not_starve_a_quiet_topic_in_multi_consumer_mode(
    kafka_bootstrap: str, routing: str
) -> None:
    # the fair intake admits max_poll_records per topic per cycle and pauses the burst's
    # partitions past its high-water mark (which drops what the client prefetched for
    # them), so the quiet record gets in while 90% of the burst is still waiting
    seen_at = _quiet_applied_after(kafka_bootstrap, True, routing)
    assert seen_at is not None, "the quiet topic's station never ran"
    assert seen_at < BURST // 10, seen_at


@pytest.mark.timeout(180)
@pytest.mark.parametrize("routing", ["rekey", "direct"])
def test_without_multi_consumer_mode_a_quiet_topic_is_served_in_the_clients_fetch_order(
    kafka_bootstrap: str, routing: str
) -> None:
    # SPEC section 8: multi_consumer_mode is the fairness mechanism; without it one consumer
    # hands over records in its client's fetch order. librdkafka prefetches up to
    # queued.max.messages.kbytes (64 MiB, for the whole consumer queue) in fetches of up to
    # max.partition.fetch.bytes (1 MiB) per partition, so the quiet record can come behind
    # most of the backlog (18,500 of 30,000 seen on a loaded host): no quota is promised,
    # only that the quiet station is served, not starved.
    seen_at = _quiet_applied_after(kafka_bootstrap, False, routing)
    assert seen_at is not None, "the quiet topic's station never ran"


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
