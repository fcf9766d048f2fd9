"""The engine loop: one sans-IO core (``LoopCore``) driven by two thin shells.

``SyncRunner`` (threads, ``sync_shell``) and ``AsyncRunner`` (asyncio, ``async_shell``) only
move data between the ports, the user's callables and the core; every decision of the loop is
the core's (``core``), so both services behave alike by construction.
"""

from da_app.runtime.async_shell import AsyncRunner
from da_app.runtime.callbacks import BatchUploadHandler, Callback, ResultHandler
from da_app.runtime.core import LoopCore
from da_app.runtime.stats import RunnerStats
from da_app.runtime.sync_shell import SyncRunner

__all__ = [
    "AsyncRunner",
    "BatchUploadHandler",
    "Callback",
    "LoopCore",
    "ResultHandler",
    "RunnerStats",
    "SyncRunner",
]
