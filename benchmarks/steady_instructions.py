"""Instructions of one module's steady state, counted by callgrind: exact and repeatable on a
noisy machine, for A/B comparisons of the per-record and per-run path.

    python benchmarks/steady_instructions.py --module station_guidance [--stations 300]
        [--seconds 20] [--src PATH] [--base PATH]

The script re-runs itself under ``valgrind --tool=callgrind --instr-atstart=no``. The child
generates the workload and polls of ``fleet.py`` (``fleet.phase_polls``: at most 500 records,
never across a simulated second), drives the engine through the bootstrap
(``core_ingest.run_end_to_end``; ``fleet.production_catalog`` and ``fleet.GC_THRESHOLD``: the
service's ``min_run_interval`` of 1 s and GC thresholds),
then switches instrumentation on (``callgrind_control -i on``), drives ``--seconds`` simulated
seconds of steady state and switches it off. The figure printed is the steady phase alone:
neither the interpreter's start, the workload generation nor the bootstrap is counted.

``--src`` points at another checkout's ``src`` (a baseline worktree) to compare two revisions
with the same harness; ``--base`` measures a second ``src`` at each station count too and
prints the ratio per count and their median. Needs valgrind; about a minute at 300 stations
and 20 seconds.

A count is exact for one source and input only if the modules are compiled the same way:
loaded from a ``__pycache__`` that a test run wrote, they gave another heap layout, and with
it other hash collisions in the id-keyed memo tables, than compiled at import (one revision:
1,473 and 1,503 M, 2 % apart). So the child compiles every module itself (a fresh
``PYTHONPYCACHEPREFIX``); since then a repeated run gives the same count, and an A/B at
several counts (``--stations 250,300,350 --base ...``) gave ratios within 0.001 of each
other. Read the spread of the ratios all the same.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent


def child(module: str, stations: int, seconds: float, src: Path) -> None:
    # da_core, da_adapters and da_app from ``src`` (first on sys.path) before fleet and
    # core_ingest, which would otherwise import them from this checkout
    from da_adapters.codec import OrjsonCodec
    from da_app import simulator  # noqa: F401  (core_ingest's workload)
    from da_core.engine import Engine

    sys.path.insert(1, str(_HERE))
    import core_ingest as ci
    import fleet

    ci.check_source(src)

    if fleet.GC_THRESHOLD is not None:
        gc.set_threshold(*fleet.GC_THRESHOLD)
    eng = Engine(fleet.production_catalog(module), module, OrjsonCodec())
    end = ci.START + seconds
    polls: dict[str, list[list[Any]]] = {"bootstrap": [], "steady": []}
    stream = itertools.takewhile(lambda r: r.timestamp <= end, ci.workload(stations))
    for phase, poll in fleet.phase_polls(stream, whole=False):
        polls[phase].append(poll)
    ci.run_end_to_end(eng, polls["bootstrap"])
    toggle = ["callgrind_control", "-i"]
    subprocess.run([*toggle, "on", str(os.getpid())], check=True, capture_output=True)
    t0 = time.process_time()
    out = ci.run_end_to_end(eng, polls["steady"])
    cpu = time.process_time() - t0
    subprocess.run([*toggle, "off", str(os.getpid())], check=True, capture_output=True)
    steady = sum(map(len, polls["steady"]))
    print(f"steady records {steady:,}, runs {out['runs']:,}, CPU under valgrind {cpu:.1f} s")


def measure(module: str, stations: int, seconds: float, src: Path) -> tuple[int, str] | None:
    """(instructions of the steady phase, the child's line) of one run under callgrind, or
    None when it failed (its output then went to stderr)."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={tmp}/callgrind.out",
            sys.executable,
            __file__,
            "--child",
            f"--module={module}",
            f"--stations={stations}",
            f"--seconds={seconds}",
            f"--src={src}",
        ]
        # every module compiled in the child, never loaded from a ``__pycache__`` another run
        # wrote: the heap's layout, and the count, then depend on the source alone
        env = {
            **os.environ,
            "PYTHONHASHSEED": "0",
            "PYTHONPYCACHEPREFIX": f"{tmp}/pycache",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        print(done.stdout, done.stderr, sep="\n", file=sys.stderr)
        return None
    return int(found.group(1)), done.stdout.strip()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--module", required=True)
    p.add_argument("--stations", default="300", help="one count or several: 250,300,350")
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--src", help="the src directory to measure (default: this checkout's)")
    p.add_argument("--base", help="another src directory, measured at the same counts")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    src = Path(args.src).resolve() if args.src else _HERE.parent / "src"
    counts = [int(c) for c in str(args.stations).split(",") if c.strip()]
    if args.child:
        sys.path.insert(0, str(src))
        child(args.module, counts[0], args.seconds, src)
        return 0
    sources = [src] if args.base is None else [Path(args.base).resolve(), src]
    ratios: list[float] = []
    for n in counts:
        got: list[int] = []
        for where in sources:
            res = measure(args.module, n, args.seconds, where)
            if res is None:
                return 1
            got.append(res[0])
            print(res[1])
            print(
                f"{args.module}, {n:,} stations, {args.seconds:g} simulated s, {where}: "
                f"{res[0] / 1e6:,.0f} M instructions in the steady phase"
            )
        if len(got) == 2:
            ratios.append(got[1] / got[0])
            print(f"  {n:,} stations: {got[1] / got[0]:.4f} of the base")
    if ratios:
        spread = f"{min(ratios):.4f}-{max(ratios):.4f}"
        print(f"ratio to the base: median {statistics.median(ratios):.4f} ({spread})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
