"""One partition's log and one topic of the in-memory broker (``MemoryBroker`` guards both
with its lock; nothing here locks)."""

from __future__ import annotations

from da_core.types import Record


class PartitionLog:
    """One partition's records from ``start`` (the log start offset) to the high watermark."""

    __slots__ = ("records", "start")

    def __init__(self) -> None:
        self.start = 0
        self.records: list[Record] = []

    @property
    def high_watermark(self) -> int:
        return self.start + len(self.records)

    def read(self, offset: int, limit: int) -> list[Record]:
        first = offset - self.start
        return self.records[first : first + limit]

    def first_at(self, time: float) -> int | None:
        """The offset of the first retained record stamped at or after ``time`` (seconds)."""
        for record in self.records:
            if record.timestamp >= time:
                return record.offset
        return None

    def delete_before(self, offset: int) -> None:
        offset = min(offset, self.high_watermark)
        drop = offset - self.start
        if drop > 0:
            del self.records[:drop]
            self.start = offset


class TopicLogs:
    __slots__ = ("logs", "name", "next_round_robin")

    def __init__(self, name: str, partitions: int) -> None:
        self.name = name
        self.logs = [PartitionLog() for _ in range(partitions)]
        self.next_round_robin = 0
