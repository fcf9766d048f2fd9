"""Extractors: the sample payload of every topic, and malformed variants for every topic.

The samples are the spec's, shipped with the package in ``src/da_app/samples`` (a test checks
they are unchanged copies).
"""

from __future__ import annotations

import calendar
import json
import math
from pathlib import Path
from typing import Any

import attrs
import pytest

from da_core.catalog import DEFAULT_TOPICS
from da_core.codec import StdlibJsonCodec
from da_core.config import TopicConfig
from da_core.extractors import (
    EMPTY_VALUE,
    MISSING_STATION_ID,
    NOT_JSON,
    NOT_UTF8,
    TOO_LARGE,
    WRONG_SHAPE,
    Extraction,
    extract,
    field_report,
)
from da_core.types import GLOBAL_STATION, Record

CODEC = StdlibJsonCodec()
RECORD_TIME = 1_795_800_000.25
ENVELOPE = TopicConfig(name="MODULE-OUTPUT-PV_PREDICTION", extractor="envelope")
TOPICS: dict[str, TopicConfig] = {t.name: t for t in (*DEFAULT_TOPICS, ENVELOPE)}
ALL = list(TOPICS.values())
STATION_TOPICS = [t for t in ALL if t.extractor != "global"]
LIST_TOPICS = [t for t in ALL if t.extractor in ("array", "wrapped", "envelope")]
GLOBAL_TOPICS = [t for t in ALL if t.extractor == "global"]
KEYED_TOPICS = [t for t in ALL if t.extractor == "envelope" or t.wrapper_key]
SPLIT_KEYED_TOPICS = [t for t in KEYED_TOPICS if t.extractor != "global"]


def ids(topics: list[TopicConfig]) -> list[str]:
    return [t.name for t in topics]


def samples_dir() -> Path:
    here = Path(__file__).resolve()
    path = (here.parents[3] / "src" / "da_app" / "samples").resolve()
    if not path.is_dir():
        pytest.skip(
            f"sample payloads not found at {path} (copies of the spec samples ship in da_app)"
        )
    return path


def sample_names(envelopes: bool = True) -> list[str]:
    """Sample topic names, for parametrising (a placeholder that skips when absent)."""
    path = (Path(__file__).resolve().parents[3] / "src" / "da_app" / "samples").resolve()
    names = sorted(p.stem for p in path.glob("*.json")) if path.is_dir() else []
    if not envelopes:
        names = [n for n in names if not n.startswith("MODULE-OUTPUT-")]
    return names or ["<samples absent>"]


def topic_of(name: str) -> TopicConfig:
    if name.startswith("MODULE-OUTPUT-"):
        return TopicConfig(name=name, extractor="envelope")
    return TOPICS[name]


def run(topic: TopicConfig, value: bytes | None, ts: float = RECORD_TIME) -> Extraction:
    return extract(topic, Record(topic.name, 0, 7, value, timestamp=ts), CODEC)


def reason(ex: Extraction) -> str | None:
    """The rejection code, or None when the record was accepted."""
    return None if ex.rejection is None else ex.rejection.reason


def run_sample(name: str) -> Extraction:
    data = (samples_dir() / f"{name}.json").read_bytes()
    return run(topic_of(name), data)


def dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8")  # NaN/Infinity literals kept


def utc(text: str) -> float:
    return float(calendar.timegm(tuple(map(int, text.replace("-", " ").replace(":", " ").split()))))


# ----------------------------------------------------------------- synthetic payloads per topic

GOOD_VALUE = {
    "number": 1.5,
    "string": "x",
    "number_list": [1.0, 2.0],
    "string_list": ["a", "b"],
    "object": {"k": 1},
    "any": 7,
}
WRONG_VALUE = {
    "number": "not a number",
    "string": {"a": 1},
    "number_list": ["x"],
    "string_list": [[1]],
    "object": [1],
    "any": math.nan,
}


def kind(topic: TopicConfig, field: str) -> str:
    return topic.field_types.get(field, "any")


def good_object(topic: TopicConfig, sid: Any = "S1") -> dict[str, Any]:
    """A valid source object of the topic for station ``sid`` (every expected key present)."""
    if topic.extractor == "envelope":
        return {"station_id": sid, "prediction": [1.0, 2.0], "confidence": 0.5}
    o: dict[str, Any] = {} if topic.extractor == "global" else {topic.station_key: sid}
    for f in topic.fields:
        o[f] = GOOD_VALUE[kind(topic, f)]
    if topic.time_key:
        o[topic.time_key] = "2026-11-27 10:00:00"
    if topic.device_key:
        o[topic.device_key] = f"D-{sid}"
    if topic.gun_fields:
        box = {topic.gun_id_field: ["01", "02"], **{f: [1.0, 2.0] for f in topic.gun_fields}}
        if topic.gun_key:
            o[topic.gun_key] = box
        else:
            o.update(box)
    if topic.slot_list_prefix:
        for i in range(1, topic.slot_list_size + 1):
            o[f"{topic.slot_list_prefix}{i}"] = "01"
    return o


def payload(topic: TopicConfig, objects: list[Any]) -> Any:
    """The objects in the topic's payload shape (an ``object`` topic takes the first)."""
    if topic.extractor == "object":
        return objects[0]
    if topic.extractor == "array":
        return objects
    if topic.extractor == "envelope":
        return {"batch_id": "m-000001", "module": "m", "timestamp": 1.0, "results": objects}
    if topic.wrapper_key:
        return {topic.wrapper_key: objects}
    return objects


def run_objects(topic: TopicConfig, objects: list[Any]) -> Extraction:
    return run(topic, dumps(payload(topic, objects)))


# ----------------------------------------------------------------------------- sample payloads


def test_every_sample_file_has_a_configured_topic() -> None:
    for p in samples_dir().glob("*.json"):
        assert p.stem in TOPICS or p.stem.startswith("MODULE-OUTPUT-"), p.name


@pytest.mark.parametrize("name", sample_names())
def test_sample_extracts_without_rejection(name: str) -> None:
    ex = run_sample(name)
    assert ex.rejection is None
    assert ex.items


@pytest.mark.parametrize("name", sample_names())
def test_sample_has_no_bad_fields_or_skipped_items(name: str) -> None:
    ex = run_sample(name)
    assert (ex.bad_fields, ex.skipped_items) == (0, 0)


@pytest.mark.parametrize("name", sample_names())
def test_sample_items_carry_the_record_time(name: str) -> None:
    assert {item.time for item in run_sample(name).items} == {RECORD_TIME}


@pytest.mark.parametrize("name", sample_names())
def test_sample_shows_every_configured_field(name: str) -> None:
    """The configured field names match the real payload keys (normalClap-style traps)."""
    report = field_report(run_sample(name).seen_fields, topic_of(name))
    assert report.missing == ()


@pytest.mark.parametrize("name", sample_names(envelopes=False))
def test_sample_values_hold_only_configured_fields(name: str) -> None:
    items = run_sample(name).items
    topic = topic_of(name)
    for item in items:
        assert set(item.values) <= set(topic.fields)


def test_realtime_sample_splits_into_three_hourly_items() -> None:
    ex = run_sample("SCHEDULE-STATION-REALTIME-DATA")
    assert [(i.station_id, i.slot) for i in ex.items] == [
        ("S0001", int(utc("2026-11-27 09:00:00") // 3600)),
        ("S0001", int(utc("2026-11-27 10:00:00") // 3600)),
        ("S0002", int(utc("2026-11-27 10:00:00") // 3600)),
    ]


def test_realtime_sample_event_time_is_send_time_read_as_utc() -> None:
    first = run_sample("SCHEDULE-STATION-REALTIME-DATA").items[0]
    assert first.event_time == utc("2026-11-27 09:00:00")


def test_realtime_sample_values_are_the_station_fields() -> None:
    first = run_sample("SCHEDULE-STATION-REALTIME-DATA").items[0]
    assert first.values == {"outputPowerPerStationAvg": 125.5, "outputPowerPerStationMax": 243.0}


def test_realtime_sample_guns_are_aligned_to_gun_ids() -> None:
    second = run_sample("SCHEDULE-STATION-REALTIME-DATA").items[1]
    assert second.gun_ids == ("01", "02")
    assert second.gun_values == {
        "outputPowerPerGunAvg": (40.0, 12.5),
        "outputPowerPerGunMax": (98.0, 60.1),
    }


def test_car_price_sample_gathers_fee_no_into_48_slots() -> None:
    (item,) = run_sample("SCHEDULE-CAR-PRICE").items
    assert item.slot_list is not None
    assert len(item.slot_list) == 48
    assert item.slot_list[:17] == ("03",) * 16 + ("02",)
    assert item.slot_list[34] == "00"


def test_car_price_sample_orders_by_send_time_without_slot() -> None:
    (item,) = run_sample("SCHEDULE-CAR-PRICE").items
    assert item.event_time == utc("2026-11-01 00:00:05")
    assert item.slot is None


def test_car_price_sample_values_are_the_fee_fields() -> None:
    (item,) = run_sample("SCHEDULE-CAR-PRICE").items
    assert item.station_id == "S0001"
    assert set(item.values) == set(TOPICS["SCHEDULE-CAR-PRICE"].fields)
    assert item.values["lossRate"] == 1


def test_param_sample_yields_both_stations() -> None:
    items = run_sample("SCHEDULE-STATION-PARAM").items
    assert [i.station_id for i in items] == ["S0001", "S0002"]
    assert items[1].values["gunNum"] == 4


def test_param_sample_raw_keeps_unconfigured_structures() -> None:
    item = run_sample("SCHEDULE-STATION-PARAM").items[0]
    assert item.raw["power"] == {"powerIds": ["PW-S0001-1", "PW-S0001-2"]}
    assert "power" not in item.values


def test_calendar_sample_yields_one_global_item() -> None:
    (item,) = run_sample("SCHEDULE-ENVIRONMENT-CALENDAR").items
    assert item.station_id == GLOBAL_STATION
    assert [d["date"] for d in item.raw] == ["2026-11-27", "2026-11-28", "2026-11-29"]


def test_calendar_sample_values_are_columns() -> None:
    (item,) = run_sample("SCHEDULE-ENVIRONMENT-CALENDAR").items
    assert item.values == {
        "date": ["2026-11-27", "2026-11-28", "2026-11-29"],
        "isHoliday": [0, 0, 0],
        "isWeekend": [0, 1, 1],
    }


def test_envelope_sample_splits_results_by_station() -> None:
    items = run_sample("MODULE-OUTPUT-PV_PREDICTION").items
    assert [i.station_id for i in items] == ["S0001", "S0002"]


def test_envelope_sample_values_are_the_result_without_station_id() -> None:
    first = run_sample("MODULE-OUTPUT-PV_PREDICTION").items[0]
    assert first.values == {"prediction": [0.0, 1.2, 3.4, 5.0], "confidence": 0.93}
    assert first.raw["station_id"] == "S0001"


def test_weather_sample_keeps_unicode_text() -> None:
    items = run_sample("SCHEDULE-ENVIRONMENT-WEATHER").items
    assert [i.values["weatherSituationTomorrow"] for i in items] == ["多云", "阴"]


@pytest.mark.parametrize(
    ("name", "device"),
    [
        ("SCHEDULE-DEVICE-HOST-DCDC", "H-S0001-01"),
        ("SCHEDULE-DEVICE-HOST-ACDC", "H-S0001-01"),
        ("SCHEDULE-DEVICE-STORAGE", "ST-S0001-A"),
    ],
)
def test_device_sample_carries_its_device_id(name: str, device: str) -> None:
    (item,) = run_sample(name).items
    assert item.device == device


def test_order_sample_values_are_the_order_fields() -> None:
    (item,) = run_sample("SCHEDULE-CAR-ORDER").items
    assert item.values["soc"] == 58.52
    assert item.values["gunNo"] == "01"
    assert "hostCode" not in item.values


def test_error_sample_keeps_code_lists() -> None:
    (item,) = run_sample("SCHEDULE-DEVICE-ERROR").items
    assert item.values["hostError"] == ["E101"]
    assert item.values["acError"] == []


# ------------------------------------------------------------------- synthetic: every topic


@pytest.mark.parametrize("topic", STATION_TOPICS, ids=ids(STATION_TOPICS))
def test_synthetic_object_yields_an_item_with_every_field(topic: TopicConfig) -> None:
    obj = good_object(topic, "S1")
    ex = run_objects(topic, [obj])
    assert [i.station_id for i in ex.items] == ["S1"]
    if topic.extractor == "envelope":
        assert ex.items[0].values == {k: v for k, v in obj.items() if k != "station_id"}
    else:
        assert set(ex.items[0].values) == set(topic.fields)
    assert ex.bad_fields == 0


@pytest.mark.parametrize("topic", ALL, ids=ids(ALL))
def test_none_value_is_rejected_as_empty(topic: TopicConfig) -> None:
    ex = run(topic, None)
    assert reason(ex) == EMPTY_VALUE
    assert ex.items == ()


@pytest.mark.parametrize("topic", ALL, ids=ids(ALL))
@pytest.mark.parametrize("value", [b"", b"  \n\t "], ids=["empty", "whitespace"])
def test_empty_value_is_rejected_as_empty(topic: TopicConfig, value: bytes) -> None:
    ex = run(topic, value)
    assert reason(ex) == EMPTY_VALUE


@pytest.mark.parametrize("topic", ALL, ids=ids(ALL))
@pytest.mark.parametrize("value", [b"\xff\xfe{}", b'{"stationId": "S\xc3"}', b"\x80"])
def test_invalid_utf8_is_rejected_as_not_utf8(topic: TopicConfig, value: bytes) -> None:
    ex = run(topic, value)
    assert reason(ex) == NOT_UTF8


@pytest.mark.parametrize("topic", ALL, ids=ids(ALL))
@pytest.mark.parametrize("value", [b"{not json", b'{"a": 1', b"[1, 2,]", b"S0001", b"{} {}"])
def test_invalid_json_is_rejected_as_not_json(topic: TopicConfig, value: bytes) -> None:
    ex = run(topic, value)
    assert reason(ex) == NOT_JSON


@pytest.mark.parametrize("topic", ALL, ids=ids(ALL))
@pytest.mark.parametrize("value", ['"a string"', "42", "1.5", "null", "true"])
def test_scalar_json_is_rejected_as_wrong_shape(topic: TopicConfig, value: str) -> None:
    ex = run(topic, value.encode())
    assert reason(ex) == WRONG_SHAPE


@pytest.mark.parametrize("topic", ALL, ids=ids(ALL))
def test_the_other_container_is_rejected_as_wrong_shape(topic: TopicConfig) -> None:
    """A list where an object is expected, an object where a list is."""
    good = payload(topic, [good_object(topic)])
    other = [good] if isinstance(good, dict) else {"items": good}
    ex = run(topic, dumps(other))
    assert reason(ex) == WRONG_SHAPE


def wrapper_of(topic: TopicConfig) -> str:
    key = "results" if topic.extractor == "envelope" else topic.wrapper_key
    assert key is not None
    return key


@pytest.mark.parametrize("topic", KEYED_TOPICS, ids=ids(KEYED_TOPICS))
def test_object_without_the_wrapper_key_is_rejected_as_wrong_shape(topic: TopicConfig) -> None:
    ex = run(topic, dumps({"other": [good_object(topic)]}))
    assert reason(ex) == WRONG_SHAPE


@pytest.mark.parametrize("topic", KEYED_TOPICS, ids=ids(KEYED_TOPICS))
@pytest.mark.parametrize("inner", ["text", 3, None, True])
def test_scalar_under_the_wrapper_key_is_rejected_as_wrong_shape(
    topic: TopicConfig, inner: Any
) -> None:
    ex = run(topic, dumps({wrapper_of(topic): inner}))
    assert reason(ex) == WRONG_SHAPE


@pytest.mark.parametrize("topic", SPLIT_KEYED_TOPICS, ids=ids(SPLIT_KEYED_TOPICS))
def test_object_under_the_wrapper_key_is_rejected_as_wrong_shape(topic: TopicConfig) -> None:
    ex = run(topic, dumps({wrapper_of(topic): good_object(topic)}))
    assert reason(ex) == WRONG_SHAPE


@pytest.mark.parametrize("topic", STATION_TOPICS, ids=ids(STATION_TOPICS))
def test_missing_station_id_is_rejected(topic: TopicConfig) -> None:
    obj = good_object(topic)
    del obj["station_id" if topic.extractor == "envelope" else topic.station_key]
    ex = run_objects(topic, [obj])
    assert reason(ex) == MISSING_STATION_ID
    assert ex.items == ()


@pytest.mark.parametrize("topic", STATION_TOPICS, ids=ids(STATION_TOPICS))
@pytest.mark.parametrize("sid", [1.5, True, None, "", "   ", ["S1"], {"id": "S1"}])
def test_station_id_of_wrong_type_or_empty_is_rejected(topic: TopicConfig, sid: Any) -> None:
    ex = run_objects(topic, [good_object(topic, sid)])
    assert reason(ex) == MISSING_STATION_ID


@pytest.mark.parametrize("topic", STATION_TOPICS, ids=ids(STATION_TOPICS))
def test_integer_station_id_becomes_a_string(topic: TopicConfig) -> None:
    ex = run_objects(topic, [good_object(topic, 42)])
    assert [i.station_id for i in ex.items] == ["42"]


@pytest.mark.parametrize("topic", STATION_TOPICS, ids=ids(STATION_TOPICS))
def test_station_id_is_stripped(topic: TopicConfig) -> None:
    ex = run_objects(topic, [good_object(topic, "  S7 \t")])
    assert [i.station_id for i in ex.items] == ["S7"]


@pytest.mark.parametrize("topic", LIST_TOPICS, ids=ids(LIST_TOPICS))
def test_items_without_station_id_among_good_ones_are_skipped(topic: TopicConfig) -> None:
    objs = [good_object(topic, "S1"), good_object(topic, None), good_object(topic, "S2")]
    ex = run_objects(topic, objs)
    assert ex.rejection is None
    assert [i.station_id for i in ex.items] == ["S1", "S2"]
    assert ex.skipped_items == 1


@pytest.mark.parametrize("topic", LIST_TOPICS, ids=ids(LIST_TOPICS))
def test_non_object_elements_among_good_ones_are_skipped(topic: TopicConfig) -> None:
    ex = run_objects(topic, [1, "x", None, [good_object(topic)], good_object(topic, "S1")])
    assert [i.station_id for i in ex.items] == ["S1"]
    assert ex.skipped_items == 4


@pytest.mark.parametrize("topic", LIST_TOPICS, ids=ids(LIST_TOPICS))
def test_only_non_object_elements_are_rejected_as_wrong_shape(topic: TopicConfig) -> None:
    ex = run_objects(topic, [1, "x", [2]])
    assert reason(ex) == WRONG_SHAPE


@pytest.mark.parametrize("topic", LIST_TOPICS, ids=ids(LIST_TOPICS))
def test_no_element_with_a_station_id_is_rejected(topic: TopicConfig) -> None:
    ex = run_objects(topic, [good_object(topic, None), good_object(topic, "")])
    assert reason(ex) == MISSING_STATION_ID


@pytest.mark.parametrize("topic", LIST_TOPICS, ids=ids(LIST_TOPICS))
def test_empty_array_yields_no_items_and_no_rejection(topic: TopicConfig) -> None:
    ex = run_objects(topic, [])
    assert (ex.items, ex.rejection, ex.skipped_items) == ((), None, 0)


@pytest.mark.parametrize("topic", LIST_TOPICS + GLOBAL_TOPICS, ids=ids(LIST_TOPICS + GLOBAL_TOPICS))
def test_more_than_max_items_is_rejected_as_too_large(topic: TopicConfig) -> None:
    small = attrs.evolve(topic, max_items=2)
    ex = run_objects(small, [good_object(small, f"S{i}") for i in range(3)])
    assert reason(ex) == TOO_LARGE
    assert ex.items == ()


@pytest.mark.parametrize("topic", LIST_TOPICS, ids=ids(LIST_TOPICS))
def test_exactly_max_items_is_accepted(topic: TopicConfig) -> None:
    small = attrs.evolve(topic, max_items=2)
    ex = run_objects(small, [good_object(small, f"S{i}") for i in range(2)])
    assert len(ex.items) == 2


def _typed_cases() -> list[tuple[TopicConfig, str]]:
    return [(t, f) for t in STATION_TOPICS for f in t.fields]


@pytest.mark.parametrize(
    ("topic", "field"), _typed_cases(), ids=[f"{t.name}.{f}" for t, f in _typed_cases()]
)
def test_field_of_wrong_type_is_dropped_and_counted(topic: TopicConfig, field: str) -> None:
    obj = good_object(topic)
    obj[field] = WRONG_VALUE[kind(topic, field)]
    ex = run_objects(topic, [obj])
    (item,) = ex.items
    assert field not in item.values
    assert ex.bad_fields == 1


@pytest.mark.parametrize(
    ("topic", "field"), _typed_cases(), ids=[f"{t.name}.{f}" for t, f in _typed_cases()]
)
def test_field_of_wrong_type_leaves_the_other_fields(topic: TopicConfig, field: str) -> None:
    obj = good_object(topic)
    obj[field] = WRONG_VALUE[kind(topic, field)]
    (item,) = run_objects(topic, [obj]).items
    assert set(item.values) == set(topic.fields) - {field}


def _non_finite_cases() -> list[tuple[TopicConfig, str, float]]:
    return [
        (t, f, bad)
        for t in STATION_TOPICS
        for f in t.fields
        if kind(t, f) in ("number", "number_list", "any")
        for bad in (math.nan, math.inf, -math.inf)
    ]


@pytest.mark.parametrize(
    ("topic", "field", "bad"),
    _non_finite_cases(),
    ids=[f"{t.name}.{f}={b}" for t, f, b in _non_finite_cases()],
)
def test_non_finite_number_is_dropped_and_counted(
    topic: TopicConfig, field: str, bad: float
) -> None:
    obj = good_object(topic)
    obj[field] = [1.0, bad] if kind(topic, field) == "number_list" else bad
    ex = run_objects(topic, [obj])
    assert field not in ex.items[0].values
    assert ex.bad_fields == 1


def _list_cases() -> list[tuple[TopicConfig, str]]:
    return [(t, f) for t, f in _typed_cases() if kind(t, f).endswith("_list")]


@pytest.mark.parametrize(
    ("topic", "field"), _list_cases(), ids=[f"{t.name}.{f}" for t, f in _list_cases()]
)
def test_array_longer_than_max_array_len_is_dropped(topic: TopicConfig, field: str) -> None:
    small = attrs.evolve(topic, max_array_len=4)
    obj = good_object(small)
    obj[field] = obj[field][:1] * 5
    ex = run_objects(small, [obj])
    assert field not in ex.items[0].values
    assert ex.bad_fields == 1


@pytest.mark.parametrize(
    ("topic", "field"), _list_cases(), ids=[f"{t.name}.{f}" for t, f in _list_cases()]
)
def test_array_of_max_array_len_is_kept(topic: TopicConfig, field: str) -> None:
    small = attrs.evolve(topic, max_array_len=4)
    obj = good_object(small)
    obj[field] = obj[field][:1] * 4
    (item,) = run_objects(small, [obj]).items
    assert item.values[field] == obj[field]


@pytest.mark.parametrize("topic", GLOBAL_TOPICS, ids=ids(GLOBAL_TOPICS))
def test_global_field_of_wrong_type_becomes_none_in_its_column(topic: TopicConfig) -> None:
    field = topic.fields[0]
    bad = good_object(topic)
    bad[field] = WRONG_VALUE[kind(topic, field)]
    ex = run_objects(topic, [good_object(topic), bad])
    assert ex.items[0].values[field] == [GOOD_VALUE[kind(topic, field)], None]
    assert ex.bad_fields == 1


@pytest.mark.parametrize("topic", GLOBAL_TOPICS, ids=ids(GLOBAL_TOPICS))
def test_global_topic_needs_no_station_id(topic: TopicConfig) -> None:
    ex = run_objects(topic, [good_object(topic)])
    assert [i.station_id for i in ex.items] == [GLOBAL_STATION]


@pytest.mark.parametrize("topic", GLOBAL_TOPICS, ids=ids(GLOBAL_TOPICS))
def test_global_topic_with_only_non_objects_is_rejected(topic: TopicConfig) -> None:
    ex = run_objects(topic, [1, 2])
    assert reason(ex) == WRONG_SHAPE


@pytest.mark.parametrize("topic", ALL, ids=ids(ALL))
def test_rejection_detail_is_short(topic: TopicConfig) -> None:
    ex = run(topic, b"{" + b'"k": "' + b"x" * 5000)
    assert ex.rejection is not None
    assert 0 < len(ex.rejection.detail) <= 200
