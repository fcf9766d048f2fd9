"""The standard-library JSON codec (the default ``JsonCodec``; the app injects orjson)."""

from __future__ import annotations

import json
import math
from typing import Any


class StdlibJsonCodec:
    """``json`` based codec. NaN/Infinity literals decode to floats (the extractors treat
    them as missing)."""

    def loads(self, data: bytes) -> Any:
        text = data.decode("utf-8")  # UnicodeDecodeError is a ValueError
        return json.loads(text)

    def dumps(self, value: Any) -> bytes:
        return json.dumps(
            value, ensure_ascii=False, separators=(",", ":"), default=_default
        ).encode("utf-8")


def _default(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    to_dict = getattr(value, "tolist", None) or getattr(value, "to_dict", None)
    if callable(to_dict):
        return to_dict()
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")
