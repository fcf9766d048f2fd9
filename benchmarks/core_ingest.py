"""Core ingest benchmark: extractors, windows and module-input assembly on a synthetic workload.

    python benchmarks/core_ingest.py [--messages N] [--repeats R] [--stations 100,1000,10000]

The workload is every SCHEDULE-* topic at the relative rates of ``da_app.simulator`` (orders
~1 Hz per charging gun, meter/gun every 5 s, hosts and storage every 10 s, errors every 10 min,
PV every 15 min, REALTIME hourly with a first 7-day history message per station; parameters,
calendar, prices and weather once per station), encoded with ``OrjsonCodec`` into ``Record``
objects (6 partitions per topic, keyed by station) before any timing starts.

Every station count runs in fresh subprocesses (one per repeat), so ``ru_maxrss`` is the peak
of that configuration alone; figures are medians over the repeats. Each timing subprocess
measures, on the same pre-generated records:

* ``bare``: ``extract()`` + ``window.add()`` for every topic (one window per station and topic,
  no engine): the floor the engine builds on;
* ``engine ingest``: ``Engine.ingest`` in polls of 500 records for ``--module`` (default
  ``electricity_price``: 7 input topics, one of them global); records of topics the module does
  not read are counted and skipped, as in production. Callbacks never run here, so the engine
  keeps the references of every record it applied (as it would until the runs complete);
* ``engine end-to-end``: the engine as a runner uses it, with a callback that costs nothing:
  per poll ``ingest``, ``tick``, ``take_runs`` (32 at a time, each assembling a module input),
  ``finish_run`` with a small result, ``take_uploads`` + ``upload_done``, ``take_commit`` +
  ``commit_done``;
* ``assembly``: ``load_prediction`` module inputs (REALTIME 168-slot grid with guns, station
  parameters, calendar) for every ready station, repeated; the first pass is reported apart:
  it is the cold figure (the grids' filled series are computed and kept in the window's memo),
  while the repeated passes read an unchanged grid, as a module that runs more often than its
  grid changes does.

Each phase also reports the share of its time spent in CPython's cyclic garbage collector
(``gc.callbacks``): it grows with the number of containers the windows hold.

A station update is one extracted item applied to a window (a 7-day REALTIME message is 168).
The memory subprocess streams the same workload (generated poll by poll, never held as a
whole) through the engine end-to-end and then assembles every station once: its peak RSS is
what a service of that module needs for that many stations. The timing subprocesses' peak RSS,
which also holds the whole pre-generated input, is shown for reference.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import resource
import statistics
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

_SRC = Path(__file__).resolve().parents[1] / "src"
if str(_SRC) not in sys.path:
    sys.path.insert(0, str(_SRC))

from da_adapters.codec import OrjsonCodec  # noqa: E402
from da_app.simulator import StationSimulator  # noqa: E402
from da_core.catalog import default_catalog  # noqa: E402
from da_core.config import Catalog  # noqa: E402
from da_core.engine import Engine  # noqa: E402
from da_core.extractors import extract  # noqa: E402
from da_core.station_window import Window, make_window  # noqa: E402
from da_core.types import Record  # noqa: E402

START = 1_798_761_600.0 + 3000.0
"""2027-01-01 00:50 UTC: the first hourly REALTIME increment comes 10 simulated minutes in."""
PARTITIONS = 6
POLL_RECORDS = 500
"""Records per ``Engine.ingest`` call (the service's default ``max_poll_records``)."""
MAX_WORKERS = 32
"""Runs taken per ``take_runs`` call in the end-to-end loop (the service's default)."""
CHUNK_STATIONS = 100
"""Stations per PRICE/WEATHER message (PARAM: the simulator's 50)."""
ASSEMBLY_MODULE = "load_prediction"
ASSEMBLY_MIN_SECONDS = 1.0
ASSEMBLY_MIN_PASSES = 3

Targets = dict[str, Any]


# ---------------------------------------------------------------------------- workload


def _chunks(topic: str, payload: Any) -> Iterator[Any]:
    """PRICE and WEATHER come as one message for every station; split them per 100."""
    if isinstance(payload, dict) and len(payload) == 1:
        (key, rows), *_ = payload.items()
        if key in ("fee", "weather") and isinstance(rows, list):
            for i in range(0, len(rows), CHUNK_STATIONS):
                yield {key: rows[i : i + CHUNK_STATIONS]}
            return
    yield payload


def workload(stations: int, seed: int = 7) -> Iterator[Record]:
    """Endless stream of encoded records (take the first N): the initial messages, then every
    periodic message second by second of simulated time."""
    sim = StationSimulator(stations, START, seed=seed, bad_ratio=0.0)
    dumps = OrjsonCodec().dumps
    offsets: dict[tuple[str, int], int] = {}

    def record(topic: str, key: str | None, payload: Any, ts: float) -> Record:
        kb = key.encode() if key is not None else None
        part = zlib.crc32(kb) % PARTITIONS if kb is not None else 0
        off = offsets.get((topic, part), 0)
        offsets[topic, part] = off + 1
        # orjson returns its 4 KiB working buffer as the bytes object: copy to the exact size
        value = bytes(memoryview(dumps(payload)))
        return Record(topic, part, off, value, kb, ts)

    for topic, key, payload in sim.initial():
        for part in _chunks(topic, payload):
            yield record(topic, key, part, START)
    now = START
    while True:
        now += 1.0
        for topic, key, payload in sim.until(now):
            yield record(topic, key, payload, now)


def polls(records: Iterable[Record]) -> Iterator[list[Record]]:
    it = iter(records)
    while chunk := list(itertools.islice(it, POLL_RECORDS)):
        yield chunk


# ---------------------------------------------------------------------------- measurements


def bench_bare(records: Sequence[Record], catalog: Catalog) -> dict[str, float]:
    """extract() + window.add() for every topic, one window per (station, topic)."""
    codec = OrjsonCodec()
    topics = catalog.topics
    stations: dict[str, dict[str, Window]] = {}
    updates = 0
    t0 = time.perf_counter()
    for rec in records:
        topic = topics[rec.topic]
        name = topic.name
        items = extract(topic, rec, codec).items
        for item in items:
            windows = stations.get(item.station_id)
            if windows is None:
                windows = stations[item.station_id] = {}
            w = windows.get(name)
            if w is None:
                w = windows[name] = make_window(topic)
            w.add(item)
        updates += len(items)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "updates": updates}


def bench_ingest(
    chunks: Sequence[Sequence[Record]], catalog: Catalog, module: str
) -> dict[str, float]:
    eng = Engine(catalog, module, OrjsonCodec())
    t0 = time.perf_counter()
    for chunk in chunks:
        eng.ingest(chunk, chunk[-1].timestamp)
    seconds = time.perf_counter() - t0
    s = eng.stats
    return {
        "seconds": seconds,
        "updates": s.items_in + s.global_values_cached,
        "ignored": s.records_ignored,
        "stations": len(eng),
    }


def run_end_to_end(
    eng: Engine, polled: Iterable[Sequence[Record]], cycles: list[float] | None = None
) -> dict[str, float]:
    """The engine as a runner drives it, with a callback that returns at once; ``cycles``:
    gets each poll's wall seconds (ingest, runs, uploads, commit)."""
    runs = uploads = records = 0
    now = START
    result = {"ok": 1}
    clock = time.perf_counter
    t0 = clock()
    for chunk in polled:
        now = chunk[-1].timestamp
        records += len(chunk)
        eng.ingest(chunk, now)
        eng.tick(now)
        while eng.runnable:
            for run in eng.take_runs(MAX_WORKERS, now):
                eng.finish_run(run, now, result=result)
                runs += 1
        eng.tick(now)
        for up in eng.take_uploads(now):
            eng.upload_done(up.upload_id, True, now)
            uploads += 1
        offsets = eng.take_commit(now)
        if offsets is not None:
            eng.commit_done(offsets, True, now)
        if cycles is not None:
            t1 = clock()
            cycles.append(t1 - t0)
            t0 = t1
    s = eng.stats
    return {
        "records": records,
        "runs": runs,
        "uploads": uploads,
        "updates": s.items_in + s.global_values_cached,
        "now": now,
    }


def bench_end_to_end(
    chunks: Sequence[Sequence[Record]], catalog: Catalog, module: str
) -> dict[str, float]:
    eng = Engine(catalog, module, OrjsonCodec())
    t0 = time.perf_counter()
    out = run_end_to_end(eng, chunks)
    out["seconds"] = time.perf_counter() - t0
    return out


def ready_stations(eng: Engine, now: float) -> list[str]:
    return [sid for sid, st in eng.station_status(now).items() if st["ready"]]


def bench_assembly(chunks: Sequence[Sequence[Record]], catalog: Catalog) -> dict[str, float]:
    eng = Engine(catalog, ASSEMBLY_MODULE, OrjsonCodec())
    for chunk in chunks:
        eng.ingest(chunk, chunk[-1].timestamp)
    now = chunks[-1][-1].timestamp
    ready = ready_stations(eng, now)
    get = eng.get_inputs
    t0 = time.perf_counter()
    for sid in ready:
        get(sid, now)
    first = time.perf_counter() - t0
    passes = 0
    t0 = time.perf_counter()
    while True:
        for sid in ready:
            get(sid, now)
        passes += 1
        elapsed = time.perf_counter() - t0
        if passes >= ASSEMBLY_MIN_PASSES and elapsed >= ASSEMBLY_MIN_SECONDS:
            break
    return {
        "stations": len(ready),
        "first_seconds": first,
        "seconds": elapsed,
        "inputs": passes * len(ready),
    }


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def current_rss_mb() -> float:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return float("nan")
    return pages * resource.getpagesize() / 2**20


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ascending values, interpolated between neighbours; NaN for
    none."""
    if not sorted_values:
        return float("nan")
    k = (len(sorted_values) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def check_source(src: Path) -> None:
    """Exit unless ``da_core`` was imported from ``src`` (a benchmark measuring another
    checkout's source must not measure this one by mistake)."""
    import da_core

    if not Path(da_core.__file__ or "").resolve().is_relative_to(src.resolve()):
        raise SystemExit(f"da_core was imported from {da_core.__file__}, not from {src}")


class GcTimer:
    """Seconds spent in the cyclic garbage collector while registered (``gc.callbacks``)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.longest = 0.0
        self.full = 0
        self._t0 = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._t0 = time.perf_counter()
        else:
            took = time.perf_counter() - self._t0
            self.seconds += took
            self.longest = max(self.longest, took)
            self.full += info.get("generation") == 2


def _isolated(fn: Callable[[], dict[str, float]]) -> dict[str, float]:
    """Run one phase on a clean heap; adds the seconds it spent in the cyclic GC."""
    gc.collect()
    timer = GcTimer()
    gc.callbacks.append(timer)
    try:
        out = fn()
    finally:
        gc.callbacks.remove(timer)
        gc.collect()
    out["gc_seconds"] = timer.seconds
    out["gc_full"] = timer.full
    return out


def worker_time(stations: int, messages: int, module: str) -> dict[str, Any]:
    catalog = default_catalog()
    records = list(itertools.islice(workload(stations), messages))
    chunks = list(polls(records))
    input_mb = sum(len(r.value or b"") for r in records) / 2**20
    rss_input = current_rss_mb()
    gc.collect()
    gc.freeze()  # the input lives for the whole process: keep the collector off it
    out: dict[str, Any] = {
        "input_mb": input_mb,
        "rss_after_input_mb": rss_input,
        "by_topic": dict(sorted(_count_topics(records).items())),
    }
    out["bare"] = _isolated(lambda: bench_bare(records, catalog))
    out["ingest"] = _isolated(lambda: bench_ingest(chunks, catalog, module))
    out["e2e"] = _isolated(lambda: bench_end_to_end(chunks, catalog, module))
    out["assembly"] = _isolated(lambda: bench_assembly(chunks, catalog))
    out["peak_rss_mb"] = peak_rss_mb()
    return out


def worker_rss(stations: int, messages: int, module: str) -> dict[str, Any]:
    """Stream the workload (never held whole) through the engine end-to-end, then assemble
    every ready station once; report the peak RSS."""
    catalog = default_catalog()
    eng = Engine(catalog, module, OrjsonCodec())
    out: dict[str, Any] = run_end_to_end(eng, polls(itertools.islice(workload(stations), messages)))
    now = out["now"]
    for sid in ready_stations(eng, now):
        eng.get_inputs(sid, now)
    out["stations"] = len(eng)
    out["peak_rss_mb"] = peak_rss_mb()
    return out


def _count_topics(records: Iterable[Record]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in records:
        counts[r.topic] = counts.get(r.topic, 0) + 1
    return counts


# ---------------------------------------------------------------------------- driver


def _spawn(kind: str, stations: int, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        kind,
        "--stations",
        str(stations),
        "--messages",
        str(args.messages),
        "--module",
        args.module,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"worker {kind} for {stations} stations failed")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _median(runs: Sequence[dict[str, Any]], fn: Callable[[dict[str, Any]], float]) -> float:
    return statistics.median(fn(r) for r in runs)


def summarise(
    timing: Sequence[dict[str, Any]], memory: Sequence[dict[str, Any]]
) -> dict[str, float]:
    m = _median
    return {
        "messages": m(timing, lambda r: sum(r["by_topic"].values())),
        "input_mb": m(timing, lambda r: r["input_mb"]),
        "bare_msgs": m(timing, lambda r: sum(r["by_topic"].values()) / r["bare"]["seconds"]),
        "bare_updates": m(timing, lambda r: r["bare"]["updates"] / r["bare"]["seconds"]),
        "bare_us": m(timing, lambda r: 1e6 * r["bare"]["seconds"] / r["bare"]["updates"]),
        "bare_n": m(timing, lambda r: r["bare"]["updates"]),
        "ingest_msgs": m(timing, lambda r: sum(r["by_topic"].values()) / r["ingest"]["seconds"]),
        "ingest_updates": m(timing, lambda r: r["ingest"]["updates"] / r["ingest"]["seconds"]),
        "ingest_us": m(timing, lambda r: 1e6 * r["ingest"]["seconds"] / r["ingest"]["updates"]),
        "ingest_n": m(timing, lambda r: r["ingest"]["updates"]),
        "ingest_gc": m(timing, lambda r: 100 * r["ingest"]["gc_seconds"] / r["ingest"]["seconds"]),
        "bare_gc": m(timing, lambda r: 100 * r["bare"]["gc_seconds"] / r["bare"]["seconds"]),
        "e2e_gc": m(timing, lambda r: 100 * r["e2e"]["gc_seconds"] / r["e2e"]["seconds"]),
        "e2e_msgs": m(timing, lambda r: r["e2e"]["records"] / r["e2e"]["seconds"]),
        "e2e_runs": m(timing, lambda r: r["e2e"]["runs"] / r["e2e"]["seconds"]),
        "e2e_n": m(timing, lambda r: r["e2e"]["runs"]),
        "asm_first": m(
            timing, lambda r: r["assembly"]["stations"] / r["assembly"]["first_seconds"]
        ),
        "asm": m(timing, lambda r: r["assembly"]["inputs"] / r["assembly"]["seconds"]),
        "asm_n": m(timing, lambda r: r["assembly"]["stations"]),
        "rss_stream": m(memory, lambda r: r["peak_rss_mb"]),
        "rss_held": m(timing, lambda r: r["peak_rss_mb"]),
        "rss_input": m(timing, lambda r: r["rss_after_input_mb"]),
    }


ROWS: tuple[tuple[str, str, str], ...] = (
    ("messages", "workload: messages", "{:,.0f}"),
    ("input_mb", "workload: encoded input (MB)", "{:,.1f}"),
    ("bare_n", "station updates (all topics)", "{:,.0f}"),
    ("bare_msgs", "bare extract+window.add: messages/s", "{:,.0f}"),
    ("bare_updates", "bare: station updates/s", "{:,.0f}"),
    ("bare_us", "bare: µs per station update", "{:.2f}"),
    ("bare_gc", "bare: % of time in cyclic GC", "{:.0f}%"),
    ("ingest_n", "engine: station updates applied", "{:,.0f}"),
    ("ingest_msgs", "engine ingest: messages/s", "{:,.0f}"),
    ("ingest_updates", "engine ingest: station updates/s", "{:,.0f}"),
    ("ingest_us", "engine ingest: µs per station update", "{:.2f}"),
    ("ingest_gc", "engine ingest: % of time in cyclic GC", "{:.0f}%"),
    ("e2e_msgs", "engine end-to-end (no callback): msgs/s", "{:,.0f}"),
    ("e2e_runs", "engine end-to-end: runs/s", "{:,.0f}"),
    ("e2e_n", "engine end-to-end: runs", "{:,.0f}"),
    ("e2e_gc", "engine end-to-end: % of time in cyclic GC", "{:.0f}%"),
    ("asm_n", "assembly: ready stations", "{:,.0f}"),
    ("asm_first", "assembly: module inputs/s (first pass)", "{:,.0f}"),
    ("asm", "assembly: module inputs/s (repeated)", "{:,.0f}"),
    ("rss_stream", "peak RSS, streamed input (MB)", "{:,.0f}"),
    ("rss_held", "peak RSS, whole input held (MB)", "{:,.0f}"),
    ("rss_input", "  of which RSS after generating input", "{:,.0f}"),
)


def report(summary: dict[int, dict[str, float]], args: argparse.Namespace) -> Targets:
    counts = sorted(summary)
    width = 44
    print(
        f"\ncore ingest: {args.messages:,} messages, engine module {args.module}, "
        f"assembly module {ASSEMBLY_MODULE}; medians of {args.repeats} runs"
    )
    print("stations".ljust(width) + "".join(f"{n:>14,}" for n in counts))
    for key, label, fmt in ROWS:
        print(label.ljust(width) + "".join(f"{fmt.format(summary[n][key]):>14}" for n in counts))
    targets: Targets = {}
    lo, hi = counts[0], counts[-1]
    print("\ntargets:")
    rate = summary[lo]["ingest_msgs"]
    _target(targets, f"engine ingest at {lo:,} stations >= 200,000 msgs/s", rate, rate >= 200_000)
    if hi != lo:
        for key, name in (("ingest_us", "engine ingest"), ("bare_us", "bare")):
            ratio = summary[hi][key] / summary[lo][key]
            _target(
                targets,
                f"{name}: cost per update at {hi:,} / at {lo:,} stations <= 2",
                ratio,
                ratio <= 2.0,
                "{:.2f}",
            )
    worst = min(summary[n]["asm"] for n in counts)
    _target(targets, "assembly >= 20,000 module inputs/s (slowest count)", worst, worst >= 20_000)
    worst = min(summary[n]["asm_first"] for n in counts)
    _target(targets, "  same, first pass (slowest count)", worst, worst >= 20_000)
    rss = summary[hi]["rss_stream"]
    _target(targets, f"peak RSS at {hi:,} stations <= 500 MB (streamed)", rss, rss <= 500)
    return targets


def _target(targets: Targets, name: str, value: float, ok: bool, fmt: str = "{:,.0f}") -> None:
    targets[name] = {"value": value, "ok": ok}
    print(f"  [{'met ' if ok else 'MISS'}] {name}: {fmt.format(value)}")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--messages", type=int, default=200_000)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--stations", default="100,1000,10000")
    p.add_argument("--module", default="electricity_price")
    p.add_argument("--no-rss", action="store_true", help="skip the streamed peak RSS runs")
    p.add_argument("--json", help="also write the raw and summarised figures to this file")
    p.add_argument("--worker", choices=("time", "rss"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    counts = [int(s.replace("_", "")) for s in args.stations.split(",") if s.strip()]
    if args.worker:
        fn = worker_time if args.worker == "time" else worker_rss
        print(json.dumps(fn(counts[0], args.messages, args.module)))
        return 0
    summary: dict[int, dict[str, float]] = {}
    raw: dict[int, dict[str, list[dict[str, Any]]]] = {}
    for n in counts:
        timing, memory = [], []
        for i in range(args.repeats):
            print(f"{n:,} stations: run {i + 1}/{args.repeats}", file=sys.stderr, flush=True)
            timing.append(_spawn("time", n, args))
            if not args.no_rss:
                memory.append(_spawn("rss", n, args))
        if not memory:
            memory = [{"peak_rss_mb": float("nan")}]
        raw[n] = {"timing": timing, "memory": memory}
        summary[n] = summarise(timing, memory)
    targets = report(summary, args)
    if args.json:
        Path(args.json).write_text(
            json.dumps({"summary": summary, "targets": targets, "raw": raw}, indent=1)
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
