"""``instance_id`` reaches each client as its static-membership setting, and only the group
handle: the internal readers (``assign``/``assign_at``, offsets) never carry it, since two
handles with one instance id would fence each other. No broker is contacted."""

from __future__ import annotations

import pytest


def test_confluent_sets_group_instance_id_on_the_group_handle_only() -> None:
    confluent = pytest.importorskip("da_adapters.confluent")
    consumer = confluent.ConfluentConsumer(
        group_id="g", bootstrap_servers="127.0.0.1:9", instance_id="da-1"
    )
    try:
        assert consumer._config["group.instance.id"] == "da-1"
        assert consumer.instance_id == "da-1"
        assert "group.instance.id" not in consumer._side_config("g.assign-1")
    finally:
        consumer.close()


def test_confluent_without_instance_id_is_a_dynamic_member() -> None:
    confluent = pytest.importorskip("da_adapters.confluent")
    consumer = confluent.ConfluentConsumer(group_id="g", bootstrap_servers="127.0.0.1:9")
    try:
        assert "group.instance.id" not in consumer._config
        assert consumer.instance_id is None
    finally:
        consumer.close()


def test_aiokafka_sets_group_instance_id() -> None:
    aio = pytest.importorskip("da_adapters.aiokafka")
    consumer = aio.AiokafkaConsumer(
        group_id="g", bootstrap_servers="127.0.0.1:9", instance_id="da-1"
    )

    assert consumer._kwargs["group_instance_id"] == "da-1"
    assert consumer.instance_id == "da-1"


def test_aiokafka_without_instance_id_is_a_dynamic_member() -> None:
    aio = pytest.importorskip("da_adapters.aiokafka")
    consumer = aio.AiokafkaConsumer(group_id="g", bootstrap_servers="127.0.0.1:9")

    assert "group_instance_id" not in consumer._kwargs
    assert consumer.instance_id is None
