"""``service.instance_id`` (static group membership): off by default, from the file or from
``DA_INSTANCE_ID``, which wins."""

from __future__ import annotations

import pytest

from da_app.settings import Settings
from da_core.errors import ConfigError


def test_instance_id_is_off_by_default_even_with_a_hostname() -> None:
    # HOSTNAME is never used: outside a StatefulSet two processes on one host would share it
    s = Settings.from_raw({}, environ={"HOSTNAME": "worker-0"})

    assert s.service.instance_id is None


def test_instance_id_comes_from_the_file() -> None:
    s = Settings.from_raw({"service": {"instance_id": "da-0"}}, environ={})

    assert s.service.instance_id == "da-0"


def test_the_environment_variable_wins_over_the_file() -> None:
    s = Settings.from_raw(
        {"service": {"instance_id": "da-0"}}, environ={"DA_INSTANCE_ID": "da-analysis-3"}
    )

    assert s.service.instance_id == "da-analysis-3"


def test_an_empty_instance_id_in_the_file_is_an_error() -> None:
    with pytest.raises(ConfigError, match="instance_id"):
        Settings.from_raw({"service": {"instance_id": ""}}, environ={})


def _kafka_config(instance_id: str) -> dict[str, object]:
    return {
        "KAFKA_CONFIG": {"bootstrap_servers": "127.0.0.1:9", "consumer": {"group_id": "g"}},
        "service": {"instance_id": instance_id, "health_port": 0, "metrics_port": 0},
    }


def test_the_sync_service_consumer_joins_with_the_instance_id() -> None:
    from da_app.services import DataAnalysisService

    svc = DataAnalysisService(config=_kafka_config("da-0"), adapter="confluent")
    consumer = svc.container.clients().consumer()
    try:
        assert consumer.instance_id == "da-0"
    finally:
        consumer.close()


async def test_the_async_service_consumer_joins_with_the_instance_id() -> None:
    from da_app.services import AsyncDataAnalysisService

    svc = AsyncDataAnalysisService(config=_kafka_config("da-1"), adapter="aiokafka")
    consumer = svc.container.clients().consumer()
    assert consumer.instance_id == "da-1"
