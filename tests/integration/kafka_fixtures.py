"""Kafka fixtures for the integration tests (imported by ``tests/integration/conftest.py``).

``kafka_bootstrap`` (session) gives a ``host:port`` bootstrap string, from the first of:

1. ``DA_KAFKA_BOOTSTRAP`` when set (a broker you run yourself, e.g. ``scripts/kafka-broker start``);
2. testcontainers' Kafka module, only when a Docker engine answers (``DA_KAFKA_DOCKER=0`` turns
   this off; ``DA_KAFKA_IMAGE`` picks the image);
3. a real Apache Kafka 4.x broker started by ``scripts/kafka_broker.py`` (Java 17+ and, for the
   first fetch, Maven), stopped at the end of the session.

When none works the tests fail under CI (``CI`` set) and are skipped elsewhere, with the reason.

``kafka_topic_factory`` creates uniquely named topics and deletes them after the test.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import importlib.util
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn, Protocol, cast

import pytest
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from tests.support.waiting import wait_for

REPO_ROOT = Path(__file__).resolve().parents[2]
BROKER_SCRIPT = REPO_ROOT / "scripts" / "kafka_broker.py"
DEFAULT_IMAGE = "confluentinc/cp-kafka:7.6.0"
TOPIC_TIMEOUT = 30.0


class _Broker(Protocol):
    @property
    def bootstrap(self) -> str: ...

    def stop(self, timeout: float = ...) -> None: ...


class _BrokerModule(Protocol):
    def start_broker(
        self,
        *,
        timeout: float = ...,
        detach: bool = ...,
        die_with_parent: bool = ...,
    ) -> _Broker: ...


class TopicFactory(Protocol):
    def __call__(
        self,
        partitions: int = 3,
        *,
        prefix: str = "it",
        config: Mapping[str, str] | None = None,
    ) -> str: ...


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def unavailable(reason: str) -> NoReturn:
    """No broker: fail under CI (never skip there), skip elsewhere."""
    if in_ci():
        pytest.fail(f"Kafka broker needed under CI: {reason}", pytrace=False)
    pytest.skip(f"no Kafka broker: {reason}")


def load_broker_module() -> _BrokerModule:
    """Import scripts/kafka_broker.py from the repo (it is a script, not a package)."""
    name = "da_scripts_kafka_broker"
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, BROKER_SCRIPT)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {BROKER_SCRIPT}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look the module up while it executes
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
    return cast(_BrokerModule, module)


def docker_engine_answers(timeout: float = 3.0) -> bool:
    """Quickly: does a Docker engine answer (docker SDK ping, else `docker info`)?"""
    try:
        docker: ModuleType | None = importlib.import_module("docker")
    except ImportError:
        docker = None
    if docker is not None:
        try:
            client: Any = docker.from_env(timeout=max(1, int(timeout)))
            try:
                if client.ping():
                    return True
            finally:
                client.close()
        except Exception:
            pass
    cli = shutil.which("docker")
    if cli is None:
        return False
    try:
        result = subprocess.run(
            [cli, "info"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def _kafka_container_class() -> Any:
    try:
        module = importlib.import_module("testcontainers.community.kafka")
    except ImportError:
        module = importlib.import_module("testcontainers.kafka")
    return module.KafkaContainer


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap servers of a real Kafka broker for this test session."""
    given = os.environ.get("DA_KAFKA_BOOTSTRAP", "").strip()
    if given:
        yield given
        return

    reasons: list[str] = []
    if os.environ.get("DA_KAFKA_DOCKER", "1") == "0":
        reasons.append("Docker turned off by DA_KAFKA_DOCKER=0")
    elif not docker_engine_answers():
        reasons.append("no Docker engine answers")
    else:
        container: Any = None
        try:
            image = os.environ.get("DA_KAFKA_IMAGE", DEFAULT_IMAGE)
            container = _kafka_container_class()(image).with_kraft()
            container.start()
            bootstrap = str(container.get_bootstrap_server())
        except Exception as exc:
            reasons.append(f"testcontainers Kafka failed: {type(exc).__name__}: {exc}")
            if container is not None:
                try:
                    container.stop()
                except Exception as stop_exc:
                    reasons.append(f"stopping the container failed: {stop_exc}")
        else:
            try:
                yield bootstrap
            finally:
                container.stop()
            return

    try:
        broker = load_broker_module().start_broker(detach=False, die_with_parent=True)
    except Exception as exc:
        reasons.append(f"{BROKER_SCRIPT.relative_to(REPO_ROOT)}: {type(exc).__name__}: {exc}")
    else:
        atexit.register(broker.stop)  # in case the session ends without teardown
        try:
            yield broker.bootstrap
        finally:
            broker.stop()
        return

    unavailable("; ".join(reasons))


# --------------------------------------------------------------------------------------------
# Topics


def wait_for_topic(
    admin: AdminClient, topic: str, partitions: int, timeout: float = TOPIC_TIMEOUT
) -> None:
    """Wait until the broker's metadata shows `topic` with all partitions led."""
    last = "no metadata yet"

    def ready() -> bool:
        nonlocal last
        try:
            metadata = admin.list_topics(topic=topic, timeout=5)
        except Exception as exc:
            last = str(exc)
            return False
        found = metadata.topics.get(topic)
        if found is not None and found.error is None:
            parts = found.partitions
            if len(parts) == partitions and all(
                p.leader >= 0 and p.error is None for p in parts.values()
            ):
                return True
            last = f"{len(parts)} partitions, leaders {[p.leader for p in parts.values()]}"
        elif found is not None:
            last = str(found.error)
        return False

    wait_for(ready, timeout, what=f"topic {topic}", interval=0.1, observe=lambda: last)


def create_topic(
    bootstrap: str,
    name: str,
    partitions: int,
    config: Mapping[str, str] | None = None,
    timeout: float = TOPIC_TIMEOUT,
) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    new = NewTopic(name, num_partitions=partitions, replication_factor=1, config=dict(config or {}))
    futures = admin.create_topics([new], operation_timeout=timeout, request_timeout=timeout)
    futures[name].result(timeout)
    wait_for_topic(admin, name, partitions, timeout)


def delete_topics(bootstrap: str, names: list[str], timeout: float = TOPIC_TIMEOUT) -> None:
    """Best effort: delete `names`, ignoring errors."""
    if not names:
        return
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.delete_topics(names, operation_timeout=timeout, request_timeout=timeout)
    for future in futures.values():
        with contextlib.suppress(Exception):
            future.result(timeout)


@pytest.fixture
def kafka_topic_factory(kafka_bootstrap: str) -> Iterator[TopicFactory]:
    """``make(partitions=3, prefix="it", config=None) -> name``: creates a fresh topic (waits
    until every partition has a leader); the topics are deleted after the test."""
    created: list[str] = []

    def make(
        partitions: int = 3, *, prefix: str = "it", config: Mapping[str, str] | None = None
    ) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        create_topic(kafka_bootstrap, name, partitions, config)
        created.append(name)
        return name

    yield make
    delete_topics(kafka_bootstrap, created)
