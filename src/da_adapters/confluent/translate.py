"""Translating confluent-kafka's wire types to the core's types and back, at the boundary.

Pure functions over the client's value classes (``Message``, ``TopicPartition``,
``KafkaError``); nothing here talks to a broker, so they are unit tested on real client objects.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import confluent_kafka as ck

from da_adapters.wire import as_bytes, header_pairs, sorted_partitions
from da_core.types import Record, TopicPartition

#: librdkafka's logical offsets: below zero, never a real next-to-read offset.
OFFSET_INVALID = ck.OFFSET_INVALID


def record_timestamp(timestamp: tuple[int, int]) -> float:
    """A message's ``(type, milliseconds)`` timestamp as float seconds; 0.0 when it has none."""
    kind, millis = timestamp
    if kind == ck.TIMESTAMP_NOT_AVAILABLE or millis < 0:
        return 0.0
    return millis / 1000.0


def record_headers(headers: Any) -> tuple[tuple[str, bytes], ...]:
    """A message's headers (a list of pairs, a dict, or None) as a tuple of ``(name, bytes)``;
    a null value becomes ``b""``."""
    if not headers:
        return ()
    pairs: Iterable[tuple[str, Any]] = headers.items() if isinstance(headers, Mapping) else headers
    return header_pairs(pairs)


def message_to_record(message: ck.Message) -> Record:
    """A consumed, error-free ``confluent_kafka.Message`` as a ``Record``.

    Raises ``ValueError`` for a message that carries an error or has no topic, partition or
    offset (an error event, not a record)."""
    if message.error() is not None:
        raise ValueError(f"message carries an error, not a record: {message.error()}")
    topic, partition, offset = message.topic(), message.partition(), message.offset()
    if topic is None or partition is None or offset is None or offset < 0:
        raise ValueError(
            f"message without topic/partition/offset: {topic!r}[{partition!r}]@{offset!r}"
        )
    return Record(
        topic=topic,
        partition=partition,
        offset=offset,
        value=as_bytes(message.value()),
        key=as_bytes(message.key()),
        timestamp=record_timestamp(message.timestamp()),
        headers=record_headers(message.headers()),
    )


def to_ck_partitions(
    partitions: Iterable[TopicPartition], offset: int = OFFSET_INVALID
) -> list[ck.TopicPartition]:
    """The client's ``TopicPartition`` list for ours (all with the same logical offset)."""
    return [ck.TopicPartition(tp.topic, tp.partition, offset) for tp in partitions]


def to_ck_offsets(offsets: Mapping[TopicPartition, int]) -> list[ck.TopicPartition]:
    """Next-to-read offsets as the client's ``TopicPartition`` list (for ``commit``)."""
    out: list[ck.TopicPartition] = []
    for tp, offset in offsets.items():
        if int(offset) < 0:
            raise ValueError(f"cannot commit a negative offset for {tp}: {offset}")
        out.append(ck.TopicPartition(tp.topic, tp.partition, int(offset)))
    return out


def from_ck_partition(partition: ck.TopicPartition) -> TopicPartition:
    return TopicPartition(partition.topic, partition.partition)


def from_ck_partitions(partitions: Iterable[ck.TopicPartition]) -> list[TopicPartition]:
    """Ours for the client's, sorted by topic and partition."""
    return sorted_partitions(from_ck_partition(p) for p in partitions)


def offset_or_none(offset: int) -> int | None:
    """A real offset, or None for librdkafka's logical ones (``OFFSET_INVALID`` and co)."""
    return offset if offset >= 0 else None


def error_text(error: ck.KafkaError) -> str:
    """``NAME: description`` of a client error, e.g. ``MSG_SIZE_TOO_LARGE: Broker: ...``."""
    return f"{error.name()}: {error.str()}"
