"""``FaultsMixin``: the fault injection of ``MemoryBroker``, for tests.

``fail_next_produce``, ``reject_topic``/``accept_topic``, ``fail_commits``,
``delete_records_before`` (a position below the new log start is out of range and is reset
per ``auto_offset_reset``, see ``broker_groups``) and ``go_down``/``come_up`` (the broker is
unreachable: fetches return nothing, commits, metadata requests and produces fail, and the
consumers' ``connected()`` says False, as a real client's would).
"""

from __future__ import annotations

from collections import deque

from da_adapters.memory.broker_base import BrokerBase
from da_core.errors import DataAnalysisError
from da_core.types import TopicPartition

BROKER_DOWN = "_TRANSPORT: broker down (injected fault)"
"""The error text of everything refused while the broker is down."""


class BrokerDown(DataAnalysisError):
    """A metadata request to a broker that is down (``go_down``)."""


class FaultsMixin(BrokerBase):
    """Faults injected into produce, commit and the logs (see the module docstring)."""

    @property
    def down(self) -> bool:
        """The broker is unreachable (``go_down`` without ``come_up`` since)."""
        return self._down

    def go_down(self) -> None:
        """Make the broker unreachable until ``come_up``; nothing stored is lost."""
        with self._cond:
            self._down = True

    def come_up(self) -> None:
        """Undo ``go_down``; waiting consumers look again."""
        with self._cond:
            self._down = False
            self._changed_locked()

    def fail_next_produce(self, topic: str, error: str, count: int = 1) -> None:
        """The next ``count`` records produced to ``topic`` are refused with ``error``."""
        if count < 1:
            raise ValueError(f"count must be at least 1, not {count}")
        with self._cond:
            self._produce_faults.setdefault(topic, deque()).extend([error] * count)

    def reject_topic(self, topic: str, error: str = "TOPIC_AUTHORIZATION_FAILED") -> None:
        """Refuse every record produced to ``topic`` until ``accept_topic``."""
        with self._cond:
            self._rejected[topic] = f"{error}: topic {topic!r}"

    def accept_topic(self, topic: str) -> None:
        """Undo ``reject_topic``."""
        with self._cond:
            self._rejected.pop(topic, None)

    def fail_commits(self, group_id: str, count: int = 1) -> None:
        """The next ``count`` commits of the group raise ``CommitError`` and store nothing."""
        if count < 1:
            raise ValueError(f"count must be at least 1, not {count}")
        with self._cond:
            self._group_locked(group_id).commit_failures += count

    def delete_records_before(self, tp: TopicPartition, offset: int) -> None:
        """Move the log start of a partition to ``offset`` (at most the high watermark),
        dropping older records, like Kafka's DeleteRecords or retention."""
        with self._cond:
            partition_log = self._log_locked(tp)
            if partition_log is None:
                raise ValueError(f"unknown partition {tp}")
            partition_log.delete_before(offset)
            self._changed_locked()
