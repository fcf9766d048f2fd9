"""Small frozen values shared by the whole domain.

Units: every time in the core is a float of seconds since the Unix epoch (``now`` arguments and
record times alike); Kafka's millisecond timestamps are converted at the adapter boundary.
Offsets always mean *the offset of a record* in a partition; committed offsets and positions mean
*the next offset to read* (one past the last record consumed).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import attrs

StationId = str
JsonValue = Any
"""A value decoded from JSON (dict, list, str, int, float, bool or None)."""

GLOBAL_STATION = "__global__"
"""The pseudo station id that global topics (calendar...) are stored under."""


class TopicPartition(NamedTuple):
    """One partition of one topic. A ``NamedTuple`` (hashed and compared in C): the ledger,
    intake and the run table hash one several times per record."""

    topic: str
    partition: int

    def __str__(self) -> str:
        return f"{self.topic}[{self.partition}]"


@attrs.frozen(slots=True)
class Record:
    """A record as consumed from the bus, already free of any client's wire type.

    ``timestamp`` is the broker/producer timestamp in seconds since the epoch (float).
    ``offset`` is this record's own offset; the position after consuming it is ``offset + 1``.
    """

    topic: str
    partition: int
    offset: int
    value: bytes | None
    key: bytes | None = None
    timestamp: float = 0.0
    headers: tuple[tuple[str, bytes], ...] = ()

    @property
    def tp(self) -> TopicPartition:
        return TopicPartition(self.topic, self.partition)


@attrs.frozen(slots=True)
class OutboundRecord:
    """A record to produce. ``partition`` None lets the producer's partitioner choose by key;
    ``timestamp`` (seconds since the epoch) None lets the producer stamp it."""

    topic: str
    value: bytes
    key: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()
    partition: int | None = None
    timestamp: float | None = None


@attrs.frozen(slots=True)
class DeliveryReport:
    """The broker's answer for one produced record.

    ``error`` is None when the broker acknowledged the record (with the producer's ``acks``
    setting), in which case ``partition``/``offset`` say where it was written. A report with an
    error means the record is *not* known to be written and must be treated as not delivered.
    """

    record: OutboundRecord
    error: str | None
    partition: int | None = None
    offset: int | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@attrs.frozen(slots=True)
class PartitionLag:
    """Lag figures of one assigned partition. Offsets are next-to-read offsets; None = unknown.

    ``lag`` is ``high_watermark - committed`` (or ``- position`` when nothing is committed yet).
    """

    topic: str
    partition: int
    committed: int | None
    position: int | None
    high_watermark: int | None

    @property
    def lag(self) -> int | None:
        base = self.committed if self.committed is not None else self.position
        if self.high_watermark is None or base is None:
            return None
        return max(0, self.high_watermark - base)

    def as_dict(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "partition": self.partition,
            "committed": self.committed,
            "current_offset": self.position,
            "position": self.position,
            "high_watermark": self.high_watermark,
            "lag": self.lag,
        }
