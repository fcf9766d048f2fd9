"""The ``da-app`` console entry point: ``demo``, ``run`` and ``status``.

``run`` configures logging (``da_app.logconfig``), starts the module with its health and metrics
servers, reloads the configuration on SIGHUP (an invalid file is rejected, logged, and the old
configuration stays) and stops cleanly on SIGTERM or Ctrl-C (``da_app.signals``, through
``DataAnalysisService.start(background=False)`` or ``AsyncDataAnalysisService.serve()``).
``status --url`` prints a running instance's health, throughput, per-topic lag and stations
from its ``/status`` endpoint.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

from da_core.errors import ConfigError

log = logging.getLogger("da_app.main")


class CallbackPathError(SystemExit):
    """A ``--callback``/``--batch-upload-handler`` path that cannot be loaded: exit code 2 (a
    usage error, as argparse uses), with a one-line message (``str()``) already printed."""

    def __init__(self, message: str) -> None:
        super().__init__(2)
        self.message = message

    def __str__(self) -> str:
        return self.message


def _load_callable(path: str, option: str = "--callback") -> Any:
    """``package.module:function`` → the function. A malformed path, a module that cannot be
    imported (missing, or failing with ImportError/SyntaxError) or a missing or non-callable
    attribute prints one line to stderr, naming what and why, and raises ``CallbackPathError``
    (exit code 2); the user's traceback is of no help for a typo in a command line. Any other
    exception raised while importing the user's module propagates with its traceback."""

    def fail(message: str) -> CallbackPathError:
        print(f"da-app: {message}", file=sys.stderr)
        return CallbackPathError(message)

    mod, _, attr = path.partition(":")
    if not mod or not attr:
        raise fail(f"{option} must look like package.module:function (got {path!r})")
    try:
        module = importlib.import_module(mod)
    except (ImportError, SyntaxError) as exc:
        reason = f"{type(exc).__name__}: {exc}"
        raise fail(f"{option} {path}: cannot import module {mod!r} ({reason})") from None
    try:
        fn = getattr(module, attr)
    except AttributeError:
        where = getattr(module, "__file__", None) or mod
        raise fail(f"{option} {path}: module {mod!r} ({where}) has no {attr!r}") from None
    if not callable(fn):
        raise fail(f"{option} {path}: {attr!r} is a {type(fn).__name__}, not a function")
    return fn


def demo_log_file() -> str:
    """Where the demo logs by default: ``DATA_ANALYSIS_LOG`` if set, else ``demo.log`` in the
    active virtualenv (``<venv>/log/``), else in the temporary directory; never the working
    directory."""
    env = os.getenv("DATA_ANALYSIS_LOG")
    if env:
        return env
    if sys.prefix != sys.base_prefix:
        return os.path.join(sys.prefix, "log", "demo.log")
    return os.path.join(tempfile.gettempdir(), "da-app-demo.log")


def _add_demo_parser(sub: Any) -> None:
    d = sub.add_parser(
        "demo",
        help="run every module on the in-memory bus with simulated stations",
        description="Runs the nine modules of the default catalog in one process on the "
        "in-memory bus, fed by simulated stations; shows a live table and a final summary.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    d.add_argument("--stations", type=int, default=50, help="simulated stations")
    d.add_argument(
        "--duration", type=float, default=20.0, help="wall-clock seconds to run (Ctrl-C stops)"
    )
    d.add_argument(
        "--acceleration",
        type=float,
        default=10.0,
        help="simulated seconds per wall-clock second (batch timeouts and expiry follow it)",
    )
    d.add_argument(
        "--max-workers", type=int, default=8, help="callback threads per module (nine modules)"
    )
    d.add_argument(
        "--interval", type=float, default=1.0, help="seconds between refreshes of the figures"
    )
    d.add_argument(
        "--view",
        choices=("auto", "table", "plain"),
        default="auto",
        help="table: redraw a live table in place; plain: one line per interval; "
        "auto: the table on a terminal, plain lines otherwise",
    )
    d.add_argument(
        "--log-file",
        default=demo_log_file(),
        help="the log file (DATA_ANALYSIS_LOG if set, else in the virtualenv or temp directory)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="da-app", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _add_demo_parser(sub)
    r = sub.add_parser("run", help="run one module from a config file and a callback")
    r.add_argument("--config", help="YAML or config.py (default: DATA_ANALYSIS_CONFIG or ./)")
    r.add_argument("--module", default=None, help="module name (default: load_prediction)")
    r.add_argument("--callback", required=True, help="package.module:function")
    r.add_argument("--batch-upload-handler", default=None, help="package.module:function")
    r.add_argument("--async", dest="use_async", action="store_true", help="use the async service")
    s = sub.add_parser("status", help="show the status of a running instance")
    s.add_argument("--url", default="http://127.0.0.1:8080", help="the instance's health address")
    s.add_argument("--json", action="store_true", help="print the raw JSON")
    s.add_argument("--stations", type=int, default=50, help="station rows to show (0: none)")
    args = parser.parse_args(argv)

    from da_app.logconfig import configure_logging

    if args.command == "demo":
        configure_logging(console=False, log_file=args.log_file)
        from da_app.demo import run_demo

        live = {"auto": None, "table": True, "plain": False}[args.view]
        run_demo(
            args.stations,
            args.duration,
            args.acceleration,
            args.max_workers,
            interval=args.interval,
            live=live,
            log_file=os.path.abspath(args.log_file),
        )
        return 0
    if args.command == "run":
        from da_app.settings import Settings

        try:
            svc = Settings.load(args.config).service
        except ConfigError as exc:
            configure_logging()
            print(f"da-app: {exc}", file=sys.stderr)
            return 2
        configure_logging(log_file=svc.log_file, level=svc.log_level, fmt=svc.log_format)
        return _run(args)
    return _status(args)


def _run(args: argparse.Namespace) -> int:
    from da_app.services import AsyncDataAnalysisService, DataAnalysisService

    callback = _load_callable(args.callback)
    handler = (
        _load_callable(args.batch_upload_handler, "--batch-upload-handler")
        if args.batch_upload_handler
        else None
    )
    try:
        if args.use_async:
            import asyncio

            async def go() -> None:
                svc = AsyncDataAnalysisService(module_name=args.module, config=args.config)
                await svc.serve(callback, batch_upload_handler=handler)

            asyncio.run(go())
            return 0
        svc = DataAnalysisService(module_name=args.module, config=args.config)
        try:  # in the foreground; SIGHUP reloads, SIGTERM stops (da_app.signals)
            svc.start(callback, batch_upload_handler=handler, background=False)
        except KeyboardInterrupt:
            log.info("stopping on Ctrl-C")
    except ConfigError as exc:
        print(f"da-app: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    return 0


def _status(args: argparse.Namespace) -> int:
    url = args.url.rstrip("/") + "/status"
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            data = json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        print(
            f"da-app: {url} answered {exc.code}: {exc.read().decode(errors='replace')}",
            file=sys.stderr,
        )
        return 1
    except OSError as exc:
        print(f"da-app: cannot reach {url}: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        print(render_status(data, max_stations=args.stations), end="")
    health = data.get("health", {})
    return 0 if health.get("live", True) and health.get("ready", True) else 3


def _fmt(value: Any, spec: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return format(value, spec)


def render_status(data: dict[str, Any], *, max_stations: int = 50) -> str:
    """The terminal view of a ``/status`` document: health, throughput, lag, stations."""
    svc = data.get("service", {})
    health = data.get("health", {})
    tp = data.get("throughput") or {}
    lines = [
        f"module {svc.get('module')}   adapter {svc.get('adapter')}   group {svc.get('group_id')}",
        "health: "
        + ("live" if health.get("live") else "NOT LIVE")
        + ", "
        + ("ready" if health.get("ready") else "NOT READY"),
    ]
    lines += [f"  - {r}" for r in health.get("reasons", [])]
    g = svc.get
    lines.append(
        f"loop alive {_fmt(g('main_thread_alive'))}   consumer {_fmt(g('consumer_alive'))}   "
        f"producer {_fmt(g('producer_alive'))}   stations {_fmt(g('station_count'))}   "
        f"pending uploads {_fmt(g('pending_uploads'))}"
    )
    lines.append(
        f"throughput {_fmt(tp.get('records_per_second'), '.1f')} records/s, "
        f"{_fmt(tp.get('runs_per_second'), '.1f')} runs/s "
        f"(over {_fmt(tp.get('window_seconds'), '.0f')} s)   records in {_fmt(g('records_in'))}   "
        f"runs {_fmt(g('runs_started'))} ({_fmt(g('runs_failed'))} failed)   "
        f"batches {_fmt(g('batches_completed'))} ({_fmt(g('batches_timed_out'))} timed out)"
    )
    lines.append(
        f"commit age {_fmt(g('commit_age_seconds'), '.1f')} s   "
        f"uptime {_fmt(g('uptime_seconds'), '.0f')} s   dead letters {_fmt(g('dead_letters'))}"
    )
    lag = data.get("lag") or {}
    if lag:
        lines.append("")
        lines.append(
            f"{'topic':40s} {'part':>4s} {'committed':>10s} {'position':>10s} {'high':>10s} "
            f"{'lag':>8s}"
        )
        totals = data.get("lag_total") or {}
        for topic, parts in lag.items():
            for p in parts:
                lines.append(
                    f"{topic:40s} {p['partition']:4d} {_fmt(p.get('committed')):>10s} "
                    f"{_fmt(p.get('position')):>10s} {_fmt(p.get('high_watermark')):>10s} "
                    f"{_fmt(p.get('lag')):>8s}"
                )
            if len(parts) > 1 and topic in totals:
                lines.append(
                    f"{topic + ' (total)':40s} {'':4s} {'':>10s} {'':>10s} {'':>10s} "
                    f"{totals[topic]:>8d}"
                )
    stations = data.get("stations") or {}
    if stations and max_stations > 0:
        lines.append("")
        lines.append(
            f"{'station':16s} {'running':>7s} {'ready':>5s} {'runs':>6s} {'errors':>6s} "
            f"{'held':>5s}  last error"
        )
        for sid, st in sorted(stations.items())[:max_stations]:
            lines.append(
                f"{sid:16s} {_fmt(st.get('running')):>7s} {_fmt(st.get('ready')):>5s} "
                f"{st.get('runs', 0):6d} {st.get('errors', 0):6d} {st.get('held_records', 0):5d}"
                f"  {st.get('last_error') or ''}"
            )
        if len(stations) > max_stations:
            lines.append(f"... {len(stations) - max_stations} more stations")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
