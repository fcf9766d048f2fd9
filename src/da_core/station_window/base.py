"""What every window kind shares: the ``WindowItem`` protocol the windows read, the item type
variable, the hour-slot width, the size check, and the grid's shared read-only placeholders."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar

SECONDS_PER_SLOT = 3600
"""An hourly grid slot is ``int(event_time // 3600)``."""


class WindowItem(Protocol):
    """The attributes of an extracted item (``extractors.StationItem``) that windows read."""

    @property
    def station_id(self) -> str: ...
    @property
    def time(self) -> float: ...
    @property
    def values(self) -> Mapping[str, Any]: ...
    @property
    def raw(self) -> Any: ...
    @property
    def event_time(self) -> float | None: ...
    @property
    def slot(self) -> int | None: ...
    @property
    def device(self) -> str | None: ...
    @property
    def gun_ids(self) -> tuple[str, ...]: ...
    @property
    def gun_values(self) -> Mapping[str, tuple[Any, ...]]: ...


ItemT = TypeVar("ItemT", bound=WindowItem)

# Shared read-only placeholder for a grid slot without an item: ``dict.get`` on it gives the
# default, which lets ``series``/``gun_series`` map over whole lists without a per-slot branch.
# Never mutated.
_NO_VALUES: dict[str, Any] = {}
_dict_get: Callable[..., Any] = dict.get


def _check_size(size: int) -> int:
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise ValueError(f"window size must be an integer >= 1 (got {size!r})")
    return size


def _as_dict(mapping: Mapping[str, Any]) -> dict[str, Any]:
    # StationItem documents plain dicts; anything else is copied once so reads can use dict.get.
    return mapping if type(mapping) is dict else dict(mapping)


def _gun_rows(item: WindowItem) -> dict[str, tuple[Any, ...]]:
    """``item.gun_values`` restricted to fields as long as ``item.gun_ids`` (as StationItem
    promises), so that ``gun_series`` can transpose rows without checking them."""
    n = len(item.gun_ids)
    rows = item.gun_values
    if not n or not rows:
        return _NO_VALUES
    for v in rows.values():
        if len(v) != n:
            return {f: v for f, v in rows.items() if len(v) == n}
    return _as_dict(rows)
