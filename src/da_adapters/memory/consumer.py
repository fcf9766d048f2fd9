"""Consumers of the in-memory broker: ``MemoryConsumer`` (the sync ``Consumer`` port) and
``AsyncMemoryConsumer`` (the ``AsyncConsumer`` port).

Both share ``_ConsumerCore``, which never blocks: it applies group changes (running the
rebalance listener), fetches and commits. The sync consumer waits on the broker's condition up
to its poll timeout. The async consumer never blocks the event loop: it registers a waker with
the broker that, while a ``poll`` is waiting, sets an ``asyncio.Event`` through
``loop.call_soon_threadsafe`` on every broker change (a record appended from any thread or
task, a rebalance, a released partition), so it wakes at once instead of sleeping in steps.

``assign_at`` adds partitions outside the group at explicit positions (shared with
``assign``: re-assigning moves the position); ``unassign`` drops them. ``watermarks`` and
``offsets_for_times`` ask the broker (its log start, high watermark and record timestamps).

Pause state is forgotten for revoked partitions, as in Kafka; ``pause``/``resume`` ignore
partitions that are not currently assigned (by the group or by ``assign``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping, Sequence
from typing import cast

from da_adapters.memory.broker import MemoryBroker, OffsetReset
from da_adapters.memory.broker_faults import BROKER_DOWN, BrokerDown
from da_core.ports import RebalanceListener
from da_core.types import PartitionLag, Record, TopicPartition


def _check_reset(auto_offset_reset: str) -> OffsetReset:
    if auto_offset_reset not in ("earliest", "latest"):
        raise ValueError(
            f"auto_offset_reset must be 'earliest' or 'latest', not {auto_offset_reset!r}"
        )
    return cast(OffsetReset, auto_offset_reset)


def create_missing(broker: MemoryBroker, topics: Sequence[str], partitions: int) -> None:
    """Create the topics that do not exist (existing ones keep their partition count)."""
    for t in topics:
        if not broker.partitions_for(t):
            broker.create_topic(t, partitions)


class _ConsumerCore:
    """The non-blocking state of one consumer: membership, positions, pauses."""

    def __init__(
        self, broker: MemoryBroker, group_id: str, auto_offset_reset: str, client_id: str | None
    ) -> None:
        if not group_id:
            raise ValueError("a consumer needs a group id")
        self.broker = broker
        self.group_id = group_id
        self.reset = _check_reset(auto_offset_reset)
        self.client_id = client_id
        self.member_id: str | None = None
        self.closed = False
        self._listener: RebalanceListener | None = None
        self._owned: set[TopicPartition] = set()
        self._manual: set[TopicPartition] = set()
        self.positions: dict[TopicPartition, int] = {}
        self.paused: set[TopicPartition] = set()
        self._rotation = 0

    def check_open(self) -> None:
        if self.closed:
            raise RuntimeError(f"consumer of group {self.group_id!r} is closed")

    def subscribe(self, topics: Sequence[str], listener: RebalanceListener | None) -> None:
        self.check_open()
        self._listener = listener
        if self.member_id is None:
            self.member_id = self.broker.join(self.group_id, topics, self.client_id)
        else:
            self.broker.update_subscription(self.group_id, self.member_id, topics)

    def assign(self, partitions: Sequence[TopicPartition], from_beginning: bool) -> None:
        self.check_open()
        for tp in partitions:
            if tp not in self._manual:
                self._manual.add(tp)
                if tp not in self.positions:
                    self.positions[tp] = self.broker.start_position(tp, from_beginning)

    def assign_at(self, positions: Mapping[TopicPartition, int]) -> None:
        self.check_open()
        for tp, offset in positions.items():
            if offset < 0:
                raise ValueError(f"cannot read {tp} from negative offset {offset}")
            self._manual.add(tp)
            self.positions[tp] = offset

    def unassign(self, partitions: Sequence[TopicPartition]) -> None:
        self.check_open()
        for tp in partitions:
            if tp in self._manual:
                self._manual.discard(tp)
                if tp not in self._owned:
                    self.positions.pop(tp, None)
                    self.paused.discard(tp)

    def watermarks(
        self, partitions: Sequence[TopicPartition]
    ) -> dict[TopicPartition, tuple[int, int]]:
        self.check_open()
        broker = self.broker
        return {tp: (broker.log_start_offset(tp), broker.high_watermark(tp)) for tp in partitions}

    def offsets_for_times(
        self, times: Mapping[TopicPartition, float]
    ) -> dict[TopicPartition, int | None]:
        self.check_open()
        return {tp: self.broker.offset_for_time(tp, time) for tp, time in times.items()}

    def position(self, partition: TopicPartition) -> int | None:
        self.check_open()
        return self.positions.get(partition)

    def assignment(self) -> set[TopicPartition]:
        return set(self._owned)

    def sync_group(self) -> None:
        """Apply what the group has for this member: revoke, then assign (listener inside)."""
        member_id = self.member_id
        if member_id is None:
            return
        revoked = self.broker.revocations(self.group_id, member_id)
        if revoked:
            try:
                if self._listener is not None:
                    self._listener.on_revoked(revoked)
            finally:
                self._forget(revoked)
                self.broker.release(self.group_id, member_id, revoked)
        assigned = self.broker.claim(self.group_id, member_id, self.reset)
        if assigned is not None:
            self._owned.update(assigned)
            self.positions.update(assigned)
            if self._listener is not None:
                self._listener.on_assigned(
                    sorted(assigned, key=lambda tp: (tp.topic, tp.partition))
                )

    def poll_once(self, max_records: int) -> list[Record]:
        self.check_open()
        if max_records < 1:
            raise ValueError(f"max_records must be at least 1, not {max_records}")
        self.sync_group()
        self._rotation += 1
        return self.broker.fetch(
            self.group_id, self.positions, self.paused, max_records, self.reset, self._rotation
        )

    def wait(self, timeout: float) -> None:
        self.broker.wait(self.group_id, self.member_id, self.positions, self.paused, timeout)

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        self.check_open()
        self.broker.commit(self.group_id, self.member_id, offsets)

    def committed(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int | None]:
        self.check_open()
        return self.broker.committed(self.group_id, partitions)

    def pause(self, partitions: Sequence[TopicPartition]) -> None:
        self.paused.update(tp for tp in partitions if tp in self._owned or tp in self._manual)

    def resume(self, partitions: Sequence[TopicPartition]) -> None:
        self.paused.difference_update(partitions)

    def lag_info(self) -> list[PartitionLag]:
        self.check_open()
        return self.broker.lag(self.group_id, {tp: self.positions.get(tp) for tp in self._owned})

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        member_id = self.member_id
        if member_id is None:
            return
        owned = sorted(self._owned, key=lambda tp: (tp.topic, tp.partition))
        try:
            if owned and self._listener is not None:
                self._listener.on_revoked(owned)
        finally:
            self._forget(owned)
            self.broker.leave(self.group_id, member_id)

    def _forget(self, partitions: Sequence[TopicPartition]) -> None:
        for tp in partitions:
            self._owned.discard(tp)
            if tp not in self._manual:
                self.positions.pop(tp, None)
                self.paused.discard(tp)


class MemoryConsumer:
    """The sync ``Consumer`` port over a ``MemoryBroker``. Not thread-safe (one thread calls
    it), like the real clients; other threads may produce to the broker meanwhile."""

    def __init__(
        self,
        broker: MemoryBroker,
        group_id: str,
        auto_offset_reset: str = "latest",
        client_id: str | None = None,
    ) -> None:
        self._core = _ConsumerCore(broker, group_id, auto_offset_reset, client_id)

    @property
    def group_id(self) -> str:
        return self._core.group_id

    @property
    def member_id(self) -> str | None:
        """The id the group knows this consumer by (None before ``subscribe``)."""
        return self._core.member_id

    def subscribe(self, topics: Sequence[str], listener: RebalanceListener | None = None) -> None:
        self._core.subscribe(topics, listener)

    def assign(self, partitions: Sequence[TopicPartition], *, from_beginning: bool = True) -> None:
        self._core.assign(partitions, from_beginning)

    def partitions_for(self, topic: str) -> list[int]:
        return self._core.broker.partitions_for(topic)

    def create_topics(
        self, topics: Sequence[str], partitions: int, replication_factor: int | None = None
    ) -> None:
        create_missing(self._core.broker, topics, partitions)

    def poll(self, timeout: float, max_records: int = 500) -> list[Record]:
        deadline = time.monotonic() + max(timeout, 0.0)
        while True:
            records = self._core.poll_once(max_records)
            if records:
                return records
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            self._core.wait(remaining)

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        self._core.commit(offsets)

    def connected(self) -> bool | None:
        """False while the broker is down (``MemoryBroker.go_down``)."""
        return not self._core.broker.down

    def committed(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int | None]:
        return self._core.committed(partitions)

    def assignment(self) -> set[TopicPartition]:
        return self._core.assignment()

    def pause(self, partitions: Sequence[TopicPartition]) -> None:
        self._core.pause(partitions)

    def resume(self, partitions: Sequence[TopicPartition]) -> None:
        self._core.resume(partitions)

    def lag_info(self) -> list[PartitionLag]:
        return self._core.lag_info()

    def watermarks(
        self, partitions: Sequence[TopicPartition]
    ) -> dict[TopicPartition, tuple[int, int]]:
        return self._core.watermarks(partitions)

    def offsets_for_times(
        self, times: Mapping[TopicPartition, float]
    ) -> dict[TopicPartition, int | None]:
        return self._core.offsets_for_times(times)

    def assign_at(self, positions: Mapping[TopicPartition, int]) -> None:
        self._core.assign_at(positions)

    def unassign(self, partitions: Sequence[TopicPartition]) -> None:
        self._core.unassign(partitions)

    def position(self, partition: TopicPartition) -> int | None:
        return self._core.position(partition)

    def close(self) -> None:
        self._core.close()


class AsyncMemoryConsumer:
    """The ``AsyncConsumer`` port over a ``MemoryBroker``; ``start()`` must be awaited first
    (as with aiokafka), and every coroutine runs on that loop."""

    def __init__(
        self,
        broker: MemoryBroker,
        group_id: str,
        auto_offset_reset: str = "latest",
        client_id: str | None = None,
    ) -> None:
        self._core = _ConsumerCore(broker, group_id, auto_offset_reset, client_id)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup = asyncio.Event()
        self._waiting = False

    @property
    def group_id(self) -> str:
        return self._core.group_id

    @property
    def member_id(self) -> str | None:
        return self._core.member_id

    async def start(self) -> None:
        """Connect; like aiokafka's bootstrap, this fails while the broker is down (a retry
        after ``come_up`` succeeds). Starting twice is harmless."""
        self._core.check_open()
        if self._loop is None:
            if self._core.broker.down:
                raise BrokerDown(f"consumer of group {self.group_id}: {BROKER_DOWN}")
            self._loop = asyncio.get_running_loop()
            self._core.broker.add_waker(self._wake)

    async def subscribe(
        self, topics: Sequence[str], listener: RebalanceListener | None = None
    ) -> None:
        self._check_started()
        self._core.subscribe(topics, listener)

    async def assign(
        self, partitions: Sequence[TopicPartition], *, from_beginning: bool = True
    ) -> None:
        self._check_started()
        self._core.assign(partitions, from_beginning)

    async def partitions_for(self, topic: str) -> list[int]:
        self._check_started()
        return self._core.broker.partitions_for(topic)

    async def create_topics(
        self, topics: Sequence[str], partitions: int, replication_factor: int | None = None
    ) -> None:
        self._check_started()
        create_missing(self._core.broker, topics, partitions)

    async def poll(self, timeout: float, max_records: int = 500) -> list[Record]:
        loop = self._check_started()
        deadline = loop.time() + max(timeout, 0.0)
        self._waiting = True
        try:
            while True:
                # Cleared before looking, so a change made after the look still wakes us.
                self._wakeup.clear()
                records = self._core.poll_once(max_records)
                if records:
                    return records
                remaining = deadline - loop.time()
                if remaining <= 0:
                    await asyncio.sleep(0)  # a zero-timeout poll loop must still yield
                    return []
                try:
                    await asyncio.wait_for(self._wakeup.wait(), remaining)
                except asyncio.TimeoutError:
                    return self._core.poll_once(max_records)
        finally:
            self._waiting = False

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        self._check_started()
        self._core.commit(offsets)

    def connected(self) -> bool | None:
        """False while the broker is down (``MemoryBroker.go_down``)."""
        return not self._core.broker.down

    async def committed(
        self, partitions: Sequence[TopicPartition]
    ) -> dict[TopicPartition, int | None]:
        self._check_started()
        return self._core.committed(partitions)

    def assignment(self) -> set[TopicPartition]:
        return self._core.assignment()

    def pause(self, partitions: Sequence[TopicPartition]) -> None:
        self._core.pause(partitions)

    def resume(self, partitions: Sequence[TopicPartition]) -> None:
        self._core.resume(partitions)

    async def lag_info(self) -> list[PartitionLag]:
        self._check_started()
        return self._core.lag_info()

    async def watermarks(
        self, partitions: Sequence[TopicPartition]
    ) -> dict[TopicPartition, tuple[int, int]]:
        self._check_started()
        return self._core.watermarks(partitions)

    async def offsets_for_times(
        self, times: Mapping[TopicPartition, float]
    ) -> dict[TopicPartition, int | None]:
        self._check_started()
        return self._core.offsets_for_times(times)

    async def assign_at(self, positions: Mapping[TopicPartition, int]) -> None:
        self._check_started()
        self._core.assign_at(positions)

    async def unassign(self, partitions: Sequence[TopicPartition]) -> None:
        self._check_started()
        self._core.unassign(partitions)

    async def position(self, partition: TopicPartition) -> int | None:
        self._check_started()
        return self._core.position(partition)

    async def close(self) -> None:
        try:
            self._core.close()
        finally:
            if self._loop is not None:
                self._core.broker.remove_waker(self._wake)

    def _check_started(self) -> asyncio.AbstractEventLoop:
        self._core.check_open()
        if self._loop is None:
            raise RuntimeError("AsyncMemoryConsumer.start() must be awaited before use")
        return self._loop

    def _wake(self) -> None:
        # Runs under the broker lock, on whatever thread changed the broker.
        loop = self._loop
        if self._waiting and loop is not None:
            # A closed loop raises RuntimeError: nobody is waiting any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._wakeup.set)
