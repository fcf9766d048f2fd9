"""Restore time on a real broker: how long a restarted instance takes to rebuild its stations'
windows before going live (issue 11).

    python benchmarks/restore.py --bootstrap HOST:PORT [--stations 1000] [--repeats 3]
                                 [--partitions 6] [--adapter confluent|aiokafka]

Workload, produced once to two fresh topics of ``--partitions`` partitions, keyed by station:
per station one SCHEDULE-STATION-PARAM-like record (a one-element array, never expires) and
one REALTIME-like record carrying a 168-hour history (``{"realTimeData": [168 rows]}``, one
slot per hour: the grid is full after restore). The group's offsets are then committed at
the end of both topics, as if a previous instance had consumed everything.

Per repeat a ``load_prediction`` service (direct routing, default readiness: parameters and
REALTIME) starts in that group and is timed by its own restore figures: records replayed and
seconds from the assignment to the end of the restore (``RunnerStats.restore_seconds``, the
``data_analysis_restore_seconds`` gauge), and, as a deployment sees it, from the service's
construction until the restore ended (client start and group join included). It is then
stopped (nothing was consumed live, so nothing new is committed) and the next repeat restores
the same records again.

Prints one line per repeat and the medians: records, seconds, records/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

HOURS = 168


def _rows(sid: str, now: float) -> list[dict[str, Any]]:
    base = int(now // 3600) - HOURS
    return [
        {
            "stationId": sid,
            "sendTime": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime((base + h) * 3600)),
            "outputPowerPerStationAvg": float(h),
            "outputPowerPerStationMax": float(h) + 1.0,
        }
        for h in range(1, HOURS + 1)
    ]


def prepare(bootstrap: str, stations: int, partitions: int) -> tuple[str, str, str, int]:
    """Two fresh topics with the workload, and a group committed at their ends."""
    tag = uuid.uuid4().hex[:8]
    rt, params, group = f"bench-RT-{tag}", f"bench-PARAM-{tag}", f"bench-restore-{tag}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for fut in admin.create_topics([NewTopic(t, partitions, 1) for t in (rt, params)]).values():
        fut.result(30)
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "acks": "all"})
    now = time.time()
    n = 0
    for i in range(stations):
        sid = f"B{i:05d}"
        p.produce(params, json.dumps([{"stationId": sid, "gridCapacity": 630.0}]), sid)
        p.produce(rt, json.dumps({"realTimeData": _rows(sid, now)}), sid)
        n += 2
        if i % 500 == 0:
            p.flush(60)
    assert p.flush(120) == 0
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    ends = [
        TopicPartition(t, q, c.get_watermark_offsets(TopicPartition(t, q), timeout=10)[1])
        for t in (rt, params)
        for q in range(partitions)
    ]
    c.commit(offsets=ends, asynchronous=False)
    c.close()
    return rt, params, group, n


def _config(bootstrap: str, group: str, rt: str, params: str) -> dict[str, Any]:
    return {
        "KAFKA_CONFIG": {
            "bootstrap_servers": bootstrap,
            "consumer": {"group_id": group, "auto_offset_reset": "earliest"},
        },
        "SERVICE_CONFIG": {"station_routing": "direct"},
        "TOPIC_DETAIL": {
            rt: {
                "extractor": "wrapped",
                "wrapper_key": "realTimeData",
                "window": "hourly_grid",
                "window_size": HOURS,
                "time_key": "sendTime",
                "fields": ["outputPowerPerStationAvg", "outputPowerPerStationMax"],
                "expire_seconds": 7200,
            },
            params: {"extractor": "array", "fields": ["gridCapacity"], "expire_seconds": "never"},
        },
        "modules": {"load_prediction": {"topics": [rt, params]}},
    }


def _model(sid: str, inp: dict[str, Any]) -> None:
    return None


def once_sync(cfg: dict[str, Any]) -> tuple[int, float, float, int]:
    from da_app.services import DataAnalysisService

    t0 = time.perf_counter()
    svc = DataAnalysisService(module_name="load_prediction", config=cfg, adapter="confluent")
    svc.start(_model)
    try:
        return _wait(svc, t0)
    finally:
        svc.stop()


def once_async(cfg: dict[str, Any]) -> tuple[int, float, float, int]:
    from da_app.services import AsyncDataAnalysisService

    async def go() -> tuple[int, float, float, int]:
        t0 = time.perf_counter()
        svc = AsyncDataAnalysisService(module_name="load_prediction", config=cfg)
        await svc.start(_model)
        try:
            while True:
                got = _done(svc, t0)
                if got is not None:
                    return got
                await asyncio.sleep(0.01)
        finally:
            await svc.stop()

    return asyncio.run(go())


def _done(svc: Any, t0: float) -> tuple[int, float, float, int] | None:
    stats = svc.runner_stats()
    if stats is None or stats.restore_seconds is None or stats.restoring:
        return None
    return stats.restore_records, stats.restore_seconds, time.perf_counter() - t0, len(svc.engine)


def _wait(svc: Any, t0: float, timeout: float = 600.0) -> tuple[int, float, float, int]:
    done = threading.Event()
    while not done.wait(0.01):
        got = _done(svc, t0)
        if got is not None:
            return got
        if time.perf_counter() - t0 > timeout:
            raise TimeoutError("restore did not finish")
    raise AssertionError("unreachable")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--bootstrap", required=True, help="HOST:PORT of a running broker")
    parser.add_argument("--stations", type=int, default=1000, help="default %(default)s")
    parser.add_argument("--repeats", type=int, default=3, help="default %(default)s")
    parser.add_argument("--partitions", type=int, default=6, help="default %(default)s")
    parser.add_argument("--adapter", choices=["confluent", "aiokafka"], default="confluent")
    args = parser.parse_args(argv)
    t = time.perf_counter()
    rt, params, group, produced = prepare(args.bootstrap, args.stations, args.partitions)
    print(
        f"produced {produced} records for {args.stations} stations in "
        f"{time.perf_counter() - t:.1f}s"
    )
    cfg = _config(args.bootstrap, group, rt, params)
    once = once_sync if args.adapter == "confluent" else once_async
    rows = []
    for i in range(args.repeats):
        records, seconds, total, stations = once(cfg)
        rows.append((records, seconds, total))
        print(
            f"repeat {i + 1}: {records} records, {stations} stations, restore {seconds:.2f}s "
            f"({records / seconds if seconds else 0:,.0f} records/s), "
            f"start to restored {total:.2f}s"
        )
    rec = statistics.median(r[0] for r in rows)
    sec = statistics.median(r[1] for r in rows)
    tot = statistics.median(r[2] for r in rows)
    print(
        f"median ({args.adapter}, {args.stations} stations): {rec:.0f} records, "
        f"{sec:.2f}s restore, {rec / sec if sec else 0:,.0f} records/s, "
        f"{tot:.2f}s start to restored"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
