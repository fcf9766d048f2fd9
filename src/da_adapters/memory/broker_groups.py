"""``GroupsMixin``: the consumer groups of ``MemoryBroker`` and the protocol between the
broker and ``MemoryConsumer``.

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
* A position below the log start is out of range and is reset per ``auto_offset_reset`` with
  a warning naming the group and partitions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from da_adapters.memory.broker_base import BrokerBase, OffsetReset, _tp_order, _warn_out_of_range
from da_adapters.memory.group import GroupState
from da_core.errors import CommitError
from da_core.types import PartitionLag, Record, TopicPartition


class GroupsMixin(BrokerBase):
    """Groups seen from outside, and the consumer side (see the module docstring)."""

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
            if self._down:
                return out
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
            if self._down:
                raise CommitError(f"group {group_id!r}: commit failed: _TRANSPORT: broker down")
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

    # -- consumer-side internals (lock held) ---------------------------------------------------

    def _has_work_locked(
        self,
        group_id: str,
        member_id: str | None,
        positions: Mapping[TopicPartition, int],
        paused: set[TopicPartition],
    ) -> bool:
        if self._down:
            return False  # nothing can be fetched: wait for come_up() (it wakes the waiters)
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
