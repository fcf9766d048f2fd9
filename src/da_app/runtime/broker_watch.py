"""``BrokerWatch``: what the loop knows about its connection to the broker (SPEC §7, "broker
unreachable at start or later").

Sans I/O, like the core: it is told what the consumer says (``observe``: its
``connected()`` after each poll) and how set-up attempts ended (``setup_failed`` /
``setup_ok``), and keeps the state the probes and metrics read from ``RunnerStats``:
``broker_connected`` (None until known), ``broker_disconnects`` (times the connection was
lost) and ``broker_error`` (why, while it is down).

Logging: exactly one WARNING line when the broker is lost and one INFO line when it is back,
whatever the client reports in between (the clients' own reconnect lines are rate-limited in
the adapters). Set-up retries back off exponentially from ``RETRY_FIRST`` to ``RETRY_MAX``
seconds, so an unreachable broker never makes a busy loop.
"""

from __future__ import annotations

import logging

from da_app.runtime.stats import RunnerStats

log = logging.getLogger("da_app.runner")

RETRY_FIRST = 0.5
"""Seconds before the first retry of a failed set-up (subscription, metadata)."""
RETRY_MAX = 5.0
"""The longest wait between two set-up attempts (seconds)."""


class BrokerWatch:
    """The broker connection state of one loop (see the module docstring)."""

    def __init__(self, stats: RunnerStats, broker: str = "the broker") -> None:
        self.stats = stats
        self.broker = broker
        """How log lines name the broker (its bootstrap servers when known)."""
        self.setup_failures = 0
        """Set-up attempts failed in a row (0 once one succeeds)."""

    @property
    def down(self) -> bool:
        """The broker is known to be unreachable now."""
        return self.stats.broker_connected is False

    def observe(self, connected: bool | None, reason: str | None = None) -> None:
        """What the consumer says after a poll (None: it cannot tell; nothing changes)."""
        if connected is None:
            return
        if connected:
            self.back()
        else:
            self.lost(reason or "the client lost every broker connection")

    def lost(self, reason: str) -> None:
        """The broker became unreachable: one WARNING line, one disconnect counted."""
        stats = self.stats
        stats.broker_error = reason
        if stats.broker_connected is False:
            return
        first = stats.broker_connected is None
        stats.broker_connected = False
        stats.broker_disconnects += 1
        log.warning(
            "broker %s %s: %s; retrying with backoff, offsets and work are kept",
            self.broker,
            "unreachable" if first else "connection lost",
            reason,
            extra={"event": "broker_lost"},
        )

    def back(self) -> None:
        """The broker answers (again): one INFO line after an outage."""
        stats = self.stats
        was = stats.broker_connected
        stats.broker_connected = True
        stats.broker_error = None
        if was is False:
            log.info("broker %s connection restored", self.broker, extra={"event": "broker_back"})

    def setup_failed(self, exc: BaseException) -> None:
        """A set-up attempt (connect, metadata, subscribe) failed: the broker is down."""
        self.setup_failures += 1
        self.lost(f"{type(exc).__name__}: {exc}")

    def setup_ok(self) -> None:
        self.setup_failures = 0
        self.back()

    def backoff(self) -> float:
        """Seconds to wait before the next set-up attempt."""
        n = max(self.setup_failures, 1)
        return float(min(RETRY_MAX, RETRY_FIRST * 2.0 ** min(n - 1, 16)))
