"""What ``/health``, ``/ready`` and ``/status`` answer: liveness, readiness and the status
document of one service, computed from values the services hand over.

* Liveness (``/health``): the engine loop is running and has completed an iteration within
  ``health_stuck_seconds`` of the service's clock. It fails for a loop that died or hangs, so
  the Kubernetes liveness probe restarts the pod; it never waits for the loop.
* Readiness (``/ready``): alive, the consumer is subscribed and its last poll succeeded, the
  broker is reachable (a reason names it while it is not), the producer is open, uploads have
  not been failing for longer than ``ready_upload_failing_seconds``, no dead letter is failing,
  not every worker is stuck (``degraded``: ``/health`` lists the same under ``degraded`` and
  stays 200), and no restore of assigned partitions is running ("restoring n/m partitions":
  windows are rebuilt before stations run). A member that
  owns no partition (more instances than partitions) is still ready: gating on a non-empty
  assignment would stall rolling updates.
* Status (``/status``): the guide's ``get_service_status()`` and ``get_station_status()``,
  consumer lag per topic and partition, recent throughput and both probe results.

The computations are pure functions of a ``ProbeInput`` (read lock-free from the runner) and
a ``Snapshot`` (taken on the engine's loop), so they are tested without servers or threads.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from importlib import metadata
from typing import TYPE_CHECKING, Any

import attrs

from da_core.types import PartitionLag

if TYPE_CHECKING:
    from da_app.runtime import RunnerStats
    from da_core.engine import Engine


def _version() -> str:
    try:
        return metadata.version("data-analysis")
    except metadata.PackageNotFoundError:  # run from a source tree that is not installed
        return "unknown"


VERSION = _version()
"""The installed package's version, reported by ``/health`` (the guide's ``version``)."""


@attrs.frozen
class Probe:
    """A probe's outcome: ``ok`` maps to HTTP 200, otherwise 503; ``body`` is the JSON."""

    ok: bool
    body: dict[str, Any]

    @property
    def status_code(self) -> int:
        return 200 if self.ok else 503


@attrs.frozen
class ProbeInput:
    """The lock-free readings a probe needs (times are the service clock's seconds)."""

    module: str
    now: float
    started: bool
    loop_alive: bool
    last_loop_at: float | None
    started_at: float | None
    consumer_alive: bool
    producer_alive: bool
    subscribed: bool
    last_poll_error: str | None
    upload_failing_since: float | None
    pending_uploads: int
    stuck_seconds: float
    upload_failing_seconds: float
    stopped: bool = False
    restoring: str | None = None
    """``restoring n/m partitions`` while the restore phase runs (``da_app.runtime.restore``)."""
    dead_letters_failing: int = 0
    dead_letter_failing_since: float | None = None
    stuck_workers: int = 0
    """Workers busy with a run that timed out (``da_app.runtime.watch``)."""
    workers: int = 0
    """Workers that run station callbacks (threads, or async tasks)."""
    broker_connected: bool | None = None
    broker_error: str | None = None
    broker: str = "the broker"
    """How the readiness reason names the broker (its bootstrap servers)."""


@attrs.frozen
class Snapshot:
    """A consistent view of one service taken on its engine's loop (``Service.snapshot``).
    ``stations``: the page of stations asked for (``page``), ``station_total`` of them in
    all."""

    now: float
    service: dict[str, Any]
    stations: dict[str, dict[str, Any]] | None
    lag: list[PartitionLag]
    availability: tuple[float, dict[str, int]]
    throughput: dict[str, float | None]
    station_total: int = 0
    page: StationPage | None = None


DEFAULT_STATION_PAGE = 100
"""Stations ``/status`` lists unless asked for another page size."""
MAX_STATION_PAGE = 1000
"""The largest page ``/status?stations=N`` returns."""


@attrs.frozen
class StationPage:
    """Which stations ``/status`` lists: ``limit`` of them from ``offset``, in id order."""

    offset: int = 0
    limit: int = DEFAULT_STATION_PAGE

    @classmethod
    def parse(cls, stations: str | None, offset: str | None) -> StationPage | None:
        """From ``/status?stations=N&offset=M``: None for ``stations=0|false|no``; the
        default page for ``1|true|yes`` or no value; N (at most ``MAX_STATION_PAGE``)
        otherwise. Values that are not numbers fall back to the defaults."""
        flag = (stations or "").strip().lower()
        if flag in ("0", "false", "no"):
            return None
        limit = DEFAULT_STATION_PAGE
        if flag not in ("", "1", "true", "yes") and flag.isdigit():
            limit = min(int(flag), MAX_STATION_PAGE)
        start = int(offset) if offset and offset.strip().isdigit() else 0
        return cls(start, limit)


def _loop_age(p: ProbeInput) -> float | None:
    ref = max(p.last_loop_at or 0.0, p.started_at or 0.0)
    return None if ref <= 0.0 else max(0.0, p.now - ref)


def degraded(p: ProbeInput) -> list[str]:
    """Faults the service works around without help (it stays live): dead letters failing
    (``/ready`` fails while they are)."""
    out: list[str] = []
    if p.stuck_workers:
        out.append(
            f"{p.stuck_workers} of {p.workers} workers stuck in callbacks that timed out "
            "(service.callback_timeout_seconds)"
        )
    if p.dead_letters_failing:
        since = p.dead_letter_failing_since
        age = "" if since is None else f" for {max(0.0, p.now - since):.1f}s"
        out.append(
            f"dead letters failing{age}: {p.dead_letters_failing} pending, retried with "
            "backoff, given up after service.dead_letter_max_attempts"
        )
    return out


def liveness(p: ProbeInput) -> Probe:
    """``/health``: healthy while the loop runs and is not stuck."""
    reasons: list[str] = []
    age = _loop_age(p)
    if not p.started:
        reasons.append("service not started")
    elif p.stopped or not p.loop_alive:
        reasons.append("engine loop not running")
    elif age is not None and age > p.stuck_seconds:
        reasons.append(
            f"engine loop stuck: no iteration for {age:.1f}s (limit {p.stuck_seconds:g}s)"
        )
    body: dict[str, Any] = {
        "status": "unhealthy" if reasons else "healthy",
        "timestamp": time.time(),
        "version": VERSION,
        "module": p.module,
        "main_thread_alive": p.loop_alive,
        "last_loop_age_seconds": None if age is None else round(age, 3),
        "stuck_workers": p.stuck_workers,
    }
    if reasons:
        body["reasons"] = reasons
    if notes := degraded(p):
        body["degraded"] = notes
    return Probe(not reasons, body)


def readiness(p: ProbeInput, assignment: Sequence[Any] = ()) -> Probe:
    """``/ready``: ready to do its job (see the module docstring)."""
    live = liveness(p)
    reasons = list(live.body.get("reasons", []))
    if p.started and not p.stopped:
        if not p.subscribed:
            reasons.append("consumer not subscribed")
        if not p.consumer_alive:
            reasons.append(f"consumer not connected: {p.last_poll_error or 'not started'}")
        if not p.producer_alive:
            reasons.append("producer not connected")
        if p.restoring:
            reasons.append(p.restoring)
        if p.broker_connected is False:
            reasons.append(f"broker {p.broker} unreachable: {p.broker_error or 'no connection'}")
    failing_for = None if p.upload_failing_since is None else p.now - p.upload_failing_since
    if failing_for is not None and failing_for > p.upload_failing_seconds:
        reasons.append(
            f"uploads failing for {failing_for:.1f}s (limit {p.upload_failing_seconds:g}s); "
            f"{p.pending_uploads} pending"
        )
    if p.workers and p.stuck_workers >= p.workers:
        reasons.append(f"all {p.workers} workers stuck in callbacks that timed out")
    if p.dead_letters_failing:
        reasons.extend(n for n in degraded(p) if "dead letters" in n)
    body: dict[str, Any] = {
        "status": "not_ready" if reasons else "ready",
        "timestamp": time.time(),
        "module": p.module,
        "consumer_alive": p.consumer_alive,
        "producer_alive": p.producer_alive,
        "assigned_partitions": len(assignment),
        "pending_uploads": p.pending_uploads,
        "stuck_workers": p.stuck_workers,
        "upload_failing_seconds": None if failing_for is None else round(failing_for, 3),
    }
    if reasons:
        body["reasons"] = reasons
    return Probe(not reasons, body)


def lag_by_topic(lags: Sequence[PartitionLag]) -> dict[str, list[dict[str, Any]]]:
    """``{topic: [partition figures, ...]}`` sorted by topic and partition (the guide's
    ``get_lag_info()`` shape)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for lag in sorted(lags, key=lambda x: (x.topic, x.partition)):
        out.setdefault(lag.topic, []).append(lag.as_dict())
    return out


def status_document(snap: Snapshot, live: Probe, ready: Probe) -> dict[str, Any]:
    """The ``/status`` JSON: ``service``, ``stations`` (one page: ``stations_page`` says
    which, and the total), ``lag`` (per topic, with a total),
    ``throughput`` and ``health`` (``live``, ``ready`` and the reasons)."""
    total_lag = {
        topic: sum(p["lag"] or 0 for p in parts) for topic, parts in lag_by_topic(snap.lag).items()
    }
    return {
        "service": snap.service,
        "stations": snap.stations if snap.stations is not None else {},
        "stations_page": {
            "offset": snap.page.offset if snap.page else 0,
            "limit": snap.page.limit if snap.page else 0,
            "returned": len(snap.stations or {}),
            "total": snap.station_total,
        },
        "lag": lag_by_topic(snap.lag),
        "lag_total": total_lag,
        "throughput": snap.throughput,
        "data_availability": {
            "average_ratio": round(snap.availability[0], 4),
            "stations_missing_topic": snap.availability[1],
        },
        "health": {
            "live": live.ok,
            "ready": ready.ok,
            "reasons": list(ready.body.get("reasons", [])),  # includes liveness reasons
        },
    }


def service_status(
    *,
    module: str,
    adapter: str,
    group_id: str,
    routing_mode: str,
    engine: Engine,
    loop_alive: bool,
    stats: RunnerStats | None,
    now: float,
    started_at: float | None,
    stuck_workers: int = 0,
) -> dict[str, Any]:
    """The guide's ``get_service_status()``: ``main_thread_alive``, ``consumer_alive``,
    ``producer_alive``, ``station_count`` and more (counters, pending work, upload health,
    commit age in seconds of the service clock). ``stats`` is None before the first start."""
    eng = engine
    last_commit = stats.last_commit_at if stats else None
    return {
        "module": module,
        "adapter": adapter,
        "group_id": group_id,
        "main_thread_alive": bool(loop_alive),
        "consumer_alive": bool(stats and stats.consumer_alive),
        "producer_alive": bool(stats and stats.producer_alive),
        "station_count": len(eng),
        "running_stations": eng.running,
        "stuck_workers": stuck_workers,
        "queued_stations": eng.runnable,
        "pending_uploads": eng.pending_uploads,
        "upload_failing_since": eng.upload_failing_since,
        "last_loop_at": stats.last_loop_at if stats else None,
        "last_poll_error": stats.last_poll_error if stats else None,
        "poll_errors": stats.poll_errors if stats else 0,
        "backpressure_pauses": stats.backpressure_pauses if stats else 0,
        "last_commit_at": last_commit,
        "commit_age_seconds": None if last_commit is None else now - last_commit,
        "records_in": eng.stats.records_in,
        "runs_started": eng.stats.runs_started,
        "runs_failed": sum(eng.stats.runs_failed.values()) + sum(eng.stats.run_faults.values()),
        "run_faults": dict(eng.stats.run_faults),
        "batches_completed": eng.stats.batches_completed,
        "batches_timed_out": eng.stats.batches_timed_out,
        "dead_letters": eng.stats.dead_letters,
        "dead_letters_failing": eng.dead_letters_failing,
        "dead_letters_lost": eng.stats.dead_letters_lost,
        "bad_input": dict(eng.stats.bad_input),
        "started_at": started_at,
        "uptime_seconds": None if started_at is None else now - started_at,
        "throughput": stats.throughput.rates() if stats else {},
        "station_routing": routing_mode,
        "internal_topics": sorted(eng.internal_topics.values()),
        "pending_forwards": eng.pending_forwards,
        "records_forwarded": eng.stats.records_forwarded,
        "refused": stats.refused if stats else None,
    }
