"""The orjson codec: fast JSON for the hot path, with the stdlib as fallback for odd input.

orjson is several times faster than ``json`` for both directions; it rejects the NaN/Infinity
literals some station systems emit, so a failed fast decode is retried with ``json`` (which
accepts them) and the extractor then treats those fields as missing (SPEC §7).
"""

from __future__ import annotations

import json
from typing import Any

import orjson

_OPTS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def _default(value: Any) -> Any:
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    for name in ("tolist", "to_dict", "_asdict"):
        fn = getattr(value, name, None)
        if callable(fn):
            return fn()
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


class OrjsonCodec:
    """``JsonCodec`` on orjson; output is UTF-8 without ASCII escaping (``ensure_ascii=False``)."""

    def loads(self, data: bytes) -> Any:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            return json.loads(data.decode("utf-8"))

    def loads_checked(self, data: bytes) -> tuple[Any, bool]:
        """``(value, vouched)``: vouched True when orjson's own decoder took ``data``, which
        refuses lone surrogates, non-finite numbers and integers beyond 64 bits, so the core
        need not look for them (nesting may still be up to orjson's 1024 levels)."""
        try:
            return orjson.loads(data), True
        except orjson.JSONDecodeError:
            return json.loads(data.decode("utf-8")), False

    def dumps(self, value: Any) -> bytes:
        return orjson.dumps(value, default=_default, option=_OPTS)
