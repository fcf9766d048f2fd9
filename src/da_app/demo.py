"""``da-app demo``: every module of the default catalog in one process on the in-memory bus.

Simulated stations publish all 13 topics; each module runs a toy model whose result shows the
dependency chain (operation_optimization reads load_prediction's result, electricity_price
reads pv_prediction, evaluation_model and SOH_model…). A live summary prints every second and
a final summary at the end.
"""

from __future__ import annotations

import statistics
import sys
import time
from typing import Any, TextIO

from da_adapters.memory import MemoryBroker
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
) -> dict[str, Any]:
    """Run the demo; returns the final summary figures."""
    start = time.time()
    clock = ScaledClock(start, acceleration)
    broker = MemoryBroker(clock)
    catalog = default_catalog()
    order = DependencyGraph.from_catalog(catalog).topological_order()
    services: dict[str, DataAnalysisService] = {}
    for name in order:
        svc = DataAnalysisService(
            module_name=name,
            config={},
            adapter="memory",
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
        f"da-app demo: {stations} stations, {len(services)} modules "
        f"({' -> '.join(order)}), acceleration x{acceleration:g}, {duration:g}s",
        file=out,
    )
    t_end = time.monotonic() + duration
    next_print = time.monotonic() + interval
    last_pub, last_runs, last_t = published, 0, time.monotonic()
    try:
        while time.monotonic() < t_end:
            for topic, key, payload in sim.until(clock.time()):
                broker.produce(
                    topic, sim.maybe_corrupt(encode(payload)), key=key.encode() if key else None
                )
                published += 1
            if time.monotonic() >= next_print:
                now_m = time.monotonic()
                runs = sum(s.engine.stats.runs_started for s in services.values())
                dt = now_m - last_t
                print(
                    _line(
                        services, (published - last_pub) / dt, (runs - last_runs) / dt, published
                    ),
                    file=out,
                    flush=True,
                )
                last_pub, last_runs, last_t = published, runs, now_m
                next_print = now_m + interval
            time.sleep(0.01)
    except KeyboardInterrupt:
        print("interrupted; stopping", file=out)
    for svc in reversed(list(services.values())):
        svc.stop()
    summary = _summary(services, published, sim.bad_sent, time.monotonic() - (t_end - duration))
    print(_final(summary), file=out, flush=True)
    return summary


def _line(
    services: dict[str, DataAnalysisService], msg_rate: float, run_rate: float, published: int
) -> str:
    stations = max(len(s.engine) for s in services.values())
    batches = sum(s.engine.stats.batches_completed for s in services.values())
    dead = sum(s.engine.stats.dead_letters for s in services.values())
    lat = []
    for name, s in services.items():
        r = s.runner
        if r is not None and r.stats.callback_seconds:
            lat.append(f"{name}={statistics.median(r.stats.callback_seconds) * 1000:.2f}ms")
    return (
        f"stations {stations:5d} | published {published:7d} ({msg_rate:7.0f} msg/s) | "
        f"runs {run_rate:6.0f}/s | batches {batches:6d} | dead letters {dead:3d} | "
        f"p50 callback: {' '.join(lat)}"
    )


def _summary(
    services: dict[str, DataAnalysisService], published: int, bad: int, elapsed: float
) -> dict[str, Any]:
    per: dict[str, Any] = {}
    for name, s in services.items():
        st = s.engine.stats
        r = s.runner
        lat = sorted(r.stats.callback_seconds) if r is not None else []
        per[name] = {
            "stations": len(s.engine),
            "records": st.records_in,
            "runs": st.runs_started,
            "batches": st.batches_completed,
            "timed_out": st.batches_timed_out,
            "uploads": st.uploads_ok,
            "dead_letters": st.dead_letters,
            "failed_runs": sum(st.runs_failed.values()),
            "p50_ms": round(lat[len(lat) // 2] * 1000, 3) if lat else None,
            "p99_ms": round(lat[int(len(lat) * 0.99)] * 1000, 3) if lat else None,
        }
    return {
        "published": published,
        "corrupted_sent": bad,
        "elapsed_s": round(elapsed, 1),
        "modules": per,
    }


def _final(summary: dict[str, Any]) -> str:
    lines = [
        f"final summary: published {summary['published']} messages "
        f"({summary['corrupted_sent']} deliberately corrupted) in {summary['elapsed_s']}s",
        f"{'module':24s} {'stations':>8s} {'records':>8s} {'runs':>7s} {'batches':>7s} "
        f"{'timeouts':>8s} {'uploads':>7s} {'dead':>5s} {'fail':>5s} {'p50 ms':>8s} "
        f"{'p99 ms':>8s}",
    ]
    for name, m in summary["modules"].items():
        lines.append(
            f"{name:24s} {m['stations']:8d} {m['records']:8d} {m['runs']:7d} {m['batches']:7d} "
            f"{m['timed_out']:8d} {m['uploads']:7d} {m['dead_letters']:5d} {m['failed_runs']:5d} "
            f"{m['p50_ms'] if m['p50_ms'] is not None else '-':>8} "
            f"{m['p99_ms'] if m['p99_ms'] is not None else '-':>8}"
        )
    return "\n".join(lines)
