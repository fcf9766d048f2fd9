"""The Java client's default partitioner for keyed records: ``toPositive(murmur2(key)) % n``.

aiokafka and the Java client place keys this way; librdkafka does so only with
``partitioner=murmur2_random``. The in-memory bus places keyed records with it, and the re-keying
stage (``da_core.routing``) computes the partition of each station-keyed record itself, so every
instance places a station identically whichever client it runs.
"""

from __future__ import annotations

_MASK_32 = 0xFFFFFFFF
_SEED = 0x9747B28C
_M = 0x5BD1E995


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (``org.apache.kafka.common.utils.Utils.murmur2``), as Java's signed int.

    32-bit arithmetic is emulated by masking; Java's ``>>>`` is ``>>`` on the unsigned value.
    """
    length = len(data)
    h = (_SEED ^ length) & _MASK_32
    tail = length & ~3
    for i in range(0, tail, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * _M) & _MASK_32
        k ^= k >> 24
        k = (k * _M) & _MASK_32
        h = ((h * _M) & _MASK_32) ^ k
    rest = length & 3
    # The Java switch falls through: 3 -> 2 -> 1, multiplying once at the end.
    if rest == 3:
        h ^= data[tail + 2] << 16
    if rest >= 2:
        h ^= data[tail + 1] << 8
    if rest >= 1:
        h ^= data[tail]
        h = (h * _M) & _MASK_32
    h ^= h >> 13
    h = (h * _M) & _MASK_32
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def to_positive(number: int) -> int:
    """Kafka's ``Utils.toPositive``: clear the sign bit (not ``abs``)."""
    return number & 0x7FFFFFFF


def partition_for_key(key: bytes, partitions: int) -> int:
    """The partition the Java client's default partitioner picks for a keyed record."""
    return to_positive(murmur2(key)) % partitions
