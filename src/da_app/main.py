"""The ``da-app`` console entry point: ``demo``, ``run`` and ``status``."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
import urllib.request
from collections.abc import Sequence
from typing import Any

from da_core.errors import ConfigError


def _load_callable(path: str) -> Any:
    mod, _, attr = path.partition(":")
    if not mod or not attr:
        raise SystemExit(f"--callback must look like package.module:function (got {path!r})")
    return getattr(importlib.import_module(mod), attr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="da-app", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="run every module on the in-memory bus with simulated stations")
    d.add_argument("--stations", type=int, default=50)
    d.add_argument("--duration", type=float, default=20.0, help="wall seconds (Ctrl-C stops too)")
    d.add_argument("--acceleration", type=float, default=10.0, help="simulated seconds per second")
    d.add_argument("--max-workers", type=int, default=8)
    r = sub.add_parser("run", help="run one module from a config file and a callback")
    r.add_argument("--config", help="YAML or config.py (default: DATA_ANALYSIS_CONFIG or ./)")
    r.add_argument("--module", default=None, help="module name (default: load_prediction)")
    r.add_argument("--callback", required=True, help="package.module:function")
    r.add_argument("--batch-upload-handler", default=None, help="package.module:function")
    r.add_argument("--async", dest="use_async", action="store_true", help="use the async service")
    s = sub.add_parser("status", help="show the status of a running instance")
    s.add_argument("--url", default="http://127.0.0.1:8080", help="the instance's health address")
    s.add_argument("--json", action="store_true", help="print the raw JSON")
    args = parser.parse_args(argv)

    from da_app.logconfig import configure_logging

    if args.command == "demo":
        configure_logging(console=False)
        from da_app.demo import run_demo

        run_demo(args.stations, args.duration, args.acceleration, args.max_workers)
        return 0
    if args.command == "run":
        configure_logging()
        return _run(args)
    return _status(args)


def _run(args: argparse.Namespace) -> int:
    from da_app.services import AsyncDataAnalysisService, DataAnalysisService

    callback = _load_callable(args.callback)
    handler = _load_callable(args.batch_upload_handler) if args.batch_upload_handler else None
    try:
        if args.use_async:
            import asyncio

            async def go() -> None:
                svc = AsyncDataAnalysisService(module_name=args.module, config=args.config)
                await svc.start(callback, batch_upload_handler=handler)
                try:
                    while svc.runner is not None and svc.runner.alive:
                        await asyncio.sleep(0.5)
                finally:
                    await svc.stop()

            asyncio.run(go())
            return 0
        svc = DataAnalysisService(module_name=args.module, config=args.config)
        try:
            svc.start(callback, batch_upload_handler=handler, background=False)
        except KeyboardInterrupt:
            logging.getLogger("da_app").info("stopping on Ctrl-C")
    except ConfigError as exc:
        print(f"da-app: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    return 0


def _status(args: argparse.Namespace) -> int:
    url = args.url.rstrip("/") + "/status"
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            data = json.loads(resp.read())
    except OSError as exc:
        print(f"da-app: cannot reach {url}: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(data, indent=2, ensure_ascii=False))
        return 0
    svc = data.get("service", data)
    for k in (
        "module",
        "adapter",
        "group_id",
        "main_thread_alive",
        "consumer_alive",
        "producer_alive",
        "station_count",
        "pending_uploads",
        "commit_age_seconds",
    ):
        print(f"{k:20s} {svc.get(k)}")
    lag = data.get("lag", {})
    if lag:
        print(
            f"\n{'topic':40s} {'part':>4s} {'committed':>10s} {'position':>10s} {'high':>10s} "
            f"{'lag':>8s}"
        )
        for topic, parts in lag.items():
            for p in parts:
                print(
                    f"{topic:40s} {p['partition']:4d} {p['committed']!s:>10s} "
                    f"{p['position']!s:>10s} {p['high_watermark']!s:>10s} {p['lag']!s:>8s}"
                )
    stations = data.get("stations", {})
    if stations:
        print(f"\n{'station':12s} {'running':>7s} {'ready':>5s} {'runs':>6s} {'errors':>6s}")
        for sid, st in sorted(stations.items())[:50]:
            print(
                f"{sid:12s} {st.get('running')!s:>7s} {st.get('ready')!s:>5s} "
                f"{st.get('runs', 0):6d} {st.get('errors', 0):6d}"
            )
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
