"""``ConfluentConsumer``: the sync ``Consumer`` port on ``confluent_kafka.Consumer``.

Group membership
    ``subscribe`` registers ``on_assign`` / ``on_revoke`` / ``on_lost``; librdkafka calls them
    from inside ``consume()``, i.e. inside our ``poll``, on the polling thread, so the
    ``RebalanceListener`` hears of revocations while this member still owns the partitions (the
    last moment to commit them). Works with the eager (``range``, ``roundrobin``) and the
    cooperative (``cooperative-sticky``) assignors: the callbacks carry what changed, and the
    client assigns them itself when the callback returns. ``on_lost`` (the session expired:
    the partitions already belong to someone else) is reported as a revocation too, with a
    warning, since commits for them will now be refused.

Offsets
    Auto-commit and the offset store are always off; ``commit`` sends the explicit next-to-read
    offsets synchronously and raises ``CommitError`` when the broker refuses any of them.

``assign`` (global topics, read outside the group)
    librdkafka cannot mix a subscription and a manual assignment on one handle, so a second,
    internal ``confluent_kafka.Consumer`` holds the assigned partitions: throwaway group id,
    never subscribed, never committing. Partitions are added with ``incremental_assign`` at
    the beginning, or at the high watermark read at ``assign`` time (so "from the end" means
    "records produced after this call", without a race with librdkafka's lazy ``OFFSET_END``).
    ``poll`` merges both handles: it alternates which is asked first and waits on them in short
    slices, so neither starves the other and the group handle keeps serving its callbacks.
    ``assign_at`` adds partitions to that handle at explicit offsets (a partition it already
    reads is unassigned and assigned again: librdkafka then drops what it had fetched for the
    old position); ``unassign`` is ``incremental_unassign``.

Range-read queries
    ``watermarks`` (``get_watermark_offsets``, uncached) and ``offsets_for_times`` go through
    the separate never-fetching handle (see ``_meta_consumer``), like ``committed``.

Errors in ``poll``
    ``_PARTITION_EOF`` is ignored; an offset out of range is logged (group and partition) and
    left to ``auto.offset.reset``; other per-message errors are logged (throttled); a fatal
    client error raises ``ConfluentError``.
"""

from __future__ import annotations

import logging
import time
import uuid
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
    error_callback,
    log_notes,
    new_client,
    reset_policy,
    source_or_empty,
)
from da_adapters.confluent.translate import (
    error_text,
    from_ck_partition,
    message_to_record,
    offset_or_none,
    to_ck_offsets,
    to_ck_partitions,
)
from da_adapters.kafka_config import KafkaConfigSource, to_librdkafka_consumer
from da_adapters.wire import describe_partitions, millis_at_or_after, sorted_partitions
from da_core.errors import CommitError
from da_core.ports import RebalanceListener
from da_core.types import PartitionLag, Record, TopicPartition

log = logging.getLogger("da_adapters.confluent")

#: How long ``poll`` waits on one handle before looking at the other (both in use).
MERGE_SLICE = 0.05

_IGNORED = frozenset({ck.KafkaError._PARTITION_EOF})
_OUT_OF_RANGE = frozenset({ck.KafkaError.OFFSET_OUT_OF_RANGE, ck.KafkaError._AUTO_OFFSET_RESET})


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


class ConfluentConsumer:
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
    ``committed``, ``lag_info``, the high watermark of ``assign(from_beginning=False)``).
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
        self._throttle = Throttle()
        self._fatal: ck.KafkaError | None = None
        what = f"consumer of group {group_id}"
        config.setdefault("error_cb", error_callback(what, self._throttle, self._set_fatal))
        config.setdefault("logger", LibrdkafkaLogBridge(group_id, self.auto_offset_reset))
        self._config = config
        log.debug("%s: librdkafka configuration %s", what, describe_config(config))
        self._consumer = new_client(ck.Consumer, config, what)
        self._manual: ck.Consumer | None = None
        self._meta: ck.Consumer | None = None
        self._manual_tps: set[TopicPartition] = set()
        self._starts: dict[TopicPartition, int] = {}
        self._listener: RebalanceListener | None = None
        self._subscribed = False
        self._owned: set[TopicPartition] = set()
        self._paused: set[TopicPartition] = set()
        self._closed = False
        self._turn = 0
        self.instance_id: str | None = config.get("group.instance.id")
        log.info(
            "consumer of group %s created (auto.offset.reset=%s, %s)",
            group_id,
            self.auto_offset_reset,
            f"static member {self.instance_id}" if self.instance_id else "dynamic member",
        )

    # -- group ---------------------------------------------------------------------------------

    def subscribe(self, topics: Sequence[str], listener: RebalanceListener | None = None) -> None:
        self._check_open()
        self._listener = listener
        if not topics:
            self._consumer.unsubscribe()
            self._subscribed = False
            return
        self._consumer.subscribe(
            list(topics),
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        self._subscribed = True

    def _on_assign(self, _consumer: Any, partitions: list[ck.TopicPartition]) -> None:
        assigned = sorted_partitions(
            tp for tp in map(from_ck_partition, partitions) if tp not in self._owned
        )
        if not assigned:
            return
        self._owned.update(assigned)
        log.debug("group %s: assigned %s", self.group_id, describe_partitions(assigned))
        if self._listener is not None:
            self._listener.on_assigned(assigned)

    def _on_revoke(self, _consumer: Any, partitions: list[ck.TopicPartition]) -> None:
        self._revoke([from_ck_partition(p) for p in partitions], lost=False)

    def _on_lost(self, _consumer: Any, partitions: list[ck.TopicPartition]) -> None:
        self._revoke([from_ck_partition(p) for p in partitions], lost=True)

    def _revoke(self, partitions: Sequence[TopicPartition], *, lost: bool) -> None:
        revoked = sorted_partitions(tp for tp in partitions if tp in self._owned)
        if not revoked:
            return
        if lost:
            log.warning(
                "group %s: partitions lost (session expired; commits for them will fail): %s",
                self.group_id,
                describe_partitions(revoked),
            )
        else:
            log.debug("group %s: revoked %s", self.group_id, describe_partitions(revoked))
        try:
            if self._listener is not None:
                self._listener.on_revoked(revoked)
        finally:
            self._owned.difference_update(revoked)
            paused = [tp for tp in revoked if tp in self._paused]
            self._paused.difference_update(revoked)
            if paused and not lost:
                # librdkafka keeps an application pause across unassign/assign: were this
                # partition handed back to us, it would stay paused while we think it is not.
                self._consumer.resume(to_ck_partitions(paused))

    def assignment(self) -> set[TopicPartition]:
        return set(self._owned)

    # -- assign (outside the group) ------------------------------------------------------------

    def assign(self, partitions: Sequence[TopicPartition], *, from_beginning: bool = True) -> None:
        self._check_open()
        new = sorted_partitions({tp for tp in partitions if tp not in self._manual_tps})
        if not new:
            return
        manual = self._manual_consumer()
        if from_beginning:
            starts = to_ck_partitions(new, ck.OFFSET_BEGINNING)
        else:
            starts = []
            for tp in new:
                _low, high = self._watermarks(manual, tp)
                starts.append(ck.TopicPartition(tp.topic, tp.partition, high))
        manual.incremental_assign(starts)
        self._manual_tps.update(new)

    def assign_at(self, positions: Mapping[TopicPartition, int]) -> None:
        self._check_open()
        if not positions:
            return
        for tp, offset in positions.items():
            if offset < 0:
                raise ValueError(f"cannot read {tp} from negative offset {offset}")
        manual = self._manual_consumer()
        wanted = sorted_partitions(positions)
        moved = [tp for tp in wanted if tp in self._manual_tps]
        try:
            if moved:
                manual.incremental_unassign(to_ck_partitions(moved))
            manual.incremental_assign(
                [ck.TopicPartition(tp.topic, tp.partition, positions[tp]) for tp in wanted]
            )
        except ck.KafkaException as exc:
            raise ConfluentError(f"assign_at {describe_partitions(wanted)}: {exc}") from exc
        self._manual_tps.update(wanted)
        self._starts.update(positions)

    def unassign(self, partitions: Sequence[TopicPartition]) -> None:
        self._check_open()
        gone = sorted_partitions({tp for tp in partitions if tp in self._manual_tps})
        if not gone or self._manual is None:
            return
        try:
            self._manual.incremental_unassign(to_ck_partitions(gone))
        except ck.KafkaException as exc:
            raise ConfluentError(f"unassign {describe_partitions(gone)}: {exc}") from exc
        self._manual_tps.difference_update(gone)
        self._paused.difference_update(gone)
        for tp in gone:
            self._starts.pop(tp, None)

    def position(self, partition: TopicPartition) -> int | None:
        self._check_open()
        if partition in self._owned:
            handle = self._consumer
        elif partition in self._manual_tps and self._manual is not None:
            handle = self._manual
        else:
            return None
        try:
            [found] = handle.position([ck.TopicPartition(partition.topic, partition.partition)])
        except ck.KafkaException as exc:
            raise ConfluentError(f"position of {partition}: {exc}") from exc
        offset = offset_or_none(found.offset)
        # Nothing returned yet since assign_at: librdkafka has no position, the start is it.
        return self._starts.get(partition) if offset is None else offset

    def _meta_consumer(self) -> ck.Consumer:
        """A handle of the same group that never subscribes nor fetches, for committed offsets
        and watermarks: on the fetching handle those requests queue behind the broker's fetch
        long-poll (``fetch.wait.max.ms``) and block for seconds while the loop consumes."""
        if self._meta is None:
            config = self._side_config(self.group_id)
            self._meta = new_client(ck.Consumer, config, f"offsets reader of {self.group_id}")
        return self._meta

    def _side_config(self, group_id: str) -> dict[str, Any]:
        """The configuration of an internal handle that never joins a group: without the
        static instance id (two handles sharing it would fence each other) or assignor."""
        config = dict(self._config)
        config["group.id"] = group_id
        config["logger"] = LibrdkafkaLogBridge(None)
        for key in ("group.instance.id", "partition.assignment.strategy"):
            config.pop(key, None)
        return config

    def _manual_consumer(self) -> ck.Consumer:
        if self._manual is None:
            config = self._side_config(f"{self.group_id}.assign-{uuid.uuid4().hex[:12]}")
            self._manual = new_client(ck.Consumer, config, f"assign-consumer of {self.group_id}")
        return self._manual

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
        found = metadata.topics.get(topic)
        if found is None or not found.partitions:
            return []
        return sorted(int(p) for p in found.partitions)

    def poll(self, timeout: float, max_records: int = 500) -> list[Record]:
        self._check_open()
        if max_records < 1:
            raise ValueError(f"max_records must be at least 1, not {max_records}")
        self._raise_fatal()
        timeout = max(timeout, 0.0)
        manual = self._manual
        if manual is None:
            return self._consume(self._consumer, max_records, timeout)
        if not self._subscribed:
            return self._consume(manual, max_records, timeout)
        self._turn ^= 1
        first, second = (self._consumer, manual) if self._turn else (manual, self._consumer)
        deadline = time.monotonic() + timeout
        while True:
            records = self._consume(first, max_records, 0.0)
            if len(records) < max_records:
                wait = 0.0 if records else min(MERGE_SLICE, max(0.0, deadline - time.monotonic()))
                records += self._consume(second, max_records - len(records), wait)
            if records or time.monotonic() >= deadline:
                return records

    def _consume(self, consumer: ck.Consumer, max_records: int, timeout: float) -> list[Record]:
        # consume(n, timeout) waits for n messages or the whole timeout: at a moderate rate it
        # would sit on the first message for the full timeout. Wait for the first one only,
        # then take what is already queued without waiting.
        try:
            first = consumer.poll(timeout) if timeout > 0 else None
            if first is None:
                messages = consumer.consume(num_messages=max_records, timeout=0)
            elif max_records > 1:
                messages = [first, *consumer.consume(num_messages=max_records - 1, timeout=0)]
            else:
                messages = [first]
        except ck.KafkaException as exc:
            raise ConfluentError(f"group {self.group_id}: consume failed: {exc}") from exc
        self._raise_fatal()
        records: list[Record] = []
        for message in messages:
            error = message.error()
            if error is None:
                records.append(message_to_record(message))
            else:
                self._message_error(message, error)
        return records

    def _message_error(self, message: ck.Message, error: ck.KafkaError) -> None:
        code = error.code()
        if code in _IGNORED:
            return
        where = f"{message.topic()}[{message.partition()}]" if message.topic() is not None else "-"
        if code in _OUT_OF_RANGE:
            log.warning(
                "group %s: offset of %s is out of range (%s); reset per auto.offset.reset=%s",
                self.group_id,
                where,
                error.str(),
                self.auto_offset_reset,
            )
            return
        if error.fatal():
            raise ConfluentError(f"group {self.group_id}: {where}: fatal {error_text(error)}")
        if self._throttle.allow(f"message:{code}:{where}"):
            log.error("group %s: %s: %s", self.group_id, where, error_text(error))

    def _set_fatal(self, error: ck.KafkaError) -> None:
        self._fatal = error

    def _raise_fatal(self) -> None:
        if self._fatal is not None:
            raise ConfluentError(
                f"consumer of group {self.group_id}: fatal {error_text(self._fatal)}"
            )

    # -- offsets -------------------------------------------------------------------------------

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        self._check_open()
        if not offsets:
            return
        wanted = to_ck_offsets(offsets)
        shown = ", ".join(f"{tp}={offset}" for tp, offset in offsets.items())
        try:
            result = self._consumer.commit(offsets=wanted, asynchronous=False)
        except ck.KafkaException as exc:
            raise CommitError(f"group {self.group_id}: commit of {shown} failed: {exc}") from exc
        failed = [p for p in result or () if p.error is not None]
        if failed:
            reasons = "; ".join(
                f"{p.topic}[{p.partition}]: {error_text(p.error)}"
                for p in failed
                if p.error is not None
            )
            raise CommitError(f"group {self.group_id}: commit of {shown} refused: {reasons}")

    def committed(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int | None]:
        self._check_open()
        if not partitions:
            return {}
        try:
            result = self._meta_consumer().committed(
                to_ck_partitions(partitions), timeout=self._timeout
            )
        except ck.KafkaException as exc:
            raise ConfluentError(
                f"group {self.group_id}: committed offsets of "
                f"{describe_partitions(list(partitions))}: {exc}"
            ) from exc
        out: dict[TopicPartition, int | None] = {}
        for p in result:
            if p.error is not None:
                raise ConfluentError(
                    f"group {self.group_id}: committed offset of {p.topic}[{p.partition}]: "
                    f"{error_text(p.error)}"
                )
            out[from_ck_partition(p)] = offset_or_none(p.offset)
        return out

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

    def watermarks(
        self, partitions: Sequence[TopicPartition]
    ) -> dict[TopicPartition, tuple[int, int]]:
        self._check_open()
        meta = self._meta_consumer()
        return {tp: self._watermarks(meta, tp) for tp in dict.fromkeys(partitions)}

    def offsets_for_times(
        self, times: Mapping[TopicPartition, float]
    ) -> dict[TopicPartition, int | None]:
        self._check_open()
        if not times:
            return {}
        wanted = [
            ck.TopicPartition(tp.topic, tp.partition, millis_at_or_after(time))
            for tp, time in times.items()
        ]
        try:
            found = self._meta_consumer().offsets_for_times(wanted, timeout=self._timeout)
        except ck.KafkaException as exc:
            raise ConfluentError(
                f"offsets for times of {describe_partitions(list(times))}: {exc}"
            ) from exc
        out: dict[TopicPartition, int | None] = {}
        for p in found:
            if p.error is not None:
                raise ConfluentError(
                    f"offset for time of {p.topic}[{p.partition}]: {error_text(p.error)}"
                )
            # OFFSET_END (-1): no record that recent
            out[from_ck_partition(p)] = offset_or_none(p.offset)
        return out

    def _watermarks(self, consumer: ck.Consumer, tp: TopicPartition) -> tuple[int, int]:
        try:
            low, high = consumer.get_watermark_offsets(
                ck.TopicPartition(tp.topic, tp.partition), timeout=self._timeout, cached=False
            )
        except ck.KafkaException as exc:
            raise ConfluentError(f"watermarks of {tp}: {exc}") from exc
        return int(low), int(high)

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
                self._consumer.close()
            log.info("consumer of group %s closed", self.group_id)

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"consumer of group {self.group_id!r} is closed")
