"""What an extraction produces: ``StationItem``, ``Rejection``, ``Extraction``, ``FieldReport``.

See ``docs/internals.md`` (section "Extractors") for the contract.
"""

from __future__ import annotations

from typing import Any, Final, NamedTuple

import attrs

# Stable rejection codes (used in dead-letter headers and metric labels).
EMPTY_VALUE: Final = "empty_value"
NOT_UTF8: Final = "not_utf8"
NOT_JSON: Final = "not_json"
WRONG_SHAPE: Final = "wrong_shape"
MISSING_STATION_ID: Final = "missing_station_id"
TOO_LARGE: Final = "too_large"

REJECTION_REASONS: Final[tuple[str, ...]] = (
    EMPTY_VALUE,
    NOT_UTF8,
    NOT_JSON,
    WRONG_SHAPE,
    MISSING_STATION_ID,
    TOO_LARGE,
)

DETAIL_MAX_CHARS: Final = 200
"""Rejection details are cut to this length (they travel in headers and logs)."""


NO_GUN_VALUES: Final[dict[str, tuple[Any, ...]]] = {}
"""The shared ``gun_values`` of items without guns (read-only, like every item's data)."""


class StationItem(NamedTuple):
    """One station's share of one record (immutable; a ``NamedTuple`` because millions are
    built: one per station per record).

    * ``time``: the record's timestamp (float seconds).
    * ``values``: the configured ``fields`` that were present and valid, after sanitising
      (for a global topic: one list per field, aligned with ``raw``; for an envelope: the
      result without ``station_id``).
    * ``raw``: the whole source object (a global topic: the whole list). Shared with the
      decoded value: never mutate it.
    * ``event_time``: parsed from the topic's ``time_key`` (naive times read as UTC).
    * ``slot``: hourly grid topics only, ``int(event_time // 3600)``.
    * ``device``: the value of ``device_key`` as a string.
    * ``gun_ids`` / ``gun_values``: the per-gun arrays (each the length of ``gun_ids``).
    * ``slot_list``: the ``slot_list_prefix`` 1..N values as one N-slot tuple.

    Like ``raw``, ``values`` and ``gun_values`` are read-only (items without guns share one
    empty ``gun_values``).
    """

    station_id: str
    time: float
    values: dict[str, Any]
    raw: Any
    event_time: float | None = None
    slot: int | None = None
    device: str | None = None
    gun_ids: tuple[str, ...] = ()
    gun_values: dict[str, tuple[Any, ...]] = NO_GUN_VALUES
    slot_list: tuple[Any, ...] | None = None


@attrs.frozen(slots=True)
class Rejection:
    """Why a whole record is bad input: ``reason`` is one of ``REJECTION_REASONS``."""

    reason: str
    detail: str


class Extraction(NamedTuple):
    """The result of ``extract``: either ``rejection`` (and no items) or the items (immutable;
    a ``NamedTuple``: one is built per record).

    ``bad_fields`` counts fields dropped while sanitising; ``skipped_items`` counts elements of
    an array (or list) that were not used: non-objects, objects without a station id, and
    objects without the device or time key their window needs. ``seen_fields`` holds the
    expected keys (see ``expected_fields``) that were present in at least one item.
    """

    items: tuple[StationItem, ...] = ()
    rejection: Rejection | None = None
    bad_fields: int = 0
    seen_fields: frozenset[str] = frozenset()
    skipped_items: int = 0

    @property
    def ok(self) -> bool:
        return self.rejection is None


def reject(reason: str, detail: str) -> Extraction:
    """An ``Extraction`` that rejects the whole record."""
    if len(detail) > DETAIL_MAX_CHARS:
        detail = detail[: DETAIL_MAX_CHARS - 3] + "..."
    return Extraction(rejection=Rejection(reason, detail))


@attrs.frozen(slots=True)
class FieldReport:
    """Which expected keys of a topic never appeared in what was seen (a data-quality warning:
    typically a configured name that does not match the real payload key)."""

    topic: str
    expected: tuple[str, ...]
    missing: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.missing

    def message(self) -> str:
        if not self.missing:
            return f"{self.topic}: every configured field was seen"
        names = ", ".join(self.missing)
        return (
            f"{self.topic}: configured field(s) never seen in the payloads: {names}; "
            f"check the names against the real payload keys"
        )
