"""Flow control of the loop core: what to poll, what to admit, what to pause.

In ``multi_consumer_mode`` a ``FairIntake`` admits at most ``max_poll_records`` per topic per
cycle and asks for the topics over its high-water mark to be paused; independently of the mode,
``LoopCore`` pauses everything while too many uploads or shares are pending.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from da_app.runtime.rebalance import ordered
from da_core.fair_intake import FairIntake
from da_core.types import Record, TopicPartition

log = logging.getLogger("da_app.runner")


class FlowControl:
    """Poll size, fair admission and pause/resume decisions of one runner."""

    def __init__(self, max_poll_records: int, multi_consumer_mode: bool) -> None:
        self.max_poll_records = max_poll_records
        self.intake = FairIntake(max_poll_records) if multi_consumer_mode else None
        self.paused: set[TopicPartition] = set()

    @property
    def backlog(self) -> int:
        """Records polled but not yet admitted."""
        return 0 if self.intake is None else len(self.intake)

    def poll_size(self, topics: int) -> int:
        """In multi_consumer_mode ``max_poll_records`` is a per-topic quota."""
        if self.intake is None:
            return self.max_poll_records
        return self.max_poll_records * max(1, topics)

    def admit(self, records: list[Record]) -> list[Record]:
        """The records the engine takes this cycle (all of them outside multi_consumer_mode)."""
        intake = self.intake
        if intake is None:
            return records
        intake.put(records)
        taken = intake.take()
        if taken or records:
            log.debug(
                "多消费者拉取统计 %s (multi-consumer fetch statistics)",
                intake.stats_line(),
                extra={"event": "fetch_stats"},
            )
        return taken

    def plan(
        self, assigned: set[TopicPartition], *, pause_all: bool = False
    ) -> tuple[list[TopicPartition], list[TopicPartition]]:
        """(to pause, to resume) now: everything assigned when ``pause_all``, else the
        partitions of topics over high water; remembers what is paused."""
        desired: set[TopicPartition] = set()
        if pause_all:
            desired = set(assigned)
        elif self.intake is not None:
            hot = self.intake.over_high_water()
            if hot:
                desired = {tp for tp in assigned if tp.topic in hot}
        pause = desired - self.paused
        resume = (self.paused - desired) & assigned
        self.paused = desired
        return ordered(pause), ordered(resume)

    def revoked(self, partitions: Sequence[TopicPartition]) -> None:
        """Forget what was buffered or paused for revoked partitions (delivered again later)."""
        if self.intake is not None:
            self.intake.drop_partitions(partitions)
        self.paused -= set(partitions)
