"""/metrics over real HTTP: every promised metric is exported and moves with the work done."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from da_app import metrics
from da_app.runtime.stats import Histogram, RateSampler, histogram_from_counts

from .helpers import OUT_LP, PARAM, RT, echo_window
from .ops_support import Ops, ops_service, wait_for

GUIDE_METRICS = (
    "data_analysis_processed_total",
    "data_analysis_errors_total",
    "data_analysis_memory_usage",
    "data_analysis_station_count",
    "data_analysis_processing_seconds_bucket",
    "batch_success_total",
    "batch_timeout_total",
    "batch_station_count_bucket",
)
"""The names the guide's monitoring chapter promises."""

OPERATIONS_METRICS = (
    "data_analysis_availability_ratio_bucket",
    "data_analysis_availability_ratio_average",
    "data_analysis_missing_topics",
    "data_analysis_consumer_lag",
    "data_analysis_commit_age_seconds",
    "data_analysis_dead_letters_total",
    "data_analysis_upload_retries_total",
)
"""SPEC §10 and the issue's additions."""

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(ops: Ops) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(ops.scrape()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def names(samples: Samples) -> set[str]:
    return {name for name, _ in samples}


def test_every_promised_metric_is_exported_once_records_are_processed() -> None:
    with ops_service(echo_window) as ops:
        ops.feed(["S1", "S2"], range(3))
        wait_for(lambda: ops.service.engine.stats.uploads_ok >= 1, what="an upload")
        exported = names(scrape(ops))
        missing = [m for m in (*GUIDE_METRICS, *OPERATIONS_METRICS) if m not in exported]
        assert missing == []


def test_counters_gauges_and_histograms_move_as_records_are_processed() -> None:
    with ops_service(echo_window) as ops:
        before = scrape(ops)
        assert value(before, "data_analysis_processed_total") == 0
        assert value(before, "data_analysis_station_count") == 0
        ops.feed(["S1", "S2", "S3"], range(4))
        wait_for(lambda: ops.service.engine.stats.uploads_ok >= 1, what="an upload")
        wait_for(lambda: ops.service.runner is not None and ops.service.runner.quiescent())
        after = scrape(ops)
        assert value(after, "data_analysis_processed_total") == 13  # 1 PARAM + 12 RT
        assert value(after, "data_analysis_station_count") == 3
        assert value(after, "data_analysis_processing_seconds_count") >= 3
        assert value(after, "data_analysis_processing_seconds_bucket", le="+Inf") == value(
            after, "data_analysis_processing_seconds_count"
        )
        assert value(after, "batch_success_total") >= 1
        assert value(after, "batch_station_count_count") >= 1
        assert value(after, "batch_station_count_sum") >= 3
        assert value(after, "data_analysis_runs_total", outcome="ok") >= 3
        assert value(after, "data_analysis_uploads_total") >= 1
        # PARAM and REALTIME present, the calendar (a global topic) missing: 2 of 3 topics
        assert value(after, "data_analysis_availability_ratio_average") == pytest.approx(2 / 3)
        cal = "SCHEDULE-ENVIRONMENT-CALENDAR"
        assert value(after, "data_analysis_missing_topics", topic=cal) == 3
        assert value(after, "data_analysis_missing_topics", topic=RT) == 0
        assert value(after, "data_analysis_missing_topic_runs_total", topic=cal) >= 3
        assert value(after, "data_analysis_availability_ratio_bucket", le="0.7") >= 3
        assert value(after, "data_analysis_availability_ratio_bucket", le="0.6") == 0
        assert value(after, "data_analysis_memory_usage") > 1
        assert value(after, "data_analysis_healthy") == 1
        assert value(after, "data_analysis_ready") == 1
        info = [k for k in after if k[0] == "data_analysis_info"]
        assert dict(info[0][1])["module"] == "load_prediction"


def test_consumer_lag_per_partition_and_commit_age_are_exported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    default_timeout = metrics.SNAPSHOT_TIMEOUT
    monkeypatch.setattr(metrics, "SNAPSHOT_TIMEOUT", 0.2)
    with ops_service(echo_window) as ops:
        runner = ops.service.runner
        assert runner is not None
        wait_for(lambda: runner.stats.loops > 0, what="the first loop")
        with runner._lock:  # nothing is consumed meanwhile: the lag is what was produced
            ops.feed(["S1"], range(5))
            ops.clock.advance(7)
            samples = scrape_while_locked(ops)
        lag = {
            dict(labels)["partition"]: v
            for (name, labels), v in samples.items()
            if name == "data_analysis_consumer_lag" and dict(labels)["topic"] == RT
        }
        # the snapshot waits for the loop's lock, so this scrape had no lag or station data
        assert lag == {}
        assert value(samples, "data_analysis_processed_total") == 0
        wait_for(lambda: ops.service.engine.stats.records_in == 6, what="the records")
        # the loop is free again: the production bound (0.2 s failed on a loaded machine)
        monkeypatch.setattr(metrics, "SNAPSHOT_TIMEOUT", default_timeout)
        samples = scrape(ops)
        lag = {
            dict(labels)["partition"]: v
            for (name, labels), v in samples.items()
            if name == "data_analysis_consumer_lag" and dict(labels)["topic"] == RT
        }
        assert set(lag) == {"0", "1", "2"}
        assert value(samples, "data_analysis_commit_age_seconds") >= 0


def scrape_while_locked(ops: Ops) -> Samples:
    """Scrape from another thread while this one holds the loop's lock (the snapshot part of
    the scrape times out after ``SNAPSHOT_TIMEOUT``; the counters are still exported)."""
    box: list[Samples] = []
    t = threading.Thread(target=lambda: box.append(scrape(ops)))
    t.start()
    t.join(30)
    assert box, "scrape did not finish"
    return box[0]


def test_errors_dead_letters_and_upload_retries_are_counted_by_type() -> None:
    def model(sid: str, inp: dict[str, Any]) -> dict[str, Any]:
        if sid == "BAD":
            raise ValueError("model exploded")
        return echo_window(sid, inp)

    with ops_service(model, drain_timeout=0.5) as ops:  # stop() gives up on the upload
        ops.broker.reject_topic(OUT_LP)
        ops.broker.produce(PARAM, b"{not json")
        ops.feed(["BAD", "S1"], range(2))
        wait_for(lambda: ops.service.engine.stats.upload_failures >= 1, what="a failed upload")
        wait_for(lambda: ops.service.engine.stats.dead_letters >= 1, what="a dead letter")
        samples = scrape(ops)
        errors = {
            dict(labels)["error_type"]: v
            for (name, labels), v in samples.items()
            if name == "data_analysis_errors_total"
        }
        assert errors["callback:ValueError"] >= 1
        assert any(k.startswith("bad_input:") and v == 1 for k, v in errors.items())
        assert errors["upload"] >= 1
        assert value(samples, "data_analysis_dead_letters_total") == 1
        assert value(samples, "data_analysis_upload_retries_total") >= 1
        assert value(samples, "data_analysis_pending_uploads") >= 1
        retries = value(samples, "data_analysis_upload_retries_total")
        ops.clock.advance(31)
        wait_for(lambda: ops.service.engine.stats.upload_retries > retries, what="a retry")
        samples = scrape(ops)
        assert value(samples, "data_analysis_upload_retries_total") > retries
        assert value(samples, "data_analysis_upload_failing_seconds") >= 31
        assert value(samples, "data_analysis_ready") == 0


def test_a_batch_that_times_out_is_counted_as_a_timeout() -> None:
    gate = threading.Event()

    def slow(sid: str, inp: dict[str, Any]) -> dict[str, Any]:
        if sid == "SLOW":
            gate.wait(10)
        return {"ok": True}

    with ops_service(slow) as ops:
        try:
            ops.feed(["SLOW", "FAST"], range(1))
            wait_for(lambda: ops.service.engine.stats.runs_ok >= 1, what="the fast station")
            ops.clock.advance(6)  # past the 5 s batch timeout
            wait_for(lambda: ops.service.engine.stats.batches_timed_out >= 1, what="a timeout")
            samples = scrape(ops)
            assert value(samples, "batch_timeout_total") == 1
            assert value(samples, "batch_success_total") == 0
            assert value(samples, "batch_station_count_bucket", le="1.0") == 1
        finally:
            gate.set()


def test_two_services_in_one_process_keep_separate_metrics() -> None:
    with ops_service(echo_window, group_id="a") as a, ops_service(echo_window, group_id="b") as b:
        a.feed(["S1"], range(2))
        wait_for(lambda: a.service.engine.stats.records_in == 3, what="a's records")
        assert value(scrape(a), "data_analysis_processed_total") == 3
        assert value(scrape(b), "data_analysis_processed_total") == 0


# ---------------------------------------------------------------- the accumulators


def test_histogram_buckets_are_cumulative_and_count_values_above_the_last_bound() -> None:
    h = Histogram((1.0, 0.1, 0.5))
    for v in (0.05, 0.1, 0.3, 0.7, 5.0):
        h.observe(v)
    cumulative, count, total = h.cumulative()
    assert cumulative == [(0.1, 2), (0.5, 3), (1.0, 4)]
    assert count == 5
    assert total == pytest.approx(6.15)


def test_exact_counts_become_cumulative_buckets() -> None:
    cumulative, count, total = histogram_from_counts({1: 2, 7: 1, 900: 1}, (1, 5, 10, 100))
    assert cumulative == [(1, 2), (5, 2), (10, 3), (100, 3)]
    assert (count, total) == (4, 909.0)


def test_rates_need_two_samples_and_use_the_sampled_window() -> None:
    r = RateSampler(every=1.0, window=60.0)
    r.tick(100.0, 0, 0)
    assert r.rates()["records_per_second"] is None
    r.tick(100.5, 50, 5)  # too soon: not sampled
    r.tick(102.0, 200, 20)
    assert r.rates() == {
        "records_per_second": 100.0,
        "runs_per_second": 10.0,
        "window_seconds": 2.0,
    }


def test_rekey_routing_counters_are_exported() -> None:
    with ops_service(echo_window, station_routing="rekey") as ops:
        ops.feed(["S1", "S2"], range(2))
        wait_for(
            lambda: value(scrape(ops), "data_analysis_shares_forwarded_total") >= 6,
            what="shares forwarded",
        )
        wait_for(
            lambda: value(scrape(ops), "data_analysis_pending_forwards") == 0,
            what="every share acknowledged",
        )
        samples = scrape(ops)
        # one PARAM array of two stations (two shares) and four single-station rows
        assert value(samples, "data_analysis_records_forwarded_total") == 5
        assert value(samples, "data_analysis_shares_forwarded_total") == 6
        assert value(samples, "data_analysis_errors_total", error_type="forward") == 0


def test_back_pressure_pauses_are_exported_and_in_the_service_status() -> None:
    with ops_service(echo_window) as ops:
        ops.feed(["S1"], range(1))
        wait_for(lambda: ops.service.engine.stats.uploads_ok >= 1, what="an upload")
        assert value(scrape(ops), "data_analysis_backpressure_pauses_total") == 0
        runner = ops.service.runner
        assert runner is not None
        runner.stats.backpressure_pauses = 3  # as the loop counts them (test_loop_core)
        assert value(scrape(ops), "data_analysis_backpressure_pauses_total") == 3
        assert ops.service.get_service_status()["backpressure_pauses"] == 3
