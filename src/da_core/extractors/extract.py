"""``extract``: decode one record and split it into per-station items; ``field_report``."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

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
from da_core.extractors.tree import check_tree, drop_non_finite
from da_core.limits import MAX_NESTING
from da_core.ports import JsonCodec
from da_core.types import Record

PREVIEW_BYTES = 60


class _EveryKey:
    """A collection holding every key: an envelope result's keys are all sanitised."""

    def __contains__(self, key: object) -> bool:
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


_EVERY_KEY = _EveryKey()


def extract(
    topic: TopicConfig, record: Record, codec: JsonCodec, plans: PlanCache | None = None
) -> Extraction:
    """Decode ``record.value`` with ``codec`` and split it per the topic's extractor, with the
    topic's plan from ``plans`` (default: the module-level ``DEFAULT_PLANS``).

    Never raises for any value: bad input comes back as ``Extraction.rejection``. Unless the
    codec vouches for the value (``loads_checked``, see ``JsonCodec``), the decoded value is
    checked first (``check_tree``): a string that cannot be encoded or nesting deeper than
    ``MAX_NESTING`` rejects the record; after the split, non-finite numbers are removed from
    every item's ``raw`` (``drop_non_finite``), those outside the configured fields counted in
    ``bad_fields``. Both routings see the same cleaned items.
    """
    cache = DEFAULT_PLANS if plans is None else plans
    plan = cache.plans.get(id(topic))  # PlanCache.get inlined: once per record
    if plan is None or plan.topic is not topic:
        plan = cache.get(topic)
    data = record.value
    if not data:
        return reject(EMPTY_VALUE, "the record has no value" if data is None else "empty value")
    checked = getattr(codec, "loads_checked", None)
    try:
        if checked is not None:
            value, vouched = checked(data)
        else:
            value, vouched = codec.loads(data), False
    except UnicodeDecodeError as exc:
        return reject(NOT_UTF8, f"{exc.reason} at byte {exc.start}")
    except Exception as exc:  # any codec failure is a decoding failure of this record
        return _decode_failure(data, exc)
    if vouched:
        return plan.split(plan, value, record.timestamp)
    problem, detail = check_tree(value, MAX_NESTING)
    if problem is not None:
        return reject(problem, detail)
    ex = plan.split(plan, value, record.timestamp)
    if ex.rejection is not None:
        return ex
    judged = plan.expected_set if plan.extractor != "envelope" else _EVERY_KEY
    dropped = 0
    for item in ex.items:
        dropped += drop_non_finite(item.raw, judged, plan.slot_prefix)
    return ex._replace(bad_fields=ex.bad_fields + dropped) if dropped else ex


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
