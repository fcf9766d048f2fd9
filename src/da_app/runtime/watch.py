"""``RunWatch``: the run timeout (``service.callback_timeout_seconds``) and stuck workers.

The core tells it every run it starts (``started``) and every run that comes back
(``returned``); ``expire(core)`` fails the runs whose deadline (the service clock's, like every
deadline of the runtime) has passed with ``RunTimedOut``: the engine counts the run as
``timeout`` and retries the station by its normal retry policy.

A thread cannot be killed, so the worker running a timed-out sync callable is *stuck*: its slot
stays taken (the core keeps counting it among its runs, so fewer runs start) until the
callable returns, when its late result is discarded and the slot is free again. Health reports
the stuck workers (``/ready`` fails once every worker is stuck); a drain does not wait for them,
and the shells' daemon worker threads (``workers``) let the process exit past them.

Async callables are cancelled at the timeout by ``asyncio.wait_for`` (``callbacks``) and come
back as ``RunTimedOut`` failures themselves; the watch is then only a backstop.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from da_core.engine import RunTimedOut, StationRun

if TYPE_CHECKING:
    from da_app.runtime.core import LoopCore

log = logging.getLogger("da_app.runner")


class RunWatch:
    """Deadlines of the runs in flight and the runs that timed out but have not come back.
    ``timeout`` in seconds of the service clock; 0 disables the timeout. Written by the loop
    only; ``stuck`` is read lock-free by the probes."""

    def __init__(self, timeout: float = 0.0) -> None:
        self.timeout = timeout
        self._due: list[tuple[float, int]] = []  # (deadline, run id), a heap
        self._runs: dict[int, StationRun] = {}
        self._stuck: set[int] = set()
        self.timeouts = 0
        """Runs that timed out since start."""
        self.late_returns = 0
        """Timed-out runs that came back later (their results discarded)."""

    @property
    def stuck(self) -> int:
        """Runs that timed out and whose worker is still busy with them."""
        return len(self._stuck)

    def started(self, runs: Iterable[StationRun], now: float) -> None:
        if self.timeout <= 0:
            return
        at = now + self.timeout
        for run in runs:
            self._runs[run.run_id] = run
            heapq.heappush(self._due, (at, run.run_id))

    def returned(self, run: StationRun) -> bool:
        """A run came back: True when on time (hand it to the engine), False for a late
        return of a timed-out run (discard it; its worker is free again)."""
        if run.run_id in self._stuck:
            self._stuck.discard(run.run_id)
            self.late_returns += 1
            log.warning(
                "station %r: the callback that timed out returned after all; result discarded, "
                "worker free again (%d still stuck)",
                run.station_id,
                len(self._stuck),
                extra={"event": "callback_late", "station_id": run.station_id},
            )
            return False
        self._runs.pop(run.run_id, None)
        return True

    def expired(self, now: float) -> list[StationRun]:
        """The runs whose deadline has passed by ``now``; they become stuck."""
        due, out = self._due, []
        while due and due[0][0] <= now:
            run = self._runs.pop(heapq.heappop(due)[1], None)
            if run is not None:
                self._stuck.add(run.run_id)
                out.append(run)
        return out

    def expire(self, core: LoopCore) -> None:
        """Fail the runs past their deadline (``RunTimedOut``, reason ``timeout``)."""
        if not self._due:
            return
        now = core.clock.time()
        for run in self.expired(now):
            self.timeouts += 1
            log.error(
                "station %r: callback did not return within %gs; the run fails (timeout) and is "
                "retried by policy; its worker stays stuck until the callback returns "
                "(%d stuck)",
                run.station_id,
                self.timeout,
                len(self._stuck),
                extra={
                    "event": "callback_timeout",
                    "station_id": run.station_id,
                    "batch_id": run.batch_id,
                },
            )
            error = RunTimedOut(f"no result within {self.timeout:g}s")
            core.engine.finish_run(run, now, error=error)
