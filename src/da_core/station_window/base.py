"""What every window kind shares: the ``WindowItem`` protocol the windows read, the item type
variable, the hour-slot width, and the size check."""

from __future__ import annotations

from collections.abc import Mapping
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
    @property
    def slot_list(self) -> tuple[Any, ...] | None: ...


ItemT = TypeVar("ItemT", bound=WindowItem)


def _check_size(size: int) -> int:
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise ValueError(f"window size must be an integer >= 1 (got {size!r})")
    return size
