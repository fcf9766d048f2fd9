"""The container as the composition root: what it builds, overrides, and adapter mismatches."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from dependency_injector import errors as di_errors
from dependency_injector import providers

from da_adapters.memory import AsyncMemoryConsumer, ManualClock, MemoryBroker, MemoryConsumer
from da_app.containers import AsyncContainer, Container
from da_app.options import resolve_options
from da_app.services import AsyncDataAnalysisService, DataAnalysisService
from da_app.settings import Settings
from da_core.errors import ConfigError

from .helpers import echo_window

KAFKA = {"bootstrap_servers": "127.0.0.1:1"}  # never contacted: no client is started


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=5000.0)


@pytest.fixture
def container(clock: ManualClock) -> Iterator[Container]:
    """A sync container whose clock and broker are overridden for the test's duration."""
    c = Container()
    with c.clock.override(clock), c.memory_broker.override(MemoryBroker(clock)):
        yield c


def test_the_service_takes_its_engine_routing_and_clock_from_the_container(
    container: Container, clock: ManualClock
) -> None:
    svc = DataAnalysisService(config={}, adapter="memory", container=container, group_id="g")
    assert svc.container is container
    assert svc.clock is clock
    assert svc.engine is container.engine()
    assert svc.routing is container.routing()
    assert svc.catalog is container.catalog()
    assert (svc.routing.mode, svc.routing.group) == ("direct", "g")
    runner = svc.build_runner(echo_window)
    assert isinstance(runner.consumer, MemoryConsumer)
    assert runner.engine is svc.engine
    assert svc.build_runner(echo_window) is not runner  # a fresh runner and clients per start


def test_a_container_provides_nothing_until_a_service_supplies_its_inputs() -> None:
    c = Container()
    with pytest.raises(di_errors.Error, match=r'Dependency "Container\.\w+" is not defined'):
        c.engine()


def test_the_inputs_alone_build_the_graph_without_a_service() -> None:
    settings = Settings.from_raw({})
    options = resolve_options(settings, asynchronous=False, adapter="memory")
    c = Container()
    c.override_providers(**Container.inputs(settings, options, lambda catalog: catalog))
    with c.clock.override(providers.Object(ManualClock())):
        engine = c.engine()
    assert engine.module.name == "load_prediction"
    assert c.engine() is engine  # a singleton per container instance
    assert Container().routing is not c.routing  # providers are copied per instance


def test_the_sync_service_refuses_the_aiokafka_adapter_clearly() -> None:
    with pytest.raises(ConfigError, match=r"'aiokafka' is an asyncio client.*'confluent'"):
        DataAnalysisService(config={"kafka": KAFKA}, adapter="aiokafka")


def test_the_sync_service_refuses_an_aiokafka_adapter_from_the_settings() -> None:
    config = {"kafka": KAFKA, "service": {"adapter": "aiokafka"}}
    with pytest.raises(ConfigError, match="DataAnalysisService needs a synchronous one"):
        DataAnalysisService(config=config)


def test_the_async_service_refuses_the_confluent_adapter_clearly() -> None:
    with pytest.raises(ConfigError, match=r"'confluent' is a synchronous client.*'aiokafka'"):
        AsyncDataAnalysisService(config={"kafka": KAFKA}, adapter="confluent")


def test_an_unknown_adapter_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"adapter 'kafka-python' is unknown.*aiokafka"):
        DataAnalysisService(config={}, adapter="kafka-python")


def test_each_service_builds_clients_of_its_own_kind(clock: ManualClock) -> None:
    broker = MemoryBroker(clock)
    svc = AsyncDataAnalysisService(config={}, adapter="memory", broker=broker, clock=clock)
    assert isinstance(svc.container.clients().consumer(), AsyncMemoryConsumer)


def test_a_container_of_the_other_service_kind_is_refused() -> None:
    with pytest.raises(TypeError, match="needs a AsyncContainer"):
        AsyncDataAnalysisService(config={}, adapter="memory", container=Container())
    assert AsyncDataAnalysisService(config={}, adapter="memory", container=AsyncContainer())


def test_an_unknown_module_is_a_config_error_naming_it() -> None:
    with pytest.raises(ConfigError, match="nope"):
        DataAnalysisService(module_name="nope", config={}, adapter="memory")


def test_the_constructor_arguments_win_over_the_settings(container: Container) -> None:
    svc = DataAnalysisService(
        config={"service": {"max_workers": 3, "station_routing": "direct"}},
        adapter="memory",
        container=container,
        max_workers=5,
        station_routing="rekey",
        poll_timeout=0.5,
    )
    assert (svc.max_workers, svc.routing.mode, svc.poll_timeout) == (5, "rekey", 0.5)
    assert svc.options.max_workers == 5
