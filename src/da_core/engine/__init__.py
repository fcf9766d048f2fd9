"""The engine: the pure state machine behind one module's service.

``Engine`` (``facade``) is the public protocol; the work items and counters it hands out
(``items``) are re-exported here, as are the backoff policies of its outbox. The parts:

* ``facade``: ``Engine``, wiring the parts below and the batch collector together;
* ``items``: ``StationRun``, ``Upload``, ``DeadLetter``, ``Forward``, ``RecordRef``,
  ``EngineStats``, the run faults (``RunFault``: ``BadResult``, ``RunTimedOut``,
  ``CallbackExit``);
* ``stations``: the station store (per-station data: windows, dependency results, globals);
* ``table``: one module's scheduling over the store (readiness, ready queue, retry and
  interval schedules, sweep, revoke, add/remove, status views);
* ``intake``: records → station data, dependency results, global values, dead letters, the
  field report;
* ``outbox``: uploads, dead letters and shares with one ``Backoff`` policy type;
* ``encoding``: the records an upload or a dead letter produces;
* ``forwarding``: rekey routing's shares and the colocation check;
* ``caches``: the engine's own memo tables (extraction plans, partitions).

Every part logs to the ``da_core.engine`` logger.
"""

from __future__ import annotations

from da_core.engine.facade import Engine
from da_core.engine.intake import FIELD_REPORT_AFTER, PREVIEW_BYTES
from da_core.engine.items import (
    RUN_FAULTS,
    BadResult,
    CallbackExit,
    DeadLetter,
    EngineStats,
    Forward,
    RecordRef,
    RunFault,
    RunTimedOut,
    StationRun,
    Upload,
)
from da_core.engine.outbox import (
    DEAD_LETTER_BACKOFF,
    DEAD_LETTER_MAX_ATTEMPTS,
    FORWARD_BACKOFF,
    FORWARD_BACKOFF_MAX,
    UPLOAD_BACKOFF,
    UPLOAD_BACKOFF_MAX,
    Backoff,
)

__all__ = [
    "DEAD_LETTER_BACKOFF",
    "DEAD_LETTER_MAX_ATTEMPTS",
    "FIELD_REPORT_AFTER",
    "FORWARD_BACKOFF",
    "FORWARD_BACKOFF_MAX",
    "PREVIEW_BYTES",
    "RUN_FAULTS",
    "UPLOAD_BACKOFF",
    "UPLOAD_BACKOFF_MAX",
    "Backoff",
    "BadResult",
    "CallbackExit",
    "DeadLetter",
    "Engine",
    "EngineStats",
    "Forward",
    "RecordRef",
    "RunFault",
    "RunTimedOut",
    "StationRun",
    "Upload",
]
