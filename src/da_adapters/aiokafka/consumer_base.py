"""``ConsumerBase``: the state every part of ``AiokafkaConsumer`` shares, and the small
helpers they all use.

The consumer is one object assembled from mixins, one concern per module (``group``,
``fetching``, ``side_reads``; ``consumer`` puts them together and owns ``__init__``, which sets
every attribute declared here). The declarations below are the whole state:

* ``_consumer``: the group client (``AIOKafkaConsumer``), None until ``start``;
  ``_manual``: the group-less client of ``assign``/``assign_at`` (None until first needed),
  holding exactly ``_manual_tps``.
* ``_owned``: the partitions the group gives this member (what the listener was told);
  ``_revoking``: revoked ones whose buffered records must be dropped; ``_paused``: paused by
  the caller (group or manual).
* ``_buffer``: records fetched but not yet returned by ``poll``, each partition's in offset
  order; ``_fetches``: ``getmany`` tasks carried over from a ``poll`` that timed out, by
  client name (``"group"``, ``"assign"``).
* ``_gate``: set while a revocation holds the rebalance for the caller's commit;
  ``_gate_seen``: a ``poll`` has returned since.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import ConsumerStoppedError, IllegalOperation, KafkaError

from da_core.errors import ConfigError
from da_core.ports import RebalanceListener
from da_core.types import Record, TopicPartition

log = logging.getLogger("da_adapters.aiokafka")

_CLIENT_ERRORS = (KafkaError, IllegalOperation, ConsumerStoppedError)


class ConsumerBase:
    """The shared state of ``AiokafkaConsumer`` (see the module docstring) and its helpers."""

    group_id: str
    auto_offset_reset: str
    _kwargs: dict[str, Any]
    _timeout: float
    _commit_timeout: float
    _revoke_timeout: float
    _consumer: Any
    _manual: Any
    _manual_tps: set[TopicPartition]
    _listener: RebalanceListener | None
    _listener_error: BaseException | None
    _subscribed: bool
    _owned: set[TopicPartition]
    _revoking: set[TopicPartition]
    _paused: set[TopicPartition]
    _gate: asyncio.Event | None
    _gate_seen: bool
    _tasks: set[asyncio.Task[None]]
    _fetches: dict[str, asyncio.Task[Any]]
    _buffer: list[Record]
    _closed: bool
    _turn: int

    def connected(self) -> bool | None:
        """Whether the group client holds a live connection to a broker now (None before
        ``start``). aiokafka drops a connection from its table when it closes and adds one
        only once it is established, so an outage empties the table."""
        if self._consumer is None or self._closed:
            return None
        conns = getattr(self._consumer._client, "_conns", None)
        if conns is None:
            return None
        return any(conn.connected() for conn in list(conns.values()))

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"consumer of group {self.group_id!r} is closed")

    def _started(self) -> Any:
        self._check_open()
        if self._consumer is None:
            raise RuntimeError("AiokafkaConsumer.start() must be awaited before use")
        return self._consumer

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _release_gate(self) -> None:
        if self._gate is not None:
            self._gate.set()
            self._gate = None

    def _raise_listener_error(self) -> None:
        error, self._listener_error = self._listener_error, None
        if error is not None:
            raise error

    def _drop_buffered(self, partitions: set[TopicPartition]) -> None:
        self._buffer = [r for r in self._buffer if r.tp not in partitions]


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
