"""Per-topic fair intake of polled records (``multi_consumer_mode``).

One consumer per instance reads every subscribed topic (so the group's assignment keeps all
data of a station on one instance), and this intake decides what the engine takes each cycle:
at most ``quota`` records per topic, topics served round-robin, records of one partition kept
in order. A topic whose buffer passes its high-water mark is to be paused at the consumer and
resumed when it drains, so a backlogged topic can neither starve the others in the engine nor
fill the client's fetch queues. No topic waits on another: a poll returns whatever any topic
has.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence

from da_core.types import Record, TopicPartition


class FairIntake:
    """Buffers polled records per topic and releases them fairly. Not thread-safe."""

    __slots__ = ("_buffers", "_order", "high_water", "last_counts", "quota")

    def __init__(self, quota: int, high_water: int | None = None) -> None:
        if quota < 1:
            raise ValueError("quota must be >= 1")
        self.quota = quota
        self.high_water = high_water if high_water is not None else 2 * quota
        self._buffers: dict[str, deque[Record]] = {}
        self._order: list[str] = []
        self.last_counts: dict[str, int] = {}

    def put(self, records: Iterable[Record]) -> None:
        """Buffer polled records (in poll order, which keeps each partition's order)."""
        buffers = self._buffers
        for r in records:
            buf = buffers.get(r.topic)
            if buf is None:
                buf = buffers[r.topic] = deque()
                self._order.append(r.topic)
            buf.append(r)

    def take(self) -> list[Record]:
        """This cycle's records: up to ``quota`` per topic, topics in rotating order."""
        out: list[Record] = []
        counts: dict[str, int] = {}
        order = self._order
        for topic in order:
            buf = self._buffers[topic]
            n = min(self.quota, len(buf))
            if n:
                out.extend(buf.popleft() for _ in range(n))
            counts[topic] = n
        if order:
            order.append(order.pop(0))  # the next cycle starts with another topic
        self.last_counts = counts
        return out

    def backlog(self, topic: str) -> int:
        buf = self._buffers.get(topic)
        return 0 if buf is None else len(buf)

    def __len__(self) -> int:
        return sum(len(b) for b in self._buffers.values())

    def over_high_water(self) -> set[str]:
        """Topics to pause at the consumer: their buffer reached the high-water mark."""
        return {t for t, b in self._buffers.items() if len(b) >= self.high_water}

    def drop_partitions(self, partitions: Sequence[TopicPartition]) -> int:
        """Forget buffered records of revoked partitions (the next owner reads them again)."""
        gone = set(partitions)
        dropped = 0
        for topic, buf in self._buffers.items():
            if any(tp.topic == topic for tp in gone):
                keep = deque(r for r in buf if TopicPartition(r.topic, r.partition) not in gone)
                dropped += len(buf) - len(keep)
                self._buffers[topic] = keep
        return dropped

    def stats_line(self) -> str:
        """The guide's per-topic fetch statistics of the last cycle: ``[topic:count,...]``."""
        return "[" + ",".join(f"{t}:{n}" for t, n in sorted(self.last_counts.items())) + "]"
