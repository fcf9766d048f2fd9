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
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import count
from typing import Literal

from da_adapters.memory.group import GroupState
from da_adapters.memory.partition_log import PartitionLog, TopicLogs
from da_adapters.memory.partitioner import partition_for_key
from da_core.errors import CommitError, DeliveryError
from da_core.ports import Clock
from da_core.types import OutboundRecord, PartitionLag, Record, TopicPartition

log = logging.getLogger(__name__)

OffsetReset = Literal["earliest", "latest"]
RebalanceProtocol = Literal["eager", "cooperative"]


class MemoryBroker:
    """A Kafka-like broker in memory. See the module docstring for what it models.

    The methods under "consumer side" are the protocol between the broker and
    ``MemoryConsumer``; tests and applications use the others.
    """

    def __init__(
        self,
        clock: Clock,
        default_partitions: int = 3,
        auto_create_topics: bool = True,
        *,
        rebalance_protocol: RebalanceProtocol = "eager",
    ) -> None:
        if default_partitions < 1:
            raise ValueError(f"default_partitions must be at least 1, not {default_partitions}")
        self._clock = clock
        self._default_partitions = default_partitions
        self._auto_create = auto_create_topics
        self._eager = rebalance_protocol == "eager"
        self._cond = threading.Condition(threading.Lock())
        self._topics: dict[str, TopicLogs] = {}
        self._groups: dict[str, GroupState] = {}
        self._produce_faults: dict[str, deque[str]] = {}
        self._rejected: dict[str, str] = {}
        self._wakers: list[Callable[[], None]] = []
        self._member_ids = count(1)

    @property
    def clock(self) -> Clock:
        return self._clock

    # -- topics and records -------------------------------------------------------------------

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
        """Partition numbers of a topic; empty when it does not exist (never creates it)."""
        with self._cond:
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

    # -- groups, seen from outside --------------------------------------------------------------

    def committed(
        self, group_id: str, partitions: Iterable[TopicPartition]
    ) -> dict[TopicPartition, int | None]:
        """The group's committed next-to-read offsets (None when nothing is committed)."""
        with self._cond:
            group = self._groups.get(group_id)
            stored = {} if group is None else group.committed
            return {tp: stored.get(tp) for tp in partitions}

    def group_assignment(self, group_id: str) -> dict[str, frozenset[TopicPartition]]:
        """Member id -> the partitions the current generation gives it (maybe not yet taken)."""
        with self._cond:
            group = self._groups.get(group_id)
            if group is None:
                return {}
            return {m.member_id: m.target for m in group.members.values()}

    def generation(self, group_id: str) -> int:
        with self._cond:
            group = self._groups.get(group_id)
            return 0 if group is None else group.generation

    # -- fault injection -------------------------------------------------------------------------

    def fail_next_produce(self, topic: str, error: str, count: int = 1) -> None:
        """The next ``count`` records produced to ``topic`` are refused with ``error``."""
        if count < 1:
            raise ValueError(f"count must be at least 1, not {count}")
        with self._cond:
            self._produce_faults.setdefault(topic, deque()).extend([error] * count)

    def reject_topic(self, topic: str, error: str = "TOPIC_AUTHORIZATION_FAILED") -> None:
        """Refuse every record produced to ``topic`` until ``accept_topic``."""
        with self._cond:
            self._rejected[topic] = f"{error}: topic {topic!r}"

    def accept_topic(self, topic: str) -> None:
        """Undo ``reject_topic``."""
        with self._cond:
            self._rejected.pop(topic, None)

    def fail_commits(self, group_id: str, count: int = 1) -> None:
        """The next ``count`` commits of the group raise ``CommitError`` and store nothing."""
        if count < 1:
            raise ValueError(f"count must be at least 1, not {count}")
        with self._cond:
            self._group_locked(group_id).commit_failures += count

    def delete_records_before(self, tp: TopicPartition, offset: int) -> None:
        """Move the log start of a partition to ``offset`` (at most the high watermark),
        dropping older records, like Kafka's DeleteRecords or retention."""
        with self._cond:
            partition_log = self._log_locked(tp)
            if partition_log is None:
                raise ValueError(f"unknown partition {tp}")
            partition_log.delete_before(offset)
            self._changed_locked()

    # -- consumer side ------------------------------------------------------------------------

    def add_waker(self, waker: Callable[[], None]) -> None:
        """Call ``waker`` (under the broker lock, so it must only schedule work) on every
        change a consumer may be waiting for: used by asyncio consumers to wake promptly."""
        with self._cond:
            self._wakers.append(waker)

    def remove_waker(self, waker: Callable[[], None]) -> None:
        with self._cond:
            if waker in self._wakers:
                self._wakers.remove(waker)

    def join(self, group_id: str, topics: Sequence[str], client_id: str | None = None) -> str:
        """Add a member to the group and rebalance; returns its member id (sorted in join
        order, which is the order of the range assignor)."""
        with self._cond:
            group = self._group_locked(group_id)
            member_id = f"{client_id or 'consumer'}-{next(self._member_ids):06d}"
            group.add(member_id, self._subscribe_topics_locked(topics))
            self._rebalance_locked(group)
            return member_id

    def update_subscription(self, group_id: str, member_id: str, topics: Sequence[str]) -> None:
        with self._cond:
            group = self._group_locked(group_id)
            group.subscribe(member_id, self._subscribe_topics_locked(topics))
            self._rebalance_locked(group)

    def leave(self, group_id: str, member_id: str) -> None:
        """Remove a member (its partitions are released) and rebalance the rest."""
        with self._cond:
            group = self._group_locked(group_id)
            if group.remove(member_id):
                self._rebalance_locked(group)

    def revocations(self, group_id: str, member_id: str) -> list[TopicPartition]:
        """The partitions this member must give up now (it still owns them until
        ``release``, so it may commit them from its ``on_revoked``)."""
        with self._cond:
            return sorted(self._group_locked(group_id).revocations(member_id), key=_tp_order)

    def release(self, group_id: str, member_id: str, partitions: Iterable[TopicPartition]) -> None:
        """The member's ``on_revoked`` has returned: hand these partitions to the group."""
        with self._cond:
            self._group_locked(group_id).release(member_id, partitions)
            self._changed_locked()

    def claim(
        self, group_id: str, member_id: str, reset: OffsetReset
    ) -> dict[TopicPartition, int] | None:
        """Take what the current generation gives this member, when it is free: returns the
        newly assigned partitions with their start positions (committed offset, else per
        ``reset``), or None when there is nothing to take yet. In eager mode the whole
        assignment is returned at once (even empty) once per generation."""
        with self._cond:
            group = self._group_locked(group_id)
            taken = group.claim(member_id)
            if taken is None:
                return None
            positions, out_of_range = self._start_positions_locked(group, taken, reset)
        _warn_out_of_range(group_id, out_of_range, reset)
        return positions

    def needs_sync(self, group_id: str, member_id: str) -> bool:
        """True when ``revocations`` or ``claim`` has something for this member."""
        with self._cond:
            return self._group_locked(group_id).needs_sync(member_id)

    def start_position(self, tp: TopicPartition, from_beginning: bool) -> int:
        """Where a manual ``assign`` starts: the log start or the high watermark."""
        with self._cond:
            partition_log = self._log_locked(tp)
            if partition_log is None:
                return 0
            return partition_log.start if from_beginning else partition_log.high_watermark

    def fetch(
        self,
        group_id: str,
        positions: dict[TopicPartition, int],
        paused: set[TopicPartition],
        max_records: int,
        reset: OffsetReset,
        first: int = 0,
    ) -> list[Record]:
        """Read up to ``max_records`` from the unpaused partitions of ``positions``, starting
        with the partition at index ``first`` (callers rotate it for fairness). Advances
        ``positions`` in place; a position outside the log is reset per ``reset`` and logged."""
        out: list[Record] = []
        with self._cond:
            tps = [tp for tp in positions if tp not in paused]
            out_of_range = self._reset_out_of_range_locked(positions, tps, reset)
            if tps:
                first %= len(tps)
            for tp in tps[first:] + tps[:first]:
                if len(out) >= max_records:
                    break
                partition_log = self._log_locked(tp)
                if partition_log is None:
                    continue
                chunk = partition_log.read(positions[tp], max_records - len(out))
                if chunk:
                    out.extend(chunk)
                    positions[tp] = chunk[-1].offset + 1
        _warn_out_of_range(group_id, out_of_range, reset)
        return out

    def wait(
        self,
        group_id: str,
        member_id: str | None,
        positions: Mapping[TopicPartition, int],
        paused: set[TopicPartition],
        timeout: float,
    ) -> bool:
        """Block up to ``timeout`` seconds until this consumer has something to do: a group
        change to apply or a record (or out-of-range position) in an unpaused partition."""
        with self._cond:
            return self._cond.wait_for(
                lambda: self._has_work_locked(group_id, member_id, positions, paused), timeout
            )

    def commit(
        self, group_id: str, member_id: str | None, offsets: Mapping[TopicPartition, int]
    ) -> None:
        """Store next-to-read offsets. Raises ``CommitError`` for an injected failure, a
        negative offset, an unknown partition, or a partition another member owns (a late
        commit from a member that has lost it, which Kafka fences by generation)."""
        with self._cond:
            group = self._group_locked(group_id)
            if group.commit_failures > 0:
                group.commit_failures -= 1
                raise CommitError(f"injected commit failure for group {group_id!r}")
            for tp, offset in offsets.items():
                if offset < 0:
                    raise CommitError(f"cannot commit negative offset {offset} for {tp}")
                if self._log_locked(tp) is None:
                    raise CommitError(f"UNKNOWN_TOPIC_OR_PART: cannot commit {tp}")
                owner = group.owner_of(tp)
                if owner is not None and owner != member_id:
                    raise CommitError(
                        f"{tp} is assigned to another member of group {group_id!r}: "
                        "commit refused (rebalance in progress)"
                    )
            group.committed.update(offsets)

    def lag(
        self, group_id: str, positions: Mapping[TopicPartition, int | None]
    ) -> list[PartitionLag]:
        with self._cond:
            group = self._groups.get(group_id)
            committed = {} if group is None else group.committed
            result = []
            for tp, position in sorted(positions.items(), key=lambda item: _tp_order(item[0])):
                partition_log = self._log_locked(tp)
                result.append(
                    PartitionLag(
                        topic=tp.topic,
                        partition=tp.partition,
                        committed=committed.get(tp),
                        position=position,
                        high_watermark=(
                            None if partition_log is None else partition_log.high_watermark
                        ),
                    )
                )
            return result

    # -- internals (lock held) ------------------------------------------------------------------

    def _changed_locked(self) -> None:
        self._cond.notify_all()
        for waker in self._wakers:
            waker()

    def _create_topic_locked(self, name: str, partitions: int) -> TopicLogs:
        topic = TopicLogs(name, partitions)
        self._topics[name] = topic
        for group in self._groups.values():
            if group.subscribes_to(name):
                self._rebalance_locked(group)
        self._changed_locked()
        return topic

    def _subscribe_topics_locked(self, topics: Sequence[str]) -> tuple[str, ...]:
        subscription = tuple(sorted(set(topics)))
        if self._auto_create:
            for name in subscription:
                if name not in self._topics:
                    self._create_topic_locked(name, self._default_partitions)
        return subscription

    def _group_locked(self, group_id: str) -> GroupState:
        group = self._groups.get(group_id)
        if group is None:
            group = self._groups[group_id] = GroupState(group_id, eager=self._eager)
        return group

    def _log_locked(self, tp: TopicPartition) -> PartitionLog | None:
        topic = self._topics.get(tp.topic)
        if topic is None or not 0 <= tp.partition < len(topic.logs):
            return None
        return topic.logs[tp.partition]

    def _rebalance_locked(self, group: GroupState) -> None:
        group.rebalance({name: len(t.logs) for name, t in self._topics.items()})
        self._changed_locked()

    def _has_work_locked(
        self,
        group_id: str,
        member_id: str | None,
        positions: Mapping[TopicPartition, int],
        paused: set[TopicPartition],
    ) -> bool:
        if member_id is not None:
            group = self._groups.get(group_id)
            if group is not None and group.needs_sync(member_id):
                return True
        for tp, position in positions.items():
            if tp in paused:
                continue
            partition_log = self._log_locked(tp)
            # Anything but "at the end" is work: records to read, or a position out of range.
            if partition_log is not None and position != partition_log.high_watermark:
                return True
        return False

    def _start_positions_locked(
        self, group: GroupState, partitions: Iterable[TopicPartition], reset: OffsetReset
    ) -> tuple[dict[TopicPartition, int], list[TopicPartition]]:
        positions: dict[TopicPartition, int] = {}
        out_of_range: list[TopicPartition] = []
        for tp in sorted(partitions, key=_tp_order):
            partition_log = self._log_locked(tp)
            start = 0 if partition_log is None else partition_log.start
            end = 0 if partition_log is None else partition_log.high_watermark
            committed = group.committed.get(tp)
            if committed is not None and start <= committed <= end:
                positions[tp] = committed
                continue
            if committed is not None:
                out_of_range.append(tp)
            positions[tp] = start if reset == "earliest" else end
        return positions, out_of_range

    def _reset_out_of_range_locked(
        self,
        positions: dict[TopicPartition, int],
        partitions: Iterable[TopicPartition],
        reset: OffsetReset,
    ) -> list[TopicPartition]:
        out_of_range = []
        for tp in partitions:
            partition_log = self._log_locked(tp)
            if partition_log is None:
                continue
            if not partition_log.start <= positions[tp] <= partition_log.high_watermark:
                out_of_range.append(tp)
                positions[tp] = (
                    partition_log.start if reset == "earliest" else partition_log.high_watermark
                )
        return out_of_range


def _tp_order(tp: TopicPartition) -> tuple[str, int]:
    return (tp.topic, tp.partition)


def _warn_out_of_range(
    group_id: str, partitions: Sequence[TopicPartition], reset: OffsetReset
) -> None:
    if partitions:
        log.warning(
            "offset out of range for group %r, partitions %s: reset to %s (auto_offset_reset)",
            group_id,
            ", ".join(str(tp) for tp in partitions),
            reset,
        )
