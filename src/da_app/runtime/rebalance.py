"""Rebalance bookkeeping of one runner: what to hold, skip, revoke and check.

When the runner resubscribes itself (a reload changed its topics) the group rebalances and an
eager protocol revokes every partition. The station state of partitions that come straight
back must survive that: revoked partitions are *held* until the next assignment; those handed
back keep their windows and held records, and the records the consumer delivers again from
the committed offset (already ingested) are *skipped* below a per-partition mark; those not
handed back are revoked then. Every other revoke is *due*: the shell drains, then commits the
final offsets ``Engine.partitions_revoked`` returns.

After any assignment the co-location of stations must be checked once (``da_core.routing``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence

from da_app.runtime.stats import RunnerStats
from da_core.types import Record, TopicPartition

log = logging.getLogger("da_app.runner")


def ordered(tps: Iterable[TopicPartition]) -> list[TopicPartition]:
    return sorted(tps, key=lambda tp: (tp.topic, tp.partition))


class RebalanceBook:
    """The state above. ``next_to_track(tp)`` is the engine's: the offset after the last one
    it tracked for ``tp`` (None: none), i.e. where replayed records stop."""

    def __init__(self, next_to_track: Callable[[TopicPartition], int | None]) -> None:
        self._next_to_track = next_to_track
        self._keep_state = False
        self._held: set[TopicPartition] = set()
        self._due: list[TopicPartition] = []
        self.skip_below: dict[TopicPartition, int] = {}
        """Per partition handed back: records below this offset were ingested already."""
        self.colocation_due = False
        """An assignment happened since the last co-location check."""

    def resubscribing(self) -> None:
        """Our own resubscription starts: hold what it revokes until the new assignment."""
        self._keep_state = True

    def revoked(self, partitions: Sequence[TopicPartition]) -> None:
        if self._keep_state:
            self._held.update(partitions)
            log.info(
                "partitions revoked: %s; state kept until the new assignment (resubscribed)",
                ", ".join(map(str, partitions)),
            )
        else:
            self._due.extend(partitions)

    def assigned(self, partitions: Sequence[TopicPartition]) -> list[TopicPartition]:
        """Take an assignment; returns the partitions new to this member (not handed back
        with their state kept), which are to be restored."""
        log.info(
            "partitions assigned: %s",
            ", ".join(map(str, partitions)),
            extra={"event": "partitions_assigned"},
        )
        self.colocation_due = True
        held, self._held = self._held, set()
        self._keep_state = False
        back = held.intersection(partitions)
        for tp in back:
            nxt = self._next_to_track(tp)
            if nxt is not None:
                self.skip_below[tp] = nxt
        self._due.extend(ordered(held - back))
        return [tp for tp in partitions if tp not in back]

    def take_due(self) -> list[TopicPartition]:
        """Revoked partitions whose state must now be drained, committed and dropped."""
        due, self._due = self._due, []
        return due

    def skip_replayed(self, records: list[Record]) -> list[Record]:
        """Drop records below their partition's mark; a mark is cleared at its first new
        record."""
        skip = self.skip_below
        if not skip or not records:
            return records
        out: list[Record] = []
        for rec in records:
            mark = skip.get(rec.tp)
            if mark is None:
                out.append(rec)
            elif rec.offset >= mark:
                del skip[rec.tp]
                out.append(rec)
        return out


def refuse(stats: RunnerStats, problem: str | None) -> bool:
    """Record and log the first reason to refuse (a broken co-location); True: stop now."""
    if problem is None or stats.refused is not None:
        return False
    stats.refused = problem
    log.error("refusing to run: %s", problem, extra={"event": "refused"})
    return True
