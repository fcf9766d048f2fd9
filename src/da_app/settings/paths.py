"""Problems name keys the way the user's file wrote them.

The validators name a key in one of two internal forms: Python subscripts under the canonical
section (``KAFKA_CONFIG['consumer']['x']``, ``TOPIC_DETAIL['X'].fields``) or the catalog's
dotted form (``topics.X.window_size``, ``modules.m.inputs``, from ``da_core.config``).
``rename_problems`` rewrites the path at the head of each problem (the text before its first
``:``) into the user's form:

* a ``config.py`` (or a mapping given in code): Python subscripts under the section name the
  file used, ``TOPIC_DETAIL['X']['window_size']``, ``KAFKA_CONFIG['consumer']['x']``;
* a YAML or JSON file: the YAML path under the section name the file used,
  ``topics.X.window_size`` or ``TOPIC_DETAIL.X.window_size``, ``kafka.consumer.x``.

A section the file did not write is named canonically (``TOPIC_DETAIL``…) for Python and by
its lower-case name (``topics``…) for YAML. Problems whose head is not a section path (``env
LOG_LEVEL: ...``, ``max_poll_records: ...``) are left as they are.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Final, Literal

Style = Literal["python", "yaml"]

_CANONICAL: Final[Mapping[str, str]] = {
    "topics": "TOPIC_DETAIL",
    "modules": "MODULES",
}
"""The catalog's dotted heads (``da_core.config``) -> the section they are under."""

_YAML_NAMES: Final[Mapping[str, str]] = {
    "KAFKA_CONFIG": "kafka",
    "OFFSET_COMMIT_CONFIG": "offset_commit",
    "TOPIC_DETAIL": "topics",
    "MODULE_DEPENDENCIES": "module_dependencies",
    "MODULE_OUTPUT_TOPICS": "module_output_topics",
    "MODULES": "modules",
    "SERVICE_CONFIG": "service",
}

_HEAD: Final = re.compile(
    r"^(?P<section>[A-Za-z_]+)(?P<path>(?:\[(?:'[^']*'|\"[^\"]*\")\]|\.[^.\[\]:\s']+)*):"
)
_SEGMENT: Final = re.compile(r"\['([^']*)'\]|\[\"([^\"]*)\"\]|\.([^.\[\]:\s']+)")


def style_of(source: str | None) -> Style:
    """The naming style of a configuration's source file (None: given in code, Python)."""
    if source is not None and source.lower().endswith((".yaml", ".yml", ".json")):
        return "yaml"
    return "python"


def rename_problems(problems: Iterable[str], written: Mapping[str, str], style: Style) -> list[str]:
    """``problems`` with their head paths in ``style``; ``written`` maps a canonical section
    (``TOPIC_DETAIL``) to the key the file used for it (``topics``)."""
    return [_rename(p, written, style) for p in problems]


def _rename(problem: str, written: Mapping[str, str], style: Style) -> str:
    m = _HEAD.match(problem)
    if m is None:
        return problem
    head = m.group("section")
    canon = _CANONICAL.get(head, head)
    if canon not in _YAML_NAMES:
        return problem
    segments = [a or b or c for a, b, c in _SEGMENT.findall(m.group("path"))]
    own = written.get(canon) or (canon if style == "python" else _YAML_NAMES[canon])
    if style == "yaml":
        path = ".".join([own, *segments])
    else:
        path = own + "".join(f"[{s!r}]" for s in segments)
    return path + ":" + problem[m.end() :]


def written_sections(raw: Mapping[Any, Any], aliases: Mapping[str, str]) -> dict[str, str]:
    """Canonical section -> the key ``raw`` wrote it under (the first, when given twice)."""
    out: dict[str, str] = {}
    for key in raw:
        canon = aliases.get(key) if isinstance(key, str) else None
        if canon is not None:
            out.setdefault(canon, key)
    return out
