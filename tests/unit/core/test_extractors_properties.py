"""Extractors: properties over arbitrary input (never raises, invariants hold), the fast time
arithmetic against the standard library, and another codec (orjson) giving the same items."""

from __future__ import annotations

import calendar
import json
import math
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from da_core.catalog import DEFAULT_TOPICS
from da_core.codec import StdlibJsonCodec
from da_core.config import TopicConfig
from da_core.extractors import (
    NOT_UTF8,
    REJECTION_REASONS,
    Extraction,
    expected_fields,
    extract,
)
from da_core.extractors.timeparse import days_from_civil, parse_canonical
from da_core.types import Record

CODEC = StdlibJsonCodec()
ENVELOPE = TopicConfig(name="MODULE-OUTPUT-X", extractor="envelope")
ALL = [*DEFAULT_TOPICS, ENVELOPE]
NAMES = [t.name for t in ALL]

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=8), children, max_size=6)
    ),
    max_leaves=30,
)


def run(topic: TopicConfig, data: bytes | None) -> Extraction:
    return extract(topic, Record(topic.name, 0, 0, data, timestamp=5.0), CODEC)


def reason(ex: Extraction) -> str | None:
    """The rejection code, or None when the record was accepted."""
    return None if ex.rejection is None else ex.rejection.reason


def finite_everywhere(value: Any) -> bool:
    stack = [value]
    while stack:
        x = stack.pop()
        if isinstance(x, float) and not math.isfinite(x):
            return False
        if isinstance(x, (list, tuple)):
            stack.extend(x)
        elif isinstance(x, dict):
            stack.extend(x.values())
    return True


def check_invariants(topic: TopicConfig, ex: Extraction) -> None:
    assert ex.bad_fields >= 0
    assert ex.skipped_items >= 0
    if ex.rejection is not None:
        assert ex.items == ()
        assert ex.rejection.reason in REJECTION_REASONS
        return
    assert ex.seen_fields <= set(expected_fields(topic))
    for item in ex.items:
        assert isinstance(item.station_id, str)
        assert item.station_id
        assert item.station_id == item.station_id.strip()
        assert item.time == 5.0
        assert finite_everywhere([item.values, item.gun_values, item.slot_list])
        if topic.extractor not in ("envelope", "global"):
            assert set(item.values) <= set(topic.fields)
        for series in item.gun_values.values():
            assert len(series) == len(item.gun_ids)
        if topic.window == "hourly_grid":
            assert item.event_time is not None
            assert item.slot == int(item.event_time // 3600)


@pytest.mark.parametrize("topic", ALL, ids=NAMES)
@given(data=st.binary(max_size=200))
def test_arbitrary_bytes_never_raise(topic: TopicConfig, data: bytes) -> None:
    check_invariants(topic, run(topic, data))


@pytest.mark.parametrize("topic", ALL, ids=NAMES)
@given(value=json_values)
def test_arbitrary_json_never_raises(topic: TopicConfig, value: Any) -> None:
    check_invariants(topic, run(topic, json.dumps(value).encode()))


def shaped(topic: TopicConfig) -> st.SearchStrategy[Any]:
    """Objects made of the topic's own keys (holding anything), in the topic's shape: these
    reach the field, gun, slot and time code far more often than arbitrary JSON."""
    keys = [
        *expected_fields(topic),
        topic.station_key,
        "station_id",
        topic.gun_id_field,
        *(f"{topic.slot_list_prefix}{i}" for i in (1, 2, 48) if topic.slot_list_prefix),
    ]
    ids = st.sampled_from(["S1", " S2 ", "", 7, True, None, 1.5])
    times = st.sampled_from(["2026-11-27 10:00:00", "2026-02-30 00:00:00", "x", 1795773600])
    leaf = json_values | ids | times | st.lists(st.floats(), max_size=4)
    obj = st.dictionaries(st.sampled_from(keys), leaf, max_size=len(keys)).map(
        lambda d: (
            {**d, "gunPower": {k: v for k, v in d.items() if k != "gunPower"}}
            if "gunPower" in d
            else d
        )
    )
    elements = st.lists(obj | scalars, max_size=5)
    wrapper = "results" if topic.extractor == "envelope" else topic.wrapper_key
    if topic.extractor == "object":
        return obj
    if wrapper:
        return elements.map(lambda xs: {wrapper: xs})
    return elements


@pytest.mark.parametrize("topic", ALL, ids=NAMES)
@settings(max_examples=150)
@given(data=st.data())
def test_shaped_input_never_raises(topic: TopicConfig, data: st.DataObject) -> None:
    value = data.draw(shaped(topic))
    check_invariants(topic, run(topic, json.dumps(value).encode()))


@given(st.dates())
def test_days_from_civil_matches_the_standard_library(d: Any) -> None:
    expected = calendar.timegm((d.year, d.month, d.day, 0, 0, 0)) // 86400
    assert days_from_civil(d.year, d.month, d.day) == expected


@given(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)))
def test_canonical_parse_matches_timegm(dt: datetime) -> None:
    text = (
        f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d} {dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}"
    )
    assert parse_canonical(text) == float(calendar.timegm(dt.timetuple()))


# ------------------------------------------------------------------ another codec: orjson


class OrjsonCodec:
    def __init__(self) -> None:
        self.orjson = pytest.importorskip("orjson")

    def loads(self, data: bytes) -> Any:
        return self.orjson.loads(data)

    def dumps(self, value: Any) -> bytes:
        out: bytes = self.orjson.dumps(value)
        return out


def samples() -> list[Path]:
    path = (Path(__file__).resolve().parents[3] / "src" / "da_app" / "samples").resolve()
    return sorted(path.glob("*.json")) if path.is_dir() else []


def topic_of(path: Path) -> TopicConfig:
    if path.stem.startswith("MODULE-OUTPUT-"):
        return TopicConfig(name=path.stem, extractor="envelope")
    return {t.name: t for t in DEFAULT_TOPICS}[path.stem]


@pytest.mark.parametrize("path", samples(), ids=[p.stem for p in samples()])
def test_orjson_codec_gives_the_same_items_as_the_stdlib_codec(path: Path) -> None:
    topic = topic_of(path)
    record = Record(topic.name, 0, 0, path.read_bytes(), timestamp=5.0)
    assert extract(topic, record, OrjsonCodec()) == extract(topic, record, CODEC)


def test_orjson_invalid_utf8_is_not_utf8() -> None:
    topic = DEFAULT_TOPICS[0]
    ex = extract(topic, Record(topic.name, 0, 0, b'[{"stationId": "\xff"}]'), OrjsonCodec())
    assert reason(ex) == NOT_UTF8
