"""One HTTP server for health, readiness, status and metrics.

``OpsApp`` is one WSGI application; ``Listener`` serves it on one address with the standard
library's ``wsgiref`` server in threads (one per request, daemon). Every listener of a service
answers every path, JSON unless noted; the probes' semantics are in ``da_app.health``:

* ``GET /health``: 200 ``{"status": "healthy", ...}`` while the engine loop runs and is not
  stuck, else 503 ``{"status": "unhealthy", "reasons": [...]}`` (the Kubernetes liveness probe).
* ``GET /ready``: 200 ``{"status": "ready", ...}`` or 503 ``{"status": "not_ready",
  "reasons": [...]}`` (the readiness probe).
* ``GET /status``: 200 with ``service``, ``stations``, ``lag``, ``lag_total``, ``throughput``,
  ``data_availability`` and ``health``; the station table is one page (``?stations=N&offset=M``,
  100 stations by default, ``stations_page`` gives the total); ``?stations=0`` leaves it out;
  503 when the engine loop did not answer within ``STATUS_TIMEOUT``.
* ``GET /metrics``: the service's Prometheus registry (text format; prometheus-client's WSGI
  app, so OpenMetrics negotiation, ``name[]`` filters and gzip work).

The services start listeners with ``start_servers`` on ``health_host:health_port`` (default
127.0.0.1:8080) and ``metrics_host:metrics_port`` (127.0.0.1:8001): one listener when the two
ports are equal, none for a port of 0; a host with a colon is bound as IPv6. After a stop, or
when the loop died, ``/health`` and ``/ready`` answer 503 for as long as the listener runs.
``HealthServer`` and ``metrics.MetricsServer`` are single listeners (port 0: an ephemeral port,
``.port`` tells which).
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any, Protocol, TypeVar
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

import attrs

from da_app.health import Probe, StationPage

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from da_app.metrics import MetricsSource
    from da_app.options import ServerPlan

log = logging.getLogger("da_app.http")

STATUS_TIMEOUT = 5.0
"""Seconds ``/status`` waits for the engine loop to take its snapshot."""

ENDPOINTS = ["/health", "/ready", "/status", "/metrics"]

# PEP 3333 shapes (``wsgiref.types`` needs Python 3.11)
WSGIEnvironment = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApplication = Callable[[WSGIEnvironment, StartResponse], Iterable[bytes]]

_L = TypeVar("_L", bound="Listener")


class HealthSource(Protocol):
    """What the probes and ``/status`` ask a service (both services implement it)."""

    def liveness(self) -> Probe: ...

    def readiness(self) -> Probe: ...

    def status_document(
        self, *, stations: bool | StationPage = True, timeout: float = 5.0
    ) -> dict[str, Any]:
        """The ``/status`` JSON; raises ``TimeoutError`` when the loop does not answer."""
        ...


if TYPE_CHECKING:

    class OpsSource(HealthSource, MetricsSource, Protocol):
        """What the whole application reads: probes, status and the metrics' sources."""

else:
    OpsSource = HealthSource


class OpsApp:
    """The WSGI application of one service (see the module docstring)."""

    def __init__(self, source: OpsSource, registry: CollectorRegistry | None = None) -> None:
        from prometheus_client import make_wsgi_app

        from da_app.metrics import build_registry

        self.source = source
        self.registry = registry if registry is not None else build_registry(source)
        self._metrics = make_wsgi_app(self.registry)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        raw_path = str(environ.get("PATH_INFO") or "/")
        path = raw_path.rstrip("/") or "/"
        if environ.get("REQUEST_METHOD", "GET") not in ("GET", "HEAD"):
            return _json(start_response, 405, {"error": "only GET is supported"})
        if path == "/metrics":
            metrics: Iterable[bytes] = self._metrics(environ, start_response)
            return metrics
        try:
            code, body = self._answer(path, str(environ.get("QUERY_STRING") or ""))
        except Exception as exc:  # never let a status bug kill the listener
            log.exception("endpoint %r failed", raw_path)
            code, body = 500, {"error": f"{type(exc).__name__}: {exc}"}
        return _json(start_response, code, body)

    def _answer(self, path: str, query: str) -> tuple[int, Any]:
        source = self.source
        if path in ("/health", "/healthz", "/live"):
            return _probe(source.liveness())
        if path in ("/ready", "/readyz"):
            return _probe(source.readiness())
        if path == "/status":
            args = parse_qs(query)
            page = StationPage.parse(args.get("stations", [""])[-1], args.get("offset", [""])[-1])
            try:
                doc = source.status_document(
                    stations=page if page is not None else False, timeout=STATUS_TIMEOUT
                )
            except TimeoutError as exc:
                return 503, {"error": f"status unavailable: {exc}"}
            return 200, doc
        if path == "/":
            return 200, {"endpoints": ENDPOINTS}
        return 404, {"error": f"no such endpoint: {path}"}


def _probe(probe: Probe) -> tuple[int, Any]:
    return probe.status_code, probe.body


_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 500: "Internal Server Error"}


def _json(start_response: StartResponse, code: int, body: Any) -> list[bytes]:
    data = json.dumps(body, ensure_ascii=False, default=str).encode("utf-8")
    start_response(
        f"{code} {_REASONS.get(code, 'Service Unavailable')}",
        [
            ("Content-Type", "application/json; charset=utf-8"),
            ("Content-Length", str(len(data))),
            ("Cache-Control", "no-store"),
        ],
    )
    return [data]


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a slow client never holds up the process's exit


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(WSGIRequestHandler):
    server_version = "data-analysis"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)


class Listener:
    """Serves a WSGI application on ``host:port`` in a daemon thread."""

    path = ""
    """Appended to ``url`` (the endpoint a caller most likely wants)."""

    def __init__(self, app: WSGIApplication, host: str, port: int, *, name: str) -> None:
        self.app = app
        self.host = host
        self.name = name
        self._requested_port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self: _L) -> _L:
        """Bind and serve; raises ``OSError`` when the port is taken. Idempotent."""
        if self._server is not None:
            return self
        server_cls: type[_Server] = _Server6 if ":" in self.host else _Server
        server = server_cls((self.host, self._requested_port), _Handler)
        server.set_app(self.app)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},  # stop() returns within 50 ms
            name=f"da-{self.name}-{self.port}",
            daemon=True,
        )
        self._thread.start()
        log.info("%s endpoint on %s (%s)", self.name, self.url, ", ".join(ENDPOINTS))
        return self

    @property
    def port(self) -> int:
        """The bound port (the ephemeral one when started with port 0)."""
        if self._server is None:
            return self._requested_port
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{self.path}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        """Stop serving and close the socket (idempotent)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(5)


class HealthServer(Listener):
    """One listener for ``service`` on ``host:port`` (``url`` is its root)."""

    def __init__(
        self,
        service: OpsSource,
        host: str = "127.0.0.1",
        port: int = 8080,
        *,
        app: OpsApp | None = None,
    ) -> None:
        super().__init__(app or OpsApp(service), host, port, name="health")
        self.service = service


@attrs.define
class OpsServers:
    """A service's listeners; ``metrics`` is ``health`` when they share a port."""

    health: Listener | None = None
    metrics: Listener | None = None

    def stop(self) -> None:
        for server in {id(s): s for s in (self.health, self.metrics) if s is not None}.values():
            server.stop()


def start_servers(source: OpsSource, plan: ServerPlan) -> OpsServers:
    """Start the listeners ``plan`` asks for, all serving one ``OpsApp``. A port that cannot be
    bound is logged as an error naming the setting to change; the others start regardless."""
    from da_app.metrics import MetricsServer

    app = OpsApp(source)
    servers = OpsServers()
    if plan.health_port:
        servers.health = _bind(
            HealthServer(source, plan.health_host, plan.health_port, app=app), "health"
        )
    if plan.shared:
        servers.metrics = servers.health
    elif plan.metrics_port:
        servers.metrics = _bind(
            MetricsServer(source, plan.metrics_host, plan.metrics_port, app=app), "metrics"
        )
    return servers


def _bind(server: Listener, what: str) -> Listener | None:
    try:
        server.start()
    except OSError as exc:
        log.error(
            "%s endpoint not started: cannot bind %s:%d (%s); set SERVICE_CONFIG %s_port or "
            "DATA_ANALYSIS_%s_PORT (0 disables it)",
            what,
            server.host,
            server.port,
            exc,
            what,
            what.upper(),
        )
        return None
    return server
