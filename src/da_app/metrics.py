"""Prometheus metrics of one service, served as ``/metrics`` by ``da_app.http`` (the guide's
port 8001, or the health port when they are equal).

Each service gets its own ``CollectorRegistry`` (several services, or tests, in one process do
not collide) holding the process collector and a ``ServiceCollector`` that reads the engine's
and runner's counters when Prometheus scrapes: nothing is counted twice and the hot path makes
no metric calls. What is exported (names are the guide's where it names them):

Counters
    ``data_analysis_processed_total`` (records read), ``data_analysis_errors_total{error_type}``
    (``callback:<Exception>``, the run faults ``bad_result``, ``timeout`` and ``callback_exit``,
    ``bad_input:<reason>``, ``upload``, ``commit``, ``dead_letter``, ``dead_letter_lost``,
    ``forward``,
    ``result_handler``, ``poll``), ``batch_success_total``, ``batch_timeout_total``,
    ``data_analysis_runs_total{outcome}`` (``ok``, ``none``, ``error``),
    ``data_analysis_uploads_total``, ``data_analysis_upload_retries_total``,
    ``data_analysis_dead_letters_total``, ``data_analysis_dead_letter_failures_total`` (failed
    attempts), ``data_analysis_commits_total``,
    ``data_analysis_missing_topic_runs_total{topic}`` (runs whose input lacked the topic),
    ``data_analysis_records_forwarded_total`` / ``data_analysis_shares_forwarded_total``
    (rekey routing: source records split by station, and the shares produced),
    ``data_analysis_stations_refused_total{reason}`` (``station_limit``,
    ``station_not_allowed``), ``data_analysis_future_items_total``,
    ``data_analysis_skipped_items_total``, ``data_analysis_bad_fields_total``.
Gauges
    ``data_analysis_memory_usage`` (resident MB), ``data_analysis_station_count``,
    ``data_analysis_availability_ratio_average`` (mean share of input topics with data per
    station), ``data_analysis_missing_topics{topic}`` (stations lacking the topic),
    ``data_analysis_consumer_lag{topic,partition}``, ``data_analysis_commit_age_seconds``
    (since the last successful commit, or since start), ``data_analysis_pending_uploads``,
    ``data_analysis_pending_forwards`` (rekey shares awaiting their acknowledgement),
    ``data_analysis_dead_letters_failing`` (pending dead letters whose last attempt failed),
    ``data_analysis_stuck_workers`` (workers busy with a run that timed out),
    ``data_analysis_upload_failing_seconds`` (0 while uploads succeed),
    ``data_analysis_healthy`` / ``data_analysis_ready`` (the probes, 1 or 0) and
    ``data_analysis_info{module,group_id,adapter,version}``.
Histograms
    ``data_analysis_processing_seconds`` (callback duration), ``batch_station_count``
    (stations per uploaded batch), ``data_analysis_availability_ratio`` (per run).

Lag, station count and availability come from a snapshot taken on the engine's loop; when the
loop does not answer within ``SNAPSHOT_TIMEOUT`` those are left out of that scrape (the
counters still are), and ``data_analysis_healthy`` says why.
"""

from __future__ import annotations

import logging
import math
import os
import resource
import sys
from collections.abc import Iterator
from typing import Protocol

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from da_app.health import Probe, Snapshot
from da_app.http import Listener, OpsApp, OpsSource
from da_app.runtime.stats import STATION_COUNT_BUCKETS, RunnerStats, histogram_from_counts
from da_core.engine import Engine, EngineStats
from da_core.limits import STATION_LIMIT, STATION_NOT_ALLOWED

log = logging.getLogger("da_app.metrics")

SNAPSHOT_TIMEOUT = 2.0
"""Seconds a scrape waits for the engine loop's snapshot."""


class MetricsSource(Protocol):
    """What the collector reads from a service (both services implement it)."""

    module_name: str
    group_id: str
    adapter: str
    engine: Engine

    def runner_stats(self) -> RunnerStats | None: ...

    def stuck_workers(self) -> int: ...

    def liveness(self) -> Probe: ...

    def readiness(self) -> Probe: ...

    def snapshot(self, *, stations: bool = True, timeout: float = 5.0) -> Snapshot: ...


def memory_usage_mb() -> float:
    """Resident memory of this process in MB (``/proc/self/statm``; peak RSS elsewhere)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / (1024 * 1024)
    except (OSError, ValueError, IndexError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("data-analysis")
    except Exception:
        return "unknown"


def _le(bound: float) -> str:
    """A bucket bound as Prometheus writes it (``1.0``, ``0.005``, ``+Inf``)."""
    return repr(float(bound))


def _histogram(
    name: str, doc: str, cumulative: list[tuple[float, int]], count: int, total: float
) -> HistogramMetricFamily:
    buckets: list[tuple[str, float]] = [(_le(b), n) for b, n in cumulative]
    buckets.append(("+Inf", count))
    return HistogramMetricFamily(name, doc, buckets=buckets, sum_value=total)


class ServiceCollector(Collector):
    """Reads one service's counters at scrape time (see the module docstring)."""

    def __init__(self, service: MetricsSource) -> None:
        self.service = service
        self._version = _version()

    def collect(self) -> Iterator[Metric]:
        svc = self.service
        stats = svc.engine.stats
        rstats = svc.runner_stats()

        yield _gauge(
            "data_analysis_info",
            "The module this process runs (value 1)",
            1,
            {
                "module": svc.module_name,
                "group_id": svc.group_id,
                "adapter": svc.adapter,
                "version": self._version,
            },
        )
        yield _counter("data_analysis_processed_total", "Records read", stats.records_in)
        errors = CounterMetricFamily(
            "data_analysis_errors_total", "Errors by type", labels=["error_type"]
        )
        for etype, n in sorted(dict(stats.runs_failed).items()):
            errors.add_metric([f"callback:{etype}"], n)
        for reason, n in sorted(dict(stats.run_faults).items()):
            errors.add_metric([reason], n)
        for reason, n in sorted(dict(stats.bad_input).items()):
            errors.add_metric([f"bad_input:{reason}"], n)
        errors.add_metric(["upload"], stats.upload_failures)
        errors.add_metric(["commit"], stats.commit_failures)
        errors.add_metric(["dead_letter"], stats.dead_letter_failures)
        errors.add_metric(["dead_letter_lost"], stats.dead_letters_lost)
        errors.add_metric(["forward"], stats.forward_failures)
        errors.add_metric(["result_handler"], rstats.result_handler_errors if rstats else 0)
        errors.add_metric(["poll"], rstats.poll_errors if rstats else 0)
        yield errors
        yield from _intake_metrics(stats)
        yield _counter(
            "data_analysis_backpressure_pauses_total",
            "Times consumption paused because too many uploads or shares were pending",
            rstats.backpressure_pauses if rstats else 0,
        )
        yield _counter(
            "data_analysis_broker_disconnects_total",
            "Times the broker became unreachable (at start or later)",
            rstats.broker_disconnects if rstats else 0,
        )
        yield _gauge(
            "data_analysis_broker_connected",
            "1 while the consumer is connected to the broker, 0 while it is not",
            1 if rstats is not None and rstats.broker_connected is not False else 0,
        )
        yield _counter(
            "batch_success_total",
            "Batches completed before their timeout",
            stats.batches_completed - stats.batches_timed_out,
        )
        yield _counter(
            "batch_timeout_total", "Batches completed by timeout", stats.batches_timed_out
        )
        runs = CounterMetricFamily(
            "data_analysis_runs_total", "Finished station runs by outcome", labels=["outcome"]
        )
        runs.add_metric(["ok"], stats.runs_ok)
        runs.add_metric(["none"], stats.runs_none)
        runs.add_metric(
            ["error"], sum(dict(stats.runs_failed).values()) + sum(dict(stats.run_faults).values())
        )
        yield runs
        yield _counter("data_analysis_uploads_total", "Uploads acknowledged", stats.uploads_ok)
        yield _counter(
            "data_analysis_upload_retries_total", "Upload attempts retried", stats.upload_retries
        )
        yield _counter(
            "data_analysis_dead_letters_total", "Bad records dead-lettered", stats.dead_letters
        )
        yield _counter(
            "data_analysis_dead_letter_failures_total",
            "Failed attempts to produce a dead letter",
            stats.dead_letter_failures,
        )
        yield _gauge(
            "data_analysis_stuck_workers",
            "Workers busy with a run that timed out",
            svc.stuck_workers(),
        )
        yield _gauge(
            "data_analysis_dead_letters_failing",
            "Dead letters pending whose last attempt failed",
            svc.engine.dead_letters_failing,
        )
        yield _counter("data_analysis_commits_total", "Offset commits done", stats.commits_ok)
        yield _counter(
            "data_analysis_records_forwarded_total",
            "Source records split by station for the internal topics (rekey routing)",
            stats.records_forwarded,
        )
        yield _counter(
            "data_analysis_shares_forwarded_total",
            "Per-station shares produced to the internal topics (rekey routing)",
            stats.shares_forwarded,
        )
        yield _gauge(
            "data_analysis_pending_forwards",
            "Per-station shares awaiting their acknowledgement",
            svc.engine.pending_forwards,
        )
        yield _gauge(
            "data_analysis_pending_uploads",
            "Uploads waiting or in flight",
            svc.engine.pending_uploads,
        )
        cum, count, total = histogram_from_counts(stats.batch_sizes, STATION_COUNT_BUCKETS)
        yield _histogram(
            "batch_station_count", "Station results per uploaded batch", cum, count, total
        )
        yield _gauge("data_analysis_memory_usage", "Resident memory in MB", memory_usage_mb())
        if rstats is not None:
            yield _histogram(
                "data_analysis_processing_seconds",
                "Station callback duration in seconds",
                *rstats.processing.cumulative(),
            )
            yield _histogram(
                "data_analysis_availability_ratio",
                "Share of the module's input topics with data, per run",
                *rstats.availability.cumulative(),
            )
            missing_runs = CounterMetricFamily(
                "data_analysis_missing_topic_runs_total",
                "Runs whose input lacked the topic",
                labels=["topic"],
            )
            for topic, n in sorted(dict(rstats.missing_topic_runs).items()):
                missing_runs.add_metric([topic], n)
            yield missing_runs
            yield from _restore_metrics(rstats)
        live, ready = svc.liveness(), svc.readiness()
        yield _gauge("data_analysis_healthy", "1 while /health answers 200", int(live.ok))
        yield _gauge("data_analysis_ready", "1 while /ready answers 200", int(ready.ok))
        try:
            snap = svc.snapshot(stations=False, timeout=SNAPSHOT_TIMEOUT)
        except TimeoutError:
            log.warning("metrics: the engine loop did not answer; lag and stations left out")
            return
        yield from self._from_snapshot(snap)

    def _from_snapshot(self, snap: Snapshot) -> Iterator[Metric]:
        status = snap.service
        yield _gauge(
            "data_analysis_station_count", "Stations with state", status.get("station_count", 0)
        )
        avg, missing = snap.availability
        yield _gauge(
            "data_analysis_availability_ratio_average",
            "Mean share of the module's input topics with data per station",
            avg,
        )
        gauge = GaugeMetricFamily(
            "data_analysis_missing_topics",
            "Stations lacking data of the topic",
            labels=["topic"],
        )
        for topic, n in sorted(missing.items()):
            gauge.add_metric([topic], n)
        yield gauge
        lag = GaugeMetricFamily(
            "data_analysis_consumer_lag",
            "Records behind the high watermark per assigned partition",
            labels=["topic", "partition"],
        )
        for p in snap.lag:
            if p.lag is not None:
                lag.add_metric([p.topic, str(p.partition)], p.lag)
        yield lag
        age = status.get("commit_age_seconds")
        if age is None and status.get("uptime_seconds") is not None:
            age = status["uptime_seconds"]
        if age is not None:
            yield _gauge(
                "data_analysis_commit_age_seconds",
                "Seconds since the last successful offset commit (since start before the first)",
                age,
            )
        since = status.get("upload_failing_since")
        yield _gauge(
            "data_analysis_upload_failing_seconds",
            "Seconds uploads have been failing (0 while they succeed)",
            0.0 if since is None else max(0.0, snap.now - since),
        )


def _intake_metrics(stats: EngineStats) -> Iterator[Metric]:
    """What intake dropped short of a whole record (whole records: ``bad_input:<reason>``)."""
    refused = CounterMetricFamily(
        "data_analysis_stations_refused_total",
        "Elements of new stations refused (max_stations, station_allow_list)",
        labels=["reason"],
    )
    for reason in (STATION_LIMIT, STATION_NOT_ALLOWED):
        refused.add_metric([reason], stats.stations_refused.get(reason, 0))
    yield refused
    yield _counter(
        "data_analysis_future_items_total",
        "Elements skipped for an event time beyond max_clock_skew_seconds",
        stats.future_items,
    )
    yield _counter(
        "data_analysis_skipped_items_total", "Elements of records not used", stats.skipped_items
    )
    yield _counter(
        "data_analysis_bad_fields_total",
        "Fields dropped as missing (wrong type, NaN...)",
        stats.bad_fields,
    )


def _restore_metrics(rstats: RunnerStats) -> Iterator[Metric]:
    """The restore phase's figures (``da_app.runtime.restore``) and the time to first run."""
    yield _counter(
        "data_analysis_restore_records_total",
        "Records replayed into station windows before going live",
        rstats.restore_records,
    )
    yield _gauge(
        "data_analysis_restore_seconds",
        "Seconds the last finished restore took (NaN before one finished)",
        math.nan if rstats.restore_seconds is None else rstats.restore_seconds,
    )
    parts = GaugeMetricFamily(
        "data_analysis_restore_partitions",
        "Partitions of the current (or last) restore, by state",
        labels=["state"],
    )
    parts.add_metric(["restored"], rstats.restore_done)
    parts.add_metric(["restoring"], rstats.restore_total - rstats.restore_done)
    yield parts
    yield _gauge(
        "data_analysis_first_run_seconds",
        "Seconds from the service's start to its first station run (NaN before it)",
        math.nan if rstats.first_run_seconds is None else rstats.first_run_seconds,
    )


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=value)


def _gauge(name: str, doc: str, value: float, labels: dict[str, str] | None = None) -> Metric:
    if labels is None:
        return GaugeMetricFamily(name, doc, value=value)
    g = GaugeMetricFamily(name, doc, labels=list(labels))
    g.add_metric(list(labels.values()), value)
    return g


def build_registry(service: MetricsSource, *, process: bool = True) -> CollectorRegistry:
    """A registry with the service's collector (and the process collector: ``process_*``)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ServiceCollector(service))
    if process:
        ProcessCollector(registry=registry)
    return registry


class MetricsServer(Listener):
    """One listener for ``service`` on ``host:port`` whose ``url`` is its ``/metrics`` (the
    same application as the health endpoint's: every path of ``da_app.http`` answers)."""

    path = "/metrics"

    def __init__(
        self,
        service: OpsSource,
        host: str = "127.0.0.1",
        port: int = 8001,
        *,
        app: OpsApp | None = None,
    ) -> None:
        app = app or OpsApp(service)
        super().__init__(app, host, port, name="metrics")
        self.registry = app.registry


def start_metrics_server(
    service: OpsSource, host: str = "127.0.0.1", port: int = 8001
) -> MetricsServer:
    """Start serving ``service``'s metrics; returns the server (``.port``, ``.stop()``)."""
    server = MetricsServer(service, host, port)
    server.start()
    return server
