"""A seeded mutator over the shipped samples (``da_app/samples``) and the fuzz run that feeds
its payloads through the public ``Harness`` (issue 10: no crash, no hang, every bad record
dead-lettered or counted with a reason, good records around it still produce results,
commits never stuck). Used by the quick tier (``test_fuzz_input.py``) and the large one
(``tests/fuzz``, tox env ``fuzz``)."""

from __future__ import annotations

import copy
import json
import math
import random
from collections.abc import Callable, Iterator
from typing import Any

from da_app.testing import SAMPLES_DIR, Harness, load_sample
from da_core.types import TopicPartition

TOPICS = sorted(p.stem for p in SAMPLES_DIR.glob("*.json"))
ENVELOPE = "MODULE-OUTPUT-PV_PREDICTION"
BIG = "__da_fuzz_big_number__"
"""A marker replaced by ``1e400`` after encoding (no float encodes to it)."""


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


ODD_LEAVES: tuple[Callable[[random.Random], Any], ...] = (
    lambda r: math.nan,
    lambda r: math.inf,
    lambda r: -math.inf,
    lambda r: BIG,
    lambda r: 10**30,
    lambda r: -(10**25),
    lambda r: "\ud800",
    lambda r: "x\udfffy",
    lambda r: "",
    lambda r: None,
    lambda r: True,
    lambda r: [],
    lambda r: {},
    lambda r: nested(r.choice((50, 260, 400))),
    lambda r: "S" * r.choice((129, 5000)),
    lambda r: "a\nb\x1b[2J",
    lambda r: "2099-01-01 00:00:00",
    lambda r: "1970-01-01 00:00:00",
    lambda r: "not a time",
    lambda r: r.uniform(-1e9, 1e9),
    lambda r: str(r.randint(0, 99)),
    lambda r: [math.nan, 1.0],
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, (*prefix, i))


def _set(root: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    node = root
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = new
    return root


def _delete(root: Any, path: tuple[Any, ...]) -> Any:
    if not path:
        return None
    node = root
    for step in path[:-1]:
        node = node[step]
    del node[path[-1]]
    return root


def encode(value: Any) -> bytes:
    text = json.dumps(value, ensure_ascii=True, allow_nan=True)
    return text.replace(json.dumps(BIG), "1e400").encode()


def mutate(sample: Any, rnd: random.Random) -> bytes:
    """One mutated payload of ``sample``: a tree mutation (odd leaf, deleted key, duplicated
    element, a whole new root) or a byte mutation (truncation, flipped byte, bad UTF-8)."""
    tree = copy.deepcopy(sample)
    kind = rnd.random()
    if kind < 0.8:
        for _ in range(rnd.choice((1, 1, 2, 3))):
            paths = list(_paths(tree))
            path = rnd.choice(paths)
            op = rnd.random()
            try:
                if op < 0.7:
                    tree = _set(tree, path, rnd.choice(ODD_LEAVES)(rnd))
                elif op < 0.85:
                    tree = _delete(tree, path)
                else:
                    node = tree
                    for step in path:
                        node = node[step]
                    if isinstance(node, list) and node:
                        node.append(copy.deepcopy(rnd.choice(node)))
            except (KeyError, IndexError, TypeError):
                continue
        return encode(tree)
    data = bytearray(encode(tree))
    op = rnd.random()
    if op < 0.4:
        return bytes(data[: rnd.randrange(len(data))])
    if op < 0.8:
        i = rnd.randrange(len(data))
        data[i] = rnd.randrange(256)
        return bytes(data)
    return bytes(data) + b"\xff\xfe"


def _module(topic: str) -> tuple[str, dict[str, Any]]:
    """The module that reads ``topic`` alone, and the service arguments that make it so."""
    if topic == ENVELOPE:
        return "electricity_price", {"topics": ["SCHEDULE-DEVICE-METER"]}
    return "load_prediction", {"topics": [topic]}


class Outcome:
    """What a fuzz run of one topic in one routing saw (for the assertions)."""

    def __init__(self) -> None:
        self.published = 0
        self.non_finite_inputs: list[str] = []


def _non_finite(value: Any) -> bool:
    stack = [value]
    while stack:
        x = stack.pop()
        if isinstance(x, float) and not math.isfinite(x):
            return True
        if isinstance(x, dict):
            stack.extend(x.values())
        elif isinstance(x, (list, tuple)):
            stack.extend(x)
    return False


def fuzz_topic(topic: str, routing: str, cases: int, seed: int) -> None:
    """Feed ``cases`` mutated payloads of ``topic``'s sample, each followed by the good sample,
    through a harness in ``routing``; assert the issue's properties."""
    rnd = random.Random(f"{seed}:{topic}:{routing}")
    sample = load_sample(topic)
    module, service = _module(topic)
    outcome = Outcome()

    def model(sid: str, inp: dict[str, Any]) -> dict[str, Any]:
        if _non_finite(inp):
            outcome.non_finite_inputs.append(sid)
        return {"ok": 1}

    h = Harness(module, model, station_routing=routing, poll_timeout=0.001, **service)
    try:
        if topic == ENVELOPE:
            h.publish_sample("SCHEDULE-DEVICE-METER")
            for sid in ("S0001", "S0002"):
                meter = {**load_sample("SCHEDULE-DEVICE-METER"), "stationId": sid}
                h.publish("SCHEDULE-DEVICE-METER", meter)
        good = encode(sample)
        for _ in range(cases):
            future = rnd.random() < 0.05
            ts = h.clock.time() + 86_400 * 365 if future else None
            h.publish(topic, mutate(sample, rnd), partition=0, timestamp=ts)
            h.publish(topic, good, partition=0)
            outcome.published += 2
        h.run_until_idle(timeout=60)
        results_before = len(h.results())
        h.publish(topic, good, partition=0)
        outcome.published += 1
        h.run_until_idle(timeout=30)
        h.advance(10)
        h.run_until_idle(timeout=30)
        stats = h.engine.stats
        assert outcome.non_finite_inputs == [], "a non-finite number reached the model"
        dead = h.dead_letters()
        assert all(headers.get("da.reason") for headers, _ in dead)
        assert len(dead) == sum(stats.bad_input.values())
        if topic not in (ENVELOPE, "SCHEDULE-ENVIRONMENT-CALENDAR"):
            assert len(h.results()) > results_before, "the last good record made no result"
            committed = h.committed().get(TopicPartition(topic, 0))
            assert committed == len(h.broker.records(topic, 0)), "commits stuck"
    finally:
        h.stop()
