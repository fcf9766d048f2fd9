"""Client factories per adapter: what the container's ``clients`` selector chooses between.

A factory is cheap to build (no connection is opened; the Kafka libraries are imported, so a
missing one is a ``ConfigError`` when the service is constructed) and makes a fresh consumer or
producer per call: a runner takes one consumer per fetch group and one producer. The sync
service gets ``SyncClients`` (memory or confluent-kafka), the async one ``AsyncClients``
(memory or aiokafka); asking a service for the other kind's adapter is a ``ConfigError``
(``wrong_adapter``), never a silent substitution.
"""

from __future__ import annotations

from typing import Any, NoReturn, Protocol

import attrs

from da_adapters.memory import (
    AsyncMemoryConsumer,
    AsyncMemoryProducer,
    MemoryBroker,
    MemoryConsumer,
    MemoryProducer,
)
from da_app.settings import KafkaSettings
from da_core.errors import ConfigError
from da_core.ports import AsyncConsumer, AsyncProducer, Consumer, Producer


class SyncClients(Protocol):
    """Makes the sync service's clients."""

    def consumer(self) -> Consumer: ...

    def producer(self) -> Producer: ...


class AsyncClients(Protocol):
    """Makes the async service's clients."""

    def consumer(self) -> AsyncConsumer: ...

    def producer(self) -> AsyncProducer: ...


@attrs.frozen
class MemoryClients:
    """Clients of an in-memory broker (the embedded one unless a test gives its own)."""

    broker: MemoryBroker
    group_id: str
    auto_offset_reset: str

    def consumer(self) -> MemoryConsumer:
        return MemoryConsumer(
            broker=self.broker, group_id=self.group_id, auto_offset_reset=self.auto_offset_reset
        )

    def producer(self) -> MemoryProducer:
        return MemoryProducer(broker=self.broker)


@attrs.frozen
class AsyncMemoryClients(MemoryClients):
    """The asyncio flavour of ``MemoryClients``."""

    def consumer(self) -> AsyncMemoryConsumer:  # type: ignore[override]
        return AsyncMemoryConsumer(
            broker=self.broker, group_id=self.group_id, auto_offset_reset=self.auto_offset_reset
        )

    def producer(self) -> AsyncMemoryProducer:  # type: ignore[override]
        return AsyncMemoryProducer(broker=self.broker)


def _missing(adapter: str, exc: ImportError) -> ConfigError:
    return ConfigError(f"adapter {adapter!r} is not available: {exc}")


@attrs.frozen
class ConfluentClients:
    """confluent-kafka clients configured from ``KAFKA_CONFIG``."""

    kafka: KafkaSettings | None
    group_id: str
    instance_id: str | None = None
    """Static group membership (``group.instance.id``): only the subscribing consumer joins
    the group; the global and restore readers only assign, so one id per process is safe."""
    _module: Any = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        try:
            import da_adapters.confluent as module
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise _missing("confluent", exc) from exc
        object.__setattr__(self, "_module", module)

    def consumer(self) -> Consumer:
        c: Consumer = self._module.ConfluentConsumer(
            settings=self.kafka, group_id=self.group_id, instance_id=self.instance_id
        )
        return c

    def producer(self) -> Producer:
        p: Producer = self._module.ConfluentProducer(settings=self.kafka)
        return p


@attrs.frozen
class AiokafkaClients:
    """aiokafka clients configured from ``KAFKA_CONFIG``."""

    kafka: KafkaSettings | None
    group_id: str
    instance_id: str | None = None
    """Static group membership (``group.instance.id``): only the subscribing consumer joins
    the group; the global and restore readers only assign, so one id per process is safe."""
    _module: Any = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        try:
            import da_adapters.aiokafka as module
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise _missing("aiokafka", exc) from exc
        object.__setattr__(self, "_module", module)

    def consumer(self) -> AsyncConsumer:
        c: AsyncConsumer = self._module.AiokafkaConsumer(
            settings=self.kafka, group_id=self.group_id, instance_id=self.instance_id
        )
        return c

    def producer(self) -> AsyncProducer:
        p: AsyncProducer = self._module.AiokafkaProducer(settings=self.kafka)
        return p


def wrong_adapter(adapter: str, *, asynchronous: bool) -> NoReturn:
    """The selector's answer for the other service kind's adapter."""
    if asynchronous:
        raise ConfigError(
            f"adapter {adapter!r} is a synchronous client and AsyncDataAnalysisService needs an "
            "asyncio one: use adapter 'aiokafka' (or 'memory'), or DataAnalysisService"
        )
    raise ConfigError(
        f"adapter {adapter!r} is an asyncio client and DataAnalysisService needs a synchronous "
        "one: use adapter 'confluent' (or 'memory'), or AsyncDataAnalysisService"
    )
