"""``fleet.py``'s figures: per-run metrics, their medians, the tables and the targets of issue 12,
each printed as met or MISS, beside a baseline's figure when one was measured (``--base``)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

from da_core.catalog import default_catalog

Json = dict[str, Any]
Summary = dict[int, dict[str, dict[str, Json]]]
"""Per station count, per module, per metric: ``{"median", "min", "max"}``."""

MIN_RUN_INTERVAL = 1.0
"""Seconds: the service's default ``min_run_interval_seconds``, set on the module run."""
REALTIME = "SCHEDULE-STATION-REALTIME-DATA"
BOOTSTRAP_MODULE = "load_prediction"
TARGET_STATIONS = 10_000

METRICS: tuple[tuple[str, str, str, str, str, str, float], ...] = (
    # key, label, format, phase, numerator, denominator, scale
    ("rtf", "steady: real-time factor (sim s / wall s)", "{:,.2f}", "steady", "sim_seconds",
     "seconds", 1.0),
    ("msgs", "steady: msg/s", "{:,.0f}", "steady", "records", "seconds", 1.0),
    ("runs_ss", "steady: runs per station-second", "{:.3f}", "steady", "runs",
     "station_seconds", 1.0),
    ("us_update", "steady: µs per station update", "{:,.2f}", "steady", "seconds", "updates",
     1e6),
    ("gc", "steady: % of wall time in cyclic GC", "{:.0f}%", "steady", "gc_seconds", "seconds",
     100.0),
    ("gc_max_ms", "steady: longest cyclic GC pause (ms)", "{:,.0f}", "steady", "gc_longest", "",
     1e3),
    ("poll_p99_ms", "steady: poll cycle p99 (ms)", "{:,.1f}", "steady", "poll_p99", "", 1e3),
    ("poll_max_ms", "steady: longest poll cycle (ms)", "{:,.0f}", "steady", "poll_max", "", 1e3),
    ("steady_s", "steady: wall seconds", "{:,.2f}", "steady", "seconds", "", 1.0),
    ("warm_us", "warm-up: µs per station update", "{:,.2f}", "warmup", "seconds", "updates",
     1e6),
    ("boot_s", "bootstrap: wall seconds", "{:,.2f}", "bootstrap", "seconds", "", 1.0),
    ("boot_ms", "bootstrap: ms per history message", "{:.3f}", "bootstrap", "seconds",
     "histories", 1e3),
)  # fmt: skip
"""The poll cycle is one poll's ingest, runs, uploads and commit: how long a consumer that
keeps up is away from ``poll``, so a record that arrives meanwhile waits at most that long
(cyclic GC pauses included)."""


def _metric(r: Json, phase: str, num: str, den: str, scale: float) -> float:
    value, by = r[phase][num] * scale, r[phase][den] if den else 1
    return float(value / by) if by else math.nan


def _stats(values: Sequence[float]) -> Json:
    if not values or any(math.isnan(v) for v in values):
        return {"median": math.nan, "min": math.nan, "max": math.nan}
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def summarise(timing: Sequence[Json], memory: Sequence[Json]) -> dict[str, Json]:
    out = {
        key: _stats([_metric(r, phase, num, den, scale) for r in timing])
        for key, _, _, phase, num, den, scale in METRICS
    }
    out["rss"] = _stats([r["peak_rss_mb"] for r in memory])
    out["sim_seconds"] = _stats([r["steady"]["sim_seconds"] for r in timing])
    out["steady_records"] = _stats([r["steady"]["records"] for r in timing])
    return out


def _cell(s: Json, fmt: str) -> str:
    if math.isnan(s["median"]):
        return "n/a"
    text = fmt.format(s["median"])
    if s["min"] != s["max"]:
        text += f" [{fmt.format(s['min'])}–{fmt.format(s['max'])}]"
    return text


def print_tables(summary: Summary, modules: Sequence[str], title: str = "") -> None:
    counts = sorted(summary)
    rows = [(k, label, fmt) for k, label, fmt, *_ in METRICS]
    rows.append(("rss", "peak RSS, streamed (MB)", "{:,.0f}"))
    for key, label, fmt in rows:
        print(f"\n{title}{label}: median [min–max]")
        print("module".ljust(24) + "".join(f"{n:>30,}" for n in counts))
        for m in modules:
            print(m.ljust(24) + "".join(f"{_cell(summary[n][m][key], fmt):>30}" for n in counts))


def _target(targets: list[Json], name: str, value: float, ok: bool, text: str) -> None:
    targets.append({"name": name, "value": value, "ok": ok, "text": text})


def targets_of(summary: Summary, modules: Sequence[str], rss: bool, hi: int) -> list[Json]:
    """Each target of issue 12 at ``hi`` stations: ``{"name", "value", "ok", "text"}``. The
    targets are defined at 10,000 stations; at fewer, the bootstrap's 30 s is scaled down and
    target 4 compares ``hi`` with the smallest count of the run."""
    lo = min(summary)
    at = summary[hi]
    targets: list[Json] = []
    for m in modules:
        v = at[m]["rtf"]["median"]
        msgs = at[m]["msgs"]["median"]
        _target(
            targets,
            f"1. steady state, {m}: real-time factor >= 3",
            v,
            v >= 3,
            f"{v:,.2f} ({msgs:,.0f} msg/s)",
        )
    limit = 1 / MIN_RUN_INTERVAL
    for m in modules:
        v = at[m]["runs_ss"]["median"]
        _target(
            targets,
            f"1. steady state, {m}: runs per station-second <= {limit:g}",
            v,
            v <= limit,
            f"{v:.3f}",
        )
    if BOOTSTRAP_MODULE in modules:
        b = at[BOOTSTRAP_MODULE]
        secs, ms = b["boot_s"]["median"], b["boot_ms"]["median"]
        limit_s = 30.0 * hi / TARGET_STATIONS
        scaled = "" if hi == TARGET_STATIONS else f" (30 s scaled to {hi:,} stations)"
        _target(
            targets,
            f"2. bootstrap of {hi:,} stations by {BOOTSTRAP_MODULE} <= {limit_s:g} s{scaled}",
            secs,
            secs <= limit_s,
            f"{secs:,.2f} s",
        )
        _target(targets, "2. bootstrap: <= 1 ms per history message", ms, ms <= 1.0, f"{ms:.3f} ms")
    if rss:
        for m in modules:
            if REALTIME not in default_catalog().modules[m].inputs:
                continue
            v = at[m]["rss"]["median"]
            _target(
                targets,
                f"3. peak RSS, {m} (168-hour windows), streamed <= 500 MB",
                v,
                v <= 500,
                f"{v:,.0f} MB",
            )
    if hi != lo:
        for m in modules:
            a, b = summary[lo][m]["us_update"]["median"], at[m]["us_update"]["median"]
            if math.isnan(a) or math.isnan(b):
                continue  # no steady-state station updates: nothing to compare
            _target(
                targets,
                f"4. {m}: cost per station update at {hi:,} / at {lo:,} <= 1.5",
                b / a,
                b / a <= 1.5,
                f"{b / a:.2f} ({b:.2f} / {a:.2f} µs)",
            )
    return targets


def report(
    summary: Summary,
    modules: Sequence[str],
    rss: bool,
    warmup: float = 0.0,
    before: Summary | None = None,
) -> list[Json]:
    """Print each target as met or MISS, and with ``before`` (the baseline's figures, measured
    in the same invocation) the baseline's figure beside it and after / before."""
    counts = sorted(summary)
    print(
        f"\ntargets (issue 12; defined at {TARGET_STATIONS:,} stations) at each station count; "
        f"medians; min_run_interval = {MIN_RUN_INTERVAL:g} s on the module run (service "
        "default); "
        + (
            f"steady state after a warm-up of {warmup:g} simulated s"
            if warmup
            else "no warm-up: the steady state includes each station's first reads"
        )
        + ("; before: the --base source, after: this one" if before is not None else "")
    )
    targets: list[Json] = []
    for n in counts:
        print(f"\n at {n:,} stations" + (" (the targets' count)" if n == TARGET_STATIONS else ""))
        at_n = targets_of(summary, modules, rss, n)
        base = (
            {t["name"]: t for t in targets_of(before, modules, rss, n)}
            if before is not None and n in before
            else {}
        )
        for t in at_n:
            t["stations"] = n
            line = f"  [{'met ' if t['ok'] else 'MISS'}] {t['name']}: {t['text']}"
            b = base.get(t["name"])
            if b is not None:
                t["before"] = b
                was = "met" if b["ok"] else "MISS"
                ratio = f"; after/before {t['value'] / b['value']:.2f}" if b["value"] else ""
                line += f"  (before {was}: {b['text']}{ratio})"
            print(line)
        if n != counts[0]:
            names = [t["name"] for t in at_n]
            skipped = [m for m in modules if not any(x.startswith(f"4. {m}:") for x in names)]
            if skipped:
                print(f"  (4. no steady-state station updates, not compared: {', '.join(skipped)})")
        targets += at_n
    print("\n  [----] 5. end to end on a real broker: measured by benchmarks/e2e_kafka.py")
    return targets
