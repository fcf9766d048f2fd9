"""BatchCollector: groups station runs into batches and says when each batch is complete.

A batch is formed by ``open`` for the stations one consumption cycle made dirty. Each member
waits for its *next* run (``run_started`` binds it); the batch completes when the share
``completion_ratio`` of its members finished such a run, or ``timeout_seconds`` after it formed.
``poll`` hands out each completed batch exactly once.

Nothing is lost: a run whose batch already completed (it finished late, or it was still running
when a ``completion_ratio < 1`` batch completed early), or a run that was bound to no batch, is
*carried*: to the oldest open batch the station is a member of, else to the next batch opened
with the station as a member, else — when no such batch forms within ``timeout_seconds`` — to a
batch of its own (one batch for all carried runs due at the same ``poll``).

Each batch holds at most one result per station: the one of the run that *started* last. An
older result arriving later is left out, but its attachment is always kept so it can be
released. Outcomes ``none`` and ``error`` never replace a result. ``run_finished`` does not name
the run, only its batch: when several runs of one station are bound to the same batch id (in
practice only concurrent runs bound to no batch, ``None``), they are taken to finish in the
order they started; a run that finishes without ``run_started`` counts as the newest.

The outcome and batch values (``RunOutcome``, ``CompletedBatch``, and what a batch's counts
mean) live in ``da_core.batch_results``; they are re-exported here.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
from collections import deque
from collections.abc import Iterable
from typing import Any, Generic, TypeVar

import attrs

from da_core.batch_results import CompletedBatch, RunOutcome, RunOutcomeKind
from da_core.config import BatchPolicy
from da_core.types import StationId

__all__ = ["BatchCollector", "CompletedBatch", "RunOutcome", "RunOutcomeKind"]

logger = logging.getLogger(__name__)

A = TypeVar("A")

_WAITING = 0
_RUNNING = 1
_FINISHED = 2


@attrs.define(slots=True, eq=False)
class _Delivery(Generic[A]):
    """One finished run on its way into a batch."""

    station: StationId
    seq: int
    """Start order of the run (higher is newer)."""
    outcome: RunOutcome
    attachment: A
    since: float
    placed: bool = False


@attrs.define(slots=True, eq=False)
class _Batch(Generic[A]):
    batch_id: str
    seq: int
    created_at: float
    deadline: float
    needed: int
    members: dict[StationId, int]
    """Station → _WAITING / _RUNNING / _FINISHED (its own bound run)."""
    carry_only: bool = False
    finished: int = 0
    slots: dict[StationId, tuple[int, dict[str, Any]]] = attrs.field(factory=dict)
    attachments: list[A] = attrs.field(factory=list)
    succeeded: int = 0
    failed: int = 0
    carried: int = 0
    closed: bool = False


class FinalResult(dict[str, Any]):
    """A run's result already in its uploaded form (``station_id`` first), with its JSON
    encoding in ``encoded`` (made once, by the engine, when the run finished, and reused by
    the upload). The collector keeps it as it is."""

    __slots__ = ("encoded",)

    def __init__(self, station: StationId, value: Any, encoded: bytes = b"") -> None:
        super().__init__()
        _fill_result(self, station, value)  # in place: this runs once per run
        self.encoded = encoded


def _fill_result(out: dict[str, Any], station: StationId, value: Any) -> dict[str, Any]:
    """``out`` (empty) as the uploaded form of ``value``: ``station_id`` first, then a dict's
    keys (its own ``station_id`` wins), or any other value under ``result``."""
    out["station_id"] = station
    if isinstance(value, dict):
        out.update(value)
    else:
        out["result"] = value
    return out


def _as_result(station: StationId, value: Any) -> dict[str, Any]:
    if isinstance(value, FinalResult):
        return value
    return _fill_result({}, station, value)


@attrs.define(slots=True, eq=False)
class BatchCollector(Generic[A]):
    """``BatchCollector(module, policy)``; ``A`` is the type of a run's attachment (whatever
    the caller must release once the batch is uploaded, e.g. the offsets behind the run)."""

    _module: str
    _policy: BatchPolicy
    _counter: int = attrs.field(init=False, default=0)
    _run_seq: itertools.count[int] = attrs.field(init=False, factory=lambda: itertools.count(1))
    _open: dict[str, _Batch[A]] = attrs.field(init=False, factory=dict)
    _by_deadline: list[tuple[float, int, _Batch[A]]] = attrs.field(init=False, factory=list)
    """Heap of (deadline, seq, batch) of open batches (closed ones are dropped lazily)."""
    _ready: list[_Batch[A]] = attrs.field(init=False, factory=list)
    """Open batches whose completion ratio is reached; closed by the next ``poll``."""
    _waiting: dict[StationId, str] = attrs.field(init=False, factory=dict)
    """Station → the open batch it waits in for a run that has not started."""
    _member_of: dict[StationId, list[str]] = attrs.field(init=False, factory=dict)
    """Station → the open batches it is a member of, oldest first."""
    _running: dict[StationId, list[tuple[int, str | None]]] = attrs.field(init=False, factory=dict)
    """Station → its started, unfinished runs: (start seq, bound batch id)."""
    _homeless: dict[StationId, list[_Delivery[A]]] = attrs.field(init=False, factory=dict)
    _homeless_order: deque[_Delivery[A]] = attrs.field(init=False, factory=deque)

    @property
    def module(self) -> str:
        return self._module

    @property
    def policy(self) -> BatchPolicy:
        return self._policy

    @policy.setter
    def policy(self, policy: BatchPolicy) -> None:
        """Replace the policy (reconfiguration). Batches already open keep the deadline and
        completion threshold they were formed with; carried runs wait the new timeout."""
        self._policy = policy

    # -- forming and running --------------------------------------------------------------

    def open(self, stations: Iterable[StationId], now: float) -> str | None:
        """Form a batch of ``stations``, leaving out those already waiting in an open batch
        for a run that has not started. Returns its id, or None when no station is left."""
        waiting = self._waiting
        members: dict[StationId, int] = {}
        for s in stations:
            if s not in waiting:
                members[s] = _WAITING
        if not members:
            return None
        batch = self._new_batch(members, now, carry_only=False)
        bid = batch.batch_id
        self._open[bid] = batch
        heapq.heappush(self._by_deadline, (batch.deadline, batch.seq, batch))
        for s in members:
            waiting[s] = bid
            self._member_of.setdefault(s, []).append(bid)
            carried = self._homeless.pop(s, None)
            if carried:
                for delivery in carried:
                    delivery.placed = True
                    self._deliver_carried(batch, delivery)
        logger.debug(
            "batch created %s expected stations: %d",
            bid,
            len(members),
            extra={"event": "batch_created", "batch_id": bid, "da_module": self._module},
        )
        return bid

    def run_started(self, station: StationId, now: float) -> str | None:
        """Bind the station's run that starts now to the open batch it waits in; None when it
        waits in none (the run's result then goes to the station's next batch)."""
        bid = self._waiting.pop(station, None)
        if bid is not None:
            self._open[bid].members[station] = _RUNNING
        self._running.setdefault(station, []).append((next(self._run_seq), bid))
        return bid

    def run_finished(
        self,
        station: StationId,
        batch_id: str | None,
        outcome: RunOutcome,
        attachment: A,
        now: float,
    ) -> None:
        """A run of ``station`` ended; ``batch_id`` is what ``run_started`` returned for it."""
        seq = self._pop_run(station, batch_id)
        batch = self._open.get(batch_id) if batch_id is not None else None
        state = batch.members.get(station) if batch is not None else None
        if batch is not None and state is not None and state != _FINISHED:
            if state == _WAITING:
                self._waiting.pop(station, None)
            batch.members[station] = _FINISHED
            batch.finished += 1
            self._put(batch, _Delivery(station, seq, outcome, attachment, now))
            if logger.isEnabledFor(logging.DEBUG):  # once per run: no arguments built for nothing
                logger.debug(
                    "batch %s received result of station %r",
                    batch.batch_id,
                    station,
                    extra={
                        "event": "station_result",
                        "batch_id": batch.batch_id,
                        "station_id": station,
                    },
                )
            if batch.finished == batch.needed:
                self._ready.append(batch)
            return
        delivery = _Delivery(station, seq, outcome, attachment, now)
        member_of = self._member_of.get(station)
        if member_of:
            target = self._open[member_of[0]]
            self._deliver_carried(target, delivery)
            logger.debug(
                "batch %s received late result of station %r (run of %s)",
                target.batch_id,
                station,
                batch_id,
            )
            return
        self._homeless.setdefault(station, []).append(delivery)
        self._homeless_order.append(delivery)
        logger.debug(
            "late result of station %r (run of %s) waits for the station's next batch",
            station,
            batch_id,
        )

    # -- completing -----------------------------------------------------------------------

    def poll(self, now: float) -> list[CompletedBatch[A]]:
        """Batches that completed (ratio reached or timed out), each handed out once, oldest
        first; then, when some carried run waited ``timeout_seconds`` for a batch, a batch of
        the carried runs due."""
        return self._collect(now, everything=False)

    def drain(self, now: float) -> list[CompletedBatch[A]]:
        """Complete every open batch now (those not complete count as timed out) and put every
        carried run that waits for a batch into one batch (for stop)."""
        return self._collect(now, everything=True)

    def next_deadline(self) -> float | None:
        """The earliest time a ``poll`` may complete something by the clock (None: nothing
        open or waiting). Batches completed by their ratio are due at once (``-inf``)."""
        if self._ready:
            return -math.inf
        heap = self._by_deadline
        while heap and heap[0][2].closed:
            heapq.heappop(heap)
        order = self._homeless_order
        while order and order[0].placed:
            order.popleft()
        times = [heap[0][0]] if heap else []
        if order:
            times.append(order[0].since + self._policy.timeout_seconds)
        return min(times) if times else None

    def open_batches(self) -> list[str]:
        """Ids of the batches not yet handed out, oldest first."""
        return list(self._open)

    def waiting_in(self, station: StationId) -> str | None:
        """The open batch ``station`` waits in for a run that has not started, if any."""
        return self._waiting.get(station)

    # -- internals ------------------------------------------------------------------------

    def _new_batch(
        self, members: dict[StationId, int], now: float, *, carry_only: bool
    ) -> _Batch[A]:
        self._counter += 1
        bid = f"{self._module}-{self._counter:06d}"
        ratio = self._policy.completion_ratio
        needed = max(1, math.ceil(ratio * len(members) - 1e-9)) if members else 0
        return _Batch(
            batch_id=bid,
            seq=self._counter,
            created_at=now,
            deadline=now + self._policy.timeout_seconds,
            needed=needed,
            members=members,
            carry_only=carry_only,
        )

    def _pop_run(self, station: StationId, batch_id: str | None) -> int:
        runs = self._running.get(station)
        if runs:
            for i, (seq, bid) in enumerate(runs):
                if bid == batch_id:
                    del runs[i]
                    if not runs:
                        del self._running[station]
                    return seq
        logger.debug("run of station %r (batch %s) finished without run_started", station, batch_id)
        return next(self._run_seq)

    def _put(self, batch: _Batch[A], delivery: _Delivery[A]) -> None:
        batch.attachments.append(delivery.attachment)
        outcome = delivery.outcome
        if outcome.failed:
            batch.failed += 1
        else:
            batch.succeeded += 1
        if not outcome.has_result:
            return
        station = delivery.station
        current = batch.slots.get(station)
        if current is None or current[0] < delivery.seq:
            if current is not None:
                logger.debug(
                    "batch %s: result of station %r replaced by a newer one",
                    batch.batch_id,
                    station,
                )
            batch.slots[station] = (delivery.seq, _as_result(station, outcome.value))

    def _deliver_carried(self, batch: _Batch[A], delivery: _Delivery[A]) -> None:
        batch.carried += 1
        self._put(batch, delivery)

    def _close(self, batch: _Batch[A]) -> None:
        batch.closed = True
        bid = batch.batch_id
        del self._open[bid]
        for s, state in batch.members.items():
            if state == _WAITING and self._waiting.get(s) == bid:
                del self._waiting[s]
            member_of = self._member_of.get(s)
            if member_of is not None:
                member_of.remove(bid)
                if not member_of:
                    del self._member_of[s]

    def _collect(self, now: float, *, everything: bool) -> list[CompletedBatch[A]]:
        out: list[_Batch[A]] = []
        if self._ready:
            for batch in self._ready:
                if not batch.closed:
                    self._close(batch)
                    out.append(batch)
            self._ready.clear()
        heap = self._by_deadline
        while heap and (everything or heap[0][2].closed or heap[0][0] <= now):
            batch = heapq.heappop(heap)[2]
            if batch.closed:
                continue
            self._close(batch)
            out.append(batch)
            logger.info(
                "batch %s timed out after %gs: %d/%d stations finished",
                batch.batch_id,
                batch.deadline - batch.created_at,
                batch.finished,
                len(batch.members),
                extra={
                    "event": "batch_timeout",
                    "batch_id": batch.batch_id,
                    "da_module": self._module,
                },
            )
        carry = self._homeless_batch(now, everything=everything)
        if carry is not None:
            out.append(carry)
        if len(out) > 1:
            out.sort(key=lambda b: b.seq)
        return [self._completed(b) for b in out]

    def _homeless_batch(self, now: float, *, everything: bool) -> _Batch[A] | None:
        order = self._homeless_order
        timeout = self._policy.timeout_seconds
        while order and order[0].placed:
            order.popleft()
        if not order or (not everything and order[0].since + timeout > now):
            return None
        due: list[_Delivery[A]] = []
        while order and (everything or order[0].placed or order[0].since + timeout <= now):
            d = order.popleft()
            if not d.placed:
                d.placed = True
                due.append(d)
        stations: dict[StationId, int] = {}
        for d in due:
            stations[d.station] = _FINISHED
            pending = self._homeless[d.station]
            pending.remove(d)
            if not pending:
                del self._homeless[d.station]
        batch = self._new_batch(stations, now, carry_only=True)
        batch.closed = True
        for d in due:
            self._deliver_carried(batch, d)
        logger.info(
            "batch %s formed for %d late results of %d stations",
            batch.batch_id,
            len(due),
            len(stations),
        )
        return batch

    def _completed(self, batch: _Batch[A]) -> CompletedBatch[A]:
        timed_out = not batch.carry_only and batch.finished < batch.needed
        completed = CompletedBatch(
            batch_id=batch.batch_id,
            module=self._module,
            created_at=batch.created_at,
            results=[result for _, result in batch.slots.values()],
            attachments=batch.attachments,
            members=len(batch.members),
            succeeded=batch.succeeded,
            failed=batch.failed,
            timed_out=timed_out,
            carried=batch.carried,
        )
        logger.debug(
            "batch %s complete: %d results, %d succeeded, %d failed, %d carried, timed out: %s",
            batch.batch_id,
            len(completed.results),
            batch.succeeded,
            batch.failed,
            batch.carried,
            timed_out,
        )
        return completed
