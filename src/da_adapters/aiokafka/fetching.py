"""``FetchMixin``: ``poll`` of ``AiokafkaConsumer``, merging its two clients.

``poll`` honours its timeout
    aiokafka's ``getmany`` ignores its timeout while a rebalance is in progress (it waits for
    the new assignment), which would also stall the revoke hold (see ``group``). ``poll``
    therefore runs ``getmany`` as a task and returns ``[]`` when that task overruns the
    timeout; the task is not cancelled (cancelling leaves aiokafka's poll-interval bookkeeping
    stuck) but carried over, and the records it ends up with are returned by a later ``poll``,
    none lost. Records beyond ``max_records`` and records of partitions paused after they were
    fetched wait in a small buffer for a later ``poll`` (after ``resume``).

Both clients in use (``assign``, see ``side_reads``)
    ``poll`` merges the group client and the group-less one: it alternates which is asked
    first and waits on them in short slices, so neither starves the other.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from aiokafka.errors import OffsetOutOfRangeError

from da_adapters.aiokafka._support import AiokafkaError
from da_adapters.aiokafka.consumer_base import _CLIENT_ERRORS, ConsumerBase, log
from da_adapters.aiokafka.translate import batches_to_records, from_aio
from da_core.types import Record

#: How long ``poll`` waits on one client before looking at the other (both in use).
MERGE_SLICE = 0.05
#: How long past its timeout a ``getmany`` may take before ``poll`` returns without it.
GETMANY_GRACE = 0.02


class FetchMixin(ConsumerBase):
    """``poll`` and the fetching behind it (see the module docstring)."""

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
