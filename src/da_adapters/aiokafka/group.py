"""``GroupMixin``: the group membership and group offsets of ``AiokafkaConsumer``.

Group membership and revocation
    ``subscribe`` passes a ``ConsumerRebalanceListener`` adapter. aiokafka runs it in its
    coordinator task on the same loop (usually while ``poll`` awaits ``getmany``); the adapter
    calls our sync ``RebalanceListener`` there. So that a revocation still is "the last moment
    to commit", the adapter then holds the rebalance (aiokafka keeps heartbeating meanwhile)
    until the caller has had a ``poll`` return after the revocation and has come back to
    ``poll`` again, i.e. has had one full turn of its loop to commit, or the consumer closes,
    or the hold times out: ``revoke_timeout`` seconds, at most half the group's rebalance
    timeout (aiokafka's ``rebalance_timeout_ms``, which defaults to ``session_timeout_ms``),
    so that the broker never evicts this member for rejoining late. Records of revoked
    partitions still buffered are dropped (the next owner reads them from the committed
    offset). An exception raised by the listener is re-raised from the next ``poll``.

Offsets
    Auto-commit is always off; ``commit`` sends explicit next-to-read offsets
    (``{TopicPartition: offset}``), waits at most ``commit_timeout`` seconds for the broker
    (a timeout is a ``CommitError``: the caller keeps the offsets and retries), and turns
    every client error (``CommitFailedError``,
    ``IllegalStateError`` for a partition this member does not own, broker errors) into
    ``CommitError``. When partitions are assigned, their committed offsets are checked against
    the partitions' beginning and end in a background task: one out of range (retention, a
    group-id change) is reported as a warning naming the group and the partitions, and
    ``auto_offset_reset`` decides where reading resumes (SPEC §8).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from aiokafka import ConsumerRebalanceListener

from da_adapters.aiokafka._support import AiokafkaError
from da_adapters.aiokafka.consumer_base import _CLIENT_ERRORS, ConsumerBase, log
from da_adapters.aiokafka.translate import (
    from_aio_partitions,
    to_aio,
    to_aio_offsets,
    to_aio_partitions,
)
from da_adapters.wire import describe_partitions, sorted_partitions
from da_core.errors import CommitError
from da_core.ports import RebalanceListener
from da_core.types import TopicPartition


class _RebalanceAdapter(ConsumerRebalanceListener):  # type: ignore[misc]
    """aiokafka's listener interface, forwarding to the owning consumer."""

    def __init__(self, owner: GroupMixin) -> None:
        self._owner = owner

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self._owner._on_revoked(from_aio_partitions(revoked))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        await self._owner._on_assigned(from_aio_partitions(assigned))


class GroupMixin(ConsumerBase):
    """Subscription, rebalance callbacks and group offsets (see the module docstring)."""

    _adapter: _RebalanceAdapter

    async def subscribe(
        self, topics: Sequence[str], listener: RebalanceListener | None = None
    ) -> None:
        consumer = self._started()
        self._listener = listener
        if not topics:
            owned = sorted_partitions(self._owned)
            try:
                if owned and listener is not None:
                    listener.on_revoked(owned)
            finally:
                self._owned.clear()
                self._paused.clear()
                if self._subscribed:
                    consumer.unsubscribe()
                self._subscribed = False
            return
        consumer.subscribe(topics=list(topics), listener=self._adapter)
        self._subscribed = True

    def assignment(self) -> set[TopicPartition]:
        return set(self._owned)

    async def _on_assigned(self, partitions: list[TopicPartition]) -> None:
        if self._closed:
            return
        self._revoking.difference_update(partitions)
        assigned = [tp for tp in partitions if tp not in self._owned]
        if not assigned:
            return
        self._owned.update(assigned)
        log.debug("group %s: assigned %s", self.group_id, describe_partitions(assigned))
        self._spawn(self._check_committed_in_range(assigned))
        listener = self._listener
        if listener is not None:
            try:
                listener.on_assigned(assigned)
            except Exception as exc:
                self._listener_error = exc

    async def _on_revoked(self, partitions: list[TopicPartition]) -> None:
        if self._closed:
            return
        revoked = [tp for tp in partitions if tp in self._owned]
        if not revoked:
            return
        log.debug("group %s: revoked %s", self.group_id, describe_partitions(revoked))
        listener = self._listener
        self._revoking.update(revoked)
        gone = set(revoked)
        self._buffer = [r for r in self._buffer if r.tp not in gone]
        try:
            if listener is not None:
                listener.on_revoked(revoked)
        except Exception as exc:
            self._listener_error = exc
        finally:
            self._owned.difference_update(revoked)
            self._paused.difference_update(revoked)
        if listener is None or self._closed:
            return
        gate = asyncio.Event()
        self._gate, self._gate_seen = gate, False
        try:
            await asyncio.wait_for(gate.wait(), self._revoke_timeout)
        except asyncio.TimeoutError:
            log.warning(
                "group %s: revocation of %s not followed by a poll within %ss; rebalancing",
                self.group_id,
                describe_partitions(revoked),
                self._revoke_timeout,
            )
        finally:
            if self._gate is gate:
                self._gate = None

    async def _check_committed_in_range(self, partitions: list[TopicPartition]) -> None:
        """Warn (naming the group and partitions) when a committed offset lies outside its
        partition: the fetch will be out of range and ``auto_offset_reset`` applies."""
        consumer = self._consumer
        try:
            aio = to_aio_partitions(partitions)
            committed = await self.committed(partitions)
            low = await consumer.beginning_offsets(aio)
            high = await consumer.end_offsets(aio)
        except Exception as exc:  # best effort: never disturb the rebalance
            log.debug("group %s: committed-offset range check skipped: %s", self.group_id, exc)
            return
        bad: list[str] = []
        for tp, aio_tp in zip(partitions, aio, strict=False):
            offset = committed.get(tp)
            lo, hi = low.get(aio_tp), high.get(aio_tp)
            if offset is not None and lo is not None and hi is not None and not lo <= offset <= hi:
                bad.append(f"{tp} committed {offset} outside [{lo}, {hi}]")
        if bad:
            log.warning(
                "group %s: committed offsets out of range; reading resumes per "
                "auto_offset_reset=%s: %s",
                self.group_id,
                self.auto_offset_reset,
                "; ".join(bad),
            )

    # -- offsets -------------------------------------------------------------------------------

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        consumer = self._started()
        if not offsets:
            return
        wanted = to_aio_offsets(offsets)
        try:
            await asyncio.wait_for(consumer.commit(wanted), self._commit_timeout)
        except asyncio.TimeoutError as exc:
            shown = ", ".join(f"{tp}={offset}" for tp, offset in offsets.items())
            raise CommitError(
                f"group {self.group_id}: commit of {shown} timed out after "
                f"{self._commit_timeout:g}s (broker unreachable?)"
            ) from exc
        except _CLIENT_ERRORS as exc:
            shown = ", ".join(f"{tp}={offset}" for tp, offset in offsets.items())
            raise CommitError(
                f"group {self.group_id}: commit of {shown} failed: {type(exc).__name__}: {exc}"
            ) from exc

    async def committed(
        self, partitions: Sequence[TopicPartition]
    ) -> dict[TopicPartition, int | None]:
        consumer = self._started()
        wanted = list(dict.fromkeys(partitions))
        try:
            found = await asyncio.gather(*(consumer.committed(to_aio(tp)) for tp in wanted))
        except _CLIENT_ERRORS as exc:
            raise AiokafkaError(
                f"group {self.group_id}: committed offsets of {describe_partitions(wanted)}: "
                f"{exc!r}"
            ) from exc
        return {
            tp: (int(offset) if offset is not None and offset >= 0 else None)
            for tp, offset in zip(wanted, found, strict=False)
        }
