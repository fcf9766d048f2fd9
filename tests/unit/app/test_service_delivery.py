"""At-least-once on the in-memory bus: crashes, in-flight records, failed uploads and commits,
over both runner shells (the ``harness`` fixture, ``tests/unit/app/conftest.py``)."""

from __future__ import annotations

import threading
from typing import Any

from da_adapters.memory import ManualClock, MemoryBroker
from da_core.types import TopicPartition

from .conftest import Harnesses
from .helpers import OUT_LP, PARAM, RT, echo_window, param, realtime
from .shells import step_until


def _values_seen(results: list[dict[str, Any]], sid: str) -> set[float]:
    return {v for r in results if r["station_id"] == sid for v in r["window"] if v}


async def test_crash_and_restart_in_the_same_group_reflects_every_input_record(
    harness: Harnesses,
) -> None:
    clock = ManualClock()
    broker = MemoryBroker(clock)
    stations = [f"S{i}" for i in range(5)]
    # Readiness on REALTIME alone: a restarted instance has no window state from before the
    # crash (windows live in memory), so a station must be able to run on the replayed records.
    cfg = {"modules": {"load_prediction": {"required_topics": [RT]}}}
    h1 = harness(
        "load_prediction", echo_window, broker=broker, clock=clock, group_id="g", config=cfg
    )
    h1.publish(PARAM, param(*stations))
    sent: dict[str, set[float]] = {s: set() for s in stations}
    for hour in range(10):
        for s in stations:
            v = float(hour * 100 + int(s[1:]) + 1)
            sent[s].add(v)
            h1.publish(RT, realtime(s, hour, v), key=s)
        if hour == 4:
            await h1.run_until_idle()
            h1.advance(6)  # the commit interval passes: part of the stream is committed
            await h1.run_until_idle()
    await h1.step()  # mid-stream: some records read, none of their results uploaded
    await h1.crash()
    h2 = harness(
        "load_prediction", echo_window, broker=broker, clock=clock, group_id="g", config=cfg
    )
    await h2.run_until_idle()
    results = h2.results()  # the output topic holds both instances' uploads
    for s in stations:
        assert sent[s] <= _values_seen(results, s), s


async def test_committed_offsets_never_pass_a_record_in_flight(harness: Harnesses) -> None:
    gate = threading.Event()

    def slow(sid: str, inp: dict[str, Any]) -> dict[str, Any]:
        if sid == "SLOW":
            gate.wait(10)
        return {"ok": True}

    h = harness("load_prediction", slow, config={"OFFSET_COMMIT_CONFIG": {"commit_batch_size": 1}})
    h.publish(PARAM, param("SLOW", "FAST"), partition=0)
    h.publish(RT, realtime("SLOW", 0, 1.0), partition=0)  # RT[0]@0 held by the blocked run
    h.publish(RT, realtime("FAST", 0, 2.0), partition=0)  # RT[0]@1 finishes at once
    stats = h.engine.stats
    await step_until(h, lambda: stats.runs_ok == 1, what="FAST done while SLOW blocks")
    h.advance(10)  # past the batch timeout and the commit interval
    await step_until(h, lambda: stats.uploads_ok == 1, what="FAST's timed-out batch uploaded")
    await h.step()  # every step commits what is due: RT[0]@1 is done, RT[0]@0 is not
    assert [r["station_id"] for r in h.results()] == ["FAST"]
    assert h.committed()[TopicPartition(RT, 0)] is None
    gate.set()
    await h.run_until_idle()
    h.advance(10)
    await h.run_until_idle()
    assert h.committed()[TopicPartition(RT, 0)] == 2


async def test_failed_upload_commits_nothing_and_is_retried(harness: Harnesses) -> None:
    h = harness("load_prediction", echo_window)
    h.broker.reject_topic(OUT_LP)
    h.publish(PARAM, param("S1"), partition=0)
    h.publish(RT, realtime("S1", 0, 7.0), partition=0)
    await h.run_until_idle()
    h.advance(10)
    await h.run_until_idle()
    assert h.results() == []
    assert h.engine.stats.upload_failures >= 1
    assert set(h.committed().values()) == {None}
    assert h.service.get_service_status()["upload_failing_since"] is not None
    h.broker.accept_topic(OUT_LP)
    h.advance(60)  # past the retry backoff
    await h.run_until_idle()
    h.advance(10)
    await h.run_until_idle()
    assert [r["station_id"] for r in h.results()] == ["S1"]
    assert h.committed()[TopicPartition(RT, 0)] == 1
    assert h.service.get_service_status()["upload_failing_since"] is None


async def test_failed_commit_is_retried_and_nothing_is_lost(harness: Harnesses) -> None:
    h = harness("load_prediction", echo_window)
    h.broker.fail_commits("test-load_prediction", count=2)
    h.publish(PARAM, param("S1"), partition=0)
    h.publish(RT, realtime("S1", 0, 7.0), partition=0)
    await h.run_until_idle()
    h.advance(10)
    await h.run_until_idle()
    assert h.engine.stats.commit_failures >= 1
    for _ in range(5):  # each retry waits out its backoff on the manual clock
        h.advance(2)
        await h.run_until_idle()
    assert h.committed()[TopicPartition(RT, 0)] == 1


async def test_stop_commits_everything_that_is_done(harness: Harnesses) -> None:
    h = harness("load_prediction", echo_window)
    h.publish(PARAM, param("S1"), partition=0)
    h.publish(RT, realtime("S1", 0, 7.0), partition=0)
    await h.run_until_idle()
    assert h.committed()[TopicPartition(RT, 0)] == 1  # the first commit is not delayed
    h.publish(RT, realtime("S1", 1, 8.0), partition=0)
    await h.run_until_idle()
    assert h.committed()[TopicPartition(RT, 0)] == 1  # neither 100 records nor 5 s yet
    await h.stop()
    assert h.committed()[TopicPartition(RT, 0)] == 2
