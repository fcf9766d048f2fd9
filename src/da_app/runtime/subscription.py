"""What the loop core sets up around its group subscription: rekey routing and global topics.

Both are core programs (generators of ``da_app.runtime.actions`` operations, as in
``LoopCore``) run at every (re)subscription; global topics are moreover re-read on a schedule
of the ``Clock``. Neither reads time except from the clock it is given.

- ``prepare_routing``: with rekey routing the internal topics must exist, all with one
  partition count (``da_core.routing.plan_internal_topics``), before the group is joined; the
  engine is then told that count.
- ``GlobalTopics``: every partition of the global topics, new ones too, is assigned from the
  beginning to the global reader; new partitions are looked for every
  ``GLOBAL_REFRESH_SECONDS`` and whenever asked.
"""

from __future__ import annotations

import logging
from collections.abc import Generator, Mapping
from typing import Any

from da_app.runtime.actions import Assign, CreateTopics, Deadline, Op, Partitions, Sleep
from da_core.engine import Engine
from da_core.errors import ConfigError
from da_core.ports import Clock
from da_core.routing import plan_internal_topics
from da_core.types import TopicPartition

log = logging.getLogger("da_app.runner")

GLOBAL_REFRESH_SECONDS = 5.0
"""How often new partitions of global topics are looked for (seconds of the clock)."""
ROUTING_SETUP_SECONDS = 30.0
"""How long created internal topics may take to show up in the cluster's metadata."""
ROUTING_WAIT = 0.2
"""Seconds between two looks for created internal topics."""


def prepare_routing(engine: Engine, clock: Clock) -> Generator[Op, Any, None]:
    """Rekey routing: make sure the internal topics exist with one partition count, and
    tell the engine that count (nothing to do without internal topics). Raises
    ``ConfigError`` when created topics do not show up within ``ROUTING_SETUP_SECONDS``."""
    internal = engine.internal_topics
    if not internal:
        return
    found = yield Partitions((*internal, *internal.values()))
    count = {t: len(ps) for t, ps in found.items()}
    n, missing = plan_internal_topics(
        engine.routing,
        {t: count[t] for t in internal},
        {t: count[t] for t in internal.values()},
    )
    if missing:
        yield CreateTopics(tuple(missing), n, engine.routing.replication_factor)
        deadline = Deadline.after(clock.time(), ROUTING_SETUP_SECONDS, ROUTING_WAIT)
        while any(len(ps) != n for ps in (yield Partitions(tuple(missing))).values()):
            if deadline.passed(clock.time()):
                raise ConfigError(
                    f"internal topics {', '.join(missing)} did not appear with {n} "
                    f"partitions within {ROUTING_SETUP_SECONDS:.0f}s"
                )
            yield Sleep(ROUTING_WAIT)
            deadline.waited()
    engine.set_rekey_partitions(n)
    names = list(internal.values())
    log.info(
        "station routing: rekey through %d internal topic(s) of %d partitions (%s)",
        len(names),
        n,
        ", ".join(names),
        extra={"event": "routing"},
    )


class GlobalTopics:
    """The global reader's assignment and its refresh schedule (clock seconds).

    Invariant: ``assigned`` only grows (a global topic's partitions are never handed back),
    so a refresh assigns each partition once, from the beginning."""

    def __init__(self) -> None:
        self.assigned: set[TopicPartition] = set()
        self._next_refresh: float | None = None  # None: due now

    def request_refresh(self) -> None:
        """Look for new partitions at the next opportunity."""
        self._next_refresh = None

    def refresh_due(self, now: float) -> bool:
        due = self._next_refresh
        return due is None or now >= due

    def refresh(
        self, engine: Engine, now: float, reader: bool
    ) -> Generator[Op, Any, list[TopicPartition]]:
        """Schedule the next refresh; with a separate ``reader``, assign every partition of
        the global topics not assigned yet (without one, they come through the group).
        Returns the partitions it assigned now."""
        self._next_refresh = now + GLOBAL_REFRESH_SECONDS
        if not reader:
            return []
        found: Mapping[str, list[int]] = yield Partitions(engine.global_topics, True)
        new = [
            TopicPartition(t, p)
            for t, ps in found.items()
            for p in ps
            if TopicPartition(t, p) not in self.assigned
        ]
        if new:
            yield Assign(tuple(new))
            self.assigned.update(new)
        return new
