"""The public services of the guide: ``DataAnalysisService`` and ``AsyncDataAnalysisService``.

Both are thin façades over one ``Engine`` driven by a runner (threads or asyncio); the adapter
comes from configuration (``service.adapter``) or the ``adapter=`` argument, through the
``Container``. With no Kafka configured, the embedded in-memory bus is used.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from da_app.async_runner import AsyncRunner
from da_app.containers import Container
from da_app.runner import BatchUploadHandler, Callback, ResultHandler, SyncRunner
from da_app.settings import Settings, load_raw_config
from da_core.config import Catalog
from da_core.engine import Engine
from da_core.errors import ConfigError
from da_core.ports import Clock
from da_core.types import PartitionLag

log = logging.getLogger("da_app.services")

DEFAULT_MODULE = "load_prediction"


class _ServiceBase:
    """Configuration, engine and status shared by both services."""

    _asynchronous = False

    def __init__(
        self,
        module_name: str | None = None,
        topics: Sequence[str] | None = None,
        kafka_config: Mapping[str, Any] | None = None,
        data_expire_seconds: float | None = None,
        result_handler: ResultHandler | None = None,
        *,
        config: str | os.PathLike[str] | Mapping[str, Any] | Settings | None = None,
        adapter: str | None = None,
        broker: Any = None,
        clock: Clock | None = None,
        container: Container | None = None,
        max_workers: int | None = None,
        max_concurrency: int | None = None,
        fill_strategy: str | None = None,
        output_mode: str | None = None,
        batch_timeout: float | None = None,
        completion_ratio: float | None = None,
        interval_seconds: float | None = None,
        group_id: str | None = None,
        auto_offset_reset: str | None = None,
        poll_timeout: float | None = None,
        drain_timeout: float = 10.0,
    ) -> None:
        self._config_source = config
        self._overrides: dict[str, Any] = {
            "topics": topics,
            "data_expire_seconds": data_expire_seconds,
            "fill_strategy": fill_strategy,
            "output_mode": output_mode,
            "batch_timeout": batch_timeout,
            "completion_ratio": completion_ratio,
            "interval_seconds": interval_seconds,
        }
        self._kafka_config = kafka_config
        self.settings = self._load_settings()
        svc = self.settings.service
        self.module_name = module_name or svc.module_name or DEFAULT_MODULE
        self.catalog = self._build_catalog(self.settings.catalog)
        self.catalog.module(self.module_name)  # unknown module: clear ConfigError now
        self.result_handler = result_handler
        chosen = adapter or self.settings.resolve_adapter(asynchronous=self._asynchronous)
        self.adapter = chosen
        self.container = container or Container()
        self.container.adapter.override(chosen)
        self.container.kafka.override(self.settings.kafka)
        consumer_cfg = self.settings.kafka.consumer
        self.group_id = group_id or str(consumer_cfg.get("group_id") or "data_analysis_group")
        self.container.group_id.override(self.group_id)
        self.container.auto_offset_reset.override(
            auto_offset_reset or str(consumer_cfg.get("auto_offset_reset") or "latest")
        )
        if broker is not None:
            self.container.memory_broker.override(broker)
        if clock is not None:
            self.container.clock.override(clock)
        self.clock: Clock = self.container.clock()
        self.max_workers = max_workers or svc.max_workers
        self.max_concurrency = max_concurrency or svc.max_concurrency
        self.poll_timeout = poll_timeout if poll_timeout is not None else svc.poll_timeout_seconds
        self.max_poll_records = int(consumer_cfg.get("max_poll_records") or svc.max_poll_records)
        self.drain_timeout = drain_timeout
        self.engine = Engine(self.catalog, self.module_name, self.container.codec())
        for w in self.settings.kafka.warnings:
            log.warning("%s", w)
        self.started_at: float | None = None
        self._stopped = False

    # ------------------------------------------------------------------ configuration

    def _load_settings(self) -> Settings:
        src = self._config_source
        if isinstance(src, Settings):
            settings = src
        else:
            raw = dict(src) if isinstance(src, Mapping) else load_raw_config(src)
            settings = Settings.from_raw(raw)
        if self._kafka_config is not None:
            settings = settings.with_kafka_config(self._kafka_config)
        return settings

    def _build_catalog(self, base: Catalog) -> Catalog:
        o = self._overrides
        cat = base
        m = cat.module(self.module_name) if self.module_name in cat.modules else None
        if m is not None:
            changes: dict[str, Any] = {}
            if o["topics"] is not None:
                changes["inputs"] = tuple(o["topics"])
            if o["fill_strategy"] is not None:
                changes["fill_strategy"] = o["fill_strategy"]
            elif self.settings.service.fill_strategy:
                changes["fill_strategy"] = self.settings.service.fill_strategy
            mode = o["output_mode"] or self.settings.service.output_mode
            if mode:
                changes["output_mode"] = mode
            batch = m.batch
            timeout = o["batch_timeout"] or self.settings.service.batch_timeout
            ratio = o["completion_ratio"] or self.settings.service.completion_ratio
            batch = attrs.evolve(
                batch, timeout_seconds=float(timeout), completion_ratio=float(ratio)
            )
            changes["batch"] = batch
            if o["interval_seconds"] is not None:
                changes["trigger"] = attrs.evolve(m.trigger, interval_seconds=o["interval_seconds"])
            cat = cat.replace_module(attrs.evolve(m, **changes))
        expire = o["data_expire_seconds"]
        if expire is None:
            expire = self.settings.service.data_expire_seconds
        cat = attrs.evolve(cat, data_expire_seconds=float(expire))
        return cat.validate()

    def _reload(self, new_config: str | os.PathLike[str] | Mapping[str, Any] | None) -> Catalog:
        if new_config is not None:
            self._config_source = new_config
        settings = self._load_settings()
        catalog = self._build_catalog(settings.catalog)
        catalog.module(self.module_name)
        self.settings = settings
        self.catalog = catalog
        return catalog

    # ------------------------------------------------------------------ status

    def _runner(self) -> SyncRunner | AsyncRunner | None:
        raise NotImplementedError

    def get_service_status(self) -> dict[str, Any]:
        """The guide's status: ``main_thread_alive``, ``consumer_alive``, ``producer_alive``,
        ``station_count`` and more (counters, pending work, upload health, commit age)."""
        r = self._runner()
        eng = self.engine
        now = self.clock.time()
        stats = r.stats if r is not None else None
        last_commit = stats.last_commit_at if stats else None
        return {
            "module": self.module_name,
            "adapter": self.adapter,
            "group_id": self.group_id,
            "main_thread_alive": bool(r is not None and r.alive),
            "consumer_alive": bool(stats and stats.consumer_alive),
            "producer_alive": bool(stats and stats.producer_alive),
            "station_count": len(eng),
            "running_stations": eng.running,
            "queued_stations": eng.runnable,
            "pending_uploads": eng.pending_uploads,
            "upload_failing_since": eng.upload_failing_since,
            "last_loop_at": stats.last_loop_at if stats else None,
            "last_poll_error": stats.last_poll_error if stats else None,
            "commit_age_seconds": None if last_commit is None else now - last_commit,
            "records_in": eng.stats.records_in,
            "runs_started": eng.stats.runs_started,
            "runs_failed": sum(eng.stats.runs_failed.values()),
            "batches_completed": eng.stats.batches_completed,
            "batches_timed_out": eng.stats.batches_timed_out,
            "dead_letters": eng.stats.dead_letters,
            "bad_input": dict(eng.stats.bad_input),
            "started_at": self.started_at,
            "uptime_seconds": None if self.started_at is None else now - self.started_at,
        }

    def get_station_status(self) -> dict[str, dict[str, Any]]:
        """``{station_id: {"running": bool, "queued", "ready", "runs", "errors", ...}}``."""
        return self.engine.station_status(self.clock.time())

    def get_inputs(self, station_id: str) -> dict[str, Any] | None:
        """The module input the station would get now (None for an unknown station)."""
        return self.engine.get_inputs(station_id, self.clock.time())

    def add_station(self, station_id: str) -> bool:
        return self.engine.add_station(station_id, self.clock.time())

    def remove_station(self, station_id: str) -> bool:
        return self.engine.remove_station(station_id)


class _ConsumerView:
    """``service.consumer`` as the guide uses it: ``get_lag_info()``."""

    def __init__(self, service: DataAnalysisService) -> None:
        self._service = service

    def get_lag_info(self) -> dict[str, list[dict[str, Any]]]:
        r = self._service.runner
        if r is None:
            return {}
        return _lag_by_topic(r.consumer.lag_info())


def _lag_by_topic(lags: Sequence[PartitionLag]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for lag in sorted(lags, key=lambda x: (x.topic, x.partition)):
        out.setdefault(lag.topic, []).append(lag.as_dict())
    return out


class DataAnalysisService(_ServiceBase):
    """The synchronous service (threads). ``start(callback, background=True)``."""

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
        c = self.container
        self.runner = SyncRunner(
            self.engine,
            c.consumer(),
            c.producer(),
            self.clock,
            callback,
            result_handler=result_handler or self.result_handler,
            batch_upload_handler=batch_upload_handler,
            max_workers=self.max_workers,
            poll_timeout=self.poll_timeout,
            max_poll_records=self.max_poll_records,
            drain_timeout=self.drain_timeout,
            global_consumer=c.consumer() if self.engine.global_topics else None,
        )
        return self.runner

    def start(
        self,
        callback: Callback,
        result_handler: ResultHandler | None = None,
        batch_upload_handler: BatchUploadHandler | None = None,
        background: bool = True,
    ) -> None:
        """Start consuming. ``background=False`` blocks until ``stop()`` (or Ctrl-C)."""
        if self.runner is not None and self.runner.alive:
            raise RuntimeError("service already started")
        runner = self.build_runner(callback, result_handler, batch_upload_handler)
        self.started_at = self.clock.time()
        log.info(
            "service started: module %s, adapter %s, group %s, auto_offset_reset %s, topics %s",
            self.module_name,
            self.adapter,
            self.group_id,
            self.container.auto_offset_reset(),
            ", ".join(self.engine.topics),
        )
        if background:
            runner.start()
            return
        try:
            runner.run()
        except KeyboardInterrupt:
            runner.stop()
            raise

    def stop(self, timeout: float | None = None) -> None:
        """Stop: finish in-flight work, upload, commit, leave the group. Idempotent."""
        if self.runner is not None and not self._stopped:
            self._stopped = True
            self.runner.stop(timeout)
            log.info("service stopped: module %s", self.module_name)

    def reload_config(
        self, new_config: str | os.PathLike[str] | Mapping[str, Any] | None = None
    ) -> None:
        """Re-read the configuration and apply it, keeping window data. An invalid new
        configuration raises ``ConfigError`` and the old one stays active."""
        old = (self._config_source, self.settings, self.catalog)
        try:
            catalog = self._reload(new_config)
        except ConfigError:
            self._config_source, self.settings, self.catalog = old
            log.error("configuration reload rejected; the old configuration stays active")
            raise
        runner = self.runner
        lock = runner._lock if runner is not None else threading.RLock()
        with lock:
            old_topics = set(self.engine.topics)
            self.engine.reconfigure(catalog)
            if runner is not None and set(self.engine.topics) != old_topics:
                runner.consumer.subscribe(list(self.engine.topics), runner._listener)
        log.info("configuration reloaded: module %s", self.module_name)


class AsyncDataAnalysisService(_ServiceBase):
    """The asyncio service. ``await start(callback)`` returns once running."""

    _asynchronous = True

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
        c = self.container
        self.runner = AsyncRunner(
            self.engine,
            c.async_consumer(),
            c.async_producer(),
            self.clock,
            callback,
            result_handler=result_handler or self.result_handler,
            batch_upload_handler=batch_upload_handler,
            max_concurrency=self.max_concurrency,
            max_workers=self.max_workers,
            poll_timeout=self.poll_timeout,
            max_poll_records=self.max_poll_records,
            drain_timeout=self.drain_timeout,
            global_consumer=c.async_consumer() if self.engine.global_topics else None,
        )
        return self.runner

    async def start(
        self,
        callback: Callback,
        result_handler: ResultHandler | None = None,
        batch_upload_handler: BatchUploadHandler | None = None,
    ) -> None:
        if self.runner is not None and self.runner.alive:
            raise RuntimeError("service already started")
        runner = self.build_runner(callback, result_handler, batch_upload_handler)
        self.started_at = self.clock.time()
        await runner.start()
        log.info(
            "service started: module %s, adapter %s, group %s, topics %s",
            self.module_name,
            self.adapter,
            self.group_id,
            ", ".join(self.engine.topics),
        )

    async def stop(self) -> None:
        if self.runner is not None and not self._stopped:
            self._stopped = True
            await self.runner.stop()
            log.info("service stopped: module %s", self.module_name)

    def reload_config(
        self, new_config: str | os.PathLike[str] | Mapping[str, Any] | None = None
    ) -> None:
        old = (self._config_source, self.settings, self.catalog)
        try:
            catalog = self._reload(new_config)
        except ConfigError:
            self._config_source, self.settings, self.catalog = old
            log.error("configuration reload rejected; the old configuration stays active")
            raise
        self.engine.reconfigure(catalog)


class _AsyncConsumerView:
    def __init__(self, service: AsyncDataAnalysisService) -> None:
        self._service = service

    async def get_lag_info(self) -> dict[str, list[dict[str, Any]]]:
        r = self._service.runner
        if r is None:
            return {}
        return _lag_by_topic(await r.consumer.lag_info())


def wait_until(predicate: Any, timeout: float = 10.0, interval: float = 0.005) -> bool:
    """Poll ``predicate`` until true or ``timeout`` (monotonic seconds); for scripts and tests."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
