"""``BrokerBase``: the state of ``MemoryBroker`` and the helpers every part of it uses.

The broker is one object assembled from mixins, one concern per module: ``broker`` (topics
and records, and the class itself), ``broker_groups`` (consumer groups and the consumer-side
protocol), ``broker_faults`` (fault injection). The state is set in ``__init__`` here and
guarded by one ``threading.Condition``; methods named ``*_locked`` expect it held.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from itertools import count
from typing import Literal

from da_adapters.memory.group import GroupState
from da_adapters.memory.partition_log import PartitionLog, TopicLogs
from da_core.ports import Clock
from da_core.types import TopicPartition

log = logging.getLogger("da_adapters.memory.broker")

OffsetReset = Literal["earliest", "latest"]
RebalanceProtocol = Literal["eager", "cooperative"]


class BrokerBase:
    """The broker's state (see ``MemoryBroker`` for the arguments) and its lock-held helpers."""

    _down: bool = False
    """The broker is unreachable (fault injection, ``FaultsMixin.go_down``)."""

    def __init__(
        self,
        clock: Clock,
        default_partitions: int = 3,
        auto_create_topics: bool = True,
        *,
        rebalance_protocol: RebalanceProtocol = "eager",
    ) -> None:
        if default_partitions < 1:
            raise ValueError(f"default_partitions must be at least 1, not {default_partitions}")
        self._clock = clock
        self._default_partitions = default_partitions
        self._auto_create = auto_create_topics
        self._eager = rebalance_protocol == "eager"
        self._cond = threading.Condition(threading.Lock())
        self._topics: dict[str, TopicLogs] = {}
        self._groups: dict[str, GroupState] = {}
        self._produce_faults: dict[str, deque[str]] = {}
        self._rejected: dict[str, str] = {}
        self._wakers: list[Callable[[], None]] = []
        self._member_ids = count(1)

    @property
    def clock(self) -> Clock:
        return self._clock

    # -- internals (lock held) -----------------------------------------------------------------

    def _changed_locked(self) -> None:
        self._cond.notify_all()
        for waker in self._wakers:
            waker()

    def _create_topic_locked(self, name: str, partitions: int) -> TopicLogs:
        topic = TopicLogs(name, partitions)
        self._topics[name] = topic
        for group in self._groups.values():
            if group.subscribes_to(name):
                self._rebalance_locked(group)
        self._changed_locked()
        return topic

    def _subscribe_topics_locked(self, topics: Sequence[str]) -> tuple[str, ...]:
        subscription = tuple(sorted(set(topics)))
        if self._auto_create:
            for name in subscription:
                if name not in self._topics:
                    self._create_topic_locked(name, self._default_partitions)
        return subscription

    def _group_locked(self, group_id: str) -> GroupState:
        group = self._groups.get(group_id)
        if group is None:
            group = self._groups[group_id] = GroupState(group_id, eager=self._eager)
        return group

    def _log_locked(self, tp: TopicPartition) -> PartitionLog | None:
        topic = self._topics.get(tp.topic)
        if topic is None or not 0 <= tp.partition < len(topic.logs):
            return None
        return topic.logs[tp.partition]

    def _rebalance_locked(self, group: GroupState) -> None:
        group.rebalance({name: len(t.logs) for name, t in self._topics.items()})
        self._changed_locked()


def _tp_order(tp: TopicPartition) -> tuple[str, int]:
    return (tp.topic, tp.partition)


def _warn_out_of_range(
    group_id: str, partitions: Sequence[TopicPartition], reset: OffsetReset
) -> None:
    if partitions:
        log.warning(
            "offset out of range for group %r, partitions %s: reset to %s (auto_offset_reset)",
            group_id,
            ", ".join(str(tp) for tp in partitions),
            reset,
        )
