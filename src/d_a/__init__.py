"""``d_a``: the package name the deployment guide imports.

``from d_a import DataAnalysisService, AsyncDataAnalysisService`` and
``from d_a.config import KAFKA_CONFIG`` work as in the guide. The services are imported
lazily from ``da_app.services`` on first access, so ``import d_a`` is cheap, reads no
configuration file and configures no logging.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["AsyncDataAnalysisService", "DataAnalysisService"]

_LAZY = {
    "DataAnalysisService": "da_app.services",
    "AsyncDataAnalysisService": "da_app.services",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'd_a' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
