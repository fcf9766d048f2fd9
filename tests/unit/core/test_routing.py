"""Station routing: the re-keying stage of the engine (``da_core.routing``)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from da_core.catalog import default_catalog
from da_core.codec import StdlibJsonCodec
from da_core.engine import Engine
from da_core.errors import ConfigError
from da_core.extractors import StationItem
from da_core.partitioning import partition_for_key
from da_core.routing import SOURCE_HEADER, Routing, shares
from da_core.types import Record, TopicPartition
from tests.unit.core.test_engine import CAL, PARAM, RT, T0, Feed, ack_uploads, param, realtime

CODEC = StdlibJsonCodec()
GROUP = "g1"


def rt_many(*sids: str, hour: str = "10", avg: float = 1.0) -> dict[str, Any]:
    rows = [realtime(s, hour, avg)["realTimeData"][0] for s in sids]
    return {"realTimeData": rows}


def rekey_engine(partitions: int = 4, module: str = "load_prediction") -> Engine:
    eng = Engine(default_catalog(), module, CODEC, routing=Routing(mode="rekey", group=GROUP))
    eng.set_rekey_partitions(partitions)
    return eng


def internal(source: str) -> str:
    return f"{GROUP}.{source}.by-station"


def deliver(eng: Engine, now: float, ok: bool = True) -> list[Record]:
    """Acknowledge every due share and return them as the records the group would read."""
    out = []
    offsets: dict[tuple[str, int], int] = {}
    for f in eng.take_forwards(now):
        r = f.record
        assert r.partition is not None
        off = offsets.get((r.topic, r.partition), 0)
        offsets[(r.topic, r.partition)] = off + 1
        out.append(Record(r.topic, r.partition, off, r.value, r.key, r.timestamp or 0.0, r.headers))
        eng.forward_done(f.fwd_id, ok, now, None if ok else "broker said no")
    return out


# ----------------------------------------------------------------------------- configuration


def test_internal_topic_names_follow_the_template_and_kafka_rules() -> None:
    r = Routing(mode="rekey", group="my group/1")
    assert r.internal_topic("SCHEDULE-CAR-PRICE") == "my_group_1.SCHEDULE-CAR-PRICE.by-station"
    r2 = Routing(mode="rekey", group="g", topic_template="rk-{topic}")
    assert r2.internal_topic("T") == "rk-T"


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"mode": "sideways"}, "station_routing"),
        ({"topic_template": "{group}-fixed"}, "{topic}"),
        ({"topic_template": "{topic}-{host}"}, "{group} and {topic}"),
        ({"partitions": 0}, "rekey_partitions"),
    ],
)
def test_bad_routing_settings_are_config_errors(kwargs: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle.replace("{", r"\{").replace("}", r"\}")):
        Routing(**kwargs)


def test_too_long_internal_topic_name_is_refused() -> None:
    with pytest.raises(ConfigError, match="249"):
        Routing(mode="rekey", group="g" * 250).internal_topic("T")


def test_rekey_subscribes_sources_and_internal_topics_but_not_global_ones() -> None:
    eng = rekey_engine(module="load_prediction")
    assert CAL in eng.topics
    assert CAL not in eng.internal_topics
    assert eng.internal_topics[RT] == internal(RT)
    assert set(eng.internal_topics.values()) <= set(eng.topics)
    assert RT in eng.topics  # the source is still consumed (by the re-keying stage)
    direct = Engine(default_catalog(), "load_prediction", CODEC)
    assert direct.internal_topics == {}
    assert not any(t.endswith(".by-station") for t in direct.topics)


def test_dependency_output_topics_are_rekeyed_too() -> None:
    eng = rekey_engine(module="operation_optimization")
    out = eng.catalog.output_topic_of("load_prediction")
    assert eng.internal_topics[out] == internal(out)


# ----------------------------------------------------------------------------- shares


def _item(sid: str, raw: Any) -> StationItem:
    return StationItem(sid, T0, {}, raw)


def test_one_station_record_is_forwarded_byte_for_byte() -> None:
    value = b'{"realTimeData": [{"stationId": "A", "x": 1}, {"stationId": "A", "x": 2}]}'
    items = [_item("A", {"stationId": "A", "x": 1}), _item("A", {"stationId": "A", "x": 2})]
    assert shares(items, value, "realTimeData", False, CODEC) == [("A", value)]


@given(
    st.lists(
        st.tuples(st.sampled_from(["A", "B", "C", "D"]), st.integers(0, 1000)),
        min_size=1,
        max_size=40,
    ),
    st.sampled_from([("realTimeData", False), (None, True), ("results", False)]),
)
def test_shares_keep_every_item_once_in_order_under_its_station(
    rows: list[tuple[str, int]], shape: tuple[str | None, bool]
) -> None:
    wrapper, is_array = shape
    raws = [{"stationId": sid, "n": n} for sid, n in rows]
    items = [_item(sid, raw) for (sid, _), raw in zip(rows, raws, strict=True)]
    value = json.dumps(raws if is_array else {wrapper: raws}).encode()
    out = shares(items, value, wrapper, is_array, CODEC)
    sids = [sid for sid, _ in out]
    assert len(sids) == len(set(sids)) == len({sid for sid, _ in rows})
    for sid, payload in out:
        decoded = json.loads(payload)
        got = decoded if is_array else decoded[wrapper]
        assert got == [r for r in raws if r["stationId"] == sid]


# ----------------------------------------------------------------------------- the stage


def test_multi_station_record_is_split_and_committed_only_after_every_share_is_acked() -> None:
    eng, feed = rekey_engine(partitions=4), Feed()
    src = feed.rec(RT, rt_many("A", "B", "C"), partition=2, ts=T0 - 5)
    eng.ingest([src], T0)
    assert eng.take_runs(10, T0) == []  # nothing applied at the source stage
    fwds = eng.take_forwards(T0)
    assert sorted(json.loads(f.record.value)["realTimeData"][0]["stationId"] for f in fwds) == [
        "A",
        "B",
        "C",
    ]
    for f in fwds:
        r = f.record
        assert r.topic == internal(RT)
        assert r.key is not None
        assert r.partition == partition_for_key(r.key, 4)
        assert r.timestamp == T0 - 5  # the source timestamp is kept
        assert dict(r.headers)[SOURCE_HEADER] == f"{RT}/2/0".encode()
    assert eng.pending_forwards == 3
    eng.forward_done(fwds[0].fwd_id, True, T0)
    eng.forward_done(fwds[1].fwd_id, True, T0)
    assert eng.flush_offsets() == {}  # one share still unacknowledged
    eng.forward_done(fwds[2].fwd_id, True, T0)
    assert eng.flush_offsets() == {TopicPartition(RT, 2): 1}
    assert eng.pending_forwards == 0
    assert eng.stats.records_forwarded == 1
    assert eng.stats.shares_forwarded == 3


def test_a_station_is_placed_by_the_current_partition_count_after_it_changes() -> None:
    """The forwarder remembers each station's partition; a new count places it anew."""
    sids = [f"S{i}" for i in range(12)]
    eng, feed = rekey_engine(partitions=4), Feed()
    for count in (4, 4, 7, 4):
        eng.set_rekey_partitions(count)
        eng.ingest([feed.rec(RT, rt_many(*sids), partition=0)], T0)
        placed = {r.key: r.partition for r in deliver(eng, T0)}
        assert placed == {s.encode(): partition_for_key(s.encode(), count) for s in sids}
    assert len({partition_for_key(s.encode(), 7) for s in sids} - set(range(4))) > 0


def test_failed_share_is_retried_with_backoff_and_holds_the_source_offset() -> None:
    eng, feed = rekey_engine(), Feed()
    eng.ingest([feed.rec(RT, rt_many("A"))], T0)
    (f,) = eng.take_forwards(T0)
    eng.forward_done(f.fwd_id, False, T0, "NOT_ENOUGH_REPLICAS")
    assert eng.stats.forward_failures == 1
    assert eng.take_forwards(T0) == []  # backing off
    assert eng.flush_offsets() == {}
    (again,) = eng.take_forwards(T0 + 1.0)
    assert again.attempt == 1
    assert again.record == f.record
    eng.forward_done(again.fwd_id, True, T0 + 1.0)
    assert eng.flush_offsets() == {TopicPartition(RT, 0): 1}


def test_internal_records_feed_the_station_like_the_source_would() -> None:
    eng, feed = rekey_engine(), Feed()
    eng.ingest([feed.rec(PARAM, param("A") + param("B")), feed.rec(RT, rt_many("A", "B"))], T0)
    internal_records = deliver(eng, T0)
    assert {r.topic for r in internal_records} == {internal(PARAM), internal(RT)}
    first = eng.flush_offsets()
    assert first == {TopicPartition(PARAM, 0): 1, TopicPartition(RT, 0): 1}
    eng.commit_done(first, True, T0)
    eng.ingest(internal_records, T0)
    runs = eng.take_runs(10, T0)
    assert sorted(r.station_id for r in runs) == ["A", "B"]
    for r in runs:
        assert r.module_input["gridCapacity"] == 630.0
        assert r.module_input["outputPowerPerStationAvg"] == 1.0
    for r in runs:
        eng.finish_run(r, T0, result={"ok": 1})
    eng.tick(T0 + 100)
    ack_uploads(eng, T0 + 100)
    assert eng.flush_offsets() == {
        TopicPartition(r.topic, r.partition): r.offset + 1 for r in internal_records
    }


def test_bad_source_record_is_dead_lettered_at_the_source_stage() -> None:
    eng, feed = rekey_engine(), Feed()
    eng.ingest([feed.rec(RT, b"{not json"), feed.rec(RT, {"realTimeData": [{"x": 1}]})], T0)
    assert eng.take_forwards(T0) == []
    dls = eng.take_dead_letters()
    assert [d.reason for d in dls] == ["not_json", "missing_station_id"]
    assert dict(dls[0].record.headers)["da.topic"] == RT.encode()
    for d in dls:
        eng.dead_letter_done(d.dl_id, True, T0)
    assert eng.flush_offsets() == {TopicPartition(RT, 0): 2}


def test_global_topics_are_not_rekeyed() -> None:
    eng, feed = rekey_engine(), Feed()
    cal = {"calendar": [{"date": "2026-11-27", "isHoliday": 0, "isWeekend": 0}]}
    eng.ingest([feed.rec(CAL, cal)], T0, tracked=False)
    assert eng.take_forwards(T0) == []
    assert eng.stats.global_values_cached == 1


def test_ingesting_a_source_record_before_the_partition_count_is_known_is_an_error() -> None:
    eng = Engine(default_catalog(), "load_prediction", CODEC, routing=Routing(mode="rekey"))
    with pytest.raises(RuntimeError, match="rekey_partitions"):
        eng.ingest([Feed().rec(RT, rt_many("A"))], T0)


def test_take_forwards_hands_out_at_most_the_limit_and_keeps_the_rest_in_order() -> None:
    eng, feed = rekey_engine(), Feed()
    eng.ingest([feed.rec(RT, rt_many(*[f"S{i}" for i in range(5)]))], T0)
    first = eng.take_forwards(T0, 2)
    assert len(first) == 2
    rest = eng.take_forwards(T0, 10)
    assert len(rest) == 3
    assert {f.fwd_id for f in first}.isdisjoint(f.fwd_id for f in rest)
    assert [f.fwd_id for f in first + rest] == sorted(f.fwd_id for f in first + rest)
    assert eng.take_forwards(T0, 0) == []
    assert eng.pending_forwards == 5  # handed out, not yet acknowledged
