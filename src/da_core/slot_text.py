"""Hour slots as text: slot (hours since the epoch, naive UTC) → ``%Y-%m-%d %H:00:00``, with
the calendar arithmetic done in integers (no ``datetime``, no clock) and a small memo of whole
grids, since every station's grid ends at the same few hours."""

from __future__ import annotations

_SLOT_TEXTS: dict[tuple[int, int], tuple[str, ...]] = {}
_SLOT_TEXTS_MAX = 64


def slot_texts(newest: int, size: int) -> tuple[str, ...]:
    """``slot_text`` of the ``size`` slots ending at ``newest``, memoised: the grids of every
    station end at the same few hours, and formatting 168 dates per module input was most of
    the assembly's time. A race between threads only recomputes."""
    key = (newest, size)
    texts = _SLOT_TEXTS.get(key)
    if texts is None:
        texts = tuple(map(slot_text, range(newest - size + 1, newest + 1)))
        if len(_SLOT_TEXTS) >= _SLOT_TEXTS_MAX:
            _SLOT_TEXTS.clear()
        _SLOT_TEXTS[key] = texts
    return texts


def slot_text(slot: int) -> str:
    """Hour slot (hours since the epoch, naive UTC) → ``%Y-%m-%d %H:00:00``."""
    days, hour = divmod(slot, 24)
    y, m, d = civil_from_days(days)
    return f"{y:04d}-{m:02d}-{d:02d} {hour:02d}:00:00"


def civil_from_days(z: int) -> tuple[int, int, int]:
    """Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian calendar."""
    z += 719468
    era = (z if z >= 0 else z - 146096) // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return (y + 1 if m <= 2 else y), m, d
