"""Wording shared by the validators of the settings package."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def suggest(key: str, known: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the known name closest to a misspelt ``key``, else ``''``."""
    close = difflib.get_close_matches(key, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
