"""Extractors: the fast split of hourly rows (``rows.tally_rows``) gives exactly what the
reference builder gives, whatever the rows hold; its per-record gun id memo is never stale."""

from __future__ import annotations

import json
import math
from typing import Any

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from da_core.catalog import DEFAULT_TOPICS
from da_core.codec import StdlibJsonCodec
from da_core.config import TopicConfig
from da_core.extractors import Extraction, PlanCache, extract
from da_core.extractors.build import build_item
from da_core.extractors.plan import TopicPlan
from da_core.extractors.rows import Tally, tally, tally_rows
from da_core.types import Record

REALTIME = next(t for t in DEFAULT_TOPICS if t.name == "SCHEDULE-STATION-REALTIME-DATA")
HOURS = ("2026-11-27 10:00:00", "2026-11-27 11:00:00")
ABSENT: Any = object()


class PlainStr(str):
    pass


class OddStr(str):
    """A string whose ``str()`` differs from its text (the reference cleans ids with it)."""

    def __str__(self) -> str:
        return "odd"


class PlainList(list[Any]):
    pass


def plan_of(topic: TopicConfig) -> TopicPlan:
    plan = PlanCache().get(topic)
    assert plan.fast_rows
    return plan


def both(plan: TopicPlan, rows: list[Any]) -> tuple[Tally, Tally]:
    """(fast tally, reference tally) of the same rows; the fast one first, so that it sees
    the time memo as the record's earlier rows left it."""
    fast = tally_rows(plan, rows, 5.0)
    ref = tally(attrs.evolve(plan, fast_rows=False), rows, 5.0, build_item)
    return fast, ref


def row(
    sid: Any = "S1", send_time: Any = HOURS[0], box: Any = ABSENT, **fields: Any
) -> dict[str, Any]:
    o: dict[str, Any] = {"stationId": sid, "sendTime": send_time, "gunPower": box, **fields}
    return {k: v for k, v in o.items() if v is not ABSENT}


def gun_box(ids: Any, avg: Any = ABSENT, mx: Any = ABSENT) -> dict[str, Any]:
    box = {"gunNo": ids, "outputPowerPerGunAvg": avg, "outputPowerPerGunMax": mx}
    return {k: v for k, v in box.items() if v is not ABSENT}


# --------------------------------------------------------------------------- properties


def clean_row(sid: str, hour: int, ids: list[str], power: float) -> dict[str, Any]:
    n = len(ids)
    box = gun_box(list(ids), [power] * n, [int(power)] * n)
    return row(sid, HOURS[hour], box, outputPowerPerStationAvg=power, outputPowerPerStationMax=3)


ODD_VALUES = [math.nan, math.inf, -math.inf, True, "4.5", "x", None, [1.0], {}, 2**70, ABSENT]
ODD_IDS = [
    ["01", " 02 "],
    ["01"],
    [1, 2],
    ["01", ""],
    ["01", 1.5],
    [],
    ["01", PlainStr("02")],
    ["01", OddStr("02")],
    PlainList(["01", "02"]),
    "01",
    ABSENT,
]
TOP_KEYS = ["stationId", "sendTime", "gunPower"]
FIELDS = ["outputPowerPerStationAvg", "outputPowerPerStationMax"]
BOX_KEYS = ["outputPowerPerGunAvg", "outputPowerPerGunMax"]


def perturb(o: dict[str, Any], changes: list[tuple[str, Any, Any]]) -> Any:
    """``o`` with one value replaced per change: (where, key, value); ABSENT deletes. A change
    inside a gun box or list that an earlier change replaced is left out."""
    o = {**o, "gunPower": dict(o["gunPower"])}
    for where, key, value in changes:
        target = o if where == "top" else o.get("gunPower")
        if type(target) is not dict:
            continue
        if where == "element":  # the first element of a gun list
            if type(target.get(key)) is list and target[key]:
                target[key] = [value, *target[key][1:]]
        elif value is ABSENT:
            target.pop(key, None)
        else:
            target[key] = value
    return o


changes = st.one_of(
    st.tuples(st.just("top"), st.sampled_from(TOP_KEYS), st.sampled_from(ODD_VALUES)),
    st.tuples(st.just("top"), st.sampled_from(FIELDS), st.sampled_from(ODD_VALUES)),
    st.tuples(st.just("box"), st.sampled_from(BOX_KEYS), st.sampled_from(ODD_VALUES)),
    st.tuples(st.just("box"), st.just("gunNo"), st.sampled_from(ODD_IDS)),
    st.tuples(st.just("element"), st.sampled_from(BOX_KEYS), st.sampled_from(ODD_VALUES)),
    st.tuples(
        st.just("top"),
        st.sampled_from(["stationId", "sendTime"]),
        st.sampled_from([" S2 ", 7, "", 1795773600, "2026-11-27 12:00:00", "bad"]),
    ),
    st.tuples(st.just("box"), st.sampled_from(BOX_KEYS), st.sampled_from([[1.0], [1, 2, 3]])),
)
clean_rows = st.builds(
    clean_row,
    st.sampled_from(["S1", "S2"]),
    st.sampled_from([0, 1]),
    st.sampled_from([["01", "02"], ["01", "03"], ["A", "B"]]),
    st.sampled_from([1.5, 2.0, 31.25]),
)
rows = st.one_of(
    clean_rows,
    st.builds(perturb, clean_rows, st.lists(changes, min_size=1, max_size=2)),
    st.builds(perturb, clean_rows, st.lists(changes, min_size=1, max_size=2)),
    st.sampled_from([1, "row", None, []]),
)
topics = st.sampled_from(
    [
        REALTIME,
        attrs.evolve(REALTIME, max_array_len=2),
        attrs.evolve(REALTIME, gun_key=None),
        attrs.evolve(REALTIME, window="latest"),
        attrs.evolve(REALTIME, extractor="array", wrapper_key=None),
    ]
)


@settings(max_examples=500, deadline=None)
@given(topics, st.lists(rows, max_size=8), st.booleans())
def test_fast_rows_give_what_the_reference_builder_gives(
    topic: TopicConfig, elements: list[Any], warm: bool
) -> None:
    plan = plan_of(topic)
    if warm:  # the usual case: the hours are memoised by earlier records
        for h in HOURS:
            plan.time_parser.parse(h)
    fast, ref = both(plan, elements)
    assert fast == ref


def test_gun_only_rows_flat_in_the_object_take_the_fast_path() -> None:
    plan = plan_of(attrs.evolve(REALTIME, gun_key=None))
    plan.time_parser.parse(HOURS[0])
    o = row(gunNo=["A"], outputPowerPerGunAvg=[5.0], outputPowerPerGunMax=[6])
    fast, ref = both(plan, [o, dict(o)])
    assert fast == ref
    assert fast[0][1].gun_values == {"outputPowerPerGunAvg": (5.0,), "outputPowerPerGunMax": (6,)}


# ------------------------------------------------------------------------- gun id memo


def ids_of(rows_: list[Any]) -> list[tuple[str, ...]]:
    plan = plan_of(REALTIME)
    plan.time_parser.parse(HOURS[0])  # memoised: the rows may take the fast path
    (items, *_), ref = both(plan, rows_)
    assert items == ref[0]
    return [item.gun_ids for item in items]


def guns(*ids: Any) -> dict[str, Any]:
    """A row of the usual shape whose gun ids are ``ids``."""
    box = gun_box(list(ids), [1.0] * len(ids), [2.0] * len(ids))
    return row(box=box, outputPowerPerStationAvg=1.0, outputPowerPerStationMax=2)


def test_each_row_keeps_its_own_gun_ids_when_they_change_within_a_record() -> None:
    rows_ = [guns("01", "02"), guns("01", "03"), guns("01", "02")]
    assert ids_of(rows_) == [("01", "02"), ("01", "03"), ("01", "02")]


def test_gun_ids_needing_a_strip_are_not_taken_from_the_memo() -> None:
    rows_ = [guns("01", "02"), guns("01", " 02 "), guns("01", "2")]
    assert ids_of(rows_) == [("01", "02"), ("01", "02"), ("01", "2")]


def test_a_string_subclass_id_equal_to_the_memo_is_cleaned_by_the_reference() -> None:
    rows_ = [guns("01", "02"), guns("01", OddStr("02"))]
    assert ids_of(rows_) == [("01", "02"), ("01", "odd")]


def test_ids_equal_to_a_memoised_string_subclass_list_are_cleaned_anew() -> None:
    rows_ = [guns("01", OddStr("02")), guns("01", "02")]
    assert ids_of(rows_) == [("01", "odd"), ("01", "02")]


def test_integer_gun_ids_after_string_ones_become_strings() -> None:
    rows_ = [guns("1", "2"), guns(1, 2), guns("1", "2")]
    assert ids_of(rows_) == [("1", "2"), ("1", "2"), ("1", "2")]


# ---------------------------------------------------------------------- through extract


def test_a_week_of_history_extracts_alike_on_both_paths() -> None:
    data = json.dumps(
        {
            "realTimeData": [
                row(
                    send_time=f"2026-11-{20 + h // 24:02d} {h % 24:02d}:00:00",
                    box=gun_box(["01", "02", "03"], [1.5, 2.0, 0.0], [3, 4, 5]),
                    outputPowerPerStationAvg=31.5 + h,
                    outputPowerPerStationMax=50,
                )
                for h in range(168)
            ]
        }
    ).encode()
    record = Record(REALTIME.name, 0, 0, data, timestamp=5.0)
    cache, slow = PlanCache(), PlanCache()
    slow.plans[id(REALTIME)] = attrs.evolve(slow.get(REALTIME), fast_rows=False)
    codec = StdlibJsonCodec()
    runs: list[Extraction] = [extract(REALTIME, record, codec, c) for c in (cache, slow, cache)]
    assert runs[0] == runs[1] == runs[2]
    assert len(runs[0].items) == 168
    assert runs[0].items[5].gun_ids == ("01", "02", "03")
    assert runs[2].items[5].gun_ids is runs[2].items[6].gun_ids  # cleaned once per record
