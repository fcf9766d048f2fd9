"""The Java client's default partitioner, re-exported from the core (``da_core.partitioning``),
where the re-keying stage uses it to place station-keyed records itself."""

from __future__ import annotations

from da_core.partitioning import murmur2, partition_for_key, to_positive

__all__ = ["murmur2", "partition_for_key", "to_positive"]
