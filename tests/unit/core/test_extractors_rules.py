"""Extractors: sanitising rules, ids, event times, guns, slot lists, global and envelope
topics, seen fields and field reports, plan caching and codec failures."""

from __future__ import annotations

import calendar
import json
import math
from typing import Any

import attrs
import pytest

from da_core.catalog import DEFAULT_TOPICS
from da_core.codec import StdlibJsonCodec
from da_core.config import TopicConfig
from da_core.errors import ConfigError
from da_core.extractors import (
    MISSING_STATION_ID,
    NOT_JSON,
    NOT_UTF8,
    WRONG_SHAPE,
    Extraction,
    compile_topic,
    expected_fields,
    extract,
    field_report,
)
from da_core.extractors.sanitize import BAD, any_value
from da_core.extractors.timeparse import CACHE_SIZE, TimeParser
from da_core.types import GLOBAL_STATION, Record

CODEC = StdlibJsonCodec()
TOPICS = {t.name: t for t in DEFAULT_TOPICS}
REALTIME = TOPICS["SCHEDULE-STATION-REALTIME-DATA"]
PRICE = TOPICS["SCHEDULE-CAR-PRICE"]
ABSENT = object()


def run(topic: TopicConfig, value: Any, codec: Any = CODEC) -> Extraction:
    data = value if isinstance(value, bytes) else json.dumps(value).encode()
    return extract(topic, Record(topic.name, 0, 0, data, timestamp=100.0), codec)


def reason(ex: Extraction) -> str | None:
    """The rejection code, or None when the record was accepted."""
    return None if ex.rejection is None else ex.rejection.reason


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> float:
    return float(calendar.timegm((y, mo, d, h, mi, s)))


def field_topic(kind: str, **changes: Any) -> TopicConfig:
    return TopicConfig(name="T", fields=("f", "g"), field_types={"f": kind}, **changes)


def clean(kind: str, raw: Any, max_array_len: int = 100) -> tuple[Any, int]:
    """(what became of field ``f`` of ``kind`` holding ``raw``, bad_fields)."""
    ex = run(field_topic(kind, max_array_len=max_array_len), {"stationId": "S1", "f": raw, "g": 1})
    (item,) = ex.items
    assert item.values["g"] == 1  # the rest of the record is used
    return item.values.get("f", ABSENT), ex.bad_fields


def nested(depth: int, leaf: Any) -> Any:
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


# ----------------------------------------------------------------------------- field types


def test_number_keeps_an_int_as_int() -> None:
    value, _ = clean("number", 3)
    assert (value, type(value)) == (3, int)


def test_number_keeps_a_finite_float() -> None:
    assert clean("number", -2.5) == (-2.5, 0)


@pytest.mark.parametrize(("raw", "expected"), [("12.5", 12.5), (" 7 ", 7.0), ("-1e3", -1000.0)])
def test_number_converts_a_numeric_string_to_float(raw: str, expected: float) -> None:
    assert clean("number", raw) == (expected, 0)


@pytest.mark.parametrize("raw", [True, False, None, [1], {"a": 1}])
def test_number_drops_and_counts_other_types(raw: Any) -> None:
    assert clean("number", raw) == (ABSENT, 1)


@pytest.mark.parametrize("raw", ["abc", "", "1_000", "nan", "inf", "-Infinity", "0x10"])
def test_number_drops_a_string_that_is_not_a_finite_number(raw: str) -> None:
    assert clean("number", raw) == (ABSENT, 1)


@pytest.mark.parametrize("raw", ["text", "", "中文"])
def test_string_keeps_text(raw: str) -> None:
    assert clean("string", raw) == (raw, 0)


@pytest.mark.parametrize(("raw", "expected"), [(12, "12"), (1.5, "1.5"), (-0.25, "-0.25")])
def test_string_converts_a_number_with_str(raw: Any, expected: str) -> None:
    assert clean("string", raw) == (expected, 0)


@pytest.mark.parametrize("raw", [True, None, ["a"], {"a": "b"}, math.nan, math.inf])
def test_string_drops_and_counts_other_types(raw: Any) -> None:
    assert clean("string", raw) == (ABSENT, 1)


def test_number_list_converts_numeric_strings() -> None:
    assert clean("number_list", [1, "2.5", 3.0]) == ([1, 2.5, 3.0], 0)


@pytest.mark.parametrize("element", [None, True, "x", math.nan, -math.inf, [1], {"a": 1}])
def test_number_list_with_a_bad_element_is_dropped(element: Any) -> None:
    assert clean("number_list", [1.0, element]) == (ABSENT, 1)


@pytest.mark.parametrize("raw", ["1,2", 5, {"a": [1]}, None])
def test_number_list_that_is_not_a_list_is_dropped(raw: Any) -> None:
    assert clean("number_list", raw) == (ABSENT, 1)


def test_string_list_converts_numbers() -> None:
    assert clean("string_list", ["a", 1, 2.5]) == (["a", "1", "2.5"], 0)


def test_string_list_keeps_an_empty_list() -> None:
    assert clean("string_list", []) == ([], 0)


@pytest.mark.parametrize("element", [None, True, ["a"], {"a": "b"}])
def test_string_list_with_a_bad_element_is_dropped(element: Any) -> None:
    assert clean("string_list", ["a", element]) == (ABSENT, 1)


def test_object_keeps_a_clean_object() -> None:
    assert clean("object", {"a": [1, {"b": "c"}]}) == ({"a": [1, {"b": "c"}]}, 0)


@pytest.mark.parametrize("raw", [[1], "text", 3])
def test_object_that_is_not_an_object_is_dropped(raw: Any) -> None:
    assert clean("object", raw) == (ABSENT, 1)


def test_object_with_a_nested_non_finite_number_is_dropped() -> None:
    assert clean("object", {"a": {"b": [1.0, math.nan]}}) == (ABSENT, 1)


def test_object_with_a_nested_over_long_array_is_dropped() -> None:
    assert clean("object", {"a": {"b": [0] * 6}}, max_array_len=5) == (ABSENT, 1)


@pytest.mark.parametrize("raw", [None, True, "x", 3, 2.5, {"a": [1, None]}, [[], {}]])
def test_any_keeps_whatever_json_gives(raw: Any) -> None:
    assert clean("any", raw) == (raw, 0)


@pytest.mark.parametrize("raw", [math.nan, [1.0, math.inf], {"a": {"b": -math.inf}}])
def test_any_drops_a_non_finite_number_at_any_depth(raw: Any) -> None:
    assert clean("any", raw) == (ABSENT, 1)


def test_any_drops_an_over_long_array_at_any_depth() -> None:
    assert clean("any", {"a": [[0] * 6]}, max_array_len=5) == (ABSENT, 1)


def test_any_checks_deeply_nested_values_without_recursion_limits() -> None:
    # a record nested past MAX_NESTING is rejected whole (too_deep: test_tree_checks.py);
    # the sanitiser itself still has no recursion limit
    assert any_value(nested(400, math.nan), 100) is BAD
    assert clean("any", nested(150, math.nan)) == (ABSENT, 1)


def test_absent_field_is_neither_kept_nor_counted() -> None:
    ex = run(field_topic("number"), {"stationId": "S1", "g": 1})
    assert ("f" in ex.items[0].values, ex.bad_fields) == (False, 0)


def test_every_dropped_field_is_counted() -> None:
    topic = TopicConfig(
        name="T", fields=("a", "b", "c"), field_types=dict.fromkeys("abc", "number")
    )
    ex = run(topic, {"stationId": "S1", "a": "x", "b": None, "c": 1})
    assert (ex.items[0].values, ex.bad_fields) == ({"c": 1}, 2)


# ------------------------------------------------------------------------------- devices

DEVICE = TopicConfig(name="D", fields=("p",), window="per_device", device_key="hostCode")


def test_integer_device_id_becomes_a_string() -> None:
    ex = run(DEVICE, {"stationId": "S1", "hostCode": 7, "p": 1})
    assert ex.items[0].device == "7"


def test_object_without_device_in_a_per_device_window_is_rejected() -> None:
    ex = run(DEVICE, {"stationId": "S1", "p": 1})
    assert reason(ex) == WRONG_SHAPE


def test_item_without_device_in_a_per_device_window_is_skipped() -> None:
    topic = attrs.evolve(DEVICE, extractor="array")
    ex = run(topic, [{"stationId": "S1", "hostCode": "H1"}, {"stationId": "S1", "hostCode": 1.5}])
    assert ([i.device for i in ex.items], ex.skipped_items) == (["H1"], 1)


def test_bad_device_outside_a_per_device_window_is_counted() -> None:
    topic = attrs.evolve(DEVICE, window="latest")
    ex = run(topic, {"stationId": "S1", "hostCode": [1], "p": 1})
    assert (ex.items[0].device, ex.bad_fields) == (None, 1)


# --------------------------------------------------------------------------- event times


def price(send_time: Any, topic: TopicConfig = PRICE) -> Extraction:
    return run(topic, {"fee": [{"stationId": "S1", "sendTime": send_time}]})


def test_send_time_is_read_as_utc() -> None:
    assert price("2026-11-27 10:15:30").items[0].event_time == utc(2026, 11, 27, 10, 15, 30)


def test_leap_day_is_a_valid_time() -> None:
    assert price("2024-02-29 12:00:00").items[0].event_time == utc(2024, 2, 29, 12)


@pytest.mark.parametrize(
    "text",
    [
        "2026-02-29 00:00:00",
        "2026-13-01 00:00:00",
        "2026-11-31 00:00:00",
        "2026-11-27 24:00:00",
        "2026-11-27 10:60:00",
        "2026-11-27T10:00:00",
        "0000-01-01 00:00:00",
        "yesterday",
        "",
    ],
)
def test_invalid_time_is_none_and_counted(text: str) -> None:
    ex = price(text)
    assert (ex.items[0].event_time, ex.bad_fields) == (None, 1)


@pytest.mark.parametrize("raw", [True, None, [2026], {"t": 1}, math.nan])
def test_time_of_another_type_is_none_and_counted(raw: Any) -> None:
    ex = price(raw)
    assert (ex.items[0].event_time, ex.bad_fields) == (None, 1)


def test_time_with_single_digit_fields_is_parsed_leniently() -> None:
    assert price("2026-1-5 9:00:00").items[0].event_time == utc(2026, 1, 5, 9)


def test_custom_time_format_is_used() -> None:
    topic = attrs.evolve(PRICE, time_format="%d/%m/%Y %H:%M")
    assert price("27/11/2026 10:30", topic).items[0].event_time == utc(2026, 11, 27, 10, 30)


def test_time_with_an_offset_uses_it() -> None:
    topic = attrs.evolve(PRICE, time_format="%Y-%m-%d %H:%M:%S%z")
    assert price("2026-11-27 10:00:00+0800", topic).items[0].event_time == utc(2026, 11, 27, 2)


def test_numeric_time_is_epoch_seconds() -> None:
    assert price(1795773600).items[0].event_time == 1795773600.0


def test_large_numeric_time_is_epoch_milliseconds() -> None:
    assert price(1795773600500).items[0].event_time == 1795773600.5


def test_time_parser_memo_is_bounded() -> None:
    parser = TimeParser()
    for i in range(CACHE_SIZE + 10):
        parser.parse(f"2026-11-27 10:00:{i % 60:02d}x{i}")
    assert 0 < len(parser) <= CACHE_SIZE


def test_slot_is_none_outside_an_hourly_grid() -> None:
    assert price("2026-11-27 10:15:30").items[0].slot is None


def hour(sid: str, send_time: Any = ABSENT, **extra: Any) -> dict[str, Any]:
    o: dict[str, Any] = {"stationId": sid, "outputPowerPerStationAvg": 1.0, **extra}
    if send_time is not ABSENT:
        o["sendTime"] = send_time
    return o


def test_hourly_slot_is_the_hour_index_of_the_event_time() -> None:
    ex = run(REALTIME, {"realTimeData": [hour("S1", "2026-11-27 10:59:59")]})
    assert ex.items[0].slot == int(utc(2026, 11, 27, 10) // 3600)


def test_hourly_item_without_a_valid_time_is_skipped() -> None:
    records = [hour("S1", "2026-11-27 10:00:00"), hour("S2"), hour("S3", "bad")]
    ex = run(REALTIME, {"realTimeData": records})
    assert ([i.station_id for i in ex.items], ex.skipped_items) == (["S1"], 2)


def test_hourly_record_without_any_valid_time_is_rejected() -> None:
    ex = run(REALTIME, {"realTimeData": [hour("S1"), hour("S2", math.nan)]})
    assert reason(ex) == WRONG_SHAPE


# ---------------------------------------------------------------------------------- guns


def guns(box: Any) -> Extraction:
    return run(REALTIME, {"realTimeData": [hour("S1", "2026-11-27 10:00:00", gunPower=box)]})


def test_gun_field_of_another_length_is_dropped_and_counted() -> None:
    ex = guns({"gunNo": ["1", "2"], "outputPowerPerGunAvg": [1.0], "outputPowerPerGunMax": [1, 2]})
    assert (ex.items[0].gun_values, ex.bad_fields) == ({"outputPowerPerGunMax": (1, 2)}, 1)


def test_integer_gun_ids_become_strings() -> None:
    assert guns({"gunNo": [1, 2]}).items[0].gun_ids == ("1", "2")


def test_invalid_gun_ids_drop_every_gun_field() -> None:
    ex = guns({"gunNo": [1.5], "outputPowerPerGunAvg": [1.0], "outputPowerPerGunMax": [2.0]})
    item = ex.items[0]
    assert (item.gun_ids, item.gun_values, ex.bad_fields) == ((), {}, 3)


def test_gun_box_that_is_not_an_object_is_counted() -> None:
    ex = guns([1, 2])
    assert (ex.items[0].gun_ids, ex.bad_fields) == ((), 1)


def test_absent_gun_box_is_not_counted() -> None:
    ex = run(REALTIME, {"realTimeData": [hour("S1", "2026-11-27 10:00:00")]})
    assert (ex.items[0].gun_ids, ex.bad_fields) == ((), 0)


def test_gun_fields_without_gun_key_are_read_from_the_item() -> None:
    topic = attrs.evolve(REALTIME, gun_key=None)
    record = hour("S1", "2026-11-27 10:00:00", gunNo=["A"], outputPowerPerGunAvg=[5.0])
    item = run(topic, {"realTimeData": [record]}).items[0]
    assert (item.gun_ids, item.gun_values) == (("A",), {"outputPowerPerGunAvg": (5.0,)})


# ---------------------------------------------------------------------------- slot lists


def fee(**slots: Any) -> Extraction:
    return run(PRICE, {"fee": [{"stationId": "S1", **slots}]})


def test_absent_slot_key_leaves_none_in_its_slot() -> None:
    slot_list = fee(**{f"feeNo{i}": "01" for i in range(1, 49) if i != 5}).items[0].slot_list
    assert slot_list is not None
    assert (slot_list[4], slot_list[3], len(slot_list)) == (None, "01", 48)


def test_bad_slot_value_becomes_none_and_counted() -> None:
    ex = fee(feeNo1="01", feeNo2=math.nan)
    assert ex.items[0].slot_list is not None
    assert (ex.items[0].slot_list[:3], ex.bad_fields) == (("01", None, None), 1)


def test_no_slot_key_gives_no_slot_list() -> None:
    assert fee().items[0].slot_list is None


def test_slot_list_without_size_reads_until_the_first_gap() -> None:
    topic = attrs.evolve(PRICE, slot_list_size=0)
    ex = run(topic, {"fee": [{"stationId": "S1", "feeNo1": "a", "feeNo2": "b", "feeNo4": "d"}]})
    assert ex.items[0].slot_list == ("a", "b")


def test_slot_values_follow_the_slot_list_type() -> None:
    topic = attrs.evolve(PRICE, field_types={"feeNo": "number_list"}, slot_list_size=2)
    ex = run(topic, {"fee": [{"stationId": "S1", "feeNo1": "03", "feeNo2": 1}]})
    assert ex.items[0].slot_list == (3.0, 1)


# -------------------------------------------------------------------- global and envelope

GLOBAL = TopicConfig(name="G", extractor="global", is_global=True, fields=("a", "b"))


def test_global_without_wrapper_reads_the_whole_list() -> None:
    (item,) = run(GLOBAL, [{"a": 1}, {"a": 2}]).items
    assert (item.station_id, item.values, item.raw) == (
        GLOBAL_STATION,
        {"a": [1, 2]},
        [{"a": 1}, {"a": 2}],
    )


def test_global_object_payload_gives_plain_values() -> None:
    (item,) = run(GLOBAL, {"a": 1, "b": "x"}).items
    assert (item.values, item.raw) == ({"a": 1, "b": "x"}, {"a": 1, "b": "x"})


def test_global_column_has_none_where_an_element_lacks_the_field() -> None:
    (item,) = run(GLOBAL, [{"a": 1}, {"b": 2}]).items
    assert item.values == {"a": [1, None], "b": [None, 2]}


def test_global_non_object_elements_are_skipped_and_counted() -> None:
    ex = run(GLOBAL, [{"a": 1}, 5])
    assert (ex.items[0].values, ex.skipped_items) == ({"a": [1, None]}, 1)


def test_global_empty_list_gives_one_item_without_values() -> None:
    ex = run(GLOBAL, [])
    assert [(i.station_id, i.values, i.raw) for i in ex.items] == [(GLOBAL_STATION, {}, [])]


ENVELOPE = TopicConfig(name="MODULE-OUTPUT-X", extractor="envelope")


def envelope(*results: Any, topic: TopicConfig = ENVELOPE) -> Extraction:
    return run(topic, {"batch_id": "x-000001", "module": "x", "results": list(results)})


def test_envelope_values_are_sanitised() -> None:
    ex = envelope({"station_id": "S1", "x": math.nan, "y": [1, 2]})
    assert (ex.items[0].values, ex.bad_fields) == ({"y": [1, 2]}, 1)


def test_envelope_splits_by_station_id_not_station_key() -> None:
    ex = envelope({"stationId": "S1", "x": 1})
    assert reason(ex) == MISSING_STATION_ID


def test_envelope_applies_configured_field_types() -> None:
    topic = attrs.evolve(ENVELOPE, field_types={"confidence": "number"})
    ex = envelope({"station_id": "S1", "confidence": "0.5"}, topic=topic)
    assert ex.items[0].values == {"confidence": 0.5}


# ---------------------------------------------------------------- seen fields and reports

AB = TopicConfig(name="AB", extractor="array", fields=("a", "b"), field_types={"a": "number"})


def test_seen_fields_is_the_union_over_items() -> None:
    ex = run(AB, [{"stationId": "S1", "a": 1}, {"stationId": "S2", "b": 2}])
    assert ex.seen_fields == {"a", "b"}


def test_seen_fields_leave_out_absent_fields() -> None:
    assert run(AB, [{"stationId": "S1", "a": 1}]).seen_fields == {"a"}


def test_seen_fields_include_present_but_invalid_fields() -> None:
    ex = run(AB, [{"stationId": "S1", "a": "x"}])
    assert ex.seen_fields == {"a"}
    assert ex.items[0].values == {}


def test_rejection_has_no_seen_fields() -> None:
    assert run(AB, {"a": 1}).seen_fields == frozenset()


def test_field_report_lists_configured_fields_never_seen() -> None:
    topic = attrs.evolve(TOPICS["SCHEDULE-STATION-PARAM"], fields=("normalClap", "gunNum"))
    seen = run(topic, [{"stationId": "S1", "normalCap": 1.0, "gunNum": 2}]).seen_fields
    report = field_report(seen, topic)
    assert (report.missing, report.ok) == (("normalClap",), False)
    assert "normalClap" in report.message()


def test_field_report_accepts_any_iterable() -> None:
    assert field_report(iter(["a", "b"]), AB).ok


def test_expected_fields_include_time_gun_and_slot_keys() -> None:
    assert expected_fields(REALTIME) == (
        "outputPowerPerStationAvg",
        "outputPowerPerStationMax",
        "sendTime",
        "gunPower",
        "gunNo",
        "outputPowerPerGunAvg",
        "outputPowerPerGunMax",
    )
    assert expected_fields(PRICE)[-2:] == ("sendTime", "feeNo")


def test_expected_fields_include_the_device_key() -> None:
    assert "storageCode" in expected_fields(TOPICS["SCHEDULE-DEVICE-STORAGE"])


# --------------------------------------------------------------------- plans and codecs


def test_compile_topic_is_cached_per_topic_object() -> None:
    assert compile_topic(AB) is compile_topic(AB)


def test_an_evolved_topic_is_extracted_with_its_own_fields() -> None:
    run(AB, [{"stationId": "S1", "a": 1, "c": 3}])
    ex = run(attrs.evolve(AB, fields=("c",)), [{"stationId": "S1", "a": 1, "c": 3}])
    assert ex.items[0].values == {"c": 3}


def test_unknown_extractor_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="extractor"):
        compile_topic(TopicConfig(name="X", extractor="nope", fields=("a",)))


class FailingCodec:
    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    def loads(self, data: bytes) -> Any:
        raise self.exc

    def dumps(self, value: Any) -> bytes:
        raise NotImplementedError


def test_codec_value_error_on_invalid_utf8_is_not_utf8() -> None:
    ex = run(AB, b"[\xff]", FailingCodec(ValueError("str is not valid UTF-8")))
    assert reason(ex) == NOT_UTF8


def test_codec_value_error_on_valid_utf8_is_not_json() -> None:
    ex = run(AB, b"[1,]", FailingCodec(ValueError("trailing comma")))
    assert reason(ex) == NOT_JSON


def test_any_codec_exception_is_not_json() -> None:
    ex = run(AB, b"[]", FailingCodec(RuntimeError("boom")))
    assert reason(ex) == NOT_JSON


def test_too_deeply_nested_json_is_rejected_as_not_json() -> None:
    ex = run(AB, b"[" * 100_000)
    assert reason(ex) == NOT_JSON


def test_extraction_with_a_rejection_is_not_ok() -> None:
    assert (run(AB, b"x").ok, run(AB, []).ok) == (False, True)


class IdentityCodec:
    """Hands the value over as it is: lets a test feed Python objects no JSON decoder makes."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def loads(self, data: bytes) -> Any:
        return self.value

    def dumps(self, value: Any) -> bytes:
        raise NotImplementedError


class Text(str):
    pass


class Count(int):
    pass


class Ratio(float):
    pass


@pytest.mark.parametrize(
    ("kind", "raw", "expected"),
    [
        ("string", Text("a"), "a"),
        ("string", Count(3), "3"),
        ("string", Ratio(0.5), "0.5"),
        ("number", Count(3), 3),
        ("number", Ratio(0.5), 0.5),
        ("number", Text("2"), 2.0),
    ],
)
def test_subclassed_values_become_plain_types(kind: str, raw: Any, expected: Any) -> None:
    topic = field_topic(kind)
    ex = run(topic, b"{}", IdentityCodec({"stationId": Text(" S1 "), "f": raw}))
    value = ex.items[0].values["f"]
    assert (ex.items[0].station_id, value, type(value)) == ("S1", expected, type(expected))


def test_non_finite_number_among_numeric_slots_becomes_none() -> None:
    slots: dict[str, Any] = {f"feeNo{i}": float(i) for i in range(1, 49)}
    slots["feeNo3"] = math.inf
    ex = fee(**slots)
    assert ex.items[0].slot_list is not None
    assert (ex.items[0].slot_list[1:4], ex.bad_fields) == ((2.0, None, 4.0), 1)


def test_gun_fields_without_gun_ids_are_dropped_and_counted() -> None:
    ex = guns({"outputPowerPerGunAvg": [1.0], "outputPowerPerGunMax": [2.0]})
    assert (ex.items[0].gun_ids, ex.items[0].gun_values, ex.bad_fields) == ((), {}, 2)


def test_envelope_event_time_comes_from_the_time_key() -> None:
    topic = attrs.evolve(ENVELOPE, time_key="at")
    ex = envelope({"station_id": "S1", "at": "2026-11-27 10:00:00"}, topic=topic)
    assert ex.items[0].event_time == utc(2026, 11, 27, 10)
