"""``d_a``: the package name the deployment guide imports.

``from d_a import DataAnalysisService, AsyncDataAnalysisService`` and
``from d_a.config import KAFKA_CONFIG`` work as in the guide. ``d_a.health_check()`` is the
guide's health check asked of the running service(s) of the process (``current_service()``,
``running_services()``: ``da_app.instances``); ``__version__`` is the package version. The
services are imported lazily from ``da_app.services`` on first access, so ``import d_a`` is
cheap, reads no configuration file and configures no logging.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "AsyncDataAnalysisService",
    "DataAnalysisService",
    "__version__",
    "current_service",
    "health_check",
    "running_services",
]

_LAZY = {
    "DataAnalysisService": "da_app.services",
    "AsyncDataAnalysisService": "da_app.services",
    "health_check": "da_app.instances",
    "current_service": "da_app.instances",
    "running_services": "da_app.instances",
}


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from da_app.health import VERSION

        return VERSION
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'd_a' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
