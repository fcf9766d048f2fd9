"""The health endpoint: ``/health``, ``/ready`` and ``/status`` over plain HTTP.

A standard-library ``ThreadingHTTPServer`` in a daemon thread (no web framework). It answers
JSON; the probes' semantics are in ``da_app.health``:

* ``GET /health``: 200 ``{"status": "healthy", ...}`` while the engine loop runs and is not
  stuck, else 503 ``{"status": "unhealthy", "reasons": [...]}`` (the Kubernetes liveness probe).
* ``GET /ready``: 200 ``{"status": "ready", ...}`` or 503 ``{"status": "not_ready",
  "reasons": [...]}`` (the readiness probe).
* ``GET /status``: 200 with ``service``, ``stations``, ``lag``, ``lag_total``, ``throughput``,
  ``data_availability`` and ``health``; ``?stations=0`` leaves the station table out; 503 when
  the engine loop did not answer within the timeout.

The services start one on ``health_host:health_port`` (default 127.0.0.1:8080) and stop it in
``stop()``; after a stop, or when the loop died, ``/health`` and ``/ready`` answer 503 for as
long as the server runs. Port 0 binds an ephemeral port (``.port`` tells which).
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from da_app.health import Probe

log = logging.getLogger("da_app.http")

STATUS_TIMEOUT = 5.0
"""Seconds ``/status`` waits for the engine loop to take its snapshot."""


class HealthSource(Protocol):
    """What the server asks a service (both services implement it)."""

    def liveness(self) -> Probe: ...

    def readiness(self) -> Probe: ...

    def status_document(self, *, stations: bool = True, timeout: float = 5.0) -> dict[str, Any]:
        """The ``/status`` JSON; raises ``TimeoutError`` when the loop does not answer."""
        ...


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    source: HealthSource


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "data-analysis-health"

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        path = url.path.rstrip("/") or "/"
        source = self.server.source
        try:
            if path in ("/health", "/healthz", "/live"):
                self._probe(source.liveness())
            elif path in ("/ready", "/readyz"):
                self._probe(source.readiness())
            elif path == "/status":
                query = parse_qs(url.query)
                stations = query.get("stations", ["1"])[-1].lower() not in ("0", "false", "no")
                try:
                    doc = source.status_document(stations=stations, timeout=STATUS_TIMEOUT)
                except TimeoutError as exc:
                    self._json(503, {"error": f"status unavailable: {exc}"})
                    return
                self._json(200, doc)
            elif path == "/":
                self._json(200, {"endpoints": ["/health", "/ready", "/status"]})
            else:
                self._json(404, {"error": f"no such endpoint: {url.path}"})
        except Exception as exc:  # never let a status bug kill the server thread
            log.exception("health endpoint %s failed", url.path)
            self._json(500, {"error": f"{type(exc).__name__}: {exc}"})

    def _probe(self, probe: Probe) -> None:
        self._json(probe.status_code, probe.body)

    def _json(self, code: int, body: Any) -> None:
        data = json.dumps(body, ensure_ascii=False, default=str).encode("utf-8")
        self.send_response(code)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)


class HealthServer:
    """Serves ``/health``, ``/ready`` and ``/status`` of ``service`` on ``host:port``."""

    def __init__(self, service: HealthSource, host: str = "127.0.0.1", port: int = 8080) -> None:
        self.service = service
        self.host = host
        self._requested_port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> HealthServer:
        """Bind and serve in a daemon thread; raises ``OSError`` when the port is taken."""
        if self._server is not None:
            return self
        server_cls: type[_Server] = _Server6 if ":" in self.host else _Server
        server = server_cls((self.host, self._requested_port), _Handler)
        server.source = self.service
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},  # stop() returns within 50 ms
            name=f"da-health-{self.port}",
            daemon=True,
        )
        self._thread.start()
        log.info("health endpoint on http://%s:%d (/health, /ready, /status)", self.host, self.port)
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
        return f"http://{host}:{self.port}"

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
