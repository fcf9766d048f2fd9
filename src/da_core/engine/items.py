"""The engine's work items, its counters, and the held-record reference they release.

Every item is a frozen value handed to the runner; the runner answers by id (``run_id``,
``upload_id``, ``dl_id``, ``fwd_id``). Ids come from one counter per engine, so they are unique
across kinds within an engine.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

from da_core.offset_ledger import OffsetLedger
from da_core.types import OutboundRecord, Record, TopicPartition


class RecordRef:
    """One input record held by the stations (or shares, or a dead letter) that read it; the
    ledger is told it is done when ``remaining`` reaches 0 (see ``release``)."""

    __slots__ = ("offset", "remaining", "tp")

    def __init__(self, tp: TopicPartition, offset: int, remaining: int) -> None:
        self.tp = tp
        self.offset = offset
        self.remaining = remaining


RUN_FAULTS = ("bad_result", "timeout", "callback_exit")
"""Reasons a run fails other than its callback raising (``EngineStats.run_faults``)."""


class RunFault(Exception):
    """A run failed for ``reason`` (one of ``RUN_FAULTS``) rather than by its callback raising
    an exception of its own; the runner passes one to ``Engine.finish_run`` as ``error``."""

    reason = "run_fault"


class BadResult(RunFault):
    """The callback's result cannot be encoded as JSON (``__cause__``: the encoder's error)."""

    reason = "bad_result"


class RunTimedOut(RunFault):
    """The callback did not return within the run timeout (``service.callback_timeout_seconds``)."""

    reason = "timeout"


class CallbackExit(RunFault):
    """A user callable raised ``SystemExit`` or ``KeyboardInterrupt`` (``__cause__``): a failed
    run, never the end of a worker or of the loop."""

    reason = "callback_exit"


@attrs.frozen(slots=True)
class StationRun:
    """A run to start: call the module's callback with ``module_input`` for ``station_id``."""

    run_id: int
    station_id: str
    batch_id: str | None
    module_input: dict[str, Any]
    started_at: float


@attrs.frozen(slots=True)
class Upload:
    """Results to publish. ``records`` are what the default upload produces; a custom
    ``batch_upload_handler`` receives ``(batch_id, results)`` instead. ``attempt``: failed
    attempts so far."""

    upload_id: int
    batch_id: str
    module: str
    results: list[dict[str, Any]]
    records: tuple[OutboundRecord, ...]
    attempt: int = 0


@attrs.frozen(slots=True)
class DeadLetter:
    """A bad input record to publish to the dead-letter topic (with the reason in headers).
    ``attempt``: failed attempts so far."""

    dl_id: int
    source: Record
    reason: str
    detail: str
    record: OutboundRecord
    attempt: int = 0


@attrs.frozen(slots=True)
class Forward:
    """One station's share of a source record, to produce to its internal station-keyed topic
    (``station_routing: rekey``, see ``da_core.routing``). ``attempt``: failed attempts so far."""

    fwd_id: int
    record: OutboundRecord
    attempt: int = 0


@attrs.define
class EngineStats:
    """Counters since start. Exported as metrics by the application."""

    records_in: int = 0
    records_ignored: int = 0
    items_in: int = 0
    bad_input: dict[str, int] = attrs.field(factory=dict)
    bad_fields: int = 0
    skipped_items: int = 0
    future_items: int = 0
    """Elements skipped because their event time was beyond the clock skew bound (also in
    ``skipped_items``)."""
    stations_refused: dict[str, int] = attrs.field(factory=dict)
    """Elements of new stations refused, by reason (``station_limit``,
    ``station_not_allowed``); a record refused whole is also in ``bad_input``."""
    runs_started: int = 0
    runs_ok: int = 0
    runs_none: int = 0
    runs_failed: dict[str, int] = attrs.field(factory=dict)
    """Runs whose callback raised, by exception class name."""
    run_faults: dict[str, int] = attrs.field(factory=dict)
    """Runs failed for a reason of ``RUN_FAULTS`` (``bad_result``, ``timeout``,
    ``callback_exit``), by reason."""
    batches_formed: int = 0
    batches_completed: int = 0
    batches_timed_out: int = 0
    batches_empty: int = 0
    batch_sizes: dict[int, int] = attrs.field(factory=dict)
    """Uploaded batches by their number of station results: ``{stations: batches}``."""
    uploads_ok: int = 0
    upload_failures: int = 0
    upload_retries: int = 0
    dead_letters: int = 0
    dead_letter_failures: int = 0
    """Failed attempts to produce a dead letter."""
    dead_letters_lost: int = 0
    """Dead letters given up after ``dead_letter_max_attempts`` failed attempts: their records
    were released without reaching the dead-letter topic (``outbox``)."""
    stations_evicted: int = 0
    refs_released_unused: int = 0
    global_values_cached: int = 0
    commits_ok: int = 0
    commit_failures: int = 0
    records_forwarded: int = 0
    """Source records split by station and forwarded to internal topics (rekey routing)."""
    shares_forwarded: int = 0
    forward_failures: int = 0
    records_restored: int = 0
    """Records applied to windows by ``Engine.restore`` (replayed, never run or committed)."""
    restore_skipped: int = 0
    """Replayed records not applied: bad ones (dead-lettered when first consumed) and records
    of topics restore does not apply (rekey routing's source topics)."""
    refs_released_unready: int = 0
    """Holds released at once because the station they updated is not ready (its window is
    restored from the log after a restart; see ``StationTable.mark_dirty``)."""


def release(
    refs: Iterable[RecordRef],
    ledger: OffsetLedger,
    stats: EngineStats,
    *,
    unused: bool = False,
) -> None:
    """Drop one hold on each of ``refs``; a record whose last hold goes is done in the ledger.
    ``unused``: the holder drops the data without having used it (counted in
    ``stats.refs_released_unused``)."""
    done = ledger.done
    n = 0
    for ref in refs:
        ref.remaining -= 1
        if ref.remaining == 0:
            done(ref.tp, ref.offset)
        n += 1
    if unused:
        stats.refs_released_unused += n
