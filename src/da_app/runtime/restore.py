"""The restore phase of the loop: owned partitions' windows rebuilt before they go live.

On start and on every assignment, each newly assigned partition of a topic whose records
update station windows (direct routing: the input and dependency-output topics; rekey
routing: the internal ``*.by-station`` topics, never the source topics) is:

1. *paused* in the group consumer (and any of its records the poll that assigned it already
   returned are *held* here), so no live record of it is ingested before its restore ends;
2. *planned* (``da_core.restore_plan``): the group's committed offset, the watermarks and
   the offsets at ``now - expiry`` of the topic give the range ``[start, committed)`` to
   replay (empty without a committed offset); retention gaps are logged once;
3. *read* with the restore reader, a consumer outside the group (``assign_at``, poll until
   its ``position`` reaches the end, keep offsets below the end, ``unassign``), a bounded
   batch per loop iteration so the group consumer keeps polling (membership stays alive and
   partitions already live keep flowing), each batch handed to ``Engine.restore``;
4. once every partition of the session is read: ``Engine.finish_restore``, the held live
   records are ingested, and the partitions are resumed: live reading starts at the
   committed offset, exactly where the replay stopped (no record is seen twice).

Partitions assigned while a restore runs join it (one session: ``/ready`` says "restoring
n/m partitions" with n restored of the session's m); a revoked partition leaves it (its
stations are dropped by the revoke). Nothing here reads the clock except through the
``Clock`` port, and the I/O is two operations: ``RestoreFacts`` and ``RestoreRead``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Generator, Iterable, Sequence
from typing import Any

from da_app.runtime.actions import Op, RestoreFacts, RestoreRead, Sleep
from da_app.runtime.rebalance import ordered
from da_app.runtime.stats import RunnerStats
from da_core.engine import Engine
from da_core.ports import AsyncConsumer, Clock, Consumer
from da_core.restore_plan import lookback_times, plan_restore
from da_core.types import Record, TopicPartition

log = logging.getLogger("da_app.runner")

RESTORE_BATCH = 5000
"""Records read from the restore reader per loop iteration, at most."""
RESTORE_POLL = 0.05
"""Seconds one read of the restore reader may wait for its first record."""


def restore_topics(engine: Engine) -> dict[str, float | None]:
    """The group topics whose partitions are restored, with their expiry in seconds (None:
    never expires; replayed from the oldest retained record). A rekey internal topic has its
    source topic's expiry; a dependency output expires with ``data_expire_seconds``."""
    sources = {internal: source for source, internal in engine.internal_topics.items()}
    out: dict[str, float | None] = {}
    for topic in engine.topics:
        if topic in engine.global_topics or topic in engine.internal_topics:
            continue  # global topics are re-read by the global reader; sources are split
        expiry = engine.catalog.expire_of(sources.get(topic, topic))
        out[topic] = None if math.isinf(expiry) else expiry
    return out


class RestorePhase:
    """The restore bookkeeping of one loop (see the module docstring). ``enabled`` False (no
    restore reader): partitions go live at once, as before restore existed."""

    def __init__(self, engine: Engine, clock: Clock, stats: RunnerStats, *, enabled: bool) -> None:
        self.engine = engine
        self.clock = clock
        self.stats = stats
        self.enabled = enabled
        self.batch = RESTORE_BATCH
        self._queued: list[TopicPartition] = []  # assigned, not planned yet
        self._failures = 0  # restore requests failed in a row (a broker fault)
        self._ends: dict[TopicPartition, int] = {}  # being read: the end (excluded)
        self._assign: dict[TopicPartition, int] = {}  # to start reading at the next read
        self._unassign: list[TopicPartition] = []  # to stop reading at the next read
        self._session: set[TopicPartition] = set()  # paused until the session ends
        self._paused: set[TopicPartition] = set()  # paused by us in the group consumer
        self._resume: set[TopicPartition] = set()  # to resume at the next poll
        self._held: list[Record] = []  # live records of session partitions, in poll order
        self._started_at = 0.0
        self._records = 0
        self._gaps_logged: set[str] = set()
        self._topics: dict[str, float | None] | None = None
        self._global_marks: dict[TopicPartition, int] = {}  # re-read below these offsets

    # ------------------------------------------------------------------ state

    @property
    def active(self) -> bool:
        """A restore session is open (some assigned partitions are not live yet)."""
        return bool(self._session)

    @property
    def due(self) -> bool:
        """``step`` has something to do (a session, or partitions still to unassign)."""
        return bool(self._session or self._unassign)

    def progress(self) -> str | None:
        """``restoring n/m partitions`` while a session is open, else None."""
        return self.stats.restore_progress()

    def assigned(self, partitions: Iterable[TopicPartition]) -> None:
        """Partitions new to this member (not handed back with their state kept)."""
        if not self.enabled:
            return
        self._topics = restore_topics(self.engine)  # a reload may have changed them
        new = [tp for tp in partitions if tp.topic in self._topics and tp not in self._session]
        if not new:
            return
        if not self._session:
            self._started_at = self.clock.time()
            self._records = 0
            self.stats.restore_total = 0
            self.stats.restore_done = 0
            log.info("restore: %d partitions to restore before going live", len(new))
        self.stats.restore_total += len(new)
        self._session.update(new)
        self._queued.extend(new)
        self._resume.difference_update(new)

    def revoked(self, partitions: Sequence[TopicPartition]) -> None:
        """Revoked partitions leave the session (their stations are dropped by the revoke)."""
        gone = set(partitions) & self._session
        self._resume -= set(partitions)
        self._paused -= set(partitions)
        if not gone:
            return
        self._session -= gone
        self._queued = [tp for tp in self._queued if tp not in gone]
        for tp in gone:
            self._assign.pop(tp, None)
            if self._ends.pop(tp, None) is not None:
                self._unassign.append(tp)
        self._held = [r for r in self._held if r.tp not in gone]
        self.stats.restore_total -= len(gone)

    def hold(self, records: list[Record]) -> list[Record]:
        """The live records that may be ingested now; those of partitions still restoring
        are kept for the end of the session."""
        session = self._session
        if not session or not records:
            return records
        live: list[Record] = []
        for rec in records:
            (self._held if rec.tp in session else live).append(rec)
        return live

    def adjust(
        self,
        pause: list[TopicPartition],
        resume: list[TopicPartition],
        flow_paused: set[TopicPartition],
    ) -> tuple[list[TopicPartition], list[TopicPartition]]:
        """The poll's pause/resume lists with the restore's own: session partitions are
        paused and never resumed before the session ends; then resumed unless flow control
        holds them paused itself."""
        add = self._session - self._paused
        self._paused |= add
        out_resume = [tp for tp in resume if tp not in self._session]
        if self._resume:
            out_resume += ordered(self._resume - flow_paused - set(out_resume))
            self._paused -= self._resume
            self._resume = set()
        return ordered(set(pause) | add), out_resume

    # ------------------------------------------------------------------ the program

    # ------------------------------------------------------------------ global topics

    def globals_assigned(self, partitions: Sequence[TopicPartition]) -> Generator[Op, Any, None]:
        """Global partitions the global reader starts reading from the beginning. At start
        (before the first loop iteration) what they hold (below their high watermark) is
        state to restore, not news: it is applied silently (``global_records``), so a restart
        does not run every restored station. Partitions found later (a global topic created
        while running) are news: their records make every station dirty."""
        if not self.enabled or not partitions or self.stats.loops:
            return
        _, marks, _ = yield RestoreFacts(tuple(partitions), {}, committed=False)
        for tp, (_low, high) in marks.items():
            if high > 0:
                self._global_marks[tp] = high

    def global_records(self, records: list[Record]) -> list[Record]:
        """Restore the global records below their partition's mark; returns the others
        (live: they make every station dirty)."""
        marks = self._global_marks
        if not marks or not records:
            return records
        old: list[Record] = []
        live: list[Record] = []
        for rec in records:
            mark = marks.get(rec.tp)
            if mark is not None and rec.offset < mark:
                old.append(rec)
                if rec.offset + 1 >= mark:
                    del marks[rec.tp]
            else:
                live.append(rec)
        if old:
            self.engine.restore(old, self.clock.time())
        return live

    def step(self, ingest: Callable[[list[Record]], int]) -> Generator[Op, Any, int]:
        """One bounded piece of the restore: plan what was assigned, read one batch, or end
        the session (``ingest`` takes the held live records then). Returns records handled."""
        n = 0
        if not self.due:
            return n
        try:
            if self._queued:
                yield from self._plan()
            if self._ends or self._unassign:
                n += yield from self._read()
        except Exception as exc:  # a broker fault (lost, fenced epoch): retried, never fatal
            yield from self._failed(exc)
            return n
        self._failures = 0
        if self._session and not self._queued and not self._ends:
            n += self._finish(ingest)
        return n

    def _failed(self, exc: Exception) -> Generator[Op, Any, None]:
        """A restore request failed: the first failure in a row is logged, the next step
        retries after a backoff (0.5 s doubling to 5 s), so a broker fault is no busy loop."""
        self._failures += 1
        if self._failures == 1:
            log.warning(
                "restore: %s: %s; retrying",
                type(exc).__name__,
                exc,
                extra={"event": "restore_retry"},
            )
        yield Sleep(min(5.0, 0.5 * 2.0 ** min(self._failures - 1, 8)))

    def _plan(self) -> Generator[Op, Any, None]:
        topics = self._topics or {}
        queued, self._queued = ordered(self._queued), []
        now = self.clock.time()
        try:
            committed, marks, at_lookback = yield RestoreFacts(
                tuple(queued), lookback_times(queued, topics, now)
            )
        except Exception:
            self._queued = ordered([*queued, *self._queued])  # planned again at the retry
            raise
        plan = plan_restore(
            queued,
            committed=committed,
            watermarks=marks,
            expiries=topics,
            offsets_at_lookback=at_lookback,
        )
        for gap in plan.gaps:
            if gap.topic not in self._gaps_logged:
                self._gaps_logged.add(gap.topic)
                log.warning("restore: %s", gap.message, extra={"event": "retention_gap"})
        for tp, r in plan.ranges.items():
            if r.empty:
                self.stats.restore_done += 1
            else:
                self._assign[tp] = r.start
                self._ends[tp] = r.end
                # readiness turns 503 once there is something to replay: a session with
                # nothing to read ends within this loop iteration
                self.stats.restoring = True
        log.info(
            "restore: planned %d partitions, %d to replay (%d offsets)",
            len(queued),
            len(plan.to_replay),
            plan.total,
            extra={"event": "restore_planned"},
        )

    def _read(self) -> Generator[Op, Any, int]:
        assign, self._assign = self._assign, {}
        unassign, self._unassign = self._unassign, []
        ends = self._ends
        try:
            records, positions = yield RestoreRead(
                assign, tuple(unassign), tuple(ordered(ends)), self.batch, RESTORE_POLL
            )
        except Exception:
            self._assign = {**assign, **self._assign}  # asked again at the retry
            self._unassign = [*unassign, *self._unassign]
            raise
        keep = [r for r in records if r.offset < ends.get(r.tp, -1)]
        if keep:
            self.engine.restore(keep, self.clock.time())
            self._records += len(keep)
            self.stats.restore_records += len(keep)
        for tp, end in list(ends.items()):
            pos = positions.get(tp)
            if pos is not None and pos >= end:
                del ends[tp]
                self._unassign.append(tp)
                self.stats.restore_done += 1
        return len(records)

    def _finish(self, ingest: Callable[[list[Record]], int]) -> int:
        now = self.clock.time()
        self.engine.finish_restore(now)
        seconds = now - self._started_at
        self.stats.restore_seconds = seconds
        self.stats.restoring = False
        self._resume |= self._session
        parts = len(self._session)
        self._session = set()
        held, self._held = self._held, []
        log.info(
            "restore: done: %d partitions, %d records, %d stations, in %.3fs",
            parts,
            self._records,
            len(self.engine),
            seconds,
            extra={"event": "restore_done"},
        )
        return ingest(held) if held else 0

    def run_done(self) -> None:
        """A run came back: the first one reports the time since start."""
        stats = self.stats
        if stats.first_run_seconds is None:
            stats.first_run_seconds = self.clock.time() - stats.created_at
            log.info(
                "first run %.3fs after start",
                stats.first_run_seconds,
                extra={"event": "first_run"},
            )


# ---------------------------------------------------------------------- performing the ops


def perform(group: Consumer, reader: Consumer, op: RestoreFacts | RestoreRead) -> Any:
    """What a sync shell answers to the restore's operations (see ``actions``)."""
    if isinstance(op, RestoreFacts):
        tps = list(op.partitions)
        times = reader.offsets_for_times(op.times) if op.times else {}
        committed = group.committed(tps) if op.committed else {}
        return committed, reader.watermarks(tps), times
    if op.assign:
        reader.assign_at(op.assign)
    if op.unassign:
        reader.unassign(list(op.unassign))
    if not op.reading:
        return [], {}
    records = reader.poll(op.timeout, op.max_records)
    return records, {tp: reader.position(tp) for tp in op.reading}


async def aperform(
    group: AsyncConsumer, reader: AsyncConsumer, op: RestoreFacts | RestoreRead
) -> Any:
    """``perform`` for an async shell."""
    if isinstance(op, RestoreFacts):
        tps = list(op.partitions)
        times = await reader.offsets_for_times(op.times) if op.times else {}
        committed = await group.committed(tps) if op.committed else {}
        return committed, await reader.watermarks(tps), times
    if op.assign:
        await reader.assign_at(op.assign)
    if op.unassign:
        await reader.unassign(list(op.unassign))
    if not op.reading:
        return [], {}
    records = await reader.poll(op.timeout, op.max_records)
    return records, {tp: await reader.position(tp) for tp in op.reading}
