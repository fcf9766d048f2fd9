"""Caches belong to the engine instance: plans and partitions are never shared between engines."""

from __future__ import annotations

import attrs

from da_core.catalog import default_catalog
from da_core.codec import StdlibJsonCodec
from da_core.config import Catalog, TopicConfig
from da_core.engine import Engine
from da_core.extractors import DEFAULT_PLANS, PlanCache, compile_topic, extract
from da_core.types import Record
from tests.unit.core.test_engine import PARAM, RT, T0, Feed, param, realtime

CODEC = StdlibJsonCodec()


def with_rt_fields(catalog: Catalog, fields: tuple[str, ...]) -> Catalog:
    topics = dict(catalog.topics)
    topics[RT] = attrs.evolve(topics[RT], fields=fields)
    return attrs.evolve(catalog, topics=topics)


def test_two_engines_with_different_catalogs_do_not_share_plans() -> None:
    base = default_catalog()
    a = Engine(base, "load_prediction", CODEC)
    b = Engine(with_rt_fields(base, ()), "load_prediction", CODEC)
    feed = Feed()
    rec = feed.rec(RT, realtime("S1", "10", 1.0))
    a.ingest([rec], T0)
    assert a._caches.plans is not b._caches.plans
    assert len(b._caches.plans) == 0
    b.ingest([rec], T0)
    plan_a = a._caches.plans.get(base.topics[RT])
    plan_b = b._caches.plans.get(b.catalog.topics[RT])
    assert plan_a is not plan_b
    assert plan_a.topic is base.topics[RT]
    assert plan_b.topic is b.catalog.topics[RT]
    assert [f for f, _, _ in plan_b.fields] == []


def test_an_engine_does_not_fill_the_module_level_default_cache() -> None:
    DEFAULT_PLANS.plans.clear()
    eng, feed = Engine(default_catalog(), "load_prediction", CODEC), Feed()
    eng.ingest([feed.rec(PARAM, param("S1")), feed.rec(RT, realtime("S1", "10", 1.0))], T0)
    assert len(DEFAULT_PLANS) == 0
    assert len(eng._caches.plans) == 2


def test_partitions_are_remembered_per_engine() -> None:
    a = Engine(default_catalog(), "load_prediction", CODEC)
    b = Engine(default_catalog(), "load_prediction", CODEC)
    rec = Record(RT, 3, 0, b"{}", None, T0)
    tp = a._caches.tp_of(rec)
    assert a._caches.tp_of(rec) is tp
    assert b._caches.tp_of(rec) is not tp
    assert b._caches.tp_of(rec) == tp


def test_a_plan_cache_compiles_once_per_topic_object() -> None:
    cache = PlanCache()
    t = TopicConfig(name="T", extractor="object", fields=("a",))
    twin = TopicConfig(name="T", extractor="object", fields=("a",))
    assert cache.get(t) is cache.get(t)
    assert cache.get(twin) is not cache.get(t)
    assert cache.get(twin).topic is twin
    assert len(cache) == 2


def test_a_full_plan_cache_starts_over() -> None:
    cache = PlanCache(size=2)
    topics = [TopicConfig(name=f"T{i}", extractor="object", fields=("a",)) for i in range(3)]
    for t in topics:
        cache.get(t)
    assert len(cache) == 1
    assert cache.get(topics[2]).topic is topics[2]


def test_extract_and_compile_topic_use_a_given_cache_or_the_default() -> None:
    cache = PlanCache()
    t = TopicConfig(name="T", extractor="object", fields=("a",))
    rec = Record("T", 0, 0, b'{"stationId": "S", "a": 1}', None, T0)
    assert extract(t, rec, CODEC, cache).items[0].values == {"a": 1}
    assert len(cache) == 1
    assert compile_topic(t, cache) is cache.get(t)
    assert compile_topic(t) is compile_topic(t)
    assert compile_topic(t) is not cache.get(t)
