"""Translating kafka-python-style settings to librdkafka properties and aiokafka arguments."""

from __future__ import annotations

import inspect
from typing import Any

import aiokafka
import confluent_kafka
import pytest

from da_adapters.kafka_config import (
    ClientConfig,
    KafkaSections,
    redact,
    to_aiokafka_consumer,
    to_aiokafka_producer,
    to_librdkafka_consumer,
    to_librdkafka_producer,
)
from da_app.settings import KafkaSettings

GUIDE_KAFKA_CONFIG: dict[str, Any] = {
    "consumer": {
        "bootstrap_servers": ["kafka1:9092", "kafka2:9092", "kafka3:9092"],
        "group_id": "data_analysis_group",
        "auto_offset_reset": "latest",
        "enable_auto_commit": False,
        "max_poll_records": 500,
        "session_timeout_ms": 30000,
        "request_timeout_ms": 40000,
        "heartbeat_interval_ms": 3000,
    },
    "producer": {
        "bootstrap_servers": ["kafka1:9092", "kafka2:9092", "kafka3:9092"],
        "acks": "all",
        "retries": 3,
        "max_in_flight_requests_per_connection": 5,
        "compression_type": "gzip",
        "linger_ms": 10,
        "batch_size": 16384,
    },
}
BROKERS = "kafka1:9092,kafka2:9092,kafka3:9092"

SECURE: dict[str, Any] = {
    "bootstrap_servers": "127.0.0.1:1",
    "security_protocol": "SASL_SSL",
    "sasl_mechanism": "SCRAM-SHA-512",
    "sasl_plain_username": "svc",
    "sasl_plain_password": "pw-1",
    "ssl_cafile": "/etc/kafka/ca.pem",
    "ssl_certfile": "/etc/kafka/client.pem",
    "ssl_keyfile": "/etc/kafka/client.key",
    "ssl_password": "pw-2",
    "ssl_check_hostname": False,
}


def guide() -> KafkaSettings:
    return KafkaSettings.from_raw(GUIDE_KAFKA_CONFIG)


def settings(raw: dict[str, Any]) -> KafkaSettings:
    return KafkaSettings.from_raw(raw)


# ----------------------------------------------------------------------------- librdkafka


def test_guide_consumer_becomes_librdkafka_properties() -> None:
    result = to_librdkafka_consumer(guide())
    assert result.config == {
        "bootstrap.servers": BROKERS,
        "group.id": "data_analysis_group",
        "auto.offset.reset": "latest",
        "session.timeout.ms": 30000,
        "socket.timeout.ms": 40000,
        "heartbeat.interval.ms": 3000,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
    }
    assert result.notes == ()


def test_guide_producer_becomes_librdkafka_properties() -> None:
    result = to_librdkafka_producer(guide())
    assert result.config == {
        "bootstrap.servers": BROKERS,
        "acks": "all",
        "retries": 3,
        "max.in.flight.requests.per.connection": 5,
        "compression.type": "gzip",
        "linger.ms": 10,
        "batch.size": 16384,
        "partitioner": "murmur2_random",
    }
    assert result.notes == ()


def test_max_poll_records_is_returned_beside_the_librdkafka_properties() -> None:
    result = to_librdkafka_consumer(guide())
    assert result.max_poll_records == 500
    assert not any("poll" in key and "records" in key for key in result.config)


def test_librdkafka_values_are_plain_scalars() -> None:
    k = settings({**SECURE, "consumer": {"partition_assignment_strategy": ["range"]}})
    for result in (to_librdkafka_consumer(k), to_librdkafka_producer(k)):
        assert all(isinstance(v, (str, int, float, bool)) for v in result.config.values())


def test_librdkafka_auto_commit_stays_off_when_the_raw_section_asks_for_it() -> None:
    sections = KafkaSections(
        consumer={"enable_auto_commit": True}, confluent={"enable.auto.commit": True}
    )
    result = to_librdkafka_consumer(sections)
    assert result.config["enable.auto.commit"] is False
    assert any("enable.auto.commit" in note for note in result.notes)


def test_raw_confluent_settings_are_merged_last_and_win() -> None:
    k = settings(
        {
            "group_id": "g",
            "confluent": {"group.id": "raw-group", "statistics.interval.ms": 1000},
            "producer": {"librdkafka": {"partitioner": "consistent_random"}},
        }
    )
    consumer, producer = to_librdkafka_consumer(k).config, to_librdkafka_producer(k).config
    assert (consumer["group.id"], consumer["statistics.interval.ms"]) == ("raw-group", 1000)
    assert (producer["partitioner"], producer["statistics.interval.ms"]) == (
        "consistent_random",
        1000,
    )


def test_a_side_raw_section_applies_to_that_side_only() -> None:
    k = settings({"confluent": {"consumer": {"fetch.error.backoff.ms": 50}}})
    assert to_librdkafka_consumer(k).config["fetch.error.backoff.ms"] == 50
    assert "fetch.error.backoff.ms" not in to_librdkafka_producer(k).config


def test_security_settings_become_librdkafka_properties() -> None:
    config = to_librdkafka_consumer(settings(SECURE)).config
    assert {k: v for k, v in config.items() if k.startswith(("security", "sasl", "ssl"))} == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanisms": "SCRAM-SHA-512",
        "sasl.username": "svc",
        "sasl.password": "pw-1",
        "ssl.ca.location": "/etc/kafka/ca.pem",
        "ssl.certificate.location": "/etc/kafka/client.pem",
        "ssl.key.location": "/etc/kafka/client.key",
        "ssl.key.password": "pw-2",
        "ssl.endpoint.identification.algorithm": "none",
    }


def test_security_protocol_is_upper_cased_for_librdkafka() -> None:
    sections = KafkaSections(producer={"security_protocol": "sasl_plaintext"})
    assert to_librdkafka_producer(sections).config["security.protocol"] == "SASL_PLAINTEXT"


def test_offset_reset_none_becomes_error_for_librdkafka() -> None:
    k = settings({"auto_offset_reset": "none"})
    assert to_librdkafka_consumer(k).config["auto.offset.reset"] == "error"


def test_assignor_names_and_kafka_python_classes_become_librdkafka_names() -> None:
    class RoundRobinPartitionAssignor:  # stands for kafka-python's class of that name
        pass

    k = settings({"partition_assignment_strategy": ["range", RoundRobinPartitionAssignor]})
    config = to_librdkafka_consumer(k).config
    assert config["partition.assignment.strategy"] == "range,roundrobin"


def test_an_assignor_librdkafka_lacks_is_dropped_with_a_note() -> None:
    result = to_librdkafka_consumer(settings({"partition_assignment_strategy": "sticky"}))
    assert "partition.assignment.strategy" not in result.config
    assert "'sticky' has no librdkafka equivalent" in result.notes[0]


def test_a_callable_partitioner_keeps_murmur2_random_with_a_note() -> None:
    result = to_librdkafka_producer(settings({"partitioner": lambda *a: 0}))
    assert result.config["partitioner"] == "murmur2_random"
    assert "using murmur2_random" in result.notes[0]


def test_buffer_memory_becomes_kilobytes() -> None:
    config = to_librdkafka_producer(settings({"buffer_memory": 33554432})).config
    assert config["queue.buffering.max.kbytes"] == 32768


def test_a_setting_librdkafka_lacks_is_dropped_with_a_note() -> None:
    result = to_librdkafka_consumer(settings({"sasl_kerberos_domain_name": "example.com"}))
    assert not any("domain" in key for key in result.config)
    assert result.notes == (
        "consumer 'sasl_kerberos_domain_name' ignored by librdkafka: librdkafka derives it "
        "from the broker host",
    )


def test_plain_sections_with_a_comma_separated_server_string_are_translated() -> None:
    sections = KafkaSections(consumer={"bootstrap_servers": "a:1, b:2", "group_id": "g"})
    assert to_librdkafka_consumer(sections).config["bootstrap.servers"] == "a:1,b:2"


def test_confluent_kafka_accepts_the_translated_properties() -> None:
    k = settings(
        {
            **{key: v for key, v in SECURE.items() if not key.startswith("ssl_")},
            "consumer": {
                "group_id": "g",
                "group_instance_id": "i-1",
                "isolation_level": "read_committed",
                "fetch_max_wait_ms": 100,
                "partition_assignment_strategy": "range",
            },
            "producer": {"enable_idempotence": True, "buffer_memory": 1 << 20},
        }
    )
    consumer = confluent_kafka.Consumer(to_librdkafka_consumer(k).config)
    consumer.close()
    producer = confluent_kafka.Producer(to_librdkafka_producer(k).config)
    assert producer.flush(0) == 0


# -------------------------------------------------------------------------------- aiokafka


def test_guide_consumer_becomes_aiokafka_arguments() -> None:
    result = to_aiokafka_consumer(guide())
    assert result.config == {
        "bootstrap_servers": ["kafka1:9092", "kafka2:9092", "kafka3:9092"],
        "group_id": "data_analysis_group",
        "auto_offset_reset": "latest",
        "enable_auto_commit": False,
        "max_poll_records": 500,
        "session_timeout_ms": 30000,
        "request_timeout_ms": 40000,
        "heartbeat_interval_ms": 3000,
    }
    assert (result.notes, result.max_poll_records) == ((), 500)


def test_guide_producer_becomes_aiokafka_arguments_without_retries() -> None:
    result = to_aiokafka_producer(guide())
    assert result.config == {
        "bootstrap_servers": ["kafka1:9092", "kafka2:9092", "kafka3:9092"],
        "acks": "all",
        "compression_type": "gzip",
        "linger_ms": 10,
        "max_batch_size": 16384,
    }
    assert [note.split(" ignored")[0] for note in result.notes] == [
        "producer 'retries'",
        "producer 'max_in_flight_requests_per_connection'",
    ]


def test_aiokafka_constructors_accept_the_translated_arguments() -> None:
    k = settings({**SECURE, "client_id": "da", "consumer": {"isolation_level": "read_committed"}})
    inspect.signature(aiokafka.AIOKafkaConsumer).bind("topic", **to_aiokafka_consumer(k).config)
    inspect.signature(aiokafka.AIOKafkaProducer).bind(**to_aiokafka_producer(k).config)


def test_ssl_files_are_returned_for_the_adapter_not_as_arguments() -> None:
    result = to_aiokafka_consumer(settings(SECURE))
    assert result.ssl == {
        "cafile": "/etc/kafka/ca.pem",
        "certfile": "/etc/kafka/client.pem",
        "keyfile": "/etc/kafka/client.key",
        "password": "pw-2",
        "check_hostname": False,
    }
    assert not any(key.startswith("ssl") for key in result.config)
    assert result.config["security_protocol"] == "SASL_SSL"


def test_acks_for_aiokafka_are_all_or_an_integer() -> None:
    assert to_aiokafka_producer(KafkaSections(producer={"acks": "1"})).config["acks"] == 1
    assert to_aiokafka_producer(KafkaSections(producer={"acks": -1})).config["acks"] == "all"


def test_compression_none_is_none_for_aiokafka() -> None:
    sections = KafkaSections(producer={"compression_type": "none"})
    assert to_aiokafka_producer(sections).config["compression_type"] is None


def test_raw_aiokafka_settings_win_except_auto_commit() -> None:
    k = KafkaSections(
        consumer={"group_id": "g"},
        aiokafka={"consumer": {"group_id": "raw", "enable_auto_commit": True}},
    )
    result = to_aiokafka_consumer(k)
    assert (result.config["group_id"], result.config["enable_auto_commit"]) == ("raw", False)
    assert any("enable_auto_commit" in note for note in result.notes)


def test_aiokafka_assignor_classes_pass_and_names_are_noted() -> None:
    class Assignor:
        pass

    result = to_aiokafka_consumer(
        KafkaSections(consumer={"partition_assignment_strategy": ["range", Assignor]})
    )
    assert result.config["partition_assignment_strategy"] == (Assignor,)
    assert "names are not understood by aiokafka" in result.notes[0]


def test_a_callable_partitioner_is_passed_to_aiokafka() -> None:
    def partitioner(*args: Any) -> int:
        return 0

    result = to_aiokafka_producer(KafkaSections(producer={"partitioner": partitioner}))
    assert result.config["partitioner"] is partitioner


# ------------------------------------------------------------------------------ redaction


def test_client_config_repr_hides_secrets() -> None:
    k = settings(SECURE)
    text = repr(to_librdkafka_consumer(k)) + repr(to_aiokafka_producer(k))
    assert "svc" in text
    assert "pw-1" not in text
    assert "pw-2" not in text


def test_redact_replaces_secrets_in_nested_mappings() -> None:
    assert redact(
        {"sasl.jaas.config": "x", "a": {"oauth_token": "t", "user": "u"}, "ssl.key.pem": "k"}
    ) == {"sasl.jaas.config": "***", "a": {"oauth_token": "***", "user": "u"}, "ssl.key.pem": "***"}


@pytest.mark.parametrize(
    "translate",
    [to_librdkafka_consumer, to_librdkafka_producer, to_aiokafka_consumer, to_aiokafka_producer],
)
def test_empty_settings_translate_without_notes(translate: Any) -> None:
    result = translate(KafkaSections())
    assert isinstance(result, ClientConfig)
    assert result.notes == ()


def test_metadata_max_age_is_librdkafkas_refresh_period_not_its_cache_age() -> None:
    """kafka-python's and aiokafka's ``metadata_max_age_ms`` is the period of the proactive
    metadata refresh (how soon a topic created after subscribing is consumed). librdkafka's
    name for that period is ``topic.metadata.refresh.interval.ms``; its ``metadata.max.age.ms``
    is only the cache's max age, and setting it left the refresh at 5 minutes."""
    k = settings({"bootstrap_servers": "127.0.0.1:1", "metadata_max_age_ms": 1000})
    for result in (to_librdkafka_consumer(k), to_librdkafka_producer(k)):
        assert result.config["topic.metadata.refresh.interval.ms"] == 1000
        assert "metadata.max.age.ms" not in result.config
    assert to_aiokafka_consumer(k).config["metadata_max_age_ms"] == 1000
