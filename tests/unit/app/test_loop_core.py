"""``LoopCore`` alone, sans I/O: no thread, no event loop, no sleep. A fake engine records
what the core tells it; core programs are driven by answering their operations by hand."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, cast

import pytest

from da_adapters.memory import ManualClock
from da_app.runtime import actions as a
from da_app.runtime.core import GLOBAL_REFRESH_SECONDS, LoopCore, Ops
from da_app.runtime.rebalance import RebalanceBook
from da_core.engine import Engine, StationRun, Upload
from da_core.types import OutboundRecord, Record, TopicPartition

T0, T1 = TopicPartition("T", 0), TopicPartition("T", 1)


class FakeEngine:
    """The engine surface the core uses, with counters the tests set."""

    def __init__(self) -> None:
        self.topics = ("T",)
        self.global_topics: tuple[str, ...] = ()
        self.internal_topics: dict[str, str] = {}
        self.runnable = 0
        self.pending_uploads = 0
        self.pending_forwards = 0
        self.forwards_in_flight = 0
        self.open_batches = 0
        self.uploads: list[Upload] = []
        self.told: list[tuple[Any, ...]] = []
        self.ingested: list[Record] = []
        self.stats = type("S", (), {"records_in": 0})()
        self.tracked: dict[TopicPartition, int] = {}

    @property
    def has_work(self) -> bool:
        return bool(self.runnable or self.pending_uploads or self.pending_forwards)

    def next_to_track(self, tp: TopicPartition) -> int | None:
        return self.tracked.get(tp)

    def tick(self, now: float) -> None:
        pass

    def take_runs(self, limit: int, now: float) -> list[StationRun]:
        n = min(limit, self.runnable)
        self.runnable -= n
        return [StationRun(i, f"S{i}", None, {}, now) for i in range(n)]

    def take_uploads(self, now: float) -> list[Upload]:
        ups, self.uploads = self.uploads, []
        self.pending_uploads += len(ups)
        return ups

    def take_dead_letters(self) -> list[Any]:
        return []

    def take_commit(self, now: float) -> None:
        return None

    def ingest(self, records: Sequence[Record], now: float, *, tracked: bool = True) -> None:
        self.ingested.extend(records)

    def finish_run(self, run: StationRun, now: float, **kw: Any) -> None:
        self.told.append(("run", run.run_id))

    def upload_done(self, uid: int, ok: bool, now: float, error: str | None = None) -> None:
        self.pending_uploads -= 1
        self.told.append(("upload", uid, ok, error))

    def flush_offsets(self) -> dict[TopicPartition, int]:
        return {}


def _core(eng: FakeEngine, clock: ManualClock | None = None, **kw: Any) -> LoopCore:
    return LoopCore(cast(Engine, eng), clock or ManualClock(), max_runs=2, **kw)


def _upload(uid: int, records: int) -> Upload:
    recs = tuple(OutboundRecord("OUT", b"x") for _ in range(records))
    return Upload(uid, f"b{uid}", "m", [], recs)


def drive(program: Ops, answer: Callable[[a.Op], Any]) -> tuple[Any, list[a.Op]]:
    """Run a core program, answering each operation with ``answer``; (result, ops seen)."""
    seen: list[a.Op] = []
    reply: Any = None
    try:
        while True:
            op = program.send(reply)
            seen.append(op)
            reply = answer(op)
    except StopIteration as end:
        return end.value, seen


def test_runs_are_limited_to_max_runs_and_their_completions_reach_the_engine() -> None:
    eng = FakeEngine()
    eng.runnable = 5
    core = _core(eng)
    work = core.take_work()
    assert [r.run_id for r in work.runs] == [0, 1]  # max_runs=2
    assert core.take_work().runs == []  # none free until one comes back
    assert core.complete([a.RunDone(work.runs[0], {"r": 1}, None, 0.5, handler_failed=True)]) == 1
    assert eng.told == [("run", 0)]
    assert core.stats.callback_count == 1
    assert core.stats.result_handler_errors == 1
    assert len(core.take_work().runs) == 1


def test_a_produced_upload_is_done_when_every_record_is_and_the_first_error_wins() -> None:
    eng = FakeEngine()
    eng.uploads = [_upload(7, 3)]
    core = _core(eng)
    core.take_work()
    core.complete([a.UploadDone(7, True), a.UploadDone(7, False, "boom")])
    assert eng.told == []
    assert not core.quiescent()
    core.complete([a.UploadDone(7, False, "later")])
    assert eng.told == [("upload", 7, False, "boom")]
    assert core.quiescent()


def test_a_custom_upload_handler_answers_once_per_upload() -> None:
    eng = FakeEngine()
    eng.uploads = [_upload(3, 4)]
    core = _core(eng, custom_upload=True)
    core.take_work()
    core.complete([a.UploadDone(3, True)])
    assert eng.told == [("upload", 3, True, None)]


@pytest.mark.parametrize("what", ["uploads", "forwards"])
def test_every_partition_pauses_at_the_pending_limit_and_resumes_below_it(what: str) -> None:
    eng = FakeEngine()
    core = _core(eng, max_pending_uploads=2, max_pending_forwards=20)
    assigned = {T0, T1}
    if what == "uploads":
        eng.pending_uploads = 2
    else:
        eng.pending_forwards = 20
    plan = core.poll_plan(assigned, 0)
    assert plan.pause == [T0, T1]
    assert plan.resume == []
    assert core.poll_plan(assigned, 0).pause == []  # already paused
    eng.pending_uploads = eng.pending_forwards = 1
    assert core.poll_plan(assigned, 0).resume == [T0, T1]


def test_pending_shares_pause_every_topic_but_the_internal_ones_and_uploads_pause_all() -> None:
    """Reading an internal topic makes no share: rekey's second stage keeps draining while its
    first stage waits for its shares' answers."""
    eng = FakeEngine()
    eng.internal_topics = {"T": "g.T.by-station"}
    i0, i1 = TopicPartition("g.T.by-station", 0), TopicPartition("g.T.by-station", 1)
    core = _core(eng, max_pending_uploads=2, max_pending_forwards=20)
    assigned = {T0, T1, i0, i1}
    eng.pending_forwards = 20
    plan = core.poll_plan(assigned, 0)
    assert (plan.pause, plan.resume) == ([T0, T1], [])
    eng.pending_uploads = 2  # now uploads too: everything
    assert core.poll_plan(assigned, 0).pause == [i0, i1]
    eng.pending_uploads = 0
    assert core.poll_plan(assigned, 0).resume == [i0, i1]  # shares only again
    eng.pending_forwards = 0
    assert core.poll_plan(assigned, 0).resume == [T0, T1]
    assert core.stats.backpressure_pauses == 1  # one pause, however its cause changed


def test_a_back_pressure_pause_is_counted_each_time_and_logged_once_a_minute(
    caplog: pytest.LogCaptureFixture,
) -> None:
    eng = FakeEngine()
    clock = ManualClock()
    core = _core(eng, clock, max_pending_uploads=2)
    caplog.set_level(logging.WARNING, logger="da_app.runner")

    def pause_and_resume() -> None:
        eng.pending_uploads = 2
        core.poll_plan({T0}, 0)
        core.poll_plan({T0}, 0)  # still paused: not a new pause
        eng.pending_uploads = 0
        core.poll_plan({T0}, 0)
        clock.advance(1.0)

    for _ in range(5):
        pause_and_resume()
    lines = [r.getMessage() for r in caplog.records if "pausing consumption" in r.getMessage()]
    assert core.stats.backpressure_pauses == 5
    assert len(lines) == 1
    assert "2 uploads and 0 shares pending (pauses since the last such line: 1;" in lines[0]
    clock.advance(60.0)
    pause_and_resume()
    lines = [r.getMessage() for r in caplog.records if "pausing consumption" in r.getMessage()]
    assert core.stats.backpressure_pauses == 6
    assert len(lines) == 2
    assert "(pauses since the last such line: 5;" in lines[1]


def test_the_poll_waits_only_when_there_is_nothing_to_do() -> None:
    eng = FakeEngine()
    core = _core(eng, poll_timeout=0.1)
    assert core.poll_plan(set(), 0).timeout == 0.1
    eng.pending_uploads = 1
    assert core.poll_plan(set(), 0).timeout == 0.005  # answers are awaited: look again soon
    eng.runnable = 1
    assert core.poll_plan(set(), 0).timeout == 0.0


def test_a_drain_ends_idle_when_nothing_is_left() -> None:
    core = _core(FakeEngine())
    done, ops = drive(core.drain(), lambda op: [])
    assert done is True
    assert not any(isinstance(op, a.Sleep) for op in ops)


def test_a_drain_under_a_frozen_clock_ends_once_only_time_could_help() -> None:
    eng = FakeEngine()
    eng.pending_uploads = 1  # waiting for a retry backoff: nothing in flight
    core = _core(eng)
    done, ops = drive(core.drain(), lambda op: [])
    assert done is False
    assert sum(isinstance(op, a.Wait) and op.seconds > 0 for op in ops) == 1


def test_a_drain_with_work_in_flight_ends_after_its_bounded_idle_waits() -> None:
    eng = FakeEngine()
    eng.runnable = 1
    core = _core(eng, drain_timeout=0.05)  # 0.05 s in idle waits of 0.01 s
    core.take_work()  # a run is in flight and never answers
    done, ops = drive(core.drain(), lambda op: [])
    assert done is False
    assert sum(isinstance(op, a.Wait) and op.seconds > 0 for op in ops) == 5


def test_a_drain_ends_at_the_clocks_deadline() -> None:
    eng = FakeEngine()
    eng.runnable = 1
    clock = ManualClock()
    core = _core(eng, clock, drain_timeout=1000.0)
    core.take_work()

    def answer(op: a.Op) -> Any:
        if isinstance(op, a.Wait) and op.seconds > 0:
            clock.advance(600)  # a real clock moves while the shell waits
        return []

    done, ops = drive(core.drain(), answer)
    assert done is False
    assert len([op for op in ops if isinstance(op, a.Wait) and op.seconds > 0]) == 2


def test_a_failed_commit_is_recorded_and_told_to_the_engine() -> None:
    eng = FakeEngine()
    told: list[bool] = []
    eng.commit_done = lambda offsets, ok, now: told.append(ok)  # type: ignore[attr-defined]
    core = _core(eng)
    program = core.commit({T0: 3})
    assert isinstance(next(program), a.Commit)
    with pytest.raises(StopIteration) as end:
        program.throw(RuntimeError("broker down"))
    assert end.value.value is False
    assert told == [False]
    assert core.stats.commit_failed_at is not None


def test_partitions_revoked_by_our_own_resubscription_are_held_and_replays_skipped() -> None:
    tracked = {T0: 10}
    book = RebalanceBook(tracked.get)
    book.resubscribing()
    book.revoked([T0, T1])
    assert book.take_due() == []  # held, not drained
    book.assigned([T0])
    assert book.take_due() == [T1]  # not handed back: revoked now
    assert book.colocation_due
    recs = [Record(T0.topic, T0.partition, o, None, b"v", 0.0) for o in (9, 10, 11)]
    assert [r.offset for r in book.skip_replayed(recs)] == [10, 11]
    assert book.skip_below == {}  # cleared at the first new record


def test_any_other_revoke_is_due_at_once() -> None:
    book = RebalanceBook(lambda tp: None)
    book.revoked([T1])
    assert book.take_due() == [T1]


def test_global_partitions_are_looked_for_on_schedule_or_on_request() -> None:
    eng = FakeEngine()
    eng.global_topics = ("G",)
    clock = ManualClock()
    core = _core(eng, clock, global_reader=True)
    assert core.global_refresh_due()
    _, ops = drive(
        core.refresh_globals(), lambda op: {"G": [0, 1]} if isinstance(op, a.Partitions) else None
    )
    assert a.Assign((TopicPartition("G", 0), TopicPartition("G", 1))) in ops
    assert not core.global_refresh_due()
    clock.advance(GLOBAL_REFRESH_SECONDS)
    assert core.global_refresh_due()
    _, ops = drive(
        core.refresh_globals(), lambda op: {"G": [0, 1]} if isinstance(op, a.Partitions) else None
    )
    assert not any(isinstance(op, a.Assign) for op in ops)  # nothing new
    core.request_global_refresh()
    assert core.global_refresh_due()


def test_a_failed_poll_backs_off_and_the_loop_goes_on() -> None:
    core = _core(FakeEngine(), poll_timeout=0.1)

    def answer(op: a.Op) -> Any:
        if isinstance(op, a.Assignment):
            return set()
        if isinstance(op, a.Wait):
            return []
        return None

    program = core.step()
    op = next(program)
    while not isinstance(op, a.Poll):
        op = program.send(answer(op))
    op = program.throw(ConnectionError("down"))
    assert op == a.Sleep(0.5)
    assert core.stats.poll_errors == 1
    assert not core.stats.consumer_alive
    activity, _ = drive(program, answer)
    assert activity == 0
    assert core.stats.loops == 1
