"""An in-memory Kafka-like broker: the test harness and the embedded default bus.

What it models
--------------
* Topics of N partitions, each an append-only log of ``Record`` values with offsets from 0, a
  log start offset (``delete_records_before`` moves it) and a high watermark (next offset to be
  written). Timestamps come from the injected ``Clock`` (float seconds) unless given.
* Partitioning exactly as the Java client and aiokafka do for keyed records:
  ``to_positive(murmur2(key)) % partitions``. Keyless records go round-robin per topic.
* Consumer groups: members, subscriptions, committed next-to-read offsets per partition, and
  assignment by the *range* assignor per topic (so topics with equal partition counts are
  co-partitioned: partition N of each goes to the same member).
* Rebalance on join, leave, subscription change and topic creation. The generation moves at
  once (under the lock); each member applies it inside its next ``poll``: first the revoke
  (``on_revoked`` runs while the member still owns the partitions, so it may commit them),
  then the assignment. A partition is handed to its new owner only after the old owner's revoke
  has returned, so two members never read one partition at the same time and the new owner
  starts at whatever the old one committed. With the default ``"eager"`` protocol (what the
  range assignor does in the real clients) every member revokes everything and is then given
  its full new assignment, once all of it is free; ``"cooperative"`` revokes and assigns only
  the partitions that move.
* Faults for tests: ``fail_next_produce``, ``reject_topic``, ``fail_commits``,
  ``delete_records_before`` (a position below the log start is out of range and is reset per
  ``auto_offset_reset`` with a warning naming the group and partitions).

Gaps, on purpose: no replication, transactions, compaction, retention by time or size,
session timeouts (a member that stops polling keeps its partitions until it leaves) or quotas.

Thread-safety: one ``threading.Condition`` guards all state; consumers wait on it with their
poll timeout (real time, not the injected clock, which only stamps records). Listener callbacks
and wakers registered by asyncio consumers are the only code run on a change.

Layout: this module (topics and records), ``broker_groups`` (groups and the consumer-side
protocol), ``broker_faults`` (fault injection), ``broker_base`` (state and lock-held helpers).
"""

from __future__ import annotations

from collections.abc import Sequence

from da_adapters.memory.broker_base import OffsetReset, RebalanceProtocol
from da_adapters.memory.broker_faults import BROKER_DOWN, BrokerDown, FaultsMixin
from da_adapters.memory.broker_groups import GroupsMixin
from da_adapters.memory.partitioner import partition_for_key
from da_core.errors import DeliveryError
from da_core.types import OutboundRecord, Record, TopicPartition

__all__ = ["MemoryBroker", "OffsetReset", "RebalanceProtocol"]


class MemoryBroker(GroupsMixin, FaultsMixin):
    """A Kafka-like broker in memory. See the module docstring for what it models.

    The methods under "consumer side" are the protocol between the broker and
    ``MemoryConsumer``; tests and applications use the others.
    """

    # -- topics and records --------------------------------------------------------------------

    def create_topic(self, name: str, partitions: int | None = None) -> None:
        """Create a topic (``default_partitions`` when None). Creating an existing topic with
        the same partition count is a no-op; with another count it is a ``ValueError``."""
        n = self._default_partitions if partitions is None else partitions
        if n < 1:
            raise ValueError(f"a topic needs at least 1 partition, not {n}")
        with self._cond:
            existing = self._topics.get(name)
            if existing is not None:
                if len(existing.logs) != n:
                    raise ValueError(
                        f"topic {name!r} exists with {len(existing.logs)} partitions, not {n}"
                    )
                return
            self._create_topic_locked(name, n)

    def topics(self) -> list[str]:
        with self._cond:
            return sorted(self._topics)

    def partitions_for(self, topic: str) -> list[int]:
        """Partition numbers of a topic; empty when it does not exist (never creates it).
        Raises ``BrokerDown`` while the broker is down."""
        with self._cond:
            if self._down:
                raise BrokerDown(f"metadata of topic {topic!r}: {BROKER_DOWN}")
            t = self._topics.get(topic)
            return [] if t is None else list(range(len(t.logs)))

    def partition_count(self, topic: str) -> int:
        """How many partitions a topic has (0 when it does not exist; never creates it)."""
        with self._cond:
            t = self._topics.get(topic)
            return 0 if t is None else len(t.logs)

    def produce(
        self,
        topic: str,
        value: bytes | None,
        *,
        key: bytes | None = None,
        headers: Sequence[tuple[str, bytes]] = (),
        partition: int | None = None,
        timestamp: float | None = None,
    ) -> Record:
        """Append a record and return it as stored: the harness's way to feed the bus
        (``value`` None is a tombstone). The partition is ``partition``, else murmur2 of the
        key, else round-robin; the timestamp is the clock's time unless given. Raises
        ``DeliveryError`` (with a Kafka-like error code in its message) when the broker
        refuses it: an injected fault, a rejected or unknown topic, a bad partition."""
        with self._cond:
            if self._down:
                raise DeliveryError(BROKER_DOWN)
            rejection = self._rejected.get(topic)
            if rejection is not None:
                raise DeliveryError(rejection)
            faults = self._produce_faults.get(topic)
            if faults:
                error = faults.popleft()
                if not faults:
                    del self._produce_faults[topic]
                raise DeliveryError(error)
            t = self._topics.get(topic)
            if t is None:
                if not self._auto_create:
                    raise DeliveryError(f"UNKNOWN_TOPIC_OR_PART: topic {topic!r}")
                t = self._create_topic_locked(topic, self._default_partitions)
            n = len(t.logs)
            if partition is not None:
                if not 0 <= partition < n:
                    raise DeliveryError(
                        f"UNKNOWN_PARTITION: {topic}[{partition}] (the topic has {n} partitions)"
                    )
            elif key is not None:
                partition = partition_for_key(key, n)
            else:
                partition = t.next_round_robin % n
                t.next_round_robin += 1
            partition_log = t.logs[partition]
            stored = Record(
                topic=topic,
                partition=partition,
                offset=partition_log.high_watermark,
                value=value,
                key=key,
                timestamp=self._clock.time() if timestamp is None else timestamp,
                headers=tuple(headers),
            )
            partition_log.records.append(stored)
            self._changed_locked()
            return stored

    def produce_record(self, record: OutboundRecord, *, timestamp: float | None = None) -> Record:
        """``produce`` for an ``OutboundRecord`` (what the producers hand over)."""
        return self.produce(
            record.topic,
            record.value,
            key=record.key,
            headers=record.headers,
            partition=record.partition,
            timestamp=timestamp if timestamp is not None else record.timestamp,
        )

    def records(self, topic: str, partition: int | None = None) -> list[Record]:
        """The retained records of a topic (one partition, or all in partition then offset
        order); empty when the topic does not exist. For assertions in tests."""
        with self._cond:
            t = self._topics.get(topic)
            if t is None:
                return []
            logs = t.logs if partition is None else [t.logs[partition]]
            return [r for partition_log in logs for r in partition_log.records]

    def high_watermark(self, tp: TopicPartition) -> int:
        """The offset the next record of this partition will get (0 when it does not exist)."""
        with self._cond:
            partition_log = self._log_locked(tp)
            return 0 if partition_log is None else partition_log.high_watermark

    def log_start_offset(self, tp: TopicPartition) -> int:
        """The offset of the oldest retained record (0 when the partition does not exist)."""
        with self._cond:
            partition_log = self._log_locked(tp)
            return 0 if partition_log is None else partition_log.start

    def offset_for_time(self, tp: TopicPartition, time: float) -> int | None:
        """The earliest retained offset whose record timestamp is ``>= time`` (seconds), None
        when there is none (or the partition does not exist). Timestamps need not be
        monotonic in a log: this is the first such record in offset order, as in Kafka."""
        with self._cond:
            partition_log = self._log_locked(tp)
            return None if partition_log is None else partition_log.first_at(time)
