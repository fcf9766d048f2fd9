"""A clock that moves only when told to: the time source of tests and simulations."""

from __future__ import annotations

import threading

DEFAULT_START = 1_800_000_000.0
"""2027-01-15T08:00:00Z: a fixed, recognisable default start (seconds since the epoch)."""


class ManualClock:
    """Implements the ``Clock`` port. ``time()`` returns the current manual time in seconds
    since the epoch; ``advance`` and ``set`` move it forwards, never backwards. Thread-safe."""

    def __init__(self, start: float = DEFAULT_START) -> None:
        self._now = float(start)
        self._lock = threading.Lock()

    def time(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        """Move forwards by ``seconds`` (>= 0) and return the new time."""
        if seconds < 0:
            raise ValueError(f"a clock cannot go backwards (advance by {seconds})")
        with self._lock:
            self._now += seconds
            return self._now

    def set(self, t: float) -> None:
        """Jump to ``t``, which must not be earlier than the current time."""
        with self._lock:
            if t < self._now:
                raise ValueError(f"a clock cannot go backwards (from {self._now} to {t})")
            self._now = float(t)

    def __repr__(self) -> str:
        return f"ManualClock({self.time()!r})"
