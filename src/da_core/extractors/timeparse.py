"""Parsing event times (``sendTime``...) into float seconds since the epoch.

Naive times are read as UTC. The default format ``%Y-%m-%d %H:%M:%S`` is parsed by slicing
(``datetime.strptime`` is slow); other formats, and default-format strings that are not exactly
``YYYY-MM-DD HH:MM:SS``, go through ``strptime``. Results are memoised per parser: in a stream
the same hours repeat (every station's REALTIME record of one hour carries the same string).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Final

DEFAULT_FORMAT: Final = "%Y-%m-%d %H:%M:%S"
CACHE_SIZE: Final = 4096
MAX_TEXT: Final = 64
"""Longer strings are not times (and are not worth a strptime call)."""
MS_THRESHOLD: Final = 1e11
"""A numeric time above this is taken as milliseconds (1e11 s is in the year 5138)."""

_DAYS_IN_MONTH: Final = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_DIGITS: Final = frozenset("0123456789")


def days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _is_leap(y: int) -> bool:
    return y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)


def parse_canonical(s: str) -> float | None:
    """``YYYY-MM-DD HH:MM:SS`` (exactly 19 characters) as UTC seconds; None otherwise."""
    if (
        len(s) != 19
        or s[4] != "-"
        or s[7] != "-"
        or s[10] != " "
        or s[13] != ":"
        or s[16] != ":"
        or not _DIGITS.issuperset(s[0:4] + s[5:7] + s[8:10] + s[11:13] + s[14:16] + s[17:19])
    ):
        return None
    y, mo, d = int(s[0:4]), int(s[5:7]), int(s[8:10])
    h, mi, se = int(s[11:13]), int(s[14:16]), int(s[17:19])
    if y < 1 or not 1 <= mo <= 12 or d < 1 or h > 23 or mi > 59 or se > 59:
        return None
    dim = 29 if mo == 2 and _is_leap(y) else _DAYS_IN_MONTH[mo]
    if d > dim:
        return None
    return float(days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se)


def parse_with_format(s: str, fmt: str) -> float | None:
    """``datetime.strptime`` with ``fmt``; naive results read as UTC; None when invalid."""
    try:
        dt = datetime.strptime(s, fmt)
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=timezone.utc)
        return dt.timestamp()
    except (ValueError, OverflowError, OSError):
        return None


class TimeParser:
    """Parses one topic's time values (memoised; safe to share between threads: a race only
    recomputes a value)."""

    __slots__ = ("fmt", "memo")

    def __init__(self, fmt: str = DEFAULT_FORMAT) -> None:
        self.fmt = fmt
        self.memo: dict[str, float | None] = {}
        """String -> ``parse`` result; read directly by ``rows.tally_rows`` on its hot path,
        written only by ``parse``."""

    def __len__(self) -> int:
        """How many strings are memoised (at most ``CACHE_SIZE``)."""
        return len(self.memo)

    def parse(self, v: Any) -> float | None:
        """A time value as float seconds, or None when it is not a valid time.

        Strings use the format; finite numbers are epoch seconds (milliseconds above
        ``MS_THRESHOLD``); anything else is None.
        """
        if type(v) is str:
            cache = self.memo
            try:
                return cache[v]
            except KeyError:
                pass
            res = self._parse_text(v)
            if len(cache) >= CACHE_SIZE:
                cache.clear()
            cache[v] = res
            return res
        return self._parse_other(v)

    def _parse_text(self, s: str) -> float | None:
        if len(s) > MAX_TEXT:
            return None
        if self.fmt == DEFAULT_FORMAT:
            res = parse_canonical(s)
            if res is not None:
                return res
        return parse_with_format(s, self.fmt)

    def _parse_other(self, v: Any) -> float | None:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            if isinstance(v, str):
                return self._parse_text(str(v))
            return None
        f = float(v) if isinstance(v, float) or abs(v) < 1e300 else float("inf")
        if f - f != 0.0:
            return None
        return f / 1000.0 if abs(f) > MS_THRESHOLD else f
