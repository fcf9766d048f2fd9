"""``extract``: decode one record and split it into per-station items; ``field_report``."""

from __future__ import annotations

from collections.abc import Iterable

from da_core.config import TopicConfig
from da_core.extractors.items import (
    EMPTY_VALUE,
    NOT_JSON,
    NOT_UTF8,
    Extraction,
    FieldReport,
    reject,
)
from da_core.extractors.plan import DEFAULT_PLANS, PlanCache, expected_fields
from da_core.ports import JsonCodec
from da_core.types import Record

PREVIEW_BYTES = 60


def extract(
    topic: TopicConfig, record: Record, codec: JsonCodec, plans: PlanCache | None = None
) -> Extraction:
    """Decode ``record.value`` with ``codec`` and split it per the topic's extractor, with the
    topic's plan from ``plans`` (default: the module-level ``DEFAULT_PLANS``).

    Never raises for any value: bad input comes back as ``Extraction.rejection``.
    """
    cache = DEFAULT_PLANS if plans is None else plans
    plan = cache.plans.get(id(topic))  # PlanCache.get inlined: once per record
    if plan is None or plan.topic is not topic:
        plan = cache.get(topic)
    data = record.value
    if not data:
        return reject(EMPTY_VALUE, "the record has no value" if data is None else "empty value")
    try:
        value = codec.loads(data)
    except UnicodeDecodeError as exc:
        return reject(NOT_UTF8, f"{exc.reason} at byte {exc.start}")
    except Exception as exc:  # any codec failure is a decoding failure of this record
        return _decode_failure(data, exc)
    return plan.split(plan, value, record.timestamp)


def _decode_failure(data: object, exc: Exception) -> Extraction:
    if isinstance(data, (bytes, bytearray, memoryview)):
        raw = bytes(data)
        if not raw.strip():
            return reject(EMPTY_VALUE, "the value is only whitespace")
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as err:
            return reject(NOT_UTF8, f"{err.reason} at byte {err.start}")
        preview = raw[:PREVIEW_BYTES].decode("utf-8", "replace")
        return reject(NOT_JSON, f"{type(exc).__name__}: {exc} (value starts {preview!r})")
    return reject(NOT_JSON, f"{type(exc).__name__}: {exc}")


def field_report(seen_fields: Iterable[str], topic: TopicConfig) -> FieldReport:
    """Which of the topic's expected keys (``expected_fields``) are not in ``seen_fields``
    (typically the union of ``Extraction.seen_fields`` over the records of a while)."""
    seen = seen_fields if isinstance(seen_fields, (set, frozenset)) else set(seen_fields)
    expected = expected_fields(topic)
    missing = tuple(f for f in expected if f not in seen)
    return FieldReport(topic=topic.name, expected=expected, missing=missing)
