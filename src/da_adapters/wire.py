"""Translation helpers shared by the Kafka client adapters (no client imports here)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from da_core.types import TopicPartition


def header_pairs(pairs: Iterable[tuple[str, Any]] | None) -> tuple[tuple[str, bytes], ...]:
    """Header pairs as a tuple of ``(name, bytes)``; a null value becomes ``b""``."""
    if not pairs:
        return ()
    out: list[tuple[str, bytes]] = []
    for name, value in pairs:
        if value is None:
            data = b""
        elif isinstance(value, str):
            data = value.encode("utf-8")
        else:
            data = bytes(value)
        out.append((str(name), data))
    return tuple(out)


def as_bytes(data: Any) -> bytes | None:
    """A key or value as bytes (None stays None)."""
    if data is None or isinstance(data, bytes):
        return data
    if isinstance(data, str):
        return data.encode("utf-8")
    return bytes(data)


def sorted_partitions(partitions: Iterable[TopicPartition]) -> list[TopicPartition]:
    return sorted(partitions, key=lambda tp: (tp.topic, tp.partition))


def describe_partitions(partitions: Iterable[TopicPartition]) -> str:
    return ", ".join(str(tp) for tp in sorted_partitions(partitions)) or "none"
