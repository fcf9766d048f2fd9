"""Screening extracted items against the intake limits (``da_core.limits``), before any of
them is applied or forwarded.

Policy (SPEC §7), per record:

* a station, device or gun id that is too long or not printable rejects the whole record
  (``bad_station_id`` / ``bad_id``): such a record is forged or corrupt, and its other
  elements are not to be trusted either;
* an element whose event time (``time_key``) is beyond the clock skew bound is skipped and
  counted (``future_items``, and in ``skipped_items``), the rest of the record is used; when
  every element is skipped the record is rejected (``future_timestamp``). A clock that runs
  fast on one device must not cost the other stations of a multi-station message their data.

Ids already seen valid are remembered (``IdMemo``): a stream repeats the same few ids, so the
check costs one set lookup per item.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from da_core.extractors import StationItem
from da_core.limits import BAD_ID, BAD_STATION_ID, FUTURE_TIMESTAMP, IntakeLimits

ID_MEMO_SIZE: Final = 65_536
"""Valid ids remembered at most (the memo is cleared whole when full)."""


class IdMemo:
    """Ids checked valid under the current limits (``clear`` when the limits change)."""

    __slots__ = ("ids",)

    def __init__(self) -> None:
        self.ids: set[str] = set()

    def clear(self) -> None:
        self.ids.clear()

    def remember(self, value: str) -> None:
        ids = self.ids
        if len(ids) >= ID_MEMO_SIZE:
            ids.clear()
        ids.add(value)


class Screened:
    """The outcome of ``screen``: the items to use, how many were skipped as future, or the
    reason (and detail) that rejects the record."""

    __slots__ = ("detail", "future", "items", "reason")

    def __init__(
        self,
        items: Sequence[StationItem],
        future: int = 0,
        reason: str | None = None,
        detail: str = "",
    ) -> None:
        self.items = items
        self.future = future
        self.reason = reason
        self.detail = detail


def screen(
    items: Sequence[StationItem], limits: IntakeLimits, now: float, memo: IdMemo
) -> Screened | None:
    """Check ``items`` (one record's extraction) against ``limits`` at time ``now``; None
    when every item passes (the common case, which allocates nothing)."""
    ok = memo.ids
    skew = limits.max_clock_skew_seconds
    future = 0
    for it in items:
        if it[0] not in ok or (it[6] is not None and it[6] not in ok):
            problem = _ids_problem(it, limits, memo)
            if problem is not None:
                return problem
        for gun in it[7]:
            if gun not in ok:
                problem = _ids_problem(it, limits, memo)
                if problem is not None:
                    return problem
                break
        et = it[4]
        if et is not None and et - now > skew:
            future += 1
    if not future:
        return None
    kept = [it for it in items if it[4] is None or it[4] - now <= skew]
    if not kept:
        first = next(it[4] for it in items if it[4] is not None)
        return Screened(
            (),
            future,
            FUTURE_TIMESTAMP,
            f"every element's event time is more than {skew:g} s ahead (first: {first:.0f}, "
            f"now {now:.0f})",
        )
    return Screened(kept, future)


def _ids_problem(it: StationItem, limits: IntakeLimits, memo: IdMemo) -> Screened | None:
    """Check the ids of one item not known valid yet; remember the valid ones."""
    ok = memo.ids
    checks = [(BAD_STATION_ID, "station", it[0])]
    if it[6] is not None:
        checks.append((BAD_ID, "device", it[6]))
    checks.extend((BAD_ID, "gun", gun) for gun in it[7])
    for reason, what, value in checks:
        if value in ok:
            continue
        problem = limits.id_problem(value)
        if problem is not None:
            return Screened((), 0, reason, f"{what} id {problem}")
        memo.remember(value)
    return None


def record_time_problem(t: float, limits: IntakeLimits, now: float) -> str | None:
    """Why a record's time ``t`` is refused (beyond the skew bound), or None."""
    if t - now > limits.max_clock_skew_seconds:
        return (
            f"record time {t:.0f} is {t - now:.0f} s ahead of now ({now:.0f}); the bound is "
            f"max_clock_skew_seconds={limits.max_clock_skew_seconds:g}"
        )
    return None
