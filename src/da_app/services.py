"""The public services of the guide: ``DataAnalysisService`` and ``AsyncDataAnalysisService``.

Both are thin façades over one ``Engine`` driven by a runner (threads or asyncio); the adapter
comes from configuration (``service.adapter``) or the ``adapter=`` argument, through the
``Container``. With no Kafka configured, the embedded in-memory bus is used.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import signal
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import FrameType
from typing import Any, TypeVar

import attrs

from da_app.containers import Container
from da_app.health import Probe, ProbeInput, Snapshot, lag_by_topic, liveness, readiness
from da_app.http import HealthServer
from da_app.metrics import MetricsServer
from da_app.runtime import BatchUploadHandler, Callback, ResultHandler, RunnerStats, SyncRunner
from da_app.runtime.async_shell import AsyncRunner
from da_app.settings import Settings, load_raw_config
from da_core.config import Catalog
from da_core.engine import Engine
from da_core.errors import ConfigError
from da_core.ports import Clock
from da_core.routing import Routing
from da_core.types import PartitionLag

T = TypeVar("T")

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
        multi_consumer_mode: bool | None = None,
        station_routing: str | None = None,
        health_port: int | None = None,
        metrics_port: int | None = None,
    ) -> None:
        """``health_port`` / ``metrics_port`` override the ``service`` section's (0: do not
        start that server); see ``start()``."""
        self._config_source = config
        self._health_port = health_port
        self._metrics_port = metrics_port
        self.health_server: HealthServer | None = None
        self.metrics_server: MetricsServer | None = None
        self._reload_lock = threading.Lock()  # one reload at a time (SIGHUPs may pile up)
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
        self.multi_consumer_mode = (
            multi_consumer_mode
            if multi_consumer_mode is not None
            else self.settings.multi_consumer(self.module_name)
        )
        self.drain_timeout = drain_timeout
        self.routing = Routing(
            mode=station_routing or self.settings.routing_mode(chosen),
            group=self.group_id,
            topic_template=svc.rekey_topic_template,
            partitions=svc.rekey_partitions,
            replication_factor=svc.rekey_replication_factor,
        )
        self.engine = Engine(
            self.catalog, self.module_name, self.container.codec(), routing=self.routing
        )
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
        # _build_catalog reads the service section's defaults from self.settings: set it
        # first (a ConfigError restores the old one, see _validated_reload)
        self.settings = self._load_settings()
        catalog = self._build_catalog(self.settings.catalog)
        catalog.module(self.module_name)
        self.catalog = catalog
        return catalog

    def _validated_reload(
        self, new_config: str | os.PathLike[str] | Mapping[str, Any] | None
    ) -> tuple[Catalog, list[str]]:
        """Load and validate the new configuration; on ``ConfigError`` restore the old one,
        log the rejection with its reasons and raise. Returns the catalog and the changes."""
        old = (self._config_source, self.settings, self.catalog)
        try:
            catalog = self._reload(new_config)
        except ConfigError as exc:
            self._config_source, self.settings, self.catalog = old
            log.error(
                "configuration reload rejected; the old configuration stays active: %s",
                exc,
                extra={"da_module": self.module_name},
            )
            raise
        changes = describe_changes(old[2], catalog, self.module_name)
        for key in ("health_host", "health_port", "metrics_host", "metrics_port", "adapter"):
            if getattr(old[1].service, key) != getattr(self.settings.service, key):
                changes.append(f"{key} changed (takes effect after a restart)")
        if old[1].kafka != self.settings.kafka:
            changes.append("KAFKA_CONFIG changed (takes effect after a restart)")
        return catalog, changes

    def _log_reloaded(self, changes: Sequence[str]) -> None:
        log.info(
            "configuration reloaded: module %s; %s",
            self.module_name,
            "; ".join(changes) if changes else "no changes",
            extra={"da_module": self.module_name},
        )

    # ------------------------------------------------------------------ health and metrics

    def _start_servers(self) -> None:
        """Start the health and metrics servers per the settings (a port of 0 disables one).
        A port that cannot be bound is logged as an error; the service runs on without it."""
        svc = self.settings.service
        health_port = svc.health_port if self._health_port is None else self._health_port
        metrics_port = svc.metrics_port if self._metrics_port is None else self._metrics_port
        if not svc.metrics_enabled:
            metrics_port = 0
        if health_port and self.health_server is None:
            try:
                self.health_server = HealthServer(self, svc.health_host, health_port).start()
            except OSError as exc:
                log.error(
                    "health endpoint not started: cannot bind %s:%d (%s); set "
                    "SERVICE_CONFIG health_port or DATA_ANALYSIS_HEALTH_PORT (0 disables it)",
                    svc.health_host,
                    health_port,
                    exc,
                )
        if metrics_port and self.metrics_server is None:
            try:
                self.metrics_server = MetricsServer(self, svc.metrics_host, metrics_port).start()
            except OSError as exc:
                log.error(
                    "metrics endpoint not started: cannot bind %s:%d (%s); set "
                    "SERVICE_CONFIG metrics_port or DATA_ANALYSIS_METRICS_PORT (0 disables it)",
                    svc.metrics_host,
                    metrics_port,
                    exc,
                )

    def _stop_servers(self) -> None:
        for server in (self.health_server, self.metrics_server):
            if server is not None:
                server.stop()
        self.health_server = None
        self.metrics_server = None

    def runner_stats(self) -> RunnerStats | None:
        r = self._runner()
        return r.stats if r is not None else None

    def _probe_input(self) -> ProbeInput:
        r = self._runner()
        svc = self.settings.service
        stats = r.stats if r is not None else None
        return ProbeInput(
            module=self.module_name,
            now=self.clock.time(),
            started=r is not None,
            loop_alive=bool(r is not None and r.alive),
            last_loop_at=stats.last_loop_at if stats is not None and stats.loops else None,
            started_at=self.started_at,
            consumer_alive=bool(stats and stats.consumer_alive),
            producer_alive=bool(stats and stats.producer_alive),
            subscribed=bool(r is not None and r.subscribed),
            last_poll_error=stats.last_poll_error if stats else None,
            upload_failing_since=self.engine.upload_failing_since,
            pending_uploads=self.engine.pending_uploads,
            stuck_seconds=svc.health_stuck_seconds,
            upload_failing_seconds=svc.ready_upload_failing_seconds,
            stopped=self._stopped,
        )

    def liveness(self) -> Probe:
        """``/health``: the engine loop runs and is not stuck (read without waiting for it)."""
        return liveness(self._probe_input())

    def readiness(self) -> Probe:
        """``/ready``: subscribed, connected, and uploads not failing for too long."""
        r = self._runner()
        try:  # read without the loop's lock: a racing rebalance may make this fail
            assignment = list(r.consumer.assignment()) if r is not None else []
        except Exception:
            assignment = []
        return readiness(self._probe_input(), assignment)

    def snapshot(self, *, stations: bool = True, timeout: float = 5.0) -> Snapshot:
        """Status, stations, lag and data availability read consistently on the engine's
        loop; raises ``TimeoutError`` when the loop does not answer within ``timeout``."""
        raise NotImplementedError

    def _snapshot(self, stations: bool, lags: Sequence[PartitionLag]) -> Snapshot:
        r = self._runner()
        return Snapshot(
            now=self.clock.time(),
            service=self.get_service_status(),
            stations=self.get_station_status() if stations else None,
            lag=list(lags),
            availability=self.engine.data_availability(),
            throughput=r.stats.throughput.rates() if r is not None else {},
        )

    def status_document(self, *, stations: bool = True, timeout: float = 5.0) -> dict[str, Any]:
        """The ``/status`` JSON (``da_app.health.status_document``)."""
        from da_app.health import status_document

        snap = self.snapshot(stations=stations, timeout=timeout)
        return status_document(snap, self.liveness(), self.readiness())

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
            "poll_errors": stats.poll_errors if stats else 0,
            "last_commit_at": last_commit,
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
            "throughput": stats.throughput.rates() if stats else {},
            "station_routing": self.routing.mode,
            "internal_topics": sorted(eng.internal_topics.values()),
            "pending_forwards": eng.pending_forwards,
            "records_forwarded": eng.stats.records_forwarded,
            "refused": stats.refused if stats else None,
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
        """Committed offset, position, high watermark and lag per partition, by topic. Read
        between two loop iterations: a client's consumer is not thread-safe."""
        r = self._service.runner
        if r is None:
            return {}
        with r._lock:
            return lag_by_topic(r.consumer.lag_info())


def describe_changes(old: Catalog, new: Catalog, module: str) -> list[str]:
    """What a reload changed for ``module``: its inputs, their window and fields, its
    dependencies, batch, trigger and commit policy (for the reload log line)."""
    changes: list[str] = []
    om, nm = old.module(module), new.module(module)
    added = [t for t in nm.inputs if t not in om.inputs]
    removed = [t for t in om.inputs if t not in nm.inputs]
    if added:
        changes.append("inputs added: " + ", ".join(added))
    if removed:
        changes.append("inputs removed: " + ", ".join(removed))
    for t in nm.inputs:
        a, b = old.topics.get(t), new.topics[t]
        if a is None or t in added:
            continue
        if (a.window, a.window_size) != (b.window, b.window_size):
            changes.append(f"{t} window {a.window}/{a.window_size} -> {b.window}/{b.window_size}")
            a = attrs.evolve(a, window=b.window, window_size=b.window_size)
        if a.all_fields() != b.all_fields():
            changes.append(f"{t} fields changed")
        elif a != b:
            changes.append(f"{t} settings changed")
    for label, x, y in (
        ("dependencies", om.dependencies, nm.dependencies),
        ("batch policy", om.batch, nm.batch),
        ("trigger", om.trigger, nm.trigger),
        ("readiness", om.readiness, nm.readiness),
        ("fill strategy", om.fill_strategy, nm.fill_strategy),
        ("output mode", om.output_mode, nm.output_mode),
        ("commit policy", old.commit, new.commit),
        ("data_expire_seconds", old.data_expire_seconds, new.data_expire_seconds),
    ):
        if x != y:
            changes.append(f"{label}: {x} -> {y}")
    return changes


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
            multi_consumer_mode=self.multi_consumer_mode,
        )
        return self.runner

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
        thread, it also handles SIGHUP (``reload_config()``) and SIGTERM (a clean stop: drain,
        commit, close) unless the program installed handlers of its own for them."""
        if self.runner is not None and self.runner.alive:
            raise RuntimeError("service already started")
        runner = self.build_runner(callback, result_handler, batch_upload_handler)
        self.started_at = self.clock.time()
        self._stopped = False
        self._start_servers()
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
        previous = self._install_signal_handlers(runner)
        try:
            runner.run()
        except KeyboardInterrupt:
            runner.stop()
            raise
        finally:
            for sig, handler in previous:
                signal.signal(sig, handler)
            if runner.stopped.is_set():
                self.stop()

    def _install_signal_handlers(self, runner: SyncRunner) -> list[tuple[int, Any]]:
        """SIGTERM → stop after the current loop iteration; SIGHUP → reload in a helper
        thread (which waits for the loop's lock, so the engine is never changed mid-step).
        Only on the main thread and only where no handler is installed."""
        if threading.current_thread() is not threading.main_thread():
            return []

        def on_term(signum: int, frame: FrameType | None) -> None:
            log.info("received SIGTERM; stopping")
            runner.request_stop()

        def on_hup(signum: int, frame: FrameType | None) -> None:
            threading.Thread(target=self._reload_on_signal, name="da-reload", daemon=True).start()

        previous: list[tuple[int, Any]] = []
        wanted: list[tuple[int, Callable[[int, FrameType | None], None]]] = [
            (signal.SIGTERM, on_term)
        ]
        if hasattr(signal, "SIGHUP"):
            wanted.append((signal.SIGHUP, on_hup))
        for sig, handler in wanted:
            if signal.getsignal(sig) is signal.SIG_DFL:
                previous.append((sig, signal.signal(sig, handler)))
        return previous

    def _reload_on_signal(self) -> None:
        log.info("received SIGHUP; reloading the configuration")
        try:
            self.reload_config()
        except ConfigError:
            pass  # logged by reload_config with its reasons; the old configuration stays
        except Exception:
            log.exception("configuration reload failed; the old configuration stays active")

    def stop(self, timeout: float | None = None) -> None:
        """Stop: finish in-flight work, upload, commit, leave the group; then stop the health
        and metrics servers. Idempotent."""
        if self.runner is not None and not self._stopped:
            self._stopped = True
            self.runner.stop(timeout)
            log.info("service stopped: module %s", self.module_name)
        self._stop_servers()

    def snapshot(self, *, stations: bool = True, timeout: float = 5.0) -> Snapshot:
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
            multi_consumer_mode=self.multi_consumer_mode,
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
        self._stopped = False
        await runner.start()
        self._start_servers()
        log.info(
            "service started: module %s, adapter %s, group %s, topics %s",
            self.module_name,
            self.adapter,
            self.group_id,
            ", ".join(self.engine.topics),
        )

    async def stop(self) -> None:
        """Stop: finish in-flight work, upload, commit, leave the group; then stop the health
        and metrics servers. Idempotent."""
        if self.runner is not None and not self._stopped:
            self._stopped = True
            await self.runner.stop()
            log.info("service stopped: module %s", self.module_name)
        self._stop_servers()

    def reload_config(
        self, new_config: str | os.PathLike[str] | Mapping[str, Any] | None = None
    ) -> None:
        """As ``DataAnalysisService.reload_config``. From another thread it waits until the
        event loop has applied the change; on the loop itself it applies it at once."""
        with self._reload_lock:
            self._reload_async(new_config)

    def _reload_async(self, new_config: str | os.PathLike[str] | Mapping[str, Any] | None) -> None:
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

    def snapshot(self, *, stations: bool = True, timeout: float = 5.0) -> Snapshot:
        """As ``DataAnalysisService.snapshot``; taken on the event loop. Called on the loop
        itself it cannot wait for ``lag_info()``, so ``lag`` is empty then."""

        async def take() -> Snapshot:
            lags: list[PartitionLag] = []
            r = self.runner
            if r is not None:
                try:
                    lags = await r.consumer.lag_info()
                except Exception:
                    lags = []
            return self._snapshot(stations, lags)

        loop = self._foreign_loop()
        if loop is None:
            return self._snapshot(stations, [])
        return _wait_on(loop, take(), timeout)


class _AsyncConsumerView:
    def __init__(self, service: AsyncDataAnalysisService) -> None:
        self._service = service

    async def get_lag_info(self) -> dict[str, list[dict[str, Any]]]:
        r = self._service.runner
        if r is None:
            return {}
        return lag_by_topic(await r.consumer.lag_info())


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


def wait_until(predicate: Any, timeout: float = 10.0, interval: float = 0.005) -> bool:
    """Poll ``predicate`` until true or ``timeout`` (monotonic seconds); for scripts and tests."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
