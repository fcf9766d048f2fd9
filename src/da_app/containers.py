"""The composition root: the declarative containers that build a service's object graph.

Settings → Catalog → Routing → Engine → clients → runner → servers. A service supplies three
inputs once (``settings``, ``options``, ``catalog_builder``: see ``ServiceContainer.inputs``);
every other provider is derived from them and named after what it provides. ``clients`` is a
``Selector`` on the adapter name: ``Container`` (the sync service's) knows ``memory`` and
``confluent``, ``AsyncContainer`` knows ``memory`` and ``aiokafka``, and each answers the other
kind's adapter with a ``ConfigError`` instead of building a client of the wrong kind.

Nothing is built at import time: a container instance copies the providers and builds on the
first call; the singletons (catalog, routing, engine, clients) live as long as the instance.
Tests override providers for a block, e.g. ``with container.clock.override(ManualClock())``,
or pass ``clock=`` / ``broker=`` to the service, which overrides ``clock`` / ``memory_broker``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dependency_injector import containers, providers

from da_adapters.clock import SystemClock
from da_adapters.codec import OrjsonCodec
from da_adapters.memory import MemoryBroker
from da_app.clients import (
    AiokafkaClients,
    AsyncClients,
    AsyncMemoryClients,
    ConfluentClients,
    MemoryClients,
    SyncClients,
    wrong_adapter,
)
from da_app.http import OpsServers, start_servers
from da_app.options import ServiceOptions
from da_app.runtime import AsyncRunner, BatchUploadHandler, Callback, ResultHandler, SyncRunner
from da_app.settings import KafkaSettings, Settings
from da_core.config import Catalog
from da_core.engine import Engine
from da_core.ports import Clock, JsonCodec
from da_core.routing import Routing

CatalogBuilder = Callable[[Catalog], Catalog]
"""Turns the settings' catalog into the service's (its constructor arguments applied)."""

_EMBEDDED_LOCK = threading.Lock()
_EMBEDDED: MemoryBroker | None = None


def embedded_broker(clock: Clock | None = None) -> MemoryBroker:
    """The process-wide in-memory broker (the embedded default), created on first use.

    ``DA_MEMORY_SEED`` names a folder of ``<TOPIC>.json`` files, each published once to its
    topic when the broker is created (to run the examples on the embedded bus with data)."""
    global _EMBEDDED
    with _EMBEDDED_LOCK:
        if _EMBEDDED is None:
            _EMBEDDED = MemoryBroker(clock or SystemClock())
            seed = os.environ.get("DA_MEMORY_SEED")
            if seed:
                seed_broker(_EMBEDDED, Path(seed))
        return _EMBEDDED


def seed_broker(broker: MemoryBroker, folder: Path) -> int:
    """Publish every ``<TOPIC>.json`` of ``folder`` to ``TOPIC``; returns how many."""
    n = 0
    for path in sorted(folder.glob("*.json")):
        broker.produce(path.stem, path.read_bytes())
        n += 1
    return n


# ---------------------------------------------------------------- what the providers call


def build_catalog(build: CatalogBuilder, settings: Settings, options: ServiceOptions) -> Catalog:
    """The service's catalog; an unknown module is a ``ConfigError`` naming the known ones."""
    catalog = build(settings.catalog)
    catalog.module(options.module_name)
    return catalog


def build_routing(settings: Settings, options: ServiceOptions) -> Routing:
    svc = settings.service
    return Routing(
        mode=options.station_routing,
        group=options.group_id,
        topic_template=svc.rekey_topic_template,
        partitions=svc.rekey_partitions,
        replication_factor=svc.rekey_replication_factor,
    )


def build_engine(
    catalog: Catalog, options: ServiceOptions, codec: JsonCodec, routing: Routing
) -> Engine:
    return Engine(
        catalog,
        options.module_name,
        codec,
        routing=routing,
        dead_letter_max_attempts=options.dead_letter_max_attempts,
    )


def build_sync_runner(
    engine: Engine,
    clients: SyncClients,
    clock: Clock,
    options: ServiceOptions,
    callback: Callback,
    result_handler: ResultHandler | None = None,
    batch_upload_handler: BatchUploadHandler | None = None,
) -> SyncRunner:
    """A runner with fresh clients (a second consumer only when the module reads global
    topics; a restore reader outside the group, ``da_app.runtime.restore``)."""
    return SyncRunner(
        engine,
        clients.consumer(),
        clients.producer(),
        clock,
        callback,
        result_handler=result_handler,
        batch_upload_handler=batch_upload_handler,
        max_workers=options.max_workers,
        poll_timeout=options.poll_timeout,
        max_poll_records=options.max_poll_records,
        drain_timeout=options.drain_timeout,
        shutdown_timeout=options.shutdown_timeout,
        broker=options.broker,
        global_consumer=clients.consumer() if engine.global_topics else None,
        restore_consumer=clients.consumer(),
        multi_consumer_mode=options.multi_consumer_mode,
        callback_timeout=options.callback_timeout,
    )


def build_async_runner(
    engine: Engine,
    clients: AsyncClients,
    clock: Clock,
    options: ServiceOptions,
    callback: Callback,
    result_handler: ResultHandler | None = None,
    batch_upload_handler: BatchUploadHandler | None = None,
) -> AsyncRunner:
    """As ``build_sync_runner``, for asyncio."""
    return AsyncRunner(
        engine,
        clients.consumer(),
        clients.producer(),
        clock,
        callback,
        result_handler=result_handler,
        batch_upload_handler=batch_upload_handler,
        max_concurrency=options.max_concurrency,
        max_workers=options.max_workers,
        poll_timeout=options.poll_timeout,
        max_poll_records=options.max_poll_records,
        drain_timeout=options.drain_timeout,
        shutdown_timeout=options.shutdown_timeout,
        broker=options.broker,
        global_consumer=clients.consumer() if engine.global_topics else None,
        restore_consumer=clients.consumer(),
        multi_consumer_mode=options.multi_consumer_mode,
        callback_timeout=options.callback_timeout,
    )


def _adapter(options: ServiceOptions) -> str:
    return options.adapter


def _kafka(settings: Settings) -> KafkaSettings:
    return settings.kafka


# ---------------------------------------------------------------- the containers


class ServiceContainer(containers.DeclarativeContainer):
    """The providers both services share; ``Container`` and ``AsyncContainer`` add the
    clients and the runner of their kind."""

    # inputs, supplied by the service (``inputs``); unset, they raise when first needed
    settings: providers.Dependency[Settings] = providers.Dependency(instance_of=Settings)
    options: providers.Dependency[ServiceOptions] = providers.Dependency(instance_of=ServiceOptions)
    catalog_builder: providers.Dependency[CatalogBuilder] = providers.Dependency()

    clock: providers.Provider[Clock] = providers.Singleton(SystemClock)
    codec: providers.Provider[JsonCodec] = providers.Singleton(OrjsonCodec)
    catalog: providers.Provider[Catalog] = providers.Singleton(
        build_catalog, catalog_builder, settings, options
    )
    routing: providers.Provider[Routing] = providers.Singleton(build_routing, settings, options)
    engine: providers.Provider[Engine] = providers.Singleton(
        build_engine, catalog, options, codec, routing
    )

    adapter: providers.Provider[str] = providers.Callable(_adapter, options)
    kafka: providers.Provider[KafkaSettings] = providers.Callable(_kafka, settings)
    memory_broker: providers.Provider[MemoryBroker] = providers.Singleton(
        embedded_broker, clock=clock
    )

    # call with ``source=`` (the service whose status and metrics they answer)
    servers: providers.Provider[OpsServers] = providers.Factory(
        start_servers, plan=options.provided.servers
    )

    @staticmethod
    def inputs(
        settings: Settings, options: ServiceOptions, catalog_builder: CatalogBuilder
    ) -> dict[str, providers.Provider[Any]]:
        """The overrides that supply a container's three inputs (``override_providers``)."""
        return {
            "settings": providers.Object(settings),
            "options": providers.Object(options),
            "catalog_builder": providers.Object(catalog_builder),
        }


_S = ServiceContainer


class Container(ServiceContainer):
    """The sync service's container (``DataAnalysisService``)."""

    clients: providers.Provider[SyncClients] = providers.Selector(
        _S.adapter,
        memory=providers.Singleton(
            MemoryClients,
            broker=_S.memory_broker,
            group_id=_S.options.provided.group_id,
            auto_offset_reset=_S.options.provided.auto_offset_reset,
        ),
        confluent=providers.Singleton(
            ConfluentClients,
            kafka=_S.kafka,
            group_id=_S.options.provided.group_id,
            instance_id=_S.settings.provided.service.instance_id,
        ),
        aiokafka=providers.Callable(wrong_adapter, "aiokafka", asynchronous=False),
    )
    # call with ``callback=`` (and ``result_handler=``, ``batch_upload_handler=``)
    runner: providers.Provider[SyncRunner] = providers.Factory(
        build_sync_runner, engine=_S.engine, clients=clients, clock=_S.clock, options=_S.options
    )


class AsyncContainer(ServiceContainer):
    """The async service's container (``AsyncDataAnalysisService``)."""

    clients: providers.Provider[AsyncClients] = providers.Selector(
        _S.adapter,
        memory=providers.Singleton(
            AsyncMemoryClients,
            broker=_S.memory_broker,
            group_id=_S.options.provided.group_id,
            auto_offset_reset=_S.options.provided.auto_offset_reset,
        ),
        aiokafka=providers.Singleton(
            AiokafkaClients,
            kafka=_S.kafka,
            group_id=_S.options.provided.group_id,
            instance_id=_S.settings.provided.service.instance_id,
        ),
        confluent=providers.Callable(wrong_adapter, "confluent", asynchronous=True),
    )
    runner: providers.Provider[AsyncRunner] = providers.Factory(
        build_async_runner, engine=_S.engine, clients=clients, clock=_S.clock, options=_S.options
    )
