"""Fleet-scale benchmark: the targets of issue 12 at 100, 1,000 and 10,000 stations.

    python benchmarks/fleet.py [--stations 100,1000,10000] [--modules a,b,...] [--repeats 3]
                               [--seconds 20] [--warmup 0] [--min-messages 50000] [--messages N]
                               [--whole-polls] [--rss-repeats 1] [--no-rss] [--json FILE]
                               [--quick] [--profile FILE] [--base OTHER/src]

``--quick`` is ``--stations 100,1000 --repeats 1 --seconds 10`` (explicit options win).
``--repeats`` is one number or one per station count (``3,3,1``). ``--modules`` defaults to
every module of the default catalog.

Workload: ``core_ingest.workload`` (every SCHEDULE-* topic at the simulator's relative rates,
encoded ``Record``s on 6 partitions per topic), cut in two parts by record timestamp:

* bootstrap (timestamp = start): parameters, calendar, prices, weather and each station's first
  REALTIME message, which carries 168 hours of history;
* warm-up (``--warmup S``, default 0: none): the periodic messages of the first ``S``
  simulated seconds, driven and timed apart. A station's first reads in the steady state cost
  more than the later ones (a grid's filled series are memoised from the third read of a
  content, ``module_input._add_grid``): at 10,000 stations a steady state of 20 s is mostly
  that warm-up for a module that reads a station every few seconds, while at 100 stations the
  steady state lasts minutes and amortises it. A service pays it once per station;
* steady state: the periodic messages of ``--seconds`` simulated seconds after the start (after
  the warm-up), or more whole seconds until it holds ``--min-messages`` records (so that 100
  stations give a measurable sample); ``--messages N``: the first whole seconds holding at
  least N records.

Polls: ``core_ingest.polls`` (500 records, the service's ``max_poll_records``), each also ending
with its simulated second, as for a consumer that keeps up (``--whole-polls``: 500 records
regardless, as for one that is behind; at 100 stations a poll then spans ~3 simulated seconds
and updates coalesce into fewer runs).

Each (station count, module, repeat) runs in a fresh subprocess, which drives one ``Engine``
of the default catalog with the module's ``min_run_interval`` set to 1.0 s (the service's
default; the bare ``default_catalog()`` has 0) exactly as ``core_ingest.run_end_to_end`` does:
per poll ``ingest``, ``tick``, ``take_runs`` (each assembling a module input), ``finish_run``
with a small dict (the callback returns at once), ``take_uploads`` + ``upload_done``,
``take_commit`` + ``commit_done``. Records are generated in segments of at most ~16 MB or
20,000 records (whole polls) before the segment is timed, so generation is never timed and the
workload is never held whole. Figures per phase:

* wall seconds (``time.perf_counter``) of the end-to-end loop, and the share of it spent in
  CPython's cyclic garbage collector (``gc.callbacks``);
* real-time factor: simulated seconds covered by the steady-state records / wall seconds;
* msg/s: steady-state records (every topic; those the module does not read are counted and
  skipped, as in production) / wall seconds;
* runs per station-second: steady-state runs / stations / simulated seconds (target <= 1 /
  min_run_interval);
* µs per station update: wall seconds / extracted items applied (``items_in`` +
  ``global_values_cached``; a 7-day REALTIME message is 168 updates);
* bootstrap: wall seconds, and ms per history message (bootstrap seconds / histories);
* the longest cyclic GC pause, and the p99 and longest poll cycle (one poll's ingest, runs,
  uploads and commit: how long a consumer that keeps up is away from ``poll``, which bounds
  what the loop adds to a record's latency; GC pauses fall inside it).

Peak RSS: a separate fresh subprocess per (station count, module) streams the same workload poll
by poll (never held whole) through the same loop, then assembles every ready station once, and
reports ``ru_maxrss`` (``--rss-repeats``, default 1: the figure hardly varies between runs).

``--profile FILE``: one run in this process for the first station count and module, under
``cProfile`` while the phases are timed; the stats go to ``FILE.bootstrap`` and ``FILE.steady``
and their top 20 entries by cumulative time are printed.

Printed: per figure, a table of medians with the min–max spread over the repeats (the machine
may be shared: read the spread), then each target as ``[met ]`` or ``[MISS]`` at every station
count of the run. The targets are defined at 10,000; at fewer stations the bootstrap's 30 s
is scaled down, and target 4 compares each count with the smallest of the run.

``--base OTHER/src``: before and after. Every run is made twice, interleaved: once with
another checkout's ``src`` first on ``PYTHONPATH`` (an earlier revision: ``git archive REV src
| tar -x -C /tmp/base``; the worker checks where ``da_core`` came from), once with this one.
Both sets of tables are printed, and each target with the baseline's figure beside it and the
ratio after / before. The engine's driving calls are the same back to ``ae9acab``, the last
commit before issue 12's changes, so any revision since can be the baseline. One that predates
``min_run_interval`` or ``service.gc_threshold`` runs without them, as its service did (every
dirty station at each poll; the interpreter's GC thresholds), and the output says what each
side ran with.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import itertools
import json
import math
import os
import pstats
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import attrs

sys.path.insert(0, str(Path(__file__).resolve().parent))
import core_ingest as ci
from fleet_report import (
    MIN_RUN_INTERVAL,
    REALTIME,
    Json,
    Summary,
    print_tables,
    report,
    summarise,
)

from da_adapters.codec import OrjsonCodec
from da_app.settings.service import ServiceSettings
from da_core.catalog import default_catalog
from da_core.config import Catalog, TriggerPolicy
from da_core.engine import Engine
from da_core.types import Record

HERE = Path(__file__).resolve().parent

MODULES = (
    "operation_optimization",
    "evaluation_model",
    "thermal_management",
    "station_guidance",
    "customer_mining",
    "electricity_price",
    "load_prediction",
    "SOH_model",
    "pv_prediction",
)
GC_THRESHOLD: tuple[int, int, int] | None = getattr(ServiceSettings(), "gc_threshold", None)
"""The service's default ``gc_threshold``, set in each worker (``--interpreter-gc``: not). A
revision from before the setting (``--base``) leaves the interpreter's, as its service did."""
HAS_RUN_INTERVAL = "min_run_interval" in attrs.fields_dict(TriggerPolicy)
SEGMENT_BYTES = 16 * 2**20
SEGMENT_RECORDS = 20_000
_PHASES = ("bootstrap", "warmup", "steady")


def production_catalog(module: str) -> Catalog:
    """The default catalog with ``module``'s ``min_run_interval`` at the service default (a
    revision from before ``min_run_interval`` existed, measured with ``--base``, runs every
    dirty station at each poll, as its service did)."""
    cat = default_catalog()
    m = cat.modules[module]
    if not HAS_RUN_INTERVAL:
        return cat
    m = attrs.evolve(m, trigger=attrs.evolve(m.trigger, min_run_interval=MIN_RUN_INTERVAL))
    return attrs.evolve(cat, modules={**cat.modules, module: m}).validate()


def stream(
    stations: int, seconds: float, min_messages: int, messages: int | None, warmup: float = 0.0
) -> Iterator[Record]:
    """Bootstrap, warm-up (``warmup`` simulated seconds) then steady-state records. The steady
    state ends with a whole simulated second: the first one after ``seconds`` that brings it to
    ``min_messages`` records, or with ``messages`` the first one that brings it to that many."""
    steady = 0
    begins = ci.START + warmup
    last = ci.START
    for rec in ci.workload(stations):
        ts = rec.timestamp
        if ts > last:
            if messages is not None:
                done = steady >= messages
            else:
                done = ts > begins + seconds and steady >= min_messages
            if done:
                return
        if ts > begins:
            steady += 1
        last = ts
        yield rec


def phase_of(timestamp: float, warmup: float = 0.0) -> str:
    if timestamp <= ci.START:
        return "bootstrap"
    return "warmup" if timestamp <= ci.START + warmup else "steady"


def phase_polls(
    records: Iterable[Record], whole: bool, warmup: float = 0.0
) -> Iterator[tuple[str, list[Record]]]:
    """(phase, poll): ``core_ingest.polls`` of 500 records within each phase; unless ``whole``,
    a poll also ends with its simulated second, as for a consumer that keeps up (it is never
    handed records of a later second along with those of the current one)."""
    for phase, group in itertools.groupby(records, key=lambda r: phase_of(r.timestamp, warmup)):
        if whole:
            for poll in ci.polls(group):
                yield phase, poll
            continue
        for _, second in itertools.groupby(group, key=lambda r: r.timestamp):
            for poll in ci.polls(second):
                yield phase, poll


def segments(
    records: Iterable[Record], whole: bool, warmup: float = 0.0
) -> Iterator[tuple[str, list[list[Record]]]]:
    """(phase, polls) of at most ~SEGMENT_BYTES / SEGMENT_RECORDS, generated before they are
    timed; a segment never mixes two phases."""
    seg: list[list[Record]] = []
    size = count = 0
    phase = "bootstrap"
    for p, poll in phase_polls(records, whole, warmup):
        if seg and (p != phase or count >= SEGMENT_RECORDS or size >= SEGMENT_BYTES):
            yield phase, seg
            seg, size, count = [], 0, 0
        phase = p
        seg.append(poll)
        count += len(poll)
        size += sum(len(r.value or b"") for r in poll)
    if seg:
        yield phase, seg


def _updates(eng: Engine) -> int:
    return eng.stats.items_in + eng.stats.global_values_cached


# ---------------------------------------------------------------------------- workers


def worker_time(
    stations: int, module: str, args: argparse.Namespace, profiles: Json | None = None
) -> Json:
    """One timed run; ``profiles``: a ``cProfile.Profile`` per phase, enabled while timed."""
    eng = Engine(production_catalog(module), module, OrjsonCodec())
    phases: dict[str, Json] = {
        p: {
            "seconds": 0.0,
            "gc_seconds": 0.0,
            "gc_longest": 0.0,
            "records": 0,
            "runs": 0,
            "uploads": 0,
            "updates": 0,
        }
        for p in _PHASES
    }
    phases["bootstrap"]["histories"] = 0
    cycles: dict[str, list[float]] = {p: [] for p in _PHASES}  # wall seconds per poll
    records = stream(stations, args.seconds, args.min_messages, args.messages, args.warmup)
    for phase, chunks in segments(records, args.whole_polls, args.warmup):
        out = phases[phase]
        if phase == "bootstrap":
            out["histories"] += sum(r.topic == REALTIME for c in chunks for r in c)
        before = _updates(eng)
        timer = ci.GcTimer()
        gc.callbacks.append(timer)
        prof = profiles.get(phase) if profiles else None
        if prof is not None:
            prof.enable()
        t0 = time.perf_counter()
        res = ci.run_end_to_end(eng, chunks, cycles[phase])
        out["seconds"] += time.perf_counter() - t0
        if prof is not None:
            prof.disable()
        gc.callbacks.remove(timer)
        out["gc_seconds"] += timer.seconds
        out["gc_longest"] = max(out["gc_longest"], timer.longest)
        out["updates"] += _updates(eng) - before
        for key in ("records", "runs", "uploads"):
            out[key] += res[key]
        out["last_ts"] = res["now"]
    for phase, seconds in cycles.items():
        phases[phase]["poll_p99"] = ci.percentile(sorted(seconds), 0.99)
        phases[phase]["poll_max"] = max(seconds, default=math.nan)
    steady = phases["steady"]
    begins = ci.START + args.warmup
    steady["sim_seconds"] = steady.get("last_ts", begins) - begins
    steady["station_seconds"] = stations * steady["sim_seconds"]
    return {
        **phases,
        "stations": stations,
        "engine_stations": len(eng),
        "ignored": eng.stats.records_ignored,
        "gc_threshold": gc.get_threshold(),
        "min_run_interval": MIN_RUN_INTERVAL if HAS_RUN_INTERVAL else None,
        "peak_rss_mb": ci.peak_rss_mb(),
    }


def worker_rss(stations: int, module: str, args: argparse.Namespace) -> Json:
    """``core_ingest.worker_rss`` with the production catalog and this benchmark's stream."""
    eng = Engine(production_catalog(module), module, OrjsonCodec())
    records = stream(stations, args.seconds, args.min_messages, args.messages, args.warmup)
    polls = phase_polls(records, args.whole_polls, args.warmup)
    out: Json = ci.run_end_to_end(eng, (c for _, c in polls))
    now = out["now"]
    for sid in ci.ready_stations(eng, now):
        eng.get_inputs(sid, now)
    out["engine_stations"] = len(eng)
    out["peak_rss_mb"], out["rss_end_mb"] = ci.peak_rss_mb(), ci.current_rss_mb()
    return out


# ---------------------------------------------------------------------------- driver


def _spawn(
    kind: str, n: int, module: str, args: argparse.Namespace, src: Path | None = None
) -> Json:
    """One worker; ``src``: another checkout's ``src`` (``--base``) imported instead of this
    one's (first on ``PYTHONPATH``, checked by the worker)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", kind, "--stations", str(n),
           "--modules", module, "--seconds", str(args.seconds), "--warmup", str(args.warmup),
           "--min-messages", str(args.min_messages)]  # fmt: skip
    if args.whole_polls:
        cmd.append("--whole-polls")
    if args.interpreter_gc:
        cmd.append("--interpreter-gc")
    if args.gc_threshold:
        cmd += ["--gc-threshold", args.gc_threshold]
    if args.messages is not None:
        cmd += ["--messages", str(args.messages)]
    env = None
    if src is not None:
        cmd += ["--src", str(src)]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(src), *filter(None, [os.environ.get("PYTHONPATH")])]
        )}  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        where = f" (--base {src})" if src is not None else ""
        raise SystemExit(f"worker {kind} for {module} at {n} stations failed{where}")
    result: Json = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _ints(text: str) -> list[int]:
    return [int(s.strip().replace("_", "")) for s in text.split(",") if s.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--stations", help="station counts (default 100,1000,10000)")
    p.add_argument("--modules", default=",".join(MODULES))
    p.add_argument("--repeats", help="one number, or one per station count (default 3)")
    p.add_argument("--rss-repeats", type=int, default=1)
    p.add_argument("--seconds", type=float, help="simulated seconds of steady state (20)")
    p.add_argument(
        "--warmup",
        type=float,
        default=0.0,
        help="simulated seconds timed apart before the steady state",
    )
    p.add_argument("--min-messages", type=int, default=50_000, help="steady records, at least")
    p.add_argument("--messages", type=int, help="steady-state records instead of --seconds")
    p.add_argument("--whole-polls", action="store_true", help="polls of 500 records across seconds")
    p.add_argument("--no-rss", action="store_true", help="skip the streamed peak RSS runs")
    p.add_argument("--json", help="also write the raw and summarised figures to this file")
    p.add_argument("--quick", action="store_true", help="100,1000 stations, 1 repeat, 10 s")
    p.add_argument("--profile", help="cProfile one in-process run (first count and module)")
    p.add_argument(
        "--interpreter-gc",
        action="store_true",
        help="keep the interpreter's GC thresholds (default: the service's gc_threshold)",
    )
    p.add_argument(
        "--gc-threshold",
        help="three numbers a,b,c for gc.set_threshold instead of the service's default",
    )
    p.add_argument(
        "--base",
        help="another checkout's src directory (an earlier revision), measured interleaved "
        "with this one: each target printed before and after",
    )
    p.add_argument("--worker", choices=("time", "rss"), help=argparse.SUPPRESS)
    p.add_argument("--src", help=argparse.SUPPRESS)  # a worker's expected da_core location
    args = p.parse_args(argv)
    if args.src:
        ci.check_source(Path(args.src))
    threshold: tuple[int, ...] | None = GC_THRESHOLD  # what a started service sets
    if args.gc_threshold:
        threshold = tuple(_ints(args.gc_threshold))
        if len(threshold) != 3:
            p.error("--gc-threshold: three numbers, a,b,c")
    if (args.worker or args.profile) and not args.interpreter_gc and threshold is not None:
        gc.set_threshold(*threshold)
    if args.seconds is None:
        args.seconds = 10.0 if args.quick else 20.0
    counts = _ints(args.stations or ("100,1000" if args.quick else "100,1000,10000"))
    modules = [m.strip() for m in args.modules.split(",") if m.strip()]
    if args.profile:
        profiles: Json = {p: cProfile.Profile() for p in _PHASES}
        worker_time(counts[0], modules[0], args, profiles)
        for phase, prof in profiles.items():
            if phase == "warmup" and not args.warmup:
                continue  # no warm-up: nothing was profiled
            prof.dump_stats(f"{args.profile}.{phase}")
            print(f"\n{phase}: {modules[0]} at {counts[0]:,} stations, by cumulative time")
            pstats.Stats(prof).sort_stats("cumulative").print_stats(20)
        return 0
    if args.worker:
        fn = worker_time if args.worker == "time" else worker_rss
        print(json.dumps(fn(counts[0], modules[0], args)))
        return 0
    unknown = sorted(set(modules) - set(default_catalog().modules))
    if unknown:
        p.error(f"unknown module(s): {', '.join(unknown)}")
    repeats = _ints(args.repeats or ("1" if args.quick else "3"))
    if len(repeats) == 1:
        repeats *= len(counts)
    if len(repeats) != len(counts):
        p.error("--repeats: one number, or one per station count")
    steady = (
        f"first whole seconds with >= {args.messages:,} records"
        if args.messages is not None
        else f"{args.seconds:g} simulated s (extended to >= {args.min_messages:,} records)"
    )
    if args.warmup:
        steady += f" after a warm-up of {args.warmup:g} simulated s"
    polling = "500 records across seconds" if args.whole_polls else "<= 500 records per second"
    print(
        f"fleet: stations {counts}, repeats {repeats}, steady state {steady}, polls {polling}, "
        f"min_run_interval {MIN_RUN_INTERVAL:g} s (service default) on the module run, "
        f"gc thresholds {gc.get_threshold() if args.interpreter_gc else threshold}",
        flush=True,
    )
    # (label, src): the baseline first, then this checkout, interleaved run by run
    sources: list[tuple[str, Path | None]] = [("", None)]
    if args.base:
        base = Path(args.base).resolve()
        if not (base / "da_core").is_dir():
            p.error(f"--base: {base} holds no da_core package (give a checkout's src)")
        sources = [("before", base), ("after", None)]
        print(f"before: {base}; after: {HERE.parent / 'src'}; interleaved", flush=True)
    raw: dict[str, dict[int, dict[str, Json]]] = {label: {} for label, _ in sources}
    summaries: dict[str, Summary] = {label: {} for label, _ in sources}
    t_start = time.monotonic()
    for n, reps in zip(counts, repeats, strict=True):
        labels = [label for label, _ in sources]
        timing: dict[str, dict[str, list[Json]]] = {x: {m: [] for m in modules} for x in labels}
        memory: dict[str, dict[str, list[Json]]] = {x: {m: [] for m in modules} for x in labels}
        for kind, runs, times in (("time", timing, reps), ("rss", memory, _rss_repeats(args))):
            for i in range(times):  # interleaved: a noisy spell spreads over all of them
                for m in modules:
                    for label, src in sources:
                        what = f"{label}: " if label else ""
                        _progress(f"{what}{n:,} stations, {m}: {kind} {i + 1}/{times}", t_start)
                        runs[label][m].append(_spawn(kind, n, m, args, src))
        for label, _ in sources:
            raw[label][n] = {
                m: {"timing": timing[label][m], "memory": memory[label][m]} for m in modules
            }
            summaries[label][n] = {
                m: summarise(timing[label][m], memory[label][m]) for m in modules
            }
    for label, _ in sources:
        print_tables(summaries[label], modules, f"{label}: " if label else "")
    for label, _ in sources:  # what the workers ran with (a --base may predate either)
        done = [r for n in counts for m in modules for r in raw[label][n][m]["timing"]]
        if done:
            first = done[0]
            print(
                f"\n{label or 'workers'}: gc thresholds {tuple(first.get('gc_threshold', ()))}, "
                f"min_run_interval {first.get('min_run_interval')} s"
            )
    after = summaries[sources[-1][0]]
    before = summaries["before"] if args.base else None
    targets = report(after, modules, not args.no_rss, args.warmup, before)
    print(f"\ntotal wall time {time.monotonic() - t_start:,.0f} s")
    if args.json:
        doc: Json = {"args": vars(args), "summary": after, "targets": targets}
        doc["raw"] = raw[sources[-1][0]]
        if before is not None:
            doc["before"] = {"summary": before, "raw": raw["before"]}
        Path(args.json).write_text(json.dumps(doc, indent=1))
    return 0


def _rss_repeats(args: argparse.Namespace) -> int:
    return 0 if args.no_rss else int(args.rss_repeats)


def _progress(text: str, t_start: float) -> None:
    print(f"[{time.monotonic() - t_start:6.0f} s] {text}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
