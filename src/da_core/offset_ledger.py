"""OffsetLedger: which offsets may be committed, per partition, and when.

Per partition the ledger holds the records that were tracked (handed to the pipeline) and not
yet passed, and the *contiguous prefix* of done records. What may be committed is the
next-to-read offset after that prefix: ``last done offset of the prefix + 1``. A record still in
flight stops the prefix, so no offset past it is ever returned, whatever order work finishes in.
Offsets that were never tracked (gaps: compaction, transaction markers) are skipped over.

Semantics chosen where ``docs/internals.md`` leaves room:

* ``track`` raises ``ValueError`` when an offset is not greater than the last one tracked for
  that partition (the consumer gives one partition's records in increasing order; a rewind
  needs ``revoke`` first).
* ``done`` for an offset that is not in flight (never tracked, a gap, already done, or of a
  partition that was revoked) is ignored and returns False: runs routinely finish after their
  partition was revoked.
* ``due``: something must be committable, and one trigger must hold: ``commit_batch_size``
  records done since the last ``take_commit``; ``commit_interval_seconds`` since the last
  ``take_commit`` (before the first one the interval counts as elapsed); or a retry is due.
* A failed commit is retried ``commit_retry_delay`` after the failure, at most
  ``max_commit_retries`` times; then nothing happens until the next batch-size or interval
  trigger, which starts a fresh attempt with a fresh retry budget. Offsets are never forgotten
  by a failure: the next ``take_commit`` returns them (or more).
* ``take_commit``/``flush`` mark the offsets they return as "being committed";
  ``take_commit`` returns only offsets beyond both the committed and the being-committed
  offset. ``flush`` and ``revoke`` return everything beyond the *confirmed* committed offset
  (a commit still awaiting its answer may fail).

``track`` and ``done`` are O(1) amortised: per partition a deque of tracked offsets in arrival
order plus a dict offset → done flag; the head advances when the head record is done.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable, Mapping

import attrs

from da_core.config import OffsetCommitPolicy
from da_core.types import TopicPartition

__all__ = ["OffsetLedger"]

logger = logging.getLogger(__name__)


@attrs.define(slots=True, eq=False)
class _Partition:
    """The bookkeeping of one partition. Only ``OffsetLedger`` touches it."""

    order: deque[int] = attrs.field(factory=deque)
    """Tracked offsets not yet passed by the prefix, increasing."""
    state: dict[int, bool] = attrs.field(factory=dict)
    """Offset → done, for every offset in ``order``."""
    held_done: int = 0
    """How many offsets in ``order`` are done (waiting behind an in-flight one)."""
    last_tracked: int = -1
    prefix: int | None = None
    """Next-to-read offset after the contiguous done prefix (None: nothing done yet)."""
    committed: int | None = None
    committing: int | None = None

    def committable(self) -> int | None:
        """The prefix when it is beyond both the committed and the being-committed offset."""
        prefix = self.prefix
        if prefix is None:
            return None
        if self.committed is not None and prefix <= self.committed:
            return None
        if self.committing is not None and prefix <= self.committing:
            return None
        return prefix

    def beyond_committed(self) -> int | None:
        """The prefix when it is beyond the confirmed committed offset."""
        prefix = self.prefix
        if prefix is None or (self.committed is not None and prefix <= self.committed):
            return None
        return prefix


@attrs.define(slots=True, eq=False)
class OffsetLedger:
    """Tracks in-flight records per partition and decides what to commit, and when.

    ``OffsetLedger(policy)``; never reads the clock: every time-dependent method takes ``now``.
    """

    _policy: OffsetCommitPolicy
    _parts: dict[TopicPartition, _Partition] = attrs.field(init=False, factory=dict)
    _dirty: set[TopicPartition] = attrs.field(init=False, factory=set)
    """A superset of the partitions that have something committable."""
    _done_count: int = attrs.field(init=False, default=0)
    _last_take_at: float | None = attrs.field(init=False, default=None)
    _retry_at: float | None = attrs.field(init=False, default=None)
    _failures: int = attrs.field(init=False, default=0)

    @property
    def policy(self) -> OffsetCommitPolicy:
        return self._policy

    @policy.setter
    def policy(self, policy: OffsetCommitPolicy) -> None:
        """Replace the policy (reconfiguration); applies from the next call. A retry already
        scheduled keeps its time."""
        self._policy = policy

    # -- per record (hot path) ------------------------------------------------------------

    def track(self, tp: TopicPartition, offset: int) -> None:
        """A record of ``tp`` at ``offset`` entered the pipeline (offsets increase; gaps ok)."""
        p = self._parts.get(tp)
        if p is None:
            p = self._parts[tp] = _Partition()
        if offset <= p.last_tracked:
            raise ValueError(
                f"offset {offset} of {tp} tracked after offset {p.last_tracked}: offsets of a "
                f"partition must be tracked in increasing order (revoke the partition first "
                f"when its position is rewound)"
            )
        p.last_tracked = offset
        p.order.append(offset)
        p.state[offset] = False

    def done(self, tp: TopicPartition, offset: int) -> bool:
        """The record of ``tp`` at ``offset`` is finished with. Returns False (and changes
        nothing) when that record is not in flight: unknown partition or offset, or done twice.
        """
        p = self._parts.get(tp)
        if p is None:
            return False
        state = p.state
        if state.get(offset, True):
            return False
        self._done_count += 1
        order = p.order
        if order[0] != offset:
            state[offset] = True
            p.held_done += 1
            return True
        order.popleft()
        del state[offset]
        last = offset
        while order and state[order[0]]:
            last = order.popleft()
            del state[last]
            p.held_done -= 1
        p.prefix = last + 1
        self._dirty.add(tp)
        return True

    # -- committing -----------------------------------------------------------------------

    def due(self, now: float) -> bool:
        """True when something is committable and a commit trigger holds (see the module doc)."""
        if not self._has_committable():
            return False
        return self._fresh_trigger(now) or self._retry_due(now)

    def take_commit(self, now: float) -> dict[TopicPartition, int] | None:
        """When ``due(now)``: the next-to-read offsets to commit now (only partitions with
        something beyond what is committed or being committed), marked as being committed.
        Report the outcome with ``commit_succeeded`` or ``commit_failed``. Otherwise None."""
        if not self._has_committable():
            return None
        fresh = self._fresh_trigger(now)
        if not fresh and not self._retry_due(now):
            return None
        offsets: dict[TopicPartition, int] = {}
        for tp in self._dirty:
            p = self._parts[tp]
            target = p.committable()
            if target is not None:
                offsets[tp] = target
                p.committing = target
        self._dirty.clear()
        self._done_count = 0
        self._last_take_at = now
        self._retry_at = None
        if fresh:
            self._failures = 0
        logger.debug("commit taken for %d partitions (retry: %s)", len(offsets), not fresh)
        return offsets

    def commit_succeeded(self, offsets: Mapping[TopicPartition, int], now: float) -> None:
        """The broker accepted ``offsets`` (as returned by ``take_commit``/``flush``)."""
        for tp, offset in offsets.items():
            p = self._parts.get(tp)
            if p is None:
                continue
            if p.committed is None or offset > p.committed:
                p.committed = offset
            if p.committing is not None and p.committing <= offset:
                p.committing = None
        self._failures = 0
        self._retry_at = None
        logger.debug("commit succeeded for %d partitions", len(offsets))

    def commit_failed(self, offsets: Mapping[TopicPartition, int], now: float) -> None:
        """The commit of ``offsets`` failed: they stay committable and are retried
        ``commit_retry_delay`` from ``now``, at most ``max_commit_retries`` times in a row."""
        for tp, offset in offsets.items():
            p = self._parts.get(tp)
            if p is None:
                continue
            if p.committing == offset:
                p.committing = None
            if p.committable() is not None:
                self._dirty.add(tp)
        self._failures += 1
        policy = self._policy
        if self._failures <= policy.max_commit_retries:
            self._retry_at = now + policy.commit_retry_delay
            logger.info(
                "commit failed (%d/%d), retry at %.3f",
                self._failures,
                policy.max_commit_retries,
                self._retry_at,
            )
        else:
            self._retry_at = None
            logger.warning(
                "commit failed %d times; waiting for the next commit trigger", self._failures
            )

    def revoke(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        """Forget ``partitions``; return what may be committed for them now (beyond the
        confirmed committed offset). Later ``done`` calls for them are ignored."""
        offsets: dict[TopicPartition, int] = {}
        for tp in partitions:
            p = self._parts.pop(tp, None)
            self._dirty.discard(tp)
            if p is None:
                continue
            target = p.beyond_committed()
            if target is not None:
                offsets[tp] = target
            logger.info(
                "partition %s revoked: commit %s, %d records in flight forgotten",
                tp,
                target,
                len(p.order) - p.held_done,
            )
        return offsets

    def flush(self) -> dict[TopicPartition, int]:
        """Everything committable beyond the confirmed committed offsets (for stop), marked
        as being committed."""
        offsets: dict[TopicPartition, int] = {}
        for tp, p in self._parts.items():
            target = p.beyond_committed()
            if target is not None:
                offsets[tp] = target
                p.committing = target
        self._dirty.clear()
        self._done_count = 0
        return offsets

    # -- queries --------------------------------------------------------------------------

    def in_flight(self, tp: TopicPartition) -> int:
        """Records of ``tp`` tracked and not yet done."""
        p = self._parts.get(tp)
        return 0 if p is None else len(p.order) - p.held_done

    def committed(self, tp: TopicPartition) -> int | None:
        """The last confirmed committed (next-to-read) offset of ``tp``, None when none."""
        p = self._parts.get(tp)
        return None if p is None else p.committed

    def next_to_track(self, tp: TopicPartition) -> int | None:
        """The offset after the last one tracked for ``tp``, None when none was: a consumer
        rewound to an older offset (a rebalance that handed the partition back) has already
        delivered every record below it."""
        p = self._parts.get(tp)
        return None if p is None or p.last_tracked < 0 else p.last_tracked + 1

    # -- internals ------------------------------------------------------------------------

    def _has_committable(self) -> bool:
        parts = self._parts
        return any(parts[tp].committable() is not None for tp in self._dirty)

    def _fresh_trigger(self, now: float) -> bool:
        policy = self._policy
        if self._done_count >= policy.commit_batch_size:
            return True
        last = self._last_take_at
        return last is None or now - last >= policy.commit_interval_seconds

    def _retry_due(self, now: float) -> bool:
        return self._retry_at is not None and now >= self._retry_at
