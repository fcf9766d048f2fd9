"""Draining and shutdown of the loop core: finish in-flight work without polling.

Core programs (see ``LoopCore``) over a core. A drain pumps (starts work, takes answers,
commits what is due) until nothing is queued, running or unanswered, then completes the open
batches (nothing more would finish them) and goes on until idle again.

Termination under a clock that never moves (``ManualClock`` in tests): the drain's
``Deadline`` also passes after a bounded number of idle waits of ``DRAIN_WAIT`` real seconds,
and a drain ends as soon as nothing is in flight and the clock has not moved across an idle
wait, since then only time could make progress.

A stop is bounded by the core's ``shutdown_timeout`` whatever the broker does: the drain gets
at most half of it (and at most ``drain_timeout``), the final commit is skipped while the
broker is known to be down, and the shells give the producer's flush and the clients' close
``close_budget`` seconds each. A commit during a stop waits only for what is left of the
drain's share (the final one: ``close_budget``), and once one has failed none is tried again
in that stop (``StopCommits``): the broker's loss may not be known yet, and each attempt
would otherwise wait for the client's own commit timeout.
"""

from __future__ import annotations

import logging
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from da_app.runtime.actions import Deadline, Op, Wait

if TYPE_CHECKING:
    from da_app.runtime.core import LoopCore

log = logging.getLogger("da_app.runner")

DRAIN_WAIT = 0.01
"""Seconds of one idle wait while draining."""
MIN_COMMIT_WAIT = 0.5
"""Seconds a commit during a stop may always wait, however little of the budget is left."""


class StopCommits:
    """The commits of one stop: each waits until ``until`` of the core's clock (at least
    ``MIN_COMMIT_WAIT``); after one has failed (``failed``) none is tried again."""

    def __init__(self, until: float) -> None:
        self.until = until
        self.failed = False

    def timeout(self, now: float) -> float:
        return max(self.until - now, MIN_COMMIT_WAIT)


def commits_off(core: LoopCore) -> bool:
    """Whether a commit of this stop has failed (the rest of its offsets are redelivered)."""
    return core.stop_commits is not None and core.stop_commits.failed


def drain_deadline(core: LoopCore) -> Deadline:
    """A drain's deadline: ``drain_timeout`` seconds of the clock from now."""
    return Deadline.after(core.clock.time(), core.drain_timeout, DRAIN_WAIT)


def drain(core: LoopCore, deadline: Deadline | None = None) -> Generator[Op, Any, bool]:
    """Finish in-flight work without polling, until idle (True) or the deadline, or until
    no progress is possible (False)."""
    deadline = deadline or drain_deadline(core)
    while not _over(core, deadline):
        yield from core.pump()
        if core.idle():
            if not core.engine.open_batches:
                return True
            core.engine.flush_batches(core.clock.time())
            continue
        if not core.complete((yield Wait(DRAIN_WAIT))):
            deadline.waited()
    return False


def _over(core: LoopCore, deadline: Deadline) -> bool:
    now = core.clock.time()
    stalled = deadline.waits > 0 and now == deadline.started and not core.in_flight
    return stalled or deadline.passed(now)


def close_budget(core: LoopCore) -> float:
    """Seconds a shell may spend on each of the producer's flush and the clients' close at
    the end of a stop (a fifth of ``shutdown_timeout``, at most 5 s)."""
    return min(5.0, core.shutdown_timeout / 5)


def shutdown(core: LoopCore) -> Generator[Op, Any, None]:
    """Drain (bounded, see the module docstring), then commit everything done; the shell
    closes its clients afterwards."""
    seconds = min(core.drain_timeout, core.shutdown_timeout / 2)
    now = core.clock.time()
    commits = core.stop_commits = StopCommits(now + seconds)
    if not (yield from drain(core, Deadline.after(now, seconds, DRAIN_WAIT))):
        log.warning(
            "stop: drain deadline passed with work in flight; it will be redelivered",
            extra={"event": "drain_timeout"},
        )
    offsets = core.engine.flush_offsets()
    commits.until = core.clock.time() + close_budget(core)
    if offsets and (core.broker.down or commits.failed):
        log.warning(
            "stop: broker %s unreachable%s; the offsets of %d partition(s) are not committed "
            "(their records will be redelivered)",
            core.broker.broker,
            " (a commit of this stop failed)" if commits.failed else "",
            len(offsets),
        )
    elif offsets:
        yield from core.commit(offsets)
