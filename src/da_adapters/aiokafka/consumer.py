"""``AiokafkaConsumer``: the ``AsyncConsumer`` port on ``aiokafka.AIOKafkaConsumer``.

The client is built in ``start()`` (aiokafka binds to the running loop), never in
``__init__``, so the DI container can make one outside a loop.

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

``poll`` honours its timeout
    aiokafka's ``getmany`` ignores its timeout while a rebalance is in progress (it waits for
    the new assignment), which would also stall the revoke hold above. ``poll`` therefore runs
    ``getmany`` as a task and returns ``[]`` when that task overruns the timeout; the task is
    not cancelled (cancelling leaves aiokafka's poll-interval bookkeeping stuck) but carried
    over, and the records it ends up with are returned by a later ``poll``, none lost. Records
    beyond ``max_records`` and records of partitions paused after they were fetched wait in a
    small buffer for a later ``poll`` (after ``resume``).

Offsets
    Auto-commit is always off; ``commit`` sends explicit next-to-read offsets
    (``{TopicPartition: offset}``) and turns every client error (``CommitFailedError``,
    ``IllegalStateError`` for a partition this member does not own, broker errors) into
    ``CommitError``. When partitions are assigned, their committed offsets are checked against
    the partitions' beginning and end in a background task: one out of range (retention, a
    group-id change) is reported as a warning naming the group and the partitions, and
    ``auto_offset_reset`` decides where reading resumes (SPEC §8).

``assign`` (global topics, read outside the group)
    aiokafka forbids ``assign`` on a subscribed consumer, so a second, internal
    ``AIOKafkaConsumer`` without ``group_id`` (it cannot commit) holds the assigned partitions.
    Adding partitions re-assigns the whole set and seeks the old ones back to their positions.
    ``poll`` merges both clients: it alternates which is asked first and waits on them in
    short slices, so neither starves the other.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import (
    ConsumerStoppedError,
    IllegalOperation,
    KafkaError,
    OffsetOutOfRangeError,
)

from da_adapters.aiokafka._support import (
    AiokafkaError,
    client_kwargs,
    describe_kwargs,
    log_notes,
    reset_policy,
    source_or_empty,
)
from da_adapters.aiokafka.translate import (
    batches_to_records,
    from_aio,
    from_aio_partitions,
    to_aio,
    to_aio_offsets,
    to_aio_partitions,
)
from da_adapters.kafka_config import KafkaConfigSource, to_aiokafka_consumer
from da_adapters.wire import describe_partitions, millis_at_or_after, sorted_partitions
from da_core.errors import CommitError, ConfigError
from da_core.ports import RebalanceListener
from da_core.types import PartitionLag, Record, TopicPartition

log = logging.getLogger("da_adapters.aiokafka")

#: How long ``poll`` waits on one client before looking at the other (both in use).
MERGE_SLICE = 0.05
#: How long past its timeout a ``getmany`` may take before ``poll`` returns without it.
GETMANY_GRACE = 0.02

_CLIENT_ERRORS = (KafkaError, IllegalOperation, ConsumerStoppedError)


class _RebalanceAdapter(ConsumerRebalanceListener):  # type: ignore[misc]
    """aiokafka's listener interface, forwarding to the owning ``AiokafkaConsumer``."""

    def __init__(self, owner: AiokafkaConsumer) -> None:
        self._owner = owner

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self._owner._on_revoked(from_aio_partitions(revoked))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        await self._owner._on_assigned(from_aio_partitions(assigned))


_TOPIC_ALREADY_EXISTS = 36
"""Kafka's error code for creating a topic that exists (not an error for ``create_topics``)."""


class AiokafkaConsumer:
    """The ``AsyncConsumer`` port on aiokafka. See the module docstring.

    ``settings`` (shaped like ``da_app.settings.KafkaSettings``) is translated by
    ``to_aiokafka_consumer`` (an SSL context is built from its ``ssl_*`` settings);
    ``group_id``, ``bootstrap_servers`` and ``auto_offset_reset`` override it; ``extra``
    (constructor arguments) is applied last. Auto-commit stays off whatever is passed.
    ``instance_id`` (when not None) makes this a static member of the group
    (``group_instance_id``, KIP-345; aiokafka then sends JoinGroup v5): a restarted process
    with the same id gets its partitions back at once instead of after the session timeout,
    and ``close`` does not leave the group (aiokafka skips LeaveGroup for a static member).
    Two running processes must never share an id. It wins over ``group_instance_id`` in the
    settings.
    ``request_timeout`` bounds ``lag_info``'s position lookups; ``revoke_timeout`` bounds how
    long a revocation holds the rebalance for the caller's commit.
    """

    def __init__(
        self,
        settings: KafkaConfigSource | None = None,
        *,
        group_id: str,
        bootstrap_servers: str | Sequence[str] | None = None,
        auto_offset_reset: str | None = None,
        extra: Mapping[str, Any] | None = None,
        request_timeout: float = 10.0,
        revoke_timeout: float = 10.0,
        instance_id: str | None = None,
    ) -> None:
        if not group_id:
            raise ValueError("a consumer needs a group id")
        what = f"consumer of group {group_id}"
        translated = to_aiokafka_consumer(source_or_empty(settings))
        log_notes(translated, what)
        kwargs = client_kwargs(translated, what, bootstrap_servers=bootstrap_servers, extra=extra)
        kwargs["group_id"] = group_id
        if instance_id is not None:
            kwargs["group_instance_id"] = instance_id
        reset = (
            auto_offset_reset if auto_offset_reset is not None else kwargs.get("auto_offset_reset")
        )
        kwargs["auto_offset_reset"] = reset_policy(reset) if reset is not None else "latest"
        kwargs["enable_auto_commit"] = False
        # Range assignment gives partition p of every co-partitioned topic to one member
        # (station co-location, da_core.routing); aiokafka's own default is round-robin.
        kwargs.setdefault("partition_assignment_strategy", (RangePartitionAssignor,))
        self.group_id = group_id
        self.instance_id: str | None = kwargs.get("group_instance_id")
        self.auto_offset_reset = str(kwargs["auto_offset_reset"])
        self.max_poll_records = translated.max_poll_records
        self._kwargs = kwargs
        self._timeout = request_timeout
        rebalance_ms = kwargs.get("rebalance_timeout_ms") or kwargs.get("session_timeout_ms")
        rebalance = float(rebalance_ms) / 1000.0 if rebalance_ms else 10.0
        self._revoke_timeout = max(0.0, min(revoke_timeout, rebalance / 2))
        self._consumer: Any = None
        self._manual: Any = None
        self._manual_tps: set[TopicPartition] = set()
        self._adapter = _RebalanceAdapter(self)
        self._listener: RebalanceListener | None = None
        self._listener_error: BaseException | None = None
        self._subscribed = False
        self._owned: set[TopicPartition] = set()
        self._revoking: set[TopicPartition] = set()
        self._paused: set[TopicPartition] = set()
        self._gate: asyncio.Event | None = None
        self._gate_seen = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._fetches: dict[str, asyncio.Task[Any]] = {}
        self._buffer: list[Record] = []
        self._closed = False
        self._turn = 0

    # -- life cycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect (bootstrap metadata). Starting twice is harmless."""
        self._check_open()
        if self._consumer is not None:
            return
        log.debug(
            "consumer of group %s: aiokafka arguments %s",
            self.group_id,
            describe_kwargs(self._kwargs),
        )
        self._consumer = await _started_client(self._kwargs, f"consumer of group {self.group_id}")
        log.info(
            "consumer of group %s started (auto_offset_reset=%s)",
            self.group_id,
            self.auto_offset_reset,
        )

    async def close(self) -> None:
        """Tell the listener every owned partition is revoked (it may still commit them), then
        leave the group and stop both clients. Closing twice is harmless."""
        if self._closed:
            return
        owned = sorted_partitions(self._owned)
        try:
            if owned and self._listener is not None:
                self._listener.on_revoked(owned)
        finally:
            self._closed = True
            self._owned.clear()
            self._paused.clear()
            self._listener = None
            self._release_gate()
            self._buffer.clear()
            tasks = [*self._tasks, *self._fetches.values()]
            self._fetches.clear()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            try:
                if self._manual is not None:
                    await self._manual.stop()
            finally:
                if self._consumer is not None:
                    await self._consumer.stop()
            log.info("consumer of group %s closed", self.group_id)

    # -- group ---------------------------------------------------------------------------------

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

    def _release_gate(self) -> None:
        if self._gate is not None:
            self._gate.set()
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

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- assign (outside the group) ------------------------------------------------------------

    async def assign(
        self, partitions: Sequence[TopicPartition], *, from_beginning: bool = True
    ) -> None:
        self._started()
        new = sorted_partitions({tp for tp in partitions if tp not in self._manual_tps})
        if not new:
            return
        manual = await self._manual_client()
        try:
            await self._reassign(manual, self._manual_tps | set(new), {})
            if from_beginning:
                await manual.seek_to_beginning(*to_aio_partitions(new))
            else:
                await manual.seek_to_end(*to_aio_partitions(new))
        except _CLIENT_ERRORS as exc:
            raise AiokafkaError(f"assign {describe_partitions(new)}: {exc!r}") from exc
        self._manual_tps.update(new)

    async def assign_at(self, positions: Mapping[TopicPartition, int]) -> None:
        self._started()
        if not positions:
            return
        for tp, offset in positions.items():
            if offset < 0:
                raise ValueError(f"cannot read {tp} from negative offset {offset}")
        manual = await self._manual_client()
        wanted = sorted_partitions(positions)
        await self._settle_manual_fetch()
        self._drop_buffered(set(wanted))
        try:
            await self._reassign(manual, self._manual_tps | set(wanted), dict(positions))
        except _CLIENT_ERRORS as exc:
            raise AiokafkaError(f"assign_at {describe_partitions(wanted)}: {exc!r}") from exc
        self._manual_tps.update(wanted)

    async def unassign(self, partitions: Sequence[TopicPartition]) -> None:
        self._started()
        gone = {tp for tp in partitions if tp in self._manual_tps}
        manual = self._manual
        if not gone or manual is None:
            return
        await self._settle_manual_fetch()
        self._drop_buffered(gone)
        try:
            await self._reassign(manual, self._manual_tps - gone, {})
        except _CLIENT_ERRORS as exc:
            shown = describe_partitions(sorted_partitions(gone))
            raise AiokafkaError(f"unassign {shown}: {exc!r}") from exc
        self._manual_tps.difference_update(gone)
        self._paused.difference_update(gone)

    async def position(self, partition: TopicPartition) -> int | None:
        self._started()
        if partition in self._owned:
            client = self._consumer
        elif partition in self._manual_tps and self._manual is not None:
            client = self._manual
            await self._settle_manual_fetch()
        else:
            return None
        # Records fetched but not yet returned by ``poll`` are still ahead of the caller.
        buffered = [r.offset for r in self._buffer if r.tp == partition]
        if buffered:
            return min(buffered)
        try:
            return int(await asyncio.wait_for(client.position(to_aio(partition)), self._timeout))
        except (asyncio.TimeoutError, *_CLIENT_ERRORS):
            return None

    async def _manual_client(self) -> Any:
        """The group-less client that holds the partitions of ``assign``/``assign_at``."""
        if self._manual is None:
            kwargs = dict(self._kwargs)
            kwargs["group_id"] = None
            kwargs.pop("group_instance_id", None)
            self._manual = await _started_client(
                kwargs, f"assign-consumer of group {self.group_id}"
            )
        return self._manual

    async def _reassign(
        self, manual: Any, partitions: set[TopicPartition], starts: dict[TopicPartition, int]
    ) -> None:
        """Give ``manual`` exactly ``partitions`` (aiokafka's ``assign`` replaces the whole
        set and forgets positions): those in ``starts`` start there, the others keep their
        positions and pauses."""
        keep = {
            tp: await manual.position(to_aio(tp))
            for tp in self._manual_tps & partitions
            if tp not in starts
        }
        manual.assign(to_aio_partitions(partitions))
        for tp, offset in {**keep, **starts}.items():
            manual.seek(to_aio(tp), offset)
        paused = [to_aio(tp) for tp in self._paused if tp in partitions]
        if paused:
            manual.pause(*paused)

    async def _settle_manual_fetch(self) -> None:
        """Finish a ``getmany`` of the manual client carried over from an earlier ``poll``
        and buffer its records, so none of them comes back after its partition moved or
        left. Bounded: without a group, aiokafka honours ``getmany``'s timeout."""
        task = self._fetches.get("assign")
        if task is not None:
            await asyncio.wait({task})
            self._buffer += await self._getmany("assign", self._manual, 0.0, 1)

    def _drop_buffered(self, partitions: set[TopicPartition]) -> None:
        self._buffer = [r for r in self._buffer if r.tp not in partitions]

    async def watermarks(
        self, partitions: Sequence[TopicPartition]
    ) -> dict[TopicPartition, tuple[int, int]]:
        consumer = self._started()
        wanted = list(dict.fromkeys(partitions))
        if not wanted:
            return {}
        aio = to_aio_partitions(wanted)
        try:
            low = await consumer.beginning_offsets(aio)
            high = await consumer.end_offsets(aio)
        except _CLIENT_ERRORS as exc:
            raise AiokafkaError(f"watermarks of {describe_partitions(wanted)}: {exc!r}") from exc
        return {
            tp: (int(low[aio_tp]), int(high[aio_tp]))
            for tp, aio_tp in zip(wanted, aio, strict=True)
        }

    async def offsets_for_times(
        self, times: Mapping[TopicPartition, float]
    ) -> dict[TopicPartition, int | None]:
        consumer = self._started()
        if not times:
            return {}
        wanted = {to_aio(tp): millis_at_or_after(time) for tp, time in times.items()}
        try:
            found = await consumer.offsets_for_times(dict(wanted))
        except _CLIENT_ERRORS as exc:
            shown = describe_partitions(list(times))
            raise AiokafkaError(f"offsets for times of {shown}: {exc!r}") from exc
        out: dict[TopicPartition, int | None] = {}
        for aio_tp in wanted:
            answer = found.get(aio_tp)
            # None (or a negative offset): no record that recent
            offset = None if answer is None else int(answer.offset)
            out[from_aio(aio_tp)] = offset if offset is not None and offset >= 0 else None
        return out

    # -- reading -------------------------------------------------------------------------------

    async def partitions_for(self, topic: str) -> list[int]:
        consumer = self._started()
        try:
            # The public ``topics()`` returns names only; its metadata call gives partitions.
            cluster = await consumer._client.fetch_all_metadata()
        except _CLIENT_ERRORS as exc:
            raise AiokafkaError(f"metadata of topic {topic!r}: {exc!r}") from exc
        found = cluster.partitions_for_topic(topic)
        return sorted(int(p) for p in found) if found else []

    async def create_topics(
        self, topics: Sequence[str], partitions: int, replication_factor: int | None = None
    ) -> None:
        """Create missing topics through an ``AIOKafkaAdminClient`` sharing this consumer's
        connection settings; ``TOPIC_ALREADY_EXISTS`` is not an error. aiokafka cannot ask
        for the broker's default replication factor: None means min(3, brokers)."""
        self._started()
        if not topics:
            return
        from aiokafka.admin import AIOKafkaAdminClient, NewTopic

        accepted = inspect.signature(AIOKafkaAdminClient.__init__).parameters
        kwargs = {k: v for k, v in self._kwargs.items() if k in accepted and k != "loop"}
        admin = AIOKafkaAdminClient(**kwargs)
        rf = replication_factor
        try:
            if rf is None:
                # aiokafka cannot ask for the broker's default (-1); use up to 3 replicas
                cluster = await self._started()._client.fetch_all_metadata()
                rf = max(1, min(3, len(cluster.brokers())))
            await admin.start()
            response = await admin.create_topics(
                [NewTopic(t, num_partitions=partitions, replication_factor=rf) for t in topics]
            )
        except _CLIENT_ERRORS as exc:
            raise AiokafkaError(f"creating topics {list(topics)}: {exc!r}") from exc
        finally:
            with contextlib.suppress(Exception):
                await admin.close()
        for entry in getattr(response, "topic_errors", ()):
            topic, code = entry[0], entry[1]
            if code == 0:
                log.info("created topic %s with %d partitions", topic, partitions)
            elif code != _TOPIC_ALREADY_EXISTS:
                message = entry[2] if len(entry) > 2 else ""
                raise AiokafkaError(f"creating topic {topic!r}: error code {code} {message}")

    async def poll(self, timeout: float, max_records: int = 500) -> list[Record]:
        consumer = self._started()
        if max_records < 1:
            raise ValueError(f"max_records must be at least 1, not {max_records}")
        if self._gate is not None and self._gate_seen:
            self._release_gate()  # the caller had a whole turn to commit the revoked partitions
        try:
            self._raise_listener_error()
            ready = self._take(max_records)
            if not ready:
                self._buffer += await self._fetch(consumer, max(timeout, 0.0), max_records)
                ready = self._take(max_records)
            self._raise_listener_error()
            if not ready and timeout <= 0:
                await asyncio.sleep(0)  # a zero-timeout poll loop must still yield to the loop
            return ready
        finally:
            if self._gate is not None:
                self._gate_seen = True

    def _take(self, max_records: int) -> list[Record]:
        """Up to ``max_records`` buffered records of partitions that are not paused (revoked
        ones are dropped); the rest stay buffered, each partition's in offset order."""
        if not self._buffer:
            return []
        ready: list[Record] = []
        kept: list[Record] = []
        for record in self._buffer:
            tp = record.tp
            if tp in self._revoking:
                continue
            if len(ready) < max_records and tp not in self._paused:
                ready.append(record)
            else:
                kept.append(record)
        self._buffer = kept
        return ready

    async def _fetch(self, consumer: Any, timeout: float, max_records: int) -> list[Record]:
        main = consumer if self._subscribed else None
        manual = self._manual
        if main is None and manual is None:
            await asyncio.sleep(timeout)
            return []
        if main is None or manual is None:
            if main is not None:
                return await self._getmany("group", main, timeout, max_records)
            return await self._getmany("assign", manual, timeout, max_records)
        self._turn ^= 1
        clients = [("group", main), ("assign", manual)]
        (first_name, first), (second_name, second) = clients if self._turn else clients[::-1]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            records = await self._getmany(first_name, first, 0.0, max_records)
            if len(records) < max_records:
                wait = 0.0 if records else min(MERGE_SLICE, max(0.0, deadline - loop.time()))
                records += await self._getmany(
                    second_name, second, wait, max_records - len(records)
                )
            if records or loop.time() >= deadline:
                return records

    async def _getmany(
        self, name: str, client: Any, timeout: float, max_records: int
    ) -> list[Record]:
        """One ``getmany`` of ``client``, returning after ``timeout`` (plus a little) even when
        aiokafka holds it back during a rebalance; an overrunning call is carried over."""
        task = self._fetches.pop(name, None)
        if task is None:
            task = asyncio.ensure_future(
                client.getmany(timeout_ms=int(timeout * 1000), max_records=max_records)
            )
        try:
            done, _ = await asyncio.wait({task}, timeout=timeout + GETMANY_GRACE)
        except asyncio.CancelledError:
            self._fetches[name] = task  # its records are not lost: a later poll returns them
            raise
        if not done:
            self._fetches[name] = task
            return []
        try:
            batches = task.result()
        except OffsetOutOfRangeError as exc:
            where = exc.args[0] if exc.args else {}
            shown = (
                ", ".join(f"{from_aio(tp)} at {offset}" for tp, offset in where.items())
                if isinstance(where, Mapping)
                else str(where)
            )
            log.warning(
                "group %s: fetch offset out of range for %s (auto_offset_reset=%s)",
                self.group_id,
                shown,
                self.auto_offset_reset,
            )
            raise AiokafkaError(f"group {self.group_id}: offset out of range: {shown}") from exc
        except _CLIENT_ERRORS as exc:
            raise AiokafkaError(f"group {self.group_id}: fetch failed: {exc!r}") from exc
        return batches_to_records(batches)

    def _raise_listener_error(self) -> None:
        error, self._listener_error = self._listener_error, None
        if error is not None:
            raise error

    # -- offsets -------------------------------------------------------------------------------

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        consumer = self._started()
        if not offsets:
            return
        wanted = to_aio_offsets(offsets)
        try:
            await consumer.commit(wanted)
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

    # -- flow control --------------------------------------------------------------------------

    def pause(self, partitions: Sequence[TopicPartition]) -> None:
        group, manual = self._split(partitions)
        if group:
            self._consumer.pause(*to_aio_partitions(group))
        if manual:
            self._manual.pause(*to_aio_partitions(manual))
        self._paused.update(group, manual)

    def resume(self, partitions: Sequence[TopicPartition]) -> None:
        group, manual = self._split(partitions)
        if group:
            self._consumer.resume(*to_aio_partitions(group))
        if manual:
            self._manual.resume(*to_aio_partitions(manual))
        self._paused.difference_update(partitions)

    def _split(
        self, partitions: Sequence[TopicPartition]
    ) -> tuple[list[TopicPartition], list[TopicPartition]]:
        if self._closed or self._consumer is None:
            return [], []
        group = [tp for tp in partitions if tp in self._owned]
        manual = [
            tp
            for tp in partitions
            if self._manual is not None and tp in self._manual_tps and tp not in self._owned
        ]
        return group, manual

    # -- lag -----------------------------------------------------------------------------------

    async def lag_info(self) -> list[PartitionLag]:
        consumer = self._started()
        owned = sorted_partitions(self._owned)
        if not owned:
            return []
        committed = await self.committed(owned)
        aio = to_aio_partitions(owned)
        try:
            ends: Mapping[Any, int] = await consumer.end_offsets(aio)
        except _CLIENT_ERRORS as exc:
            log.warning("group %s: high watermarks unavailable: %r", self.group_id, exc)
            ends = {}
        lags: list[PartitionLag] = []
        for tp, aio_tp in zip(owned, aio, strict=False):
            position: int | None
            try:
                position = int(await asyncio.wait_for(consumer.position(aio_tp), self._timeout))
            except (asyncio.TimeoutError, *_CLIENT_ERRORS):
                position = None
            end = ends.get(aio_tp)
            lags.append(
                PartitionLag(
                    topic=tp.topic,
                    partition=tp.partition,
                    committed=committed.get(tp),
                    position=position,
                    high_watermark=int(end) if end is not None else None,
                )
            )
        return lags

    # -- helpers -------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"consumer of group {self.group_id!r} is closed")

    def _started(self) -> Any:
        self._check_open()
        if self._consumer is None:
            raise RuntimeError("AiokafkaConsumer.start() must be awaited before use")
        return self._consumer


async def _started_client(kwargs: Mapping[str, Any], what: str) -> Any:
    """A started ``AIOKafkaConsumer``; on failure it is stopped again and the error raised."""
    try:
        client = AIOKafkaConsumer(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"{what}: aiokafka does not accept these settings: {exc}") from exc
    try:
        await client.start()
    except BaseException:
        with contextlib.suppress(Exception):
            await client.stop()
        raise
    return client
