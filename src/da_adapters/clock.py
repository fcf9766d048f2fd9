"""The production clock: wall time, never decreasing."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class SystemClock:
    """``time.time()`` made monotone: the ``Clock`` port promises time never decreases, which
    the wall clock does not (NTP steps). A step backwards is held at the last value returned
    until the wall clock catches up."""

    def __init__(self, time_source: Callable[[], float] = time.time) -> None:
        self._source = time_source
        self._last = float("-inf")
        self._lock = threading.Lock()

    def time(self) -> float:
        now = self._source()
        with self._lock:
            if now < self._last:
                return self._last
            self._last = now
            return now
