"""``ConfluentConsumer``: the sync ``Consumer`` port on ``confluent_kafka.Consumer``.

One object, one concern per module (each module's docstring gives the details):

* ``consumer`` (here): construction (settings translated by ``to_librdkafka_consumer``,
  auto-commit and the offset store always off), metadata and topic creation, flow control
  (``pause``/``resume``), ``lag_info``, ``close``;
* ``group``: subscription, the rebalance callbacks (``on_assign``/``on_revoke``/``on_lost``),
  ``commit`` and ``committed``;
* ``fetching``: ``poll`` (merging the group handle with the ``assign`` handle) and its error
  handling;
* ``side_reads``: ``assign`` (global topics, read by a second internal handle), ``assign_at``,
  ``unassign``, ``position``, ``watermarks``, ``offsets_for_times``;
* ``consumer_base``: the shared state and helpers (the never-fetching offsets handle).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import confluent_kafka as ck
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from da_adapters.confluent._support import (
    ConfluentError,
    LibrdkafkaLogBridge,
    Throttle,
    bootstrap_string,
    check_bootstrap,
    describe_config,
    log_notes,
    new_client,
    reset_policy,
    source_or_empty,
)
from da_adapters.confluent.bounded_commit import COMMIT_TIMEOUT
from da_adapters.confluent.consumer_base import GROUP_LINK, log
from da_adapters.confluent.fetching import FetchMixin
from da_adapters.confluent.group import GroupMixin
from da_adapters.confluent.side_reads import SideReadsMixin
from da_adapters.confluent.translate import from_ck_partition, offset_or_none, to_ck_partitions
from da_adapters.kafka_config import KafkaConfigSource, to_librdkafka_consumer
from da_adapters.wire import sorted_partitions
from da_core.types import PartitionLag, TopicPartition

LEAVE_TIMEOUT = 2.0
"""Seconds ``close`` may spend serving the revocation of its partitions in ``poll`` before it
closes the group handle (see ``ConfluentConsumer._leave_before_close``)."""

STATS_INTERVAL_MS = 1000
"""How often librdkafka reports its broker states (``stats_cb``, served from ``poll``): the
delay before ``connected()`` sees a broker come back."""

_ADMIN_PREFIXES = (
    "bootstrap.servers",
    "security.protocol",
    "sasl.",
    "ssl.",
    "client.id",
    "socket.",
    "broker.address.family",
    "error_cb",
    "logger",
)
"""librdkafka properties an ``AdminClient`` shares with the consumer it is made for."""


class ConfluentConsumer(GroupMixin, SideReadsMixin, FetchMixin):
    """The sync ``Consumer`` port on confluent-kafka. See the module docstring.

    ``settings`` is anything shaped like ``da_app.settings.KafkaSettings`` (its ``consumer``
    and ``confluent`` sections are translated by ``to_librdkafka_consumer``); ``group_id``,
    ``bootstrap_servers`` and ``auto_offset_reset`` override it; ``extra`` (librdkafka
    properties) is applied last. Auto-commit stays off whatever is passed.
    ``instance_id`` (when not None) makes this a static member of the group
    (``group.instance.id``, KIP-345): a restarted process with the same id gets its partitions
    back at once instead of after ``session.timeout.ms``, and ``close`` does not leave the
    group (librdkafka sends no LeaveGroup for a static member), so a clean stop and a crash
    look alike to the group. Two running processes must never share an id (the broker fences
    the older one). It wins over ``group_instance_id`` in the settings.
    ``request_timeout`` bounds each metadata/offset request (``partitions_for``,
    ``committed``, ``lag_info``, the high watermark of ``assign(from_beginning=False)``);
    ``commit_timeout`` bounds the wait for a commit's answer (``bounded_commit``).
    Not thread-safe: one thread calls every method, like the client itself.
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
        instance_id: str | None = None,
        commit_timeout: float = COMMIT_TIMEOUT,
    ) -> None:
        if not group_id:
            raise ValueError("a consumer needs a group id")
        translated = to_librdkafka_consumer(source_or_empty(settings))
        log_notes(translated, f"consumer of group {group_id}")
        config: dict[str, Any] = dict(translated.config)
        if bootstrap_servers is not None:
            config["bootstrap.servers"] = bootstrap_string(bootstrap_servers)
        config["group.id"] = group_id
        if auto_offset_reset is not None:
            config["auto.offset.reset"] = reset_policy(auto_offset_reset)
        config.update(extra or {})
        if instance_id is not None:
            config["group.instance.id"] = instance_id
        config["enable.auto.commit"] = False
        config["enable.auto.offset.store"] = False
        check_bootstrap(config, f"consumer of group {group_id}")
        self.group_id = group_id
        self.auto_offset_reset = str(config.get("auto.offset.reset", "latest"))
        self.max_poll_records = translated.max_poll_records
        self._timeout = request_timeout
        self._commit_timeout = commit_timeout
        self._commit_call = None
        self._throttle = Throttle()
        self._fatal = None
        self._links = {}
        self._what = f"consumer of group {group_id}"
        self._own_stats = "stats_cb" not in config
        self._own_errors = "error_cb" not in config
        if self._own_errors:
            config["error_cb"] = self._link_error_cb(GROUP_LINK)
        if self._own_stats:  # connection state: is any broker up? (every second)
            config["stats_cb"] = self._link_stats_cb(GROUP_LINK)
            config.setdefault("statistics.interval.ms", STATS_INTERVAL_MS)
        config.setdefault("logger", LibrdkafkaLogBridge(group_id, self.auto_offset_reset))
        self._config = config
        log.debug("%s: librdkafka configuration %s", self._what, describe_config(config))
        self._consumer = new_client(ck.Consumer, config, self._what)
        self._manual = None
        self._meta = None
        self._manual_tps = set()
        self._starts = {}
        self._listener = None
        self._subscribed = False
        self._owned = set()
        self._paused = set()
        self._closed = False
        self._turn = 0
        self.instance_id: str | None = config.get("group.instance.id")
        log.info(
            "consumer of group %s created (auto.offset.reset=%s, %s)",
            group_id,
            self.auto_offset_reset,
            f"static member {self.instance_id}" if self.instance_id else "dynamic member",
        )

    # -- connection state ----------------------------------------------------------------------

    def connected(self) -> bool | None:
        """False while a polled handle (the group one, the one of ``assign``) knows every
        broker to be down: from librdkafka's all-brokers-down (``error_cb``) or from its
        statistics showing no broker ``UP`` (``stats_cb``, every ``STATS_INTERVAL_MS``), until
        the statistics show one up again; True when every polled handle has a broker up; None
        before any report (or when the caller configured its own ``stats_cb``). Each handle
        reports for itself, so a late report of one cannot hide the outage the other saw."""
        return self._links_state()

    # -- administration ------------------------------------------------------------------------

    def create_topics(
        self, topics: Sequence[str], partitions: int, replication_factor: int | None = None
    ) -> None:
        """Create missing topics through an ``AdminClient`` sharing this consumer's connection
        settings (bootstrap, security); ``TOPIC_ALREADY_EXISTS`` is not an error."""
        self._check_open()
        if not topics:
            return
        config = {k: v for k, v in self._config.items() if k.startswith(_ADMIN_PREFIXES)}
        admin = new_client(AdminClient, config, f"admin of group {self.group_id}")
        rf = -1 if replication_factor is None else replication_factor
        futures = admin.create_topics(
            [NewTopic(t, num_partitions=partitions, replication_factor=rf) for t in topics],
            request_timeout=self._timeout,
        )
        for topic, future in futures.items():
            try:
                future.result(timeout=self._timeout + 5)
            except ck.KafkaException as exc:
                err = exc.args[0] if exc.args else None
                if (
                    isinstance(err, ck.KafkaError)
                    and err.code() == ck.KafkaError.TOPIC_ALREADY_EXISTS
                ):
                    continue
                raise ConfluentError(f"creating topic {topic!r}: {exc}") from exc
            log.info("created topic %s with %d partitions", topic, partitions)

    # -- reading -------------------------------------------------------------------------------

    def partitions_for(self, topic: str) -> list[int]:
        self._check_open()
        try:
            metadata = self._consumer.list_topics(topic, timeout=self._timeout)
        except ck.KafkaException as exc:
            raise ConfluentError(f"metadata of topic {topic!r}: {exc}") from exc
        self._mark_links(True)  # a broker answered (an older all-brokers-down is stale)
        found = metadata.topics.get(topic)
        if found is None or not found.partitions:
            return []
        return sorted(int(p) for p in found.partitions)

    # -- flow control --------------------------------------------------------------------------

    def pause(self, partitions: Sequence[TopicPartition]) -> None:
        self._check_open()
        group, manual = self._split(partitions)
        if group:
            self._consumer.pause(to_ck_partitions(group))
        if manual and self._manual is not None:
            self._manual.pause(to_ck_partitions(manual))
        self._paused.update(group, manual)

    def resume(self, partitions: Sequence[TopicPartition]) -> None:
        self._check_open()
        group, manual = self._split(partitions)
        if group:
            self._consumer.resume(to_ck_partitions(group))
        if manual and self._manual is not None:
            self._manual.resume(to_ck_partitions(manual))
        self._paused.difference_update(partitions)

    def _split(
        self, partitions: Sequence[TopicPartition]
    ) -> tuple[list[TopicPartition], list[TopicPartition]]:
        group = [tp for tp in partitions if tp in self._owned]
        manual = [tp for tp in partitions if tp in self._manual_tps and tp not in self._owned]
        return group, manual

    # -- lag -----------------------------------------------------------------------------------

    def lag_info(self) -> list[PartitionLag]:
        self._check_open()
        owned = sorted_partitions(self._owned)
        if not owned:
            return []
        committed = self.committed(owned)
        try:
            found = self._consumer.position(to_ck_partitions(owned))
        except ck.KafkaException as exc:
            raise ConfluentError(f"group {self.group_id}: positions: {exc}") from exc
        positions = {from_ck_partition(p): offset_or_none(p.offset) for p in found}
        lags: list[PartitionLag] = []
        for tp in owned:
            try:
                _low, high = self._watermarks(self._meta_consumer(), tp)
            except ConfluentError as exc:
                log.warning("group %s: %s", self.group_id, exc)
                high_watermark: int | None = None
            else:
                high_watermark = offset_or_none(high)
            lags.append(
                PartitionLag(
                    topic=tp.topic,
                    partition=tp.partition,
                    committed=committed.get(tp),
                    position=positions.get(tp),
                    high_watermark=high_watermark,
                )
            )
        return lags

    # -- closing -------------------------------------------------------------------------------

    def close(self) -> None:
        """Tell the listener every owned partition is revoked (it may still commit them), then
        leave the group and close both handles. Closing twice is harmless."""
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
            self._listener = None  # callbacks served while closing tell nobody again
            try:
                for extra in (self._manual, self._meta):
                    if extra is not None:
                        extra.close()
            finally:
                self._close_group_handle()

    def _close_group_handle(self) -> None:
        pending = self._commit_call
        if pending is not None and pending.close_when_answered():
            # Destroying the client under the thread that waits in it is not safe; a member
            # that cannot reach its coordinator could not leave the group anyway.
            log.warning(
                "consumer of group %s left open until a commit that has waited %.0fs for the "
                "group coordinator (broker unreachable) is answered; its offsets were not "
                "confirmed",
                self.group_id,
                pending.age(),
                extra={"event": "consumer_left_open"},
            )
            return
        self._leave_before_close()
        self._consumer.close()
        log.info("consumer of group %s closed", self.group_id)

    def _leave_before_close(self) -> None:
        """Unsubscribe and serve the revocation in ``poll`` (at most ``LEAVE_TIMEOUT``
        seconds) before ``close``: librdkafka's close can wait for ever when it serves a
        rebalance itself, its automatic assign getting no answer (librdkafka#4884, #4527; seen
        once in this project's contract tests). Records polled meanwhile are dropped (not
        committed: delivered again). Not for a static member (it must not leave the group)
        nor while every broker is known down (the stop's bound)."""
        if not self._subscribed or self.instance_id or self._links_state() is False:
            return
        try:
            self._consumer.unsubscribe()
            self._subscribed = False
            deadline = time.monotonic() + LEAVE_TIMEOUT
            while self._consumer.assignment() and time.monotonic() < deadline:
                self._consumer.poll(0.05)
        except (ck.KafkaException, RuntimeError) as exc:
            log.debug("group %s: leaving before close: %s", self.group_id, exc)
