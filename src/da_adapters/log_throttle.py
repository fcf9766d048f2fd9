"""Rate limits for the Kafka clients' own log lines during a broker outage.

Both clients retry an unreachable broker on their own and log every attempt (about 20 lines
per second from librdkafka, 120 from aiokafka). The loop reports the outage itself, once
(``da_app.runtime.broker_watch``); the clients' lines are kept, but each distinct line (its
digits, such as ports and milliseconds, ignored) at WARNING or above passes at most once per
``INTERVAL`` seconds. Lines below WARNING pass untouched (debugging needs all of them).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterable

INTERVAL = 30.0
"""Seconds during which a repeated client line is dropped."""

_DIGITS = re.compile(r"\d+")


def line_key(text: str) -> str:
    """The key under which a line is rate-limited: the line with its numbers blanked."""
    return _DIGITS.sub("#", text[:300])


class RateLimit:
    """Whether a line with this key may pass now: once per ``interval`` seconds (monotonic
    time, thread-safe; the table is emptied when it holds more than 1,000 keys)."""

    def __init__(self, interval: float = INTERVAL) -> None:
        self._interval = interval
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self._interval:
                return False
            if len(self._last) > 1000:
                self._last.clear()
            self._last[key] = now
            return True


class RateLimitFilter(logging.Filter):
    """A ``logging.Filter`` passing each distinct WARNING-or-worse line once per interval."""

    def __init__(self, interval: float = INTERVAL) -> None:
        super().__init__()
        self.limit = RateLimit(interval)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        return self.limit.allow(f"{record.name}:{line_key(record.getMessage())}")


_installed: set[str] = set()
_install_lock = threading.Lock()


def rate_limit_loggers(names: Iterable[str]) -> None:
    """Add one ``RateLimitFilter`` to each named logger (once per logger, idempotent)."""
    with _install_lock:
        for name in names:
            if name not in _installed:
                _installed.add(name)
                logging.getLogger(name).addFilter(RateLimitFilter())
