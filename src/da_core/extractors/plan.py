"""Compiled per-topic extraction plans: everything ``extract`` needs, worked out once.

``TopicConfig`` holds dicts and is not hashable, so a ``PlanCache`` keys plans by ``id(topic)``
and uses an entry only while it still refers to the very same object. Each engine owns its
cache; calls that pass none share one module-level default cache (tests, benchmarks).
"""

from __future__ import annotations

from collections.abc import Callable
from operator import itemgetter
from typing import Any, Final

import attrs

from da_core.config import TopicConfig
from da_core.errors import ConfigError
from da_core.extractors import kinds
from da_core.extractors.items import Extraction
from da_core.extractors.rows import fast_rows
from da_core.extractors.sanitize import (
    AS_IS,
    KIND_ANY,
    KIND_NUMBER,
    KIND_NUMBER_LIST,
    KIND_STRING,
    KIND_STRING_LIST,
    Cleaner,
    cleaner,
    kind_of,
)
from da_core.extractors.timeparse import TimeParser

ENVELOPE_RESULTS_KEY: Final = "results"
ENVELOPE_STATION_KEY: Final = "station_id"
PLAN_CACHE_SIZE: Final = 1024

Splitter = Callable[["TopicPlan", Any, float], Extraction]


@attrs.frozen(slots=True)
class TopicPlan:
    """What to do with one topic's records (see ``compile_topic``)."""

    topic: TopicConfig
    extractor: str
    station_key: str
    wrapper_key: str | None
    fields: tuple[tuple[str, int, frozenset[type]], ...]
    """(name, kind, types taken unchanged) of each configured field, in configuration order."""
    field_kinds: dict[str, int]
    """kind of every typed name (used for envelope results, whose keys are not listed)."""
    max_items: int
    max_len: int
    time_key: str | None
    time_parser: TimeParser
    needs_slot: bool
    device_key: str | None
    needs_device: bool
    gun_key: str | None
    gun_id_field: str
    gun_fields: tuple[tuple[str, Cleaner], ...]
    gun_names: tuple[str, ...]
    """The gun id field and the gun fields (reported absent together when the box is)."""
    slot_keys: tuple[str, ...] | None
    """``prefix1 .. prefixN`` when the size is known; ``()`` when it is read until a gap."""
    slot_getter: Callable[[Any], tuple[Any, ...]] | None
    """``itemgetter`` of the slot keys (a known size of at least 2), for the fast path."""
    slot_prefix: str
    slot_name: str
    slot_kind: int
    expected: tuple[str, ...]
    expected_set: frozenset[str]
    has_extras: bool
    fast_rows: bool
    """Lists are split by ``rows.tally_rows`` (see ``rows.fast_rows``)."""
    row_fields: tuple[tuple[str, frozenset[type]], ...]
    """(name, types taken unchanged) of each configured field, for ``rows.tally_rows``."""
    row_gun_names: tuple[str, ...]
    """The gun field names (without the gun id field), for ``rows.tally_rows``."""
    unusable_detail: str
    split: Splitter


def _element_kind(kind: int) -> int:
    if kind == KIND_NUMBER_LIST:
        return KIND_NUMBER
    if kind == KIND_STRING_LIST:
        return KIND_STRING
    if kind in (KIND_NUMBER, KIND_STRING):
        return kind
    return KIND_ANY


def expected_fields(topic: TopicConfig) -> tuple[str, ...]:
    """The payload keys a topic's configuration expects to see: ``fields``, ``time_key``,
    ``device_key``, ``gun_key``, the gun id field and ``gun_fields`` (when gun fields are
    configured) and the slot list name (when a slot list prefix is). Envelopes: ``fields``."""
    names: list[str] = list(topic.fields)
    if topic.extractor != "envelope":
        for extra in (topic.time_key, topic.device_key):
            if extra:
                names.append(extra)
        if topic.gun_fields:
            if topic.gun_key:
                names.append(topic.gun_key)
            names.append(topic.gun_id_field)
            names.extend(topic.gun_fields)
        if topic.slot_list_prefix:
            names.append(topic.slot_list_name or topic.slot_list_prefix)
    out: list[str] = []
    for n in names:
        if n not in out:
            out.append(n)
    return tuple(out)


def _splitter(topic: TopicConfig) -> Splitter:
    table: dict[str, Splitter] = {
        "object": kinds.split_object,
        "array": kinds.split_array,
        "wrapped": kinds.split_wrapped,
        "global": kinds.split_global,
        "envelope": kinds.split_envelope,
    }
    try:
        return table[topic.extractor]
    except KeyError:
        raise ConfigError(
            f"topics.{topic.name}.extractor: {topic.extractor!r} is not one of {', '.join(table)}"
        ) from None


def _unusable_detail(topic: TopicConfig, needs_slot: bool, needs_device: bool) -> str:
    needs = []
    if needs_slot:
        needs.append(f"a valid {topic.time_key!r} (the hourly_grid window needs it)")
    if needs_device:
        needs.append(f"a valid {topic.device_key!r} (the per_device window needs it)")
    return "no item carries " + " and ".join(needs) if needs else "no usable item"


def build_plan(topic: TopicConfig) -> TopicPlan:
    """Compile a topic's plan (uncached; see ``compile_topic``)."""
    types = topic.field_types
    field_kinds = {name: kind_of(t) for name, t in types.items()}
    fields = tuple(
        (f, k, AS_IS.get(k, frozenset()))
        for f in topic.fields
        for k in (field_kinds.get(f, KIND_ANY),)
    )
    gun_fields = tuple((f, cleaner(field_kinds.get(f, KIND_ANY))) for f in topic.gun_fields)
    needs_slot = topic.window == "hourly_grid" and topic.time_key is not None
    needs_device = topic.window == "per_device" and topic.device_key is not None
    slot_keys: tuple[str, ...] | None = None
    slot_prefix = topic.slot_list_prefix or ""
    slot_name = topic.slot_list_name or slot_prefix
    slot_kind = KIND_ANY
    if slot_prefix:
        n = topic.slot_list_size
        slot_keys = tuple(f"{slot_prefix}{i}" for i in range(1, n + 1)) if n > 0 else ()
        slot_kind = _element_kind(field_kinds.get(slot_name, KIND_ANY))
    expected = expected_fields(topic)
    envelope = topic.extractor == "envelope"
    return TopicPlan(
        topic=topic,
        extractor=topic.extractor,
        station_key=ENVELOPE_STATION_KEY if envelope else topic.station_key,
        wrapper_key=ENVELOPE_RESULTS_KEY if envelope else topic.wrapper_key,
        fields=fields,
        field_kinds=field_kinds,
        max_items=topic.max_items,
        max_len=topic.max_array_len,
        time_key=topic.time_key,
        time_parser=TimeParser(topic.time_format),
        needs_slot=needs_slot,
        device_key=topic.device_key,
        needs_device=needs_device,
        gun_key=topic.gun_key,
        gun_id_field=topic.gun_id_field,
        gun_fields=gun_fields,
        gun_names=(topic.gun_id_field, *topic.gun_fields),
        slot_keys=slot_keys,
        slot_getter=itemgetter(*slot_keys) if slot_keys and len(slot_keys) > 1 else None,
        slot_prefix=slot_prefix,
        slot_name=slot_name,
        slot_kind=slot_kind,
        expected=expected,
        expected_set=frozenset(expected),
        has_extras=bool(topic.time_key or topic.device_key or gun_fields or slot_prefix),
        fast_rows=topic.extractor in ("array", "wrapped") and fast_rows(topic, field_kinds),
        row_fields=tuple((f, a) for f, _, a in fields),
        row_gun_names=topic.gun_fields,
        unusable_detail=_unusable_detail(topic, needs_slot, needs_device),
        split=_splitter(topic),
    )


class PlanCache:
    """Compiled plans by topic object, at most ``size`` of them (cleared whole when full: the
    catalog's topics are few, so only a stream of throw-away ``TopicConfig``s ever fills it).

    Invariant: ``plans[id(t)].topic is t`` for every live entry that ``get`` returns; an entry
    whose id was reused by another object is replaced on its next ``get``."""

    __slots__ = ("plans", "size")

    def __init__(self, size: int = PLAN_CACHE_SIZE) -> None:
        self.plans: dict[int, TopicPlan] = {}
        """``id(topic)`` -> plan; read directly by ``extract`` on its hot path."""
        self.size = size

    def get(self, topic: TopicConfig) -> TopicPlan:
        """The topic's plan, compiled on first use and cached while the same object is used."""
        plan = self.plans.get(id(topic))
        if plan is not None and plan.topic is topic:
            return plan
        plan = build_plan(topic)
        if len(self.plans) >= self.size:
            self.plans.clear()
        self.plans[id(topic)] = plan
        return plan

    def __len__(self) -> int:
        return len(self.plans)


DEFAULT_PLANS = PlanCache()
"""The cache of callers that pass none (tests, benchmarks, tools); engines bring their own."""


def compile_topic(topic: TopicConfig, cache: PlanCache | None = None) -> TopicPlan:
    """The topic's plan from ``cache`` (default: ``DEFAULT_PLANS``), compiled on first use."""
    return (DEFAULT_PLANS if cache is None else cache).get(topic)
