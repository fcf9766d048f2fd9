"""The table of the guide's Kafka keys: every key it accepts reaches each client or is noted."""

from __future__ import annotations

from typing import Any

import pytest

from da_adapters.kafka_config import (
    KafkaSections,
    to_aiokafka_consumer,
    to_aiokafka_producer,
    to_librdkafka_consumer,
    to_librdkafka_producer,
)
from da_adapters.kafka_keys import (
    KAFKA_CONSUMER_KEYS,
    KAFKA_KEYS,
    KAFKA_PRODUCER_KEYS,
    KafkaKey,
    librdkafka_renames,
)
from da_app.settings import KafkaSettings

# settings the framework applies itself, outside the clients' mappings
_APPLIED_BY_THE_FRAMEWORK = {"enable_auto_commit", "max_poll_records"}

_TRANSLATIONS = {
    "consumer": (to_librdkafka_consumer, to_aiokafka_consumer),
    "producer": (to_librdkafka_producer, to_aiokafka_producer),
}


def _sample(key: KafkaKey) -> Any:
    if key.kind == "servers":
        return "a:1"
    if key.kind == "acks":
        return "all"
    if key.kind == "choice":
        return key.choices[0]
    if key.kind == "bool":
        return True
    if key.kind == "text":
        return "x"
    if key.kind == "any":
        return "random"
    return 7


_CASES = [
    (key, side, translate)
    for key in KAFKA_KEYS
    if not key.ignored and key.name not in _APPLIED_BY_THE_FRAMEWORK
    for side in ("consumer", "producer")
    if key.applies_to(side)
    for translate in _TRANSLATIONS[side]
]


@pytest.mark.parametrize(
    ("key", "side", "translate"),
    _CASES,
    ids=[f"{k.name}-{t.__name__}" for k, _, t in _CASES],
)
def test_every_accepted_key_is_translated_or_dropped_with_a_note(
    key: KafkaKey, side: str, translate: Any
) -> None:
    empty = translate(KafkaSections())
    done = translate(KafkaSections(**{side: {key.name: _sample(key)}}))
    assert done.config != empty.config or done.ssl or done.notes


def test_each_key_belongs_to_one_scope() -> None:
    names = [k.name for k in KAFKA_KEYS]
    assert len(names) == len(set(names))
    assert not KAFKA_CONSUMER_KEYS & KAFKA_PRODUCER_KEYS


def test_the_consumer_request_timeout_is_librdkafkas_socket_timeout() -> None:
    assert librdkafka_renames("consumer")["request_timeout_ms"] == "socket.timeout.ms"
    assert librdkafka_renames("producer")["request_timeout_ms"] == "request.timeout.ms"


def test_settings_accept_exactly_the_keys_of_the_table() -> None:
    for key in KAFKA_KEYS:
        side = "producer" if key.scope == "producer" else "consumer"
        settings = KafkaSettings.from_raw({side: {key.name: _sample(key)}})
        if key.ignored:
            assert any(key.ignored in w for w in settings.warnings)
        elif key.name != "enable_auto_commit":
            assert key.name in getattr(settings, side)
