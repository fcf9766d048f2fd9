"""Memo tables owned by one engine instance (never shared between engines).

Two engines with different catalogs may hold ``TopicConfig`` objects whose ``id`` collides
over time; keeping the tables per engine means one engine's configuration can never serve
another's records, and dropping an engine drops its tables.
"""

from __future__ import annotations

from da_core.extractors import PlanCache
from da_core.partitioning import partition_for_key
from da_core.types import Record, TopicPartition

TPS_MAX = 4096
"""Partitions remembered by ``tp_of`` before the table is cleared (a bound, not a tuning)."""
PLACED_MAX = 200_000
"""Station keys remembered by ``partition_of`` before the table is cleared (a fleet's
stations)."""


class EngineCaches:
    """The engine's extraction plans, its ``TopicPartition`` values and its stations' internal
    partitions (rekey routing), built once each."""

    __slots__ = ("_placed", "_tps", "plans")

    def __init__(self) -> None:
        self.plans = PlanCache()
        """Compiled extraction plans of this engine's topics (passed to ``extract``)."""
        self._tps: dict[tuple[str, int], TopicPartition] = {}
        self._placed: dict[tuple[bytes, int], int] = {}

    def tp_of(self, rec: Record) -> TopicPartition:
        """``rec.tp``, built once per partition instead of once per use (ingest's hot path)."""
        key = (rec.topic, rec.partition)
        tp = self._tps.get(key)
        if tp is None:
            if len(self._tps) >= TPS_MAX:
                self._tps.clear()
            tp = self._tps[key] = TopicPartition(rec.topic, rec.partition)
        return tp

    def partition_of(self, key: bytes, partitions: int) -> int:
        """``partition_for_key(key, partitions)``, computed once per station key and count
        (murmur2 in Python costs more than the rest of a share's routing)."""
        k = (key, partitions)
        found = self._placed.get(k)
        if found is None:
            if len(self._placed) >= PLACED_MAX:
                self._placed.clear()
            found = self._placed[k] = partition_for_key(key, partitions)
        return found
