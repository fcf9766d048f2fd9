"""The public services of the guide: ``DataAnalysisService`` and ``AsyncDataAnalysisService``.

Both are thin façades over what their container builds (``da_app.containers``: settings →
catalog → routing → engine → clients → runner → servers): status, the station API, reload,
start and stop (shared in ``da_app.service_base``). The adapter comes from configuration
(``service.adapter``) or the ``adapter=`` argument; with no Kafka configured, the embedded
in-memory bus is used. A service given the other kind's adapter (the sync one asked for
aiokafka) fails with a ``ConfigError``. Signals: ``da_app.signals``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import threading
from collections.abc import Awaitable, Mapping
from typing import Any, TypeVar

from da_app import signals
from da_app.containers import AsyncContainer, Container
from da_app.events import log_event
from da_app.health import Snapshot, StationPage, lag_by_topic
from da_app.options import DEFAULT_MODULE
from da_app.reload import describe_changes
from da_app.runtime import AsyncRunner, BatchUploadHandler, Callback, ResultHandler, SyncRunner
from da_app.service_base import _ServiceBase, log
from da_core.types import PartitionLag

__all__ = [
    "DEFAULT_MODULE",
    "AsyncDataAnalysisService",
    "DataAnalysisService",
    "describe_changes",
]

T = TypeVar("T")


class _ConsumerView:
    """``service.consumer`` as the guide uses it: ``get_lag_info()`` (and an awaitable
    ``aget_lag_info()`` for async code)."""

    def __init__(self, service: DataAnalysisService) -> None:
        self._service = service

    def get_lag_info(self) -> dict[str, list[dict[str, Any]]]:
        """Committed offset, position, high watermark and lag per partition, by topic. Read
        between two loop iterations: a client's consumer is not thread-safe. After the
        service stopped: the last reading."""
        svc = self._service
        r = svc.runner
        if r is None:
            return {}
        with r._lock:
            if not r.alive:
                return lag_by_topic(svc._lag.lags)
            lags = r.consumer.lag_info()
        svc._lag.update(lags, svc.clock.time())
        return lag_by_topic(lags)

    async def aget_lag_info(self) -> dict[str, list[dict[str, Any]]]:
        """``get_lag_info()`` on a worker thread, for async code."""
        return await asyncio.to_thread(self.get_lag_info)


class DataAnalysisService(_ServiceBase):
    """The synchronous service (threads). ``start(callback, background=True)``."""

    _container_class = Container
    runner: SyncRunner | None = None

    def _runner(self) -> SyncRunner | None:
        return self.runner

    @property
    def consumer(self) -> _ConsumerView:
        return _ConsumerView(self)

    def build_runner(
        self,
        callback: Callback,
        result_handler: ResultHandler | None = None,
        batch_upload_handler: BatchUploadHandler | None = None,
    ) -> SyncRunner:
        runner: SyncRunner = self.container.runner(
            callback=callback,
            result_handler=result_handler or self.result_handler,
            batch_upload_handler=batch_upload_handler,
        )
        self.runner = runner
        return runner

    def start(
        self,
        callback: Callback,
        result_handler: ResultHandler | None = None,
        batch_upload_handler: BatchUploadHandler | None = None,
        background: bool = True,
    ) -> None:
        """Start consuming, and the health and metrics servers (``health_port``,
        ``metrics_port``; default 8080 and 8001 on 127.0.0.1, 0 disables one).

        ``background=False`` blocks until ``stop()``, Ctrl-C or SIGTERM. Called so on the main
        thread, it also handles SIGHUP (``reload_config()``), SIGTERM and SIGINT (a clean
        stop: drain, commit, close) unless the program installed handlers of its own for them
        (``da_app.signals``)."""
        if self.runner is not None and self.runner.alive:
            raise RuntimeError("service already started")
        self._ensure_logging()
        runner = self.build_runner(callback, result_handler, batch_upload_handler)
        self.started_at = self.clock.time()
        self._stopped = False
        self._start_servers()
        log_event(
            log,
            logging.INFO,
            "service_started",
            "service started: module %s, adapter %s, group %s, auto_offset_reset %s, topics %s",
            self.module_name,
            self.adapter,
            self.group_id,
            self.options.auto_offset_reset,
            ", ".join(self.engine.topics),
        )
        self._registered(True)
        if background:
            runner.start()
            return
        restore = signals.install(runner.request_stop, self.reload_config)
        try:
            runner.run()
        except KeyboardInterrupt:
            runner.stop()
            raise
        finally:
            restore()
            if runner.stopped.is_set():
                self.stop()

    def stop(self, timeout: float | None = None) -> None:
        """Stop: finish in-flight work, upload, commit, leave the group; then stop the health
        and metrics servers. Idempotent."""
        self._registered(False)
        if self.runner is not None and not self._stopped:
            self._stopped = True
            self.runner.stop(timeout)
            log_event(
                log, logging.INFO, "service_stopped", "service stopped: module %s", self.module_name
            )
        self._stop_servers()

    def snapshot(self, *, stations: bool | StationPage = True, timeout: float = 5.0) -> Snapshot:
        r = self.runner
        if r is None:
            return self._snapshot(stations, [])
        if not r._lock.acquire(timeout=timeout):
            raise TimeoutError(f"the engine loop did not answer within {timeout:g}s")
        try:
            try:
                lags = r.consumer.lag_info()
            except Exception:  # closed after stop, or the broker is unreachable
                lags = []
            return self._snapshot(stations, lags)
        finally:
            r._lock.release()

    def reload_config(
        self, new_config: str | os.PathLike[str] | Mapping[str, Any] | None = None
    ) -> None:
        """Re-read the configuration (the file it came from, or ``new_config``) and apply it
        between two loop iterations: window sizes and kinds, fields, the module's topics and
        subscriptions, batch, trigger and commit policy. Window data is kept (a shrunk window
        keeps its newest entries). An invalid configuration raises ``ConfigError`` naming the
        problems, and the old one stays active. Kafka, adapter and ports need a restart."""
        with self._reload_lock:
            catalog, changes = self._validated_reload(new_config)
            runner = self.runner
            lock = runner._lock if runner is not None else threading.RLock()
            with lock:
                old_topics = set(self.engine.topics)
                self.engine.reconfigure(catalog)
                if (
                    runner is not None
                    and runner.subscribed
                    and set(self.engine.topics) != old_topics
                ):
                    runner.resubscribe()
            self._log_reloaded(changes)


class AsyncDataAnalysisService(_ServiceBase):
    """The asyncio service. ``await start(callback)`` returns once running; ``await
    serve(callback)`` runs in the foreground until stopped."""

    _asynchronous = True
    _container_class = AsyncContainer
    runner: AsyncRunner | None = None

    def _runner(self) -> AsyncRunner | None:
        return self.runner

    @property
    def consumer(self) -> _AsyncConsumerView:
        return _AsyncConsumerView(self)

    def build_runner(
        self,
        callback: Callback,
        result_handler: ResultHandler | None = None,
        batch_upload_handler: BatchUploadHandler | None = None,
    ) -> AsyncRunner:
        runner: AsyncRunner = self.container.runner(
            callback=callback,
            result_handler=result_handler or self.result_handler,
            batch_upload_handler=batch_upload_handler,
        )
        self.runner = runner
        return runner

    async def start(
        self,
        callback: Callback,
        result_handler: ResultHandler | None = None,
        batch_upload_handler: BatchUploadHandler | None = None,
    ) -> None:
        if self.runner is not None and self.runner.alive:
            raise RuntimeError("service already started")
        self._ensure_logging()
        runner = self.build_runner(callback, result_handler, batch_upload_handler)
        self.started_at = self.clock.time()
        self._stopped = False
        await runner.start()
        self._start_servers()
        self._registered(True)
        log_event(
            log,
            logging.INFO,
            "service_started",
            "service started: module %s, adapter %s, group %s, topics %s",
            self.module_name,
            self.adapter,
            self.group_id,
            ", ".join(self.engine.topics),
        )

    async def serve(
        self,
        callback: Callback,
        result_handler: ResultHandler | None = None,
        batch_upload_handler: BatchUploadHandler | None = None,
    ) -> None:
        """Start, then run until ``stop()``, SIGTERM or SIGINT, or the engine loop ends; stop
        cleanly. SIGHUP reloads (``da_app.signals``; signals whose handlers the program
        installed itself are left alone)."""
        await self.start(callback, result_handler, batch_upload_handler)
        stop = asyncio.Event()
        restore = signals.install_on_loop(asyncio.get_running_loop(), stop.set, self.reload_config)
        try:
            while self._running() and not stop.is_set():
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), 0.5)  # also notices a dead loop
        finally:
            restore()
            await self.stop()

    def _running(self) -> bool:
        return self.runner is not None and self.runner.alive and not self._stopped

    async def _read_lag(self) -> list[PartitionLag]:
        """A fresh lag reading (on the runner's loop), kept as the latest."""
        r = self.runner
        if r is None:
            return []
        lags = await r.consumer.lag_info()
        self._lag.update(lags, self.clock.time())
        return lags

    async def stop(self) -> None:
        """Stop: finish in-flight work, upload, commit, leave the group; then stop the health
        and metrics servers. Idempotent."""
        self._registered(False)
        if self.runner is not None and not self._stopped:
            self._stopped = True
            await self._lag.aclose()
            await self.runner.stop()
            log_event(
                log, logging.INFO, "service_stopped", "service stopped: module %s", self.module_name
            )
        self._stop_servers()

    def reload_config(
        self, new_config: str | os.PathLike[str] | Mapping[str, Any] | None = None
    ) -> None:
        """As ``DataAnalysisService.reload_config``. From another thread it waits until the
        event loop has applied the change; on the loop itself it applies it at once."""
        with self._reload_lock:
            catalog, changes = self._validated_reload(new_config)

            def apply() -> None:
                old_topics = set(self.engine.topics)
                self.engine.reconfigure(catalog)
                r = self.runner
                if r is not None and r.subscribed and set(self.engine.topics) != old_topics:
                    r.request_resubscribe()

            async def apply_async() -> None:
                apply()

            loop = self._foreign_loop()
            if loop is None:
                apply()
            else:
                _wait_on(loop, apply_async(), 30.0)
            self._log_reloaded(changes)

    def _foreign_loop(self) -> asyncio.AbstractEventLoop | None:
        """The runner's event loop when it runs and the caller is on another thread."""
        r = self.runner
        loop = r.loop if r is not None and r.alive else None
        if loop is None or not loop.is_running():
            return None
        try:
            if asyncio.get_running_loop() is loop:
                return None
        except RuntimeError:
            pass
        return loop

    def snapshot(self, *, stations: bool | StationPage = True, timeout: float = 5.0) -> Snapshot:
        """As ``DataAnalysisService.snapshot``; taken on the event loop. Called on the loop
        itself it cannot wait for ``lag_info()``, so ``lag`` is empty then."""

        async def take() -> Snapshot:
            lags: list[PartitionLag] = []
            r = self.runner
            if r is not None:
                try:
                    lags = await self._read_lag()
                except Exception:
                    lags = []
            return self._snapshot(stations, lags)

        loop = self._foreign_loop()
        if loop is None:
            return self._snapshot(stations, [])
        return _wait_on(loop, take(), timeout)


class _AsyncConsumerView:
    """``service.consumer`` of the async service: ``get_lag_info()`` returns the dict (as
    the guide writes it, without ``await``), ``await aget_lag_info()`` a fresh reading."""

    def __init__(self, service: AsyncDataAnalysisService) -> None:
        self._service = service

    def get_lag_info(self, timeout: float = 5.0) -> dict[str, list[dict[str, Any]]]:
        """Lag per partition, by topic, without blocking the event loop: from another thread,
        a fresh reading taken on the loop (``TimeoutError`` after ``timeout`` seconds); on
        the loop itself, the latest reading (``da_app.lag``; ``{}`` before the first), and a
        fresh one is scheduled in the background. Use ``await aget_lag_info()`` on the loop
        for a fresh reading."""
        svc = self._service
        if svc.runner is None:
            return {}
        loop = svc._foreign_loop()
        if loop is not None:
            return lag_by_topic(_wait_on(loop, svc._read_lag(), timeout))
        running = _running_loop()
        if running is not None and svc._running():
            svc._lag.refresh_in_background(running, svc._read_lag, svc.clock.time())
        return lag_by_topic(svc._lag.lags)

    async def aget_lag_info(self) -> dict[str, list[dict[str, Any]]]:
        """A fresh reading; await it on the service's event loop."""
        if self._service.runner is None:
            return {}
        return lag_by_topic(await self._service._read_lag())


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _wait_on(loop: asyncio.AbstractEventLoop, coro: Awaitable[T], timeout: float) -> T:
    """Run ``coro`` on ``loop`` (another thread's) and wait for its result."""

    async def run() -> T:
        return await coro

    fut = asyncio.run_coroutine_threadsafe(run(), loop)
    try:
        return fut.result(timeout)
    except concurrent.futures.TimeoutError:
        fut.cancel()
        raise TimeoutError(f"the event loop did not answer within {timeout:g}s") from None
