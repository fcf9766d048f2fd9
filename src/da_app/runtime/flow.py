"""Flow control of the loop core: what to poll, what to admit, what to pause.

In ``multi_consumer_mode`` a ``FairIntake`` admits at most ``max_poll_records`` per topic per
cycle and asks for the topics over its high-water mark to be paused; independently of the mode,
``LoopCore`` pauses everything while too many uploads are pending, and everything but the
internal station-keyed topics while too many shares are pending (rekey routing: reading an
internal topic makes no share, so the second stage goes on draining while the first waits).

A back-pressure pause is counted each time one begins (``RunnerStats.backpressure_pauses``);
its WARNING line comes at most once per ``BACKPRESSURE_LOG_SECONDS`` and says how many began
since the last one (a busy rekey service can begin several a second).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence

from da_app.runtime.rebalance import ordered
from da_core.fair_intake import FairIntake
from da_core.types import Record, TopicPartition

log = logging.getLogger("da_app.runner")

BACKPRESSURE_LOG_SECONDS = 60.0
"""At most one back-pressure WARNING line per this many seconds (service clock)."""


class FlowControl:
    """Poll size, fair admission and pause/resume decisions of one runner."""

    def __init__(self, max_poll_records: int, multi_consumer_mode: bool) -> None:
        self.max_poll_records = max_poll_records
        self.intake = FairIntake(max_poll_records) if multi_consumer_mode else None
        self.paused: set[TopicPartition] = set()
        self._pressed = False
        self._logged_at: float | None = None
        self._unlogged = 0

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
        self,
        assigned: set[TopicPartition],
        *,
        pause_all: bool = False,
        pause_sources: bool = False,
        internal: Collection[str] = (),
    ) -> tuple[list[TopicPartition], list[TopicPartition]]:
        """(to pause, to resume) now: everything assigned when ``pause_all``; every topic but
        the ``internal`` ones when ``pause_sources``; and the partitions of topics over high
        water. Remembers what is paused."""
        desired: set[TopicPartition] = set()
        if pause_all:
            desired = set(assigned)
        else:
            if pause_sources:
                desired = {tp for tp in assigned if tp.topic not in internal}
            if self.intake is not None:
                hot = self.intake.over_high_water()
                if hot:
                    desired.update(tp for tp in assigned if tp.topic in hot)
        pause = desired - self.paused
        resume = (self.paused - desired) & assigned
        self.paused = desired
        return ordered(pause), ordered(resume)

    def pressure(self, over: bool, now: float, uploads: int, shares: int) -> bool:
        """Whether a back-pressure pause begins now (``over``, and it was not); logs it with
        the ``uploads`` and ``shares`` pending (see the module docstring)."""
        began = over and not self._pressed
        self._pressed = over
        if not began:
            return False
        self._unlogged += 1
        if self._logged_at is None or now - self._logged_at >= BACKPRESSURE_LOG_SECONDS:
            log.warning(
                "pausing consumption: %d uploads and %d shares pending (pauses since the last "
                "such line: %d; at most one line per %.0f s)",
                uploads,
                shares,
                self._unlogged,
                BACKPRESSURE_LOG_SECONDS,
                extra={"event": "backpressure"},
            )
            self._logged_at = now
            self._unlogged = 0
        return True

    def revoked(self, partitions: Sequence[TopicPartition]) -> None:
        """Forget what was buffered or paused for revoked partitions (delivered again later)."""
        if self.intake is not None:
            self.intake.drop_partitions(partitions)
        self.paused -= set(partitions)
