"""``SideReadsMixin``: the reads of ``ConfluentConsumer`` outside the group.

``assign`` (global topics, read outside the group)
    librdkafka cannot mix a subscription and a manual assignment on one handle, so a second,
    internal ``confluent_kafka.Consumer`` holds the assigned partitions: throwaway group id,
    never subscribed, never committing. Partitions are added with ``incremental_assign`` at
    the beginning, or at the high watermark read at ``assign`` time (so "from the end" means
    "records produced after this call", without a race with librdkafka's lazy ``OFFSET_END``).
    ``poll`` merges both handles (see ``fetching``).
    ``assign_at`` adds partitions to that handle at explicit offsets (a partition it already
    reads is unassigned and assigned again: librdkafka then drops what it had fetched for the
    old position); ``unassign`` is ``incremental_unassign``.

Range-read queries
    ``watermarks`` (``get_watermark_offsets``, uncached) and ``offsets_for_times`` go through
    the separate never-fetching handle (see ``ConsumerBase._meta_consumer``), like
    ``committed``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence

import confluent_kafka as ck

from da_adapters.confluent._support import ConfluentError, new_client
from da_adapters.confluent.consumer_base import MANUAL_LINK, ConsumerBase
from da_adapters.confluent.translate import (
    error_text,
    from_ck_partition,
    offset_or_none,
    to_ck_partitions,
)
from da_adapters.wire import describe_partitions, millis_at_or_after, sorted_partitions
from da_core.types import TopicPartition


class SideReadsMixin(ConsumerBase):
    """``assign``, ``assign_at``, ``unassign``, ``position``, ``watermarks`` and
    ``offsets_for_times`` (see the module docstring)."""

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

    def _manual_consumer(self) -> ck.Consumer:
        if self._manual is None:
            group_id = f"{self.group_id}.assign-{uuid.uuid4().hex[:12]}"
            config = self._side_config(group_id, MANUAL_LINK)
            self._manual = new_client(ck.Consumer, config, f"assign-consumer of {self.group_id}")
        return self._manual

    # -- range-read queries --------------------------------------------------------------------

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
