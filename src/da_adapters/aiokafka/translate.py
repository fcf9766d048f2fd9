"""Translating aiokafka's wire types to the core's types and back, at the boundary.

Pure functions over aiokafka's value classes (``ConsumerRecord``, ``TopicPartition``,
``RecordMetadata``); nothing here talks to a broker, so they are unit tested on real objects.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from aiokafka.structs import TopicPartition as AioTopicPartition

from da_adapters.wire import as_bytes, header_pairs, sorted_partitions
from da_core.types import DeliveryReport, OutboundRecord, Record, TopicPartition


def record_timestamp(millis: int | None) -> float:
    """A record's millisecond timestamp as float seconds; 0.0 when it has none (-1/None)."""
    if millis is None or millis < 0:
        return 0.0
    return millis / 1000.0


def record_headers(headers: Iterable[tuple[str, Any]] | None) -> tuple[tuple[str, bytes], ...]:
    """A record's header pairs as a tuple of ``(name, bytes)``; a null value becomes ``b""``."""
    return header_pairs(headers)


def consumer_record_to_record(record: Any) -> Record:
    """An ``aiokafka.structs.ConsumerRecord`` (without deserializers: bytes key and value) as a
    ``Record``."""
    return Record(
        topic=str(record.topic),
        partition=int(record.partition),
        offset=int(record.offset),
        value=as_bytes(record.value),
        key=as_bytes(record.key),
        timestamp=record_timestamp(record.timestamp),
        headers=record_headers(record.headers),
    )


def batches_to_records(batches: Mapping[Any, Sequence[Any]]) -> list[Record]:
    """``getmany``'s ``{TopicPartition: [ConsumerRecord, ...]}`` as one list of records (each
    partition's records stay in offset order)."""
    return [consumer_record_to_record(r) for records in batches.values() for r in records]


def to_aio(tp: TopicPartition) -> Any:
    return AioTopicPartition(tp.topic, tp.partition)


def to_aio_partitions(partitions: Iterable[TopicPartition]) -> list[Any]:
    return [AioTopicPartition(tp.topic, tp.partition) for tp in partitions]


def to_aio_offsets(offsets: Mapping[TopicPartition, int]) -> dict[Any, int]:
    """Next-to-read offsets as aiokafka's ``{TopicPartition: offset}`` (for ``commit``)."""
    out: dict[Any, int] = {}
    for tp, offset in offsets.items():
        if int(offset) < 0:
            raise ValueError(f"cannot commit a negative offset for {tp}: {offset}")
        out[AioTopicPartition(tp.topic, tp.partition)] = int(offset)
    return out


def from_aio(tp: Any) -> TopicPartition:
    return TopicPartition(str(tp.topic), int(tp.partition))


def from_aio_partitions(partitions: Iterable[Any]) -> list[TopicPartition]:
    """Ours for aiokafka's, sorted by topic and partition."""
    return sorted_partitions(from_aio(tp) for tp in partitions)


def metadata_to_report(record: OutboundRecord, metadata: Any) -> DeliveryReport:
    """A successful send's ``RecordMetadata`` as a ``DeliveryReport``."""
    return DeliveryReport(
        record=record,
        error=None,
        partition=int(metadata.partition),
        offset=int(metadata.offset),
    )


def error_report(record: OutboundRecord, error: BaseException) -> DeliveryReport:
    """A failed send as a ``DeliveryReport`` carrying ``ErrorName: message``."""
    text = str(error)
    return DeliveryReport(
        record=record, error=f"{type(error).__name__}: {text}" if text else type(error).__name__
    )
