"""Extractors: split one record of a topic into per-station items, sanitising fields.

``extract(topic, record, codec) -> Extraction``; see ``docs/internals.md`` ("Extractors").
Plans are compiled once per ``TopicConfig`` object and cached in a ``PlanCache``: each engine
passes its own; callers that pass none share ``DEFAULT_PLANS``.
"""

from __future__ import annotations

from da_core.extractors.extract import extract, field_report
from da_core.extractors.items import (
    EMPTY_VALUE,
    MISSING_STATION_ID,
    NOT_JSON,
    NOT_UTF8,
    REJECTION_REASONS,
    TOO_LARGE,
    WRONG_SHAPE,
    Extraction,
    FieldReport,
    Rejection,
    StationItem,
)
from da_core.extractors.plan import (
    DEFAULT_PLANS,
    PlanCache,
    TopicPlan,
    compile_topic,
    expected_fields,
)

__all__ = [
    "DEFAULT_PLANS",
    "EMPTY_VALUE",
    "MISSING_STATION_ID",
    "NOT_JSON",
    "NOT_UTF8",
    "REJECTION_REASONS",
    "TOO_LARGE",
    "WRONG_SHAPE",
    "Extraction",
    "FieldReport",
    "PlanCache",
    "Rejection",
    "StationItem",
    "TopicPlan",
    "compile_topic",
    "expected_fields",
    "extract",
    "field_report",
]
