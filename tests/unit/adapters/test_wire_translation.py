"""The boundary translations of the Kafka adapters, on real client value objects (no broker):
``confluent_kafka.Message`` / ``KafkaError`` and aiokafka's ``ConsumerRecord`` /
``RecordMetadata``. The same translations are checked on messages a real broker delivered in
``tests/integration/test_*_contract.py`` (``test_round_trip_translates_every_field...``), which
is the only check where a confluent-kafka too old to construct a ``Message`` is installed (the
tests building one are then skipped)."""

from __future__ import annotations

import logging
import ssl

import confluent_kafka as ck
import pytest
from aiokafka.errors import MessageSizeTooLargeError
from aiokafka.structs import ConsumerRecord, RecordMetadata
from aiokafka.structs import TopicPartition as AioTopicPartition

from da_adapters.aiokafka import build_ssl_context, consumer_record_to_record
from da_adapters.aiokafka import translate as aio
from da_adapters.aiokafka._support import reset_policy as aio_reset_policy
from da_adapters.confluent import LibrdkafkaLogBridge, delivery_report, message_to_record
from da_adapters.confluent import translate as cft
from da_adapters.confluent._support import reset_policy as rdk_reset_policy
from da_core.errors import ConfigError
from da_core.types import DeliveryReport, OutboundRecord, Record, TopicPartition

# -- confluent-kafka -----------------------------------------------------------------------------


def _message(**fields: object) -> ck.Message:
    base: dict[str, object] = {
        "topic": "t",
        "partition": 2,
        "offset": 41,
        "key": b"st-1",
        "value": b'{"a": 1}',
        "timestamp": (ck.TIMESTAMP_CREATE_TIME, 1_700_000_000_123),
    }
    base.update(fields)
    return _construct_message(**base)


def _construct_message(**fields: object) -> ck.Message:
    try:
        return ck.Message(**fields)  # type: ignore[arg-type]
    except TypeError as exc:  # confluent-kafka without a public Message constructor
        pytest.skip(
            f"confluent_kafka.Message cannot be constructed here ({exc}); see the "
            "round-trip test in tests/integration/test_confluent_contract.py"
        )


def test_a_message_becomes_a_record_with_float_seconds_and_tuple_headers() -> None:
    message = _message(headers=[("trace", b"abc"), ("trace", b"def"), ("null", None)])

    record = message_to_record(message)

    assert record == Record(
        topic="t",
        partition=2,
        offset=41,
        value=b'{"a": 1}',
        key=b"st-1",
        timestamp=1_700_000_000.123,
        headers=(("trace", b"abc"), ("trace", b"def"), ("null", b"")),
    )
    assert record.tp == TopicPartition("t", 2)


def test_a_message_without_key_value_headers_or_timestamp() -> None:
    message = _message(key=None, value=None, timestamp=(ck.TIMESTAMP_NOT_AVAILABLE, 0))

    record = message_to_record(message)

    assert (record.key, record.value, record.headers, record.timestamp) == (None, None, (), 0.0)


def test_log_append_time_is_a_timestamp_too() -> None:
    record = message_to_record(_message(timestamp=(ck.TIMESTAMP_LOG_APPEND_TIME, 1500)))

    assert record.timestamp == 1.5


def test_dict_headers_are_accepted() -> None:
    assert cft.record_headers({"a": b"1", "b": "x"}) == (("a", b"1"), ("b", b"x"))


def test_an_error_event_is_not_a_record() -> None:
    error = ck.KafkaError(ck.KafkaError._PARTITION_EOF)
    message = _construct_message(topic="t", partition=0, error=error)

    with pytest.raises(ValueError, match="error"):
        message_to_record(message)


def test_a_message_without_an_offset_is_not_a_record() -> None:
    with pytest.raises(ValueError, match="offset"):
        message_to_record(_construct_message(topic="t", partition=0, value=b"v"))


def test_commit_offsets_are_next_to_read_offsets_of_client_partitions() -> None:
    wanted = cft.to_ck_offsets({TopicPartition("t", 0): 42, TopicPartition("u", 3): 0})

    assert [(p.topic, p.partition, p.offset) for p in wanted] == [("t", 0, 42), ("u", 3, 0)]
    with pytest.raises(ValueError, match="negative"):
        cft.to_ck_offsets({TopicPartition("t", 0): -1})


def test_logical_offsets_mean_unknown() -> None:
    assert cft.offset_or_none(ck.OFFSET_INVALID) is None
    assert cft.offset_or_none(ck.OFFSET_END) is None
    assert cft.offset_or_none(0) == 0


def test_client_partitions_come_back_sorted_and_plain() -> None:
    parts = [ck.TopicPartition("b", 1, 5), ck.TopicPartition("a", 2), ck.TopicPartition("a", 0)]

    assert cft.from_ck_partitions(parts) == [
        TopicPartition("a", 0),
        TopicPartition("a", 2),
        TopicPartition("b", 1),
    ]


def test_a_delivery_callback_becomes_one_report() -> None:
    record = OutboundRecord("t", b"v", key=b"k")
    delivered = _message(partition=1, offset=7)
    refused = ck.KafkaError(ck.KafkaError.MSG_SIZE_TOO_LARGE)

    assert delivery_report(record, None, delivered) == DeliveryReport(record, None, 1, 7)
    failed = delivery_report(record, refused, _construct_message(topic="t", partition=-1))
    assert failed.error is not None
    assert failed.error.startswith("MSG_SIZE_TOO_LARGE: ")
    assert (failed.ok, failed.partition, failed.offset) == (False, None, None)


def test_the_log_bridge_names_group_and_partition_of_an_offset_reset(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bridge = LibrdkafkaLogBridge("grp", "earliest")
    line = (
        "[thrd:main]: topic-a [3]: offset reset (at offset 2 (leader epoch -1), broker 1) to "
        "offset "
        "BEGINNING (leader epoch -1): fetch failed due to requested offset not available on "
        "the broker: Broker: Offset out of range"
    )

    with caplog.at_level(logging.INFO):
        bridge.log(logging.WARNING, "%s [%s] %s", "OFFSET", "rdkafka#consumer-1", line)
        bridge.log(logging.INFO, "%s [%s] %s", "CGRPOP", "rdkafka#consumer-1", "other")

    resets = [r for r in caplog.records if r.name == "da_adapters.confluent"]
    assert len(resets) == 1
    assert "group grp" in resets[0].getMessage()
    assert "topic-a[3]" in resets[0].getMessage()
    assert "earliest" in resets[0].getMessage()
    assert len([r for r in caplog.records if r.name.endswith("librdkafka")]) == 2


@pytest.mark.parametrize(
    ("given", "expected"),
    [("earliest", "earliest"), ("smallest", "earliest"), ("LATEST", "latest"), ("none", "error")],
)
def test_librdkafka_reset_policies(given: str, expected: str) -> None:
    assert rdk_reset_policy(given) == expected


def test_an_unknown_reset_policy_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="auto_offset_reset"):
        rdk_reset_policy("sometimes")
    with pytest.raises(ConfigError, match="auto_offset_reset"):
        aio_reset_policy("sometimes")


# -- aiokafka ------------------------------------------------------------------------------------


def _consumer_record(**fields: object) -> ConsumerRecord[bytes, bytes]:
    base: dict[str, object] = {
        "topic": "t",
        "partition": 1,
        "offset": 9,
        "timestamp": 1_700_000_000_500,
        "timestamp_type": 0,
        "key": b"st-2",
        "value": b"{}",
        "checksum": None,
        "serialized_key_size": 4,
        "serialized_value_size": 2,
        "headers": [("h", b"1"), ("h", b"2")],
    }
    base.update(fields)
    return ConsumerRecord(**base)


def test_a_consumer_record_becomes_a_record() -> None:
    record = consumer_record_to_record(_consumer_record())

    assert record == Record(
        topic="t",
        partition=1,
        offset=9,
        value=b"{}",
        key=b"st-2",
        timestamp=1_700_000_000.5,
        headers=(("h", b"1"), ("h", b"2")),
    )


def test_a_tombstone_without_timestamp_or_headers() -> None:
    record = consumer_record_to_record(
        _consumer_record(key=None, value=None, timestamp=-1, headers=())
    )

    assert (record.key, record.value, record.timestamp, record.headers) == (None, None, 0.0, ())


def test_getmany_batches_flatten_keeping_each_partitions_order() -> None:
    tp0, tp1 = AioTopicPartition("t", 0), AioTopicPartition("t", 1)
    batches = {
        tp0: [_consumer_record(partition=0, offset=o) for o in (3, 4)],
        tp1: [_consumer_record(partition=1, offset=o) for o in (0, 1, 2)],
    }

    records = aio.batches_to_records(batches)

    assert [(r.partition, r.offset) for r in records] == [(0, 3), (0, 4), (1, 0), (1, 1), (1, 2)]


def test_aiokafka_commit_offsets() -> None:
    assert aio.to_aio_offsets({TopicPartition("t", 1): 5}) == {AioTopicPartition("t", 1): 5}
    with pytest.raises(ValueError, match="negative"):
        aio.to_aio_offsets({TopicPartition("t", 1): -2})
    assert aio.from_aio_partitions([AioTopicPartition("b", 0), AioTopicPartition("a", 1)]) == [
        TopicPartition("a", 1),
        TopicPartition("b", 0),
    ]


def test_send_results_become_reports() -> None:
    record = OutboundRecord("t", b"v")
    metadata = RecordMetadata("t", 2, AioTopicPartition("t", 2), 11, 1_700_000_000_000, 0, 0)

    assert aio.metadata_to_report(record, metadata) == DeliveryReport(record, None, 2, 11)
    failed = aio.error_report(record, MessageSizeTooLargeError())
    assert failed.error is not None
    assert failed.error.startswith("MessageSizeTooLargeError")
    assert (failed.ok, failed.offset) == (False, None)


@pytest.mark.parametrize(
    ("given", "expected"),
    [("earliest", "earliest"), ("largest", "latest"), ("error", "none"), ("none", "none")],
)
def test_aiokafka_reset_policies(given: str, expected: str) -> None:
    assert aio_reset_policy(given) == expected


def test_the_ssl_context_follows_the_ssl_settings() -> None:
    context = build_ssl_context({"check_hostname": False, "ciphers": "ECDHE+AESGCM"})

    assert isinstance(context, ssl.SSLContext)
    assert context.check_hostname is False
    assert context.verify_mode == ssl.CERT_REQUIRED
