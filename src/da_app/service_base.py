"""What both services share: construction through the container, configuration and reload,
the health/metrics servers, the probes and status, and the station API.

``_ServiceBase.__init__`` resolves the arguments against the settings (``ServiceOptions``),
supplies them to the container (``da_app.containers``) and takes the catalog, routing, engine
and clock it builds; the runner and servers are built at ``start()``. The concrete services
(``da_app.services``) add their runner's start, stop, snapshot and reload.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from dependency_injector import providers

from da_app import instances
from da_app.containers import Container, ServiceContainer
from da_app.events import log_event
from da_app.health import (
    VERSION,
    Probe,
    ProbeInput,
    Snapshot,
    StationPage,
    liveness,
    readiness,
    service_status,
    status_document,
)
from da_app.http import Listener, OpsServers
from da_app.lag import LagSnapshot
from da_app.logconfig import ensure_logging
from da_app.options import ServiceOptions, resolve_options
from da_app.reload import describe_reload, summary
from da_app.runtime import AsyncRunner, ResultHandler, RunnerStats, SyncRunner
from da_app.settings import Settings, build_module_catalog
from da_core.config import Catalog
from da_core.engine import Engine
from da_core.errors import ConfigError
from da_core.ports import Clock
from da_core.routing import Routing
from da_core.types import PartitionLag

log = logging.getLogger("da_app.services")

ConfigSource = str | os.PathLike[str] | Mapping[str, Any]


class _ServiceBase:
    """Configuration, status and the station API shared by both services."""

    _asynchronous = False
    _container_class: ClassVar[type[ServiceContainer]] = Container

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
        container: ServiceContainer | None = None,
        max_workers: int | None = None,
        max_concurrency: int | None = None,
        fill_strategy: str | None = None,
        output_mode: str | None = None,
        batch_timeout: float | None = None,
        completion_ratio: float | None = None,
        interval_seconds: float | None = None,
        min_run_interval_seconds: float | None = None,
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
        start that server); see ``start()``. ``broker`` and ``clock`` override the container's
        ``memory_broker`` and ``clock``. Raises ``ConfigError`` for an invalid configuration,
        an unknown module or adapter, or an adapter of the other service kind."""
        self._config_source = config
        self._kafka_config = kafka_config
        self._overrides: dict[str, Any] = {
            "topics": topics,
            "data_expire_seconds": data_expire_seconds,
            "fill_strategy": fill_strategy,
            "output_mode": output_mode,
            "batch_timeout": batch_timeout,
            "completion_ratio": completion_ratio,
            "interval_seconds": interval_seconds,
            "min_run_interval_seconds": min_run_interval_seconds,
        }
        self.result_handler = result_handler
        self._reload_lock = threading.Lock()  # one reload at a time (SIGHUPs may pile up)
        self.settings = self._load_settings()
        self.options: ServiceOptions = resolve_options(
            self.settings,
            asynchronous=self._asynchronous,
            module_name=module_name,
            adapter=adapter,
            group_id=group_id,
            auto_offset_reset=auto_offset_reset,
            max_workers=max_workers,
            max_concurrency=max_concurrency,
            poll_timeout=poll_timeout,
            drain_timeout=drain_timeout,
            multi_consumer_mode=multi_consumer_mode,
            station_routing=station_routing,
            health_port=health_port,
            metrics_port=metrics_port,
        )
        o = self.options
        self.module_name = o.module_name  # _build_catalog reads it
        self.adapter, self.group_id = o.adapter, o.group_id
        self.max_workers, self.max_concurrency = o.max_workers, o.max_concurrency
        self.poll_timeout, self.max_poll_records = o.poll_timeout, o.max_poll_records
        self.multi_consumer_mode, self.drain_timeout = o.multi_consumer_mode, o.drain_timeout
        self.container = self._compose(container, broker, clock)
        self.container.clients()  # a wrong or missing adapter fails here, not at start
        self.catalog: Catalog = self.container.catalog()
        self.routing: Routing = self.container.routing()
        self.engine: Engine = self.container.engine()
        self.engine.field_report_seconds = self.settings.service.field_report_seconds
        self.clock: Clock = self.container.clock()
        for w in self.settings.kafka.warnings:
            log.warning("%s", w)
        self.health_server: Listener | None = None
        self.metrics_server: Listener | None = None
        self._servers: OpsServers | None = None
        self.started_at: float | None = None
        self._stopped = False
        self._lag = LagSnapshot()
        self._instance_key: int | None = None  # in da_app.instances while running

    def _compose(
        self, container: ServiceContainer | None, broker: Any, clock: Clock | None
    ) -> ServiceContainer:
        """Supply the container's inputs (and the ``broker`` / ``clock`` arguments) in one
        ``override_providers`` call. A given container must be of this service's kind."""
        kind = self._container_class
        c = container if container is not None else kind()
        parent = getattr(c, "declarative_parent", None)
        if not (isinstance(parent, type) and issubclass(parent, kind)):
            raise TypeError(f"{type(self).__name__} needs a {kind.__name__}, not {parent}")
        given = kind.inputs(self.settings, self.options, self._build_catalog)
        if broker is not None:
            given["memory_broker"] = providers.Object(broker)
        if clock is not None:
            given["clock"] = providers.Object(clock)
        c.override_providers(**given)
        return c

    # ------------------------------------------------------------------ configuration

    def _load_settings(self) -> Settings:
        src = self._config_source
        if isinstance(src, Settings):
            settings = src
        else:
            # a file (or none) through Settings.load: it records the file and the places
            # searched, which a service without Kafka names when it refuses to start
            if isinstance(src, Mapping):
                settings = Settings.from_raw(dict(src))
            else:
                settings = Settings.load(src)
        if self._kafka_config is not None:
            settings = settings.with_kafka_config(self._kafka_config)
        return settings

    def _build_catalog(self, base: Catalog) -> Catalog:
        return build_module_catalog(self.settings, self.module_name, self._overrides, base=base)

    def _validated_reload(self, new_config: ConfigSource | None) -> tuple[Catalog, list[str]]:
        """Load and validate the new configuration; on ``ConfigError`` restore the old one,
        log the rejection with its reasons and raise. Returns the catalog and the changes.
        The container keeps the start-up graph: the engine is reconfigured in place."""
        old = (self._config_source, self.settings, self.catalog)
        try:
            if new_config is not None:
                self._config_source = new_config
            # _build_catalog reads the service section's defaults from self.settings
            self.settings = self._load_settings()
            catalog = self._build_catalog(self.settings.catalog)
            catalog.module(self.module_name)
        except ConfigError as exc:
            self._config_source, self.settings, self.catalog = old
            log_event(
                log,
                logging.ERROR,
                "config_rejected",
                "configuration reload rejected; the old configuration stays active: %s",
                exc,
                module=self.module_name,
            )
            raise
        self.catalog = catalog
        return catalog, describe_reload(old[1], self.settings, old[2], catalog, self.module_name)

    def _log_reloaded(self, changes: Sequence[str]) -> None:
        log_event(
            log,
            logging.INFO,
            "config_reloaded",
            "configuration reloaded: %s",
            summary(self.module_name, changes),
            module=self.module_name,
        )

    # ------------------------------------------------------------------ servers and probes

    def _start_servers(self) -> None:
        """Start the listeners of ``options.servers`` (see ``da_app.http.start_servers``)."""
        if self._servers is None:
            self._servers = self.container.servers(source=self)
            self.health_server = self._servers.health
            self.metrics_server = self._servers.metrics

    def _stop_servers(self) -> None:
        if self._servers is not None:
            self._servers.stop()
        self._servers = None
        self.health_server = None
        self.metrics_server = None

    def runner_stats(self) -> RunnerStats | None:
        r = self._runner()
        return r.stats if r is not None else None

    def stuck_workers(self) -> int:
        """Workers busy with a run that timed out (0 before start)."""
        r = self._runner()
        return r.stuck_workers if r is not None else 0

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
            restoring=stats.restore_progress() if stats else None,
            dead_letters_failing=self.engine.dead_letters_failing,
            dead_letter_failing_since=self.engine.dead_letter_failing_since,
            stuck_workers=r.stuck_workers if r is not None else 0,
            workers=r.workers if r is not None else 0,
            broker_connected=stats.broker_connected if stats else None,
            broker_error=stats.broker_error if stats else None,
            broker=r.core.broker.broker if r is not None else "the broker",
        )

    def _ensure_logging(self) -> None:
        """Logging at start for entry points other than ``da-app`` (``da_app.logconfig``),
        and the garbage collector's thresholds (``service.gc_threshold``, process-wide)."""
        svc = self.settings.service
        ensure_logging(
            configured=svc.configured,
            log_file=svc.log_file,
            level=svc.log_level,
            fmt=svc.log_format,
        )
        if svc.gc_threshold is not None and gc.get_threshold() != svc.gc_threshold:
            log.info("gc thresholds %s -> %s", gc.get_threshold(), svc.gc_threshold)
            gc.set_threshold(*svc.gc_threshold)

    def _registered(self, running: bool) -> None:
        """List this service in ``da_app.instances`` (``d_a.health_check()``) or drop it."""
        if running and self._instance_key is None:
            self._instance_key = instances.register(self)
        elif not running:
            instances.unregister(self._instance_key)
            self._instance_key = None

    def health(self) -> dict[str, Any]:
        """The guide's health dict for this (running) instance: ``status`` is ``/health``'s
        verdict (``healthy`` while the engine loop runs and is not stuck), plus
        ``timestamp`` (wall clock), ``version``, ``service`` (``main_thread``,
        ``consumer_alive``, ``producer_alive``, ``station_count``), ``stations``
        (``{id: {"running": bool}}``) and, when unhealthy, ``reasons``."""
        live = self.liveness().body
        status = self.get_service_status()
        out: dict[str, Any] = {
            "status": live["status"],
            "timestamp": time.time(),
            "version": VERSION,
            "service": {
                "main_thread": status["main_thread_alive"],
                "consumer_alive": status["consumer_alive"],
                "producer_alive": status["producer_alive"],
                "station_count": status["station_count"],
            },
            "stations": {
                sid: {"running": bool(info.get("running", False))}
                for sid, info in self.get_station_status().items()
            },
        }
        if "reasons" in live:
            out["reasons"] = live["reasons"]
        return out

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

    def snapshot(self, *, stations: bool | StationPage = True, timeout: float = 5.0) -> Snapshot:
        """Status, stations, lag and data availability read consistently on the engine's
        loop; raises ``TimeoutError`` when the loop does not answer within ``timeout``."""
        raise NotImplementedError

    def _snapshot(self, stations: bool | StationPage, lags: Sequence[PartitionLag]) -> Snapshot:
        r = self._runner()
        now = self.clock.time()
        page = StationPage() if stations is True else (stations or None)
        return Snapshot(
            now=now,
            service=self.get_service_status(),
            stations=None
            if page is None
            else self.engine.station_status(now, offset=page.offset, limit=page.limit),
            lag=list(lags),
            availability=self.engine.data_availability(),
            throughput=r.stats.throughput.rates() if r is not None else {},
            station_total=len(self.engine),
            page=page,
        )

    def status_document(
        self, *, stations: bool | StationPage = True, timeout: float = 5.0
    ) -> dict[str, Any]:
        """The ``/status`` JSON (``da_app.health.status_document``)."""
        snap = self.snapshot(stations=stations, timeout=timeout)
        return status_document(snap, self.liveness(), self.readiness())

    # ------------------------------------------------------------------ status

    def _runner(self) -> SyncRunner | AsyncRunner | None:
        raise NotImplementedError

    def get_service_status(self) -> dict[str, Any]:
        """The guide's status: ``main_thread_alive``, ``consumer_alive``, ``producer_alive``,
        ``station_count`` and more (``da_app.health.service_status``)."""
        r = self._runner()
        return service_status(
            module=self.module_name,
            adapter=self.adapter,
            group_id=self.group_id,
            routing_mode=self.routing.mode,
            engine=self.engine,
            loop_alive=bool(r is not None and r.alive),
            stats=r.stats if r is not None else None,
            now=self.clock.time(),
            started_at=self.started_at,
            stuck_workers=r.stuck_workers if r is not None else 0,
        )

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
