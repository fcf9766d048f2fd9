"""The composition root: one declarative container that picks adapters from configuration.

``Container.adapter`` (``memory``, ``confluent`` or ``aiokafka``) selects the consumer and
producer factories through ``providers.Selector``. Nothing is built at import time: services
create a container per instance, and tests override providers with
``with container.clock.override(ManualClock(...)):``.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from dependency_injector import containers, providers

from da_adapters.clock import SystemClock
from da_adapters.codec import OrjsonCodec
from da_adapters.memory import (
    AsyncMemoryConsumer,
    AsyncMemoryProducer,
    MemoryBroker,
    MemoryConsumer,
    MemoryProducer,
)
from da_app.settings import KafkaSettings
from da_core.errors import ConfigError
from da_core.ports import Clock

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


def _confluent_consumer(**kwargs: Any) -> Any:
    try:
        from da_adapters.confluent import ConfluentConsumer
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ConfigError(f"adapter 'confluent' is not available: {exc}") from exc
    return ConfluentConsumer(**kwargs)


def _confluent_producer(**kwargs: Any) -> Any:
    try:
        from da_adapters.confluent import ConfluentProducer
    except ImportError as exc:  # pragma: no cover
        raise ConfigError(f"adapter 'confluent' is not available: {exc}") from exc
    return ConfluentProducer(**kwargs)


def _aiokafka_consumer(**kwargs: Any) -> Any:
    try:
        from da_adapters.aiokafka import AiokafkaConsumer
    except ImportError as exc:  # pragma: no cover
        raise ConfigError(f"adapter 'aiokafka' is not available: {exc}") from exc
    return AiokafkaConsumer(**kwargs)


def _aiokafka_producer(**kwargs: Any) -> Any:
    try:
        from da_adapters.aiokafka import AiokafkaProducer
    except ImportError as exc:  # pragma: no cover
        raise ConfigError(f"adapter 'aiokafka' is not available: {exc}") from exc
    return AiokafkaProducer(**kwargs)


class Container(containers.DeclarativeContainer):
    """Providers named after what they provide; ``adapter`` keys the selectors."""

    config = providers.Configuration()
    adapter = providers.Object("memory")
    kafka: providers.Object[KafkaSettings | None] = providers.Object(None)
    group_id = providers.Object("data_analysis_group")
    auto_offset_reset = providers.Object("latest")

    clock: providers.Provider[Clock] = providers.Singleton(SystemClock)
    codec = providers.Singleton(OrjsonCodec)
    memory_broker = providers.Callable(embedded_broker, clock=clock)

    consumer = providers.Selector(
        adapter,
        memory=providers.Factory(
            MemoryConsumer,
            broker=memory_broker,
            group_id=group_id,
            auto_offset_reset=auto_offset_reset,
        ),
        confluent=providers.Factory(_confluent_consumer, settings=kafka, group_id=group_id),
        aiokafka=providers.Factory(_confluent_consumer, settings=kafka, group_id=group_id),
    )
    producer = providers.Selector(
        adapter,
        memory=providers.Factory(MemoryProducer, broker=memory_broker),
        confluent=providers.Factory(_confluent_producer, settings=kafka),
        aiokafka=providers.Factory(_confluent_producer, settings=kafka),
    )
    async_consumer = providers.Selector(
        adapter,
        memory=providers.Factory(
            AsyncMemoryConsumer,
            broker=memory_broker,
            group_id=group_id,
            auto_offset_reset=auto_offset_reset,
        ),
        aiokafka=providers.Factory(_aiokafka_consumer, settings=kafka, group_id=group_id),
        confluent=providers.Factory(_aiokafka_consumer, settings=kafka, group_id=group_id),
    )
    async_producer = providers.Selector(
        adapter,
        memory=providers.Factory(AsyncMemoryProducer, broker=memory_broker),
        aiokafka=providers.Factory(_aiokafka_producer, settings=kafka),
        confluent=providers.Factory(_aiokafka_producer, settings=kafka),
    )
