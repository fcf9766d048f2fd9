"""What a runner measures: ``RunnerStats``, and its small accumulators (histograms and a
throughput sampler).

Both are cheap enough for the engine loop (a bisect and two additions per observation; one
comparison per loop iteration) and are read from other threads (the metrics and health
servers) without locks: readers copy the lists, which is atomic under the GIL, and tolerate a
value being one observation behind.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

PROCESSING_BUCKETS: tuple[float, ...] = (
    0.001,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)
"""Seconds of one station callback (plus its result handler)."""

RATIO_BUCKETS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
"""Data availability ratio of one run (share of the module's input topics present)."""

STATION_COUNT_BUCKETS: tuple[float, ...] = (1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000)
"""Stations with a result in one uploaded batch."""


class Histogram:
    """Observations counted into fixed buckets, Prometheus style (bucket ``le=b`` holds the
    values ``<= b``). ``counts`` are per bucket, the last one for values above every bound."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds: tuple[float, ...] = tuple(sorted(bounds))
        self.counts: list[int] = [0] * (len(self.bounds) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> tuple[list[tuple[float, int]], int, float]:
        """``([(bound, observations <= bound), ...], count, sum)``; the count includes the
        observations above the last bound (the ``+Inf`` bucket)."""
        counts = list(self.counts)  # one consistent copy
        total = self.total
        out: list[tuple[float, int]] = []
        running = 0
        for bound, n in zip(self.bounds, counts, strict=False):
            running += n
            out.append((bound, running))
        return out, running + counts[-1], total


def histogram_from_counts(
    values: dict[int, int], bounds: Sequence[float]
) -> tuple[list[tuple[float, int]], int, float]:
    """``Histogram.cumulative`` for exact observations kept as ``{value: times seen}``."""
    items = sorted(dict(values).items())
    out: list[tuple[float, int]] = []
    running = 0
    i = 0
    for bound in sorted(bounds):
        while i < len(items) and items[i][0] <= bound:
            running += items[i][1]
            i += 1
        out.append((bound, running))
    count = sum(n for _, n in items)
    return out, count, float(sum(v * n for v, n in items))


class RateSampler:
    """Samples ``(seconds of the service's clock, records, runs)`` at most once per ``every``
    seconds and keeps ``window`` seconds of them, so a reader can compute recent rates per
    second."""

    __slots__ = ("_last", "_samples", "every")

    def __init__(self, every: float = 1.0, window: float = 60.0) -> None:
        self.every = every
        self._samples: deque[tuple[float, int, int]] = deque(maxlen=int(window / every) + 1)
        self._last = float("-inf")

    def tick(self, now: float, records: int, runs: int) -> None:
        if now - self._last >= self.every:
            self._last = now
            self._samples.append((now, records, runs))

    def rates(self) -> dict[str, float | None]:
        """Records and runs per second over the sampled window (None before two samples)."""
        samples = list(self._samples)
        if len(samples) < 2 or samples[-1][0] <= samples[0][0]:
            return {"records_per_second": None, "runs_per_second": None, "window_seconds": None}
        (t0, r0, n0), (t1, r1, n1) = samples[0], samples[-1]
        dt = t1 - t0
        return {
            "records_per_second": round((r1 - r0) / dt, 3),
            "runs_per_second": round((n1 - n0) / dt, 3),
            "window_seconds": round(dt, 3),
        }


@attrs.define
class RunnerStats:
    """What the runner measured (durations are wall-clock seconds of the callbacks;
    ``last_loop_at``, ``last_commit_at`` and ``commit_failed_at`` are times of the service's
    clock). Written only by the loop (``LoopCore``), read lock-free by status and metrics.

    ``processing`` and ``availability`` are cumulative histograms of every finished run's
    duration and ``_data_quality['availability_ratio']``; ``missing_topic_runs`` counts, per
    topic, the runs whose input lacked it; ``throughput`` samples records and runs per second.
    """

    loops: int = 0
    records_polled: int = 0
    callback_seconds: deque[float] = attrs.field(factory=lambda: deque(maxlen=4096))
    callback_count: int = 0
    result_handler_errors: int = 0
    poll_errors: int = 0
    backpressure_pauses: int = 0
    """Times consumption paused because too many uploads or shares were pending."""
    last_loop_at: float = 0.0
    last_poll_error: str | None = None
    consumer_alive: bool = False
    producer_alive: bool = False
    commit_failed_at: float | None = None
    last_commit_at: float | None = None
    processing: Histogram = attrs.field(factory=lambda: Histogram(PROCESSING_BUCKETS))
    availability: Histogram = attrs.field(factory=lambda: Histogram(RATIO_BUCKETS))
    missing_topic_runs: dict[str, int] = attrs.field(factory=dict)
    throughput: RateSampler = attrs.field(factory=RateSampler)
    refused: str | None = None
    """Why the runner refused to go on (station co-location broken, ``da_core.routing``)."""
    created_at: float = 0.0
    """The service clock's time when the loop was built (the start of "time to first run")."""
    first_run_seconds: float | None = None
    """Seconds from ``created_at`` to the first run that came back (None: none yet)."""
    restoring: bool = False
    """A restore session is open (``da_app.runtime.restore``): ``/ready`` answers 503."""
    restore_total: int = 0
    """Partitions of the current (or last) restore session."""
    restore_done: int = 0
    """Partitions of that session restored so far."""
    restore_records: int = 0
    """Records replayed into windows since start."""
    restore_seconds: float | None = None
    """Seconds the last finished restore session took (service clock)."""

    def restore_progress(self) -> str | None:
        """``restoring n/m partitions`` while a restore session is open, else None."""
        if not self.restoring:
            return None
        return f"restoring {self.restore_done}/{self.restore_total} partitions"

    broker_connected: bool | None = None
    """Connected to the broker (None until known); kept by ``BrokerWatch``."""
    broker_disconnects: int = 0
    """Times the broker became unreachable (at start or later)."""
    broker_error: str | None = None
    """Why the broker is unreachable, while it is."""

    def run_finished(self, seconds: float, module_input: Mapping[str, Any]) -> None:
        """Account one finished run (on the loop, when its result comes back)."""
        self.callback_count += 1
        self.callback_seconds.append(seconds)
        self.processing.observe(seconds)
        quality = module_input.get("_data_quality")
        if isinstance(quality, Mapping):
            ratio = quality.get("availability_ratio")
            if isinstance(ratio, (int, float)):
                self.availability.observe(float(ratio))
            missing = self.missing_topic_runs
            for topic in quality.get("missing_topics") or ():
                missing[topic] = missing.get(topic, 0) + 1
