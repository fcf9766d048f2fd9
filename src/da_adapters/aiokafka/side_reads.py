"""``SideReadsMixin``: the reads of ``AiokafkaConsumer`` outside the group.

``assign`` (global topics, read outside the group)
    aiokafka forbids ``assign`` on a subscribed consumer, so a second, internal
    ``AIOKafkaConsumer`` without ``group_id`` (it cannot commit) holds the assigned partitions.
    Adding partitions re-assigns the whole set and seeks the old ones back to their positions.
    ``poll`` merges both clients (see ``fetching``).

Range reads
    ``assign_at`` adds partitions at explicit offsets (records of them already fetched are
    dropped first), ``unassign`` removes them, ``position`` is the next offset ``poll`` returns
    for a partition; ``watermarks`` and ``offsets_for_times`` ask the broker through the group
    client.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from da_adapters.aiokafka._support import AiokafkaError
from da_adapters.aiokafka.consumer_base import _CLIENT_ERRORS, _started_client
from da_adapters.aiokafka.fetching import FetchMixin
from da_adapters.aiokafka.translate import from_aio, to_aio, to_aio_partitions
from da_adapters.wire import describe_partitions, millis_at_or_after, sorted_partitions
from da_core.types import TopicPartition


class SideReadsMixin(FetchMixin):
    """``assign``, ``assign_at``, ``unassign``, ``position``, ``watermarks`` and
    ``offsets_for_times`` (see the module docstring)."""

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

    # -- range-read queries --------------------------------------------------------------------

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
