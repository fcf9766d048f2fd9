"""The services running in this process, and the guide's health check on them.

The guide's ``health_check()`` snippet builds ``DataAnalysisService()``, a new instance that
never started, so it always answers "unhealthy". ``health_check()`` here asks the running
instance(s) instead: each service registers itself when it starts and leaves when it stops
(``register`` / ``unregister``, called by the services), weakly, so a service dropped without
``stop()`` does not linger.

Invariants: ``running_services()`` is in start order; a service is listed from the end of its
``start()`` to the beginning of its ``stop()``.
"""

from __future__ import annotations

import itertools
import threading
import time
import weakref
from typing import Any, Protocol

from da_app.health import VERSION


class HealthSource(Protocol):
    """What ``health_check`` asks of a service (``_ServiceBase.health``)."""

    module_name: str

    def health(self) -> dict[str, Any]: ...


_lock = threading.Lock()
_ids = itertools.count()
_running: weakref.WeakValueDictionary[int, Any] = weakref.WeakValueDictionary()


def register(service: HealthSource) -> int:
    """List ``service`` as running; returns the key ``unregister`` takes."""
    with _lock:
        key = next(_ids)
        _running[key] = service
        return key


def unregister(key: int | None) -> None:
    if key is not None:
        with _lock:
            _running.pop(key, None)


def running_services() -> list[Any]:
    """The services of this process that are started and not stopped, in start order."""
    with _lock:
        return [s for _, s in sorted(_running.items())]


def current_service() -> Any:
    """The running service of this process (the first started when there are several), or
    None when none runs."""
    services = running_services()
    return services[0] if services else None


def health_check() -> dict[str, Any]:
    """The guide's health dict for the running service of this process: ``status``
    (``healthy`` / ``unhealthy``, ``/health``'s verdict), ``timestamp``, ``version``,
    ``service`` (``main_thread``, ``consumer_alive``, ``producer_alive``, ``station_count``)
    and ``stations`` (``{id: {"running": bool}}``).

    With several running services: ``status`` is healthy when all are, and ``services`` maps
    each module to its own dict. With none: ``unhealthy`` with the reason."""
    services = running_services()
    if len(services) == 1:
        only: HealthSource = services[0]
        return only.health()
    if not services:
        return {
            "status": "unhealthy",
            "timestamp": time.time(),
            "version": VERSION,
            "reasons": ["no service is running in this process"],
            "service": {
                "main_thread": False,
                "consumer_alive": False,
                "producer_alive": False,
                "station_count": 0,
            },
            "stations": {},
        }
    each = {s.module_name: s.health() for s in services}
    healthy = all(h["status"] == "healthy" for h in each.values())
    return {
        "status": "healthy" if healthy else "unhealthy",
        "timestamp": time.time(),
        "version": VERSION,
        "services": each,
    }
