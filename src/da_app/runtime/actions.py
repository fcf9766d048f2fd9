"""The values exchanged between ``LoopCore`` and its shells.

The shells hand the core *completions* (a run, one record of an upload, a share, a dead letter
came back) and ask it for *plans* (what to poll and pause, what work to start, how long to
wait). Every value is plain data: no thread, task or client handle crosses this boundary.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import attrs

from da_core.engine import DeadLetter, Forward, RunTimedOut, StationRun, Upload
from da_core.types import DeliveryReport, TopicPartition

log = logging.getLogger("da_app.runner")


# ---------------------------------------------------------------------------- completions


@attrs.frozen
class RunDone:
    """A station run came back. ``seconds``: wall time of the callback plus its result
    handler; ``handler_failed``: the result handler raised (the result still counts)."""

    run: StationRun
    result: Any
    error: BaseException | None
    seconds: float
    handler_failed: bool = False

    @classmethod
    def failed(cls, run: StationRun, error: BaseException, seconds: float) -> RunDone:
        """The callback raised: log it with the station's context."""
        quality = run.module_input.get("_data_quality", {})
        log.error(
            "callback failed for station %r (batch %s, topics %s)",
            run.station_id,
            run.batch_id,
            ",".join(quality.get("available_topics", [])),
            exc_info=None if isinstance(error, RunTimedOut) else error,
            extra={
                "event": "callback_failed",
                "station_id": run.station_id,
                "batch_id": run.batch_id,
            },
        )
        return cls(run, None, error, seconds)


def handler_failed(run: StationRun) -> bool:
    """The result handler raised (called inside the ``except``): log it; returns True."""
    log.exception(
        "result_handler failed for station %r",
        run.station_id,
        extra={"event": "result_handler_failed", "station_id": run.station_id},
    )
    return True


@attrs.frozen
class UploadDone:
    """One *part* of an upload came back: one produced record's report, or the whole upload
    when a custom ``batch_upload_handler`` replaces producing (``LoopCore.pump`` says how many
    parts each upload has). The upload is done when all its parts are; the first error wins."""

    upload_id: int
    ok: bool
    error: str | None = None

    @classmethod
    def of(cls, upload_id: int, report: DeliveryReport) -> UploadDone:
        return cls(upload_id, report.ok, report.error)


@attrs.frozen
class ForwardDone:
    """A share (rekey routing) came back."""

    fwd_id: int
    ok: bool
    error: str | None = None

    @classmethod
    def of(cls, fwd_id: int, report: DeliveryReport) -> ForwardDone:
        return cls(fwd_id, report.ok, report.error)


@attrs.frozen
class DeadLetterDone:
    """A dead letter came back."""

    dl_id: int
    ok: bool

    @classmethod
    def of(cls, dl_id: int, report: DeliveryReport) -> DeadLetterDone:
        return cls(dl_id, report.ok)


Completion = RunDone | UploadDone | ForwardDone | DeadLetterDone


def exc_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


# ---------------------------------------------------------------------------- plans


@attrs.frozen
class PollPlan:
    """What the shell does before and at its poll: pause and resume these partitions (in this
    order), then poll up to ``max_records`` waiting at most ``timeout`` seconds."""

    timeout: float
    max_records: int
    pause: list[TopicPartition]
    resume: list[TopicPartition]


@attrs.frozen
class Work:
    """Work to start now. ``uploads`` are produced record by record (one ``UploadDone`` per
    record) unless the runner has a custom upload handler (one ``UploadDone`` per upload)."""

    runs: list[StationRun]
    uploads: list[Upload]
    dead_letters: list[DeadLetter]
    forwards: list[Forward]

    def __len__(self) -> int:
        return len(self.runs) + len(self.uploads) + len(self.dead_letters) + len(self.forwards)


@attrs.define
class Deadline:
    """A point in the service clock's time, bounded also by a number of idle waits.

    A shell waits for a deadline in steps of real time through its own I/O primitive (a
    ``Wait`` or ``Sleep`` op); the core counts each step in which nothing arrived. The deadline
    has passed when the clock reaches ``at`` *or* after ``max_waits`` idle steps: under a real
    clock both come about together, under a ``ManualClock`` that never advances the second one
    still ends the wait.
    """

    at: float
    max_waits: int
    started: float
    """The clock's time when the deadline was made (to see whether the clock moves at all)."""
    waits: int = 0

    @classmethod
    def after(cls, now: float, seconds: float, step: float) -> Deadline:
        """``seconds`` from ``now``; at most ``seconds / step`` idle waits of ``step`` each."""
        return cls(now + seconds, max(1, int(seconds / step + 0.999)), now)

    def passed(self, now: float) -> bool:
        return now >= self.at or self.waits >= self.max_waits

    def waited(self) -> None:
        self.waits += 1


# ---------------------------------------------------------------------------- I/O operations
# The core's generators (``LoopCore.step`` and the others) yield these; the shell performs each
# and sends back its answer (or throws the exception it raised into the generator).


@attrs.frozen
class Poll:
    """Pause, then resume these partitions, then poll the group consumer. Answer: records."""

    plan: PollPlan


@attrs.frozen
class PollGlobal:
    """Poll the global reader without waiting. Answer: records."""

    max_records: int


@attrs.frozen
class Assignment:
    """Answer: the group consumer's current assignment (a set of partitions)."""


@attrs.frozen
class Partitions:
    """Answer: ``{topic: [partition numbers]}`` as the group consumer (or, with
    ``global_reader``, the global reader) sees them; an empty list for a missing topic."""

    topics: tuple[str, ...]
    global_reader: bool = False


@attrs.frozen
class CreateTopics:
    """Create the topics that do not exist yet. Answer: None."""

    topics: tuple[str, ...]
    partitions: int
    replication_factor: int | None


@attrs.frozen
class Subscribe:
    """Subscribe the group consumer (with the shell's rebalance listener). Answer: None."""

    topics: tuple[str, ...]


@attrs.frozen
class Assign:
    """Assign these partitions of global topics to the global reader, from the beginning."""

    partitions: tuple[TopicPartition, ...]


@attrs.frozen
class Start:
    """Start this work without waiting for it; each item answers later with a completion."""

    work: Work


@attrs.frozen
class Commit:
    """Commit these offsets (next to read) synchronously. Answer: None; raises on failure.
    ``timeout``: during a stop, the seconds of its budget the commit may wait (the shell gives
    up and raises past it; a sync port's commit is bounded by its adapter)."""

    offsets: dict[TopicPartition, int]
    timeout: float | None = None


@attrs.frozen
class Wait:
    """Answer: the completions that arrived, waiting up to ``seconds`` for a first one
    (0: only those already there). The sync shell also serves its producer's reports."""

    seconds: float


@attrs.frozen
class Sleep:
    """Wait ``seconds`` (a backoff); a stop request ends it early. Answer: True when a stop
    request ended it (or had been made), else False."""

    seconds: float


@attrs.frozen
class RestoreFacts:
    """What a restore plan needs (``da_app.runtime.restore``). Answer: ``(committed,
    watermarks, offsets)``: the group's committed offsets of ``partitions`` (the group
    consumer), their ``(low, high)`` watermarks and ``offsets_for_times(times)`` (the
    restore reader)."""

    partitions: tuple[TopicPartition, ...]
    times: Mapping[TopicPartition, float]
    committed: bool = True
    """False: the committed offsets are not asked (answered as ``{}``)."""


@attrs.frozen
class RestoreRead:
    """On the restore reader (outside the group): ``assign_at(assign)``, ``unassign``, then,
    when ``reading`` is not empty, one poll of up to ``max_records`` waiting at most
    ``timeout`` seconds. Answer: ``(records, {tp: position(tp) for tp in reading})``."""

    assign: Mapping[TopicPartition, int]
    unassign: tuple[TopicPartition, ...]
    reading: tuple[TopicPartition, ...]
    max_records: int
    timeout: float


@attrs.frozen
class Connect:
    """Start the clients that must connect before use (the async shell's ``start()`` of its
    consumers and producer; the sync clients connect by themselves). Idempotent. Answer:
    None; raises when the broker cannot be reached."""


@attrs.frozen
class BrokerState:
    """Answer: the group consumer's ``connected()`` (True, False, or None: cannot tell)."""


@attrs.frozen
class RequestStop:
    """Stop the loop after this iteration (the runner refuses to go on). Answer: None."""


Op = (
    Poll
    | PollGlobal
    | Assignment
    | Partitions
    | CreateTopics
    | Subscribe
    | Assign
    | Start
    | Commit
    | Wait
    | Sleep
    | Connect
    | BrokerState
    | RequestStop
    | RestoreFacts
    | RestoreRead
)
"""Every I/O operation a shell performs for the core."""
