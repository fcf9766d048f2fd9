"""``AiokafkaConsumer``: the ``AsyncConsumer`` port on ``aiokafka.AIOKafkaConsumer``.

The client is built in ``start()`` (aiokafka binds to the running loop), never in
``__init__``, so the DI container can make one outside a loop.

One object, one concern per module (each module's docstring gives the details):

* ``consumer`` (here): construction (settings translated by ``to_aiokafka_consumer``), life
  cycle, metadata and topic creation, flow control (``pause``/``resume``), ``lag_info``;
* ``group``: subscription, the rebalance listener bridge and the revoke hold, ``commit`` and
  ``committed``;
* ``fetching``: ``poll`` (it honours its timeout even while aiokafka holds ``getmany`` back
  during a rebalance) and the merge of the group client with the group-less one;
* ``side_reads``: ``assign`` (global topics, read by a second, group-less client),
  ``assign_at``, ``unassign``, ``position``, ``watermarks``, ``offsets_for_times``;
* ``consumer_base``: the shared state and helpers.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import Mapping, Sequence
from typing import Any

from aiokafka.coordinator.assignors.range import RangePartitionAssignor

from da_adapters.aiokafka._support import (
    AIOKAFKA_LOGGERS,
    COMMIT_TIMEOUT,
    AiokafkaError,
    client_kwargs,
    describe_kwargs,
    log_notes,
    reset_policy,
    source_or_empty,
    stop_consumer,
)
from da_adapters.aiokafka.consumer_base import _CLIENT_ERRORS, _started_client, log
from da_adapters.aiokafka.group import GroupMixin, _RebalanceAdapter
from da_adapters.aiokafka.side_reads import SideReadsMixin
from da_adapters.aiokafka.translate import to_aio_partitions
from da_adapters.kafka_config import KafkaConfigSource, to_aiokafka_consumer
from da_adapters.log_throttle import rate_limit_loggers
from da_adapters.wire import sorted_partitions
from da_core.types import PartitionLag, TopicPartition

_TOPIC_ALREADY_EXISTS = 36
"""Kafka's error code for creating a topic that exists (not an error for ``create_topics``)."""


class AiokafkaConsumer(GroupMixin, SideReadsMixin):
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
    long a revocation holds the rebalance for the caller's commit; ``commit_timeout`` bounds
    a commit (the broker may be unreachable).
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
        commit_timeout: float = COMMIT_TIMEOUT,
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
        self._commit_timeout = commit_timeout
        rate_limit_loggers(AIOKAFKA_LOGGERS)
        rebalance_ms = kwargs.get("rebalance_timeout_ms") or kwargs.get("session_timeout_ms")
        rebalance = float(rebalance_ms) / 1000.0 if rebalance_ms else 10.0
        self._revoke_timeout = max(0.0, min(revoke_timeout, rebalance / 2))
        self._consumer = None
        self._manual = None
        self._manual_tps = set()
        self._adapter = _RebalanceAdapter(self)
        self._listener = None
        self._listener_error = None
        self._subscribed = False
        self._owned = set()
        self._revoking = set()
        self._paused = set()
        self._gate = None
        self._gate_seen = False
        self._tasks = set()
        self._fetches = {}
        self._buffer = []
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
                    await stop_consumer(self._manual, f"reader of group {self.group_id}")
            finally:
                if self._consumer is not None:
                    await stop_consumer(self._consumer, f"consumer of group {self.group_id}")
            log.info("consumer of group %s closed", self.group_id)

    # -- metadata ------------------------------------------------------------------------------

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
