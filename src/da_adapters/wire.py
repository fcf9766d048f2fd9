"""Translation helpers shared by the Kafka client adapters (no client imports here)."""

from __future__ import annotations

import math
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


def millis_at_or_after(seconds: float) -> int:
    """The first whole Kafka millisecond at or after ``seconds`` (epoch): a record stamped
    ``ms`` is at or after the time exactly when ``ms >= millis_at_or_after(seconds)``. The
    tolerance (one microsecond, above the float error of an epoch time in ms, about 2e-4) keeps
    a time that is a whole millisecond but not exactly representable from rounding up."""
    return max(0, math.ceil(seconds * 1000.0 - 1e-3))
