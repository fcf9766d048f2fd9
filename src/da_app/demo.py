"""``da-app demo``: every module of the default catalog in one process on the in-memory bus.

Simulated stations publish all 13 topics; each module runs a toy model whose result shows the
dependency chain (operation_optimization reads load_prediction's result, electricity_price
reads pv_prediction, evaluation_model and SOH_model…). It prints the module graph, then a live
table (rich, redrawn in place) on a terminal or a plain progress line per interval otherwise, and a
final summary that explains the dead-letter count and names the log file. Rendering is in
``da_app.demo_view``; every line fits 100 columns.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from typing import Any, TextIO

from da_adapters.memory import MemoryBroker
from da_app.demo_view import (
    Figures,
    ModuleFigures,
    final_text,
    live_table,
    plain_line,
    render_graph,
)
from da_app.services import DataAnalysisService
from da_app.simulator import ScaledClock, StationSimulator, encode
from da_core.catalog import default_catalog
from da_core.dependency_graph import DependencyGraph


def _num(x: Any, default: float = 0.0) -> float:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else default


def _dep(inp: dict[str, Any], module: str, key: str) -> float | None:
    r = inp.get("dependencies", {}).get(module)
    return None if r is None else _num(r.get(key), 0.0)


def load_prediction(sid: str, inp: dict[str, Any]) -> dict[str, Any]:
    series = [v for v in inp.get("outputPowerPerStationAvg_window") or [] if v is not None]
    last_day = series[-24:] or [0.0]
    return {"next_hour_kw": round(sum(last_day) / len(last_day), 2), "hours_used": len(series)}


def pv_prediction(sid: str, inp: dict[str, Any]) -> dict[str, Any]:
    pv = inp.get("pvPreDcPower") or []
    sunny = inp.get("weatherSituationTomorrow") == "晴"
    return {"pv_kwh_tomorrow": round(sum(_num(v) for v in pv) * (1.0 if sunny else 0.6), 2)}


def evaluation_model(sid: str, inp: dict[str, Any]) -> dict[str, Any]:
    orders = (inp.get("car_order") or {}).get("orders") or []
    return {"utilisation": round(len(orders) / max(1, len(inp.get("acPower") or [1])), 2)}


def soh_model(sid: str, inp: dict[str, Any]) -> dict[str, Any]:
    errors = sum(
        len(v or []) for k, v in inp.items() if k.endswith("Error") and isinstance(v, list)
    )
    return {"soh": round(100 - 0.5 * errors, 1)}


def electricity_price(sid: str, inp: dict[str, Any]) -> dict[str, Any]:
    pv = _dep(inp, "pv_prediction", "pv_kwh_tomorrow") or 0.0
    soh = _dep(inp, "SOH_model", "soh") or 100.0
    return {"suggested_price": round(0.98 - 0.001 * pv + 0.001 * (100 - soh), 3)}


def operation_optimization(sid: str, inp: dict[str, Any]) -> dict[str, Any]:
    load = _dep(inp, "load_prediction", "next_hour_kw")
    cap = _num(inp.get("gridCapacity"), 630.0)
    return {
        "storage_discharge_kw": round(max(0.0, (load or 0.0) - 0.8 * cap), 1),
        "uses_load_prediction": load is not None,
    }


def thermal_management(sid: str, inp: dict[str, Any]) -> dict[str, Any]:
    temps = [_num(t) for t in inp.get("maxTemperature") or []]
    plan = _dep(inp, "operation_optimization", "storage_discharge_kw") or 0.0
    return {"cooling": bool(temps and max(temps) > 30) or plan > 0}


def station_guidance(sid: str, inp: dict[str, Any]) -> dict[str, Any]:
    load = _dep(inp, "load_prediction", "next_hour_kw") or 0.0
    return {"recommend": load < 100}


def customer_mining(sid: str, inp: dict[str, Any]) -> dict[str, Any]:
    cars = inp.get("order_carProducerCode") or []
    return {"brands": sorted({c for c in cars if isinstance(c, str)})}


MODELS = {
    "load_prediction": load_prediction,
    "pv_prediction": pv_prediction,
    "evaluation_model": evaluation_model,
    "SOH_model": soh_model,
    "electricity_price": electricity_price,
    "operation_optimization": operation_optimization,
    "thermal_management": thermal_management,
    "station_guidance": station_guidance,
    "customer_mining": customer_mining,
}


def run_demo(
    stations: int = 50,
    duration: float = 20.0,
    acceleration: float = 10.0,
    max_workers: int = 8,
    out: TextIO = sys.stdout,
    interval: float = 1.0,
    *,
    live: bool | None = None,
    log_file: str | None = None,
) -> dict[str, Any]:
    """Run the demo for ``duration`` wall seconds; returns the final summary figures.

    ``live``: redraw a table in place (needs a terminal); None chooses it when ``out`` is a
    terminal, else one plain line per ``interval`` seconds. ``log_file`` is only reported (the
    caller configured logging), at start and in the summary."""
    if live is None:
        live = bool(getattr(out, "isatty", lambda: False)())
    start = time.time()
    clock = ScaledClock(start, acceleration)
    broker = MemoryBroker(clock)
    catalog = default_catalog()
    graph = DependencyGraph.from_catalog(catalog)
    order = graph.topological_order()
    services: dict[str, DataAnalysisService] = {}
    for name in order:
        svc = DataAnalysisService(
            module_name=name,
            config={},
            adapter="memory",  # asked for explicitly: the demo has no Kafka
            broker=broker,
            clock=clock,
            group_id=f"demo-{name}",
            auto_offset_reset="earliest",
            max_workers=max_workers,
            poll_timeout=0.02,
            health_port=0,  # nine services share this process: no servers on 8080/8001
            metrics_port=0,
        )
        svc.start(MODELS[name])
        services[name] = svc
    sim = StationSimulator(stations, clock.time())
    published = 0
    for topic, key, payload in sim.initial():
        broker.produce(topic, encode(payload), key=key.encode() if key else None)
        published += 1
    print(
        f"da-app demo: {stations} stations, {len(services)} modules on the in-memory bus, "
        f"acceleration x{acceleration:g}, {duration:g}s",
        file=out,
    )
    if log_file:
        print(f"log file: {log_file}", file=out)
    print(render_graph(order, {n: graph.dependencies(n) for n in order}), file=out, flush=True)
    t0 = time.monotonic()
    t_end = t0 + duration
    next_print = t0 + interval
    last: tuple[int, dict[str, int], float] = (published, {}, t0)
    try:
        with _view(out, live) as show:
            while time.monotonic() < t_end:
                for topic, key, payload in sim.until(clock.time()):
                    broker.produce(
                        topic,
                        sim.maybe_corrupt(encode(payload), topic),
                        key=key.encode() if key else None,
                    )
                    published += 1
                now_m = time.monotonic()
                if now_m >= next_print:
                    figs = _figures(services, published, last, now_m - t0, clock.time() - start)
                    show(figs)
                    last = (published, {n: m.runs for n, m in figs.modules.items()}, now_m)
                    next_print = now_m + interval
                time.sleep(0.01)
    except KeyboardInterrupt:
        print("interrupted; stopping", file=out)
    for svc in reversed(list(services.values())):
        svc.stop()
    summary = _summary(services, published, sim.bad_sent, time.monotonic() - t0)
    summary["sim_elapsed_s"] = round(clock.time() - start, 1)
    summary["corrupted_by_topic"] = dict(sim.bad_by_topic)
    summary["topic_readers"] = {t: tuple(catalog.topics[t].modules) for t in sim.bad_by_topic}
    summary["log_file"] = log_file
    print(final_text(summary), file=out, flush=True)
    return summary


@contextlib.contextmanager
def _view(out: TextIO, live: bool) -> Iterator[Any]:
    """Yields ``show(figures)``: redraws a rich table in place, or prints a plain line."""
    if not live:
        yield lambda f: print(plain_line(f), file=out, flush=True)
        return
    from rich.console import Console
    from rich.live import Live

    console = Console(file=out)
    console.width = min(console.width, 100)  # a wider terminal keeps the compact layout
    with Live(console=console, auto_refresh=False, transient=False) as view:
        yield lambda f: view.update(live_table(f), refresh=True)


def _latencies(svc: DataAnalysisService) -> list[float]:
    r = svc.runner
    return sorted(r.stats.callback_seconds) if r is not None else []  # copied under the GIL


def _figures(
    services: dict[str, DataAnalysisService],
    published: int,
    last: tuple[int, dict[str, int], float],
    elapsed: float,
    sim_elapsed: float,
) -> Figures:
    """A snapshot of every service's counters; rates per wall second since ``last``
    (messages published, runs by module, monotonic time)."""
    last_pub, last_runs, last_t = last
    dt = max(1e-9, time.monotonic() - last_t)
    mods: dict[str, ModuleFigures] = {}
    for name, s in services.items():
        st = s.engine.stats
        lat = _latencies(s)
        mods[name] = ModuleFigures(
            stations=len(s.engine),
            records=st.records_in,
            runs=st.runs_started,
            runs_per_s=(st.runs_started - last_runs.get(name, 0)) / dt,
            batches=st.batches_completed,
            timed_out=st.batches_timed_out,
            uploads=st.uploads_ok,
            dead_letters=st.dead_letters,
            failed_runs=sum(st.runs_failed.values()),
            p50=lat[len(lat) // 2] if lat else None,
            p99=lat[int(len(lat) * 0.99)] if lat else None,
        )
    return Figures(
        elapsed=elapsed,
        sim_elapsed=sim_elapsed,
        published=published,
        msg_per_s=(published - last_pub) / dt,
        runs_per_s=sum(m.runs_per_s for m in mods.values()),
        modules=mods,
    )


def _summary(
    services: dict[str, DataAnalysisService], published: int, bad: int, elapsed: float
) -> dict[str, Any]:
    per: dict[str, Any] = {}
    for name, s in services.items():
        st = s.engine.stats
        lat = _latencies(s)
        per[name] = {
            "stations": len(s.engine),
            "records": st.records_in,
            "runs": st.runs_started,
            "batches": st.batches_completed,
            "timed_out": st.batches_timed_out,
            "uploads": st.uploads_ok,
            "dead_letters": st.dead_letters,
            "failed_runs": sum(st.runs_failed.values()),
            "p50_ms": round(lat[len(lat) // 2] * 1000, 6) if lat else None,
            "p99_ms": round(lat[int(len(lat) * 0.99)] * 1000, 6) if lat else None,
        }
    return {
        "published": published,
        "corrupted_sent": bad,
        "dead_letters": sum(m["dead_letters"] for m in per.values()),
        "elapsed_s": round(elapsed, 1),
        "modules": per,
    }
