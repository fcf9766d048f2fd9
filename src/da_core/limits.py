"""Intake limits: the bounds a record must respect to enter the engine (SPEC §7, bad input).

``IntakeLimits`` is part of the ``Catalog`` (``Catalog.limits``): the application fills it
from the ``service`` settings (``max_clock_skew_seconds``, ``max_id_length``,
``max_stations``, ``station_allow_list``) and a reload applies a new one. The core never reads
the clock: the engine compares times with the ``now`` its caller passes.

Also here: the stable reason codes of the records these limits turn away, and
``safe_text``, the one way the core writes a value taken from a record (an id, a topic) into a
log line.
"""

from __future__ import annotations

import math
from typing import Final

import attrs

from da_core.errors import ConfigError

# Reason codes (dead-letter ``da.reason`` header, ``bad_input`` counter labels).
BAD_STRING: Final = "bad_string"
"""A string (a key or a value, anywhere in the record) that cannot be encoded again: a lone
surrogate escape such as ``"\\ud800"``."""
TOO_DEEP: Final = "too_deep"
"""Nesting deeper than ``MAX_NESTING``, which the encoders of the loop cannot write again."""
FUTURE_TIMESTAMP: Final = "future_timestamp"
"""A record time (or, for every element of the record, an event time) later than ``now`` plus
``max_clock_skew_seconds``."""
BAD_STATION_ID: Final = "bad_station_id"
"""A station id longer than ``max_id_length`` or holding a character that is not printable."""
BAD_ID: Final = "bad_id"
"""A device or gun id longer than ``max_id_length`` or holding a non-printable character."""
STATION_LIMIT: Final = "station_limit"
"""A new station while the engine already keeps ``max_stations``."""
STATION_NOT_ALLOWED: Final = "station_not_allowed"
"""A station missing from ``station_allow_list``."""

LIMIT_REASONS: Final[tuple[str, ...]] = (
    BAD_STRING,
    TOO_DEEP,
    FUTURE_TIMESTAMP,
    BAD_STATION_ID,
    BAD_ID,
    STATION_LIMIT,
    STATION_NOT_ALLOWED,
)

MAX_NESTING: Final = 200
"""The deepest nesting (containers inside containers) a record may have. orjson writes at most
254 levels and a rekey share adds two (``{wrapper: [...]}``); 200 leaves room for that and is
far beyond any payload of SPEC §2."""

SAFE_TEXT_CHARS: Final = 80
"""``safe_text`` cuts longer values to this many characters."""


def _non_negative(inst: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value >= 0:
        raise ConfigError(f"{attribute.name}: must be >= 0 (got {value!r})")


def _at_least_one(inst: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 1:
        raise ConfigError(f"{attribute.name}: must be >= 1 (got {value!r})")


@attrs.frozen(slots=True)
class IntakeLimits:
    """The bounds of intake (see the module docstring).

    * ``max_clock_skew_seconds``: a record time or event time (``time_key``) later than
      ``now`` plus this is a future timestamp (``math.inf``: no bound).
    * ``max_id_length``: the longest station, device or gun id, in characters.
    * ``max_stations``: the most stations the engine keeps; a record for a new station
      beyond it is turned away (``station_limit``).
    * ``station_allow_list``: when set, the only station ids accepted (``station_not_allowed``
      for the others).
    """

    max_clock_skew_seconds: float = attrs.field(default=300.0, validator=_non_negative)
    max_id_length: int = attrs.field(default=128, validator=_at_least_one)
    max_stations: int = attrs.field(default=100_000, validator=_at_least_one)
    station_allow_list: frozenset[str] | None = None

    def id_problem(self, value: str) -> str | None:
        """Why ``value`` is not a usable id (too long, not printable), or None."""
        if len(value) > self.max_id_length:
            return f"{len(value)} characters, more than max_id_length={self.max_id_length}"
        if not value.isprintable():
            return f"non-printable character in {safe_text(value)}"
        return None

    def is_future(self, t: float | None, now: float) -> bool:
        """Whether time ``t`` (seconds) is beyond the skew bound at ``now``."""
        return t is not None and t - now > self.max_clock_skew_seconds


DEFAULT_LIMITS: Final = IntakeLimits()
"""The limits of a catalog built without service settings."""

NO_LIMITS: Final = IntakeLimits(
    max_clock_skew_seconds=math.inf, max_id_length=2**62, max_stations=2**62
)
"""Limits that turn nothing away (tools that replay old data)."""


def safe_text(value: object, limit: int = SAFE_TEXT_CHARS) -> str:
    """``value`` as one printable line for a log: ``repr`` of a string (escapes newlines,
    control characters and lone surrogates), cut to ``limit`` characters with the full length
    noted."""
    text = value if isinstance(value, str) else str(value)
    if len(text) > limit:
        return f"{text[:limit]!r}... ({len(text)} characters)"
    return repr(text)
