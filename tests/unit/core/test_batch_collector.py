"""BatchCollector: forming batches, completing them once, and never losing a run's result."""

from __future__ import annotations

import math
import re
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from da_core.batch_collector import BatchCollector, CompletedBatch, RunOutcome
from da_core.config import BatchPolicy

MODULE = "SOH_model"


def make(timeout: float = 5.0, ratio: float = 1.0) -> BatchCollector[str]:
    return BatchCollector(MODULE, BatchPolicy(timeout_seconds=timeout, completion_ratio=ratio))


def run(
    bc: BatchCollector[str],
    station: str,
    outcome: RunOutcome | None = None,
    now: float = 0.0,
    attachment: str | None = None,
) -> str | None:
    """Start and finish one run of ``station``; returns the batch it was bound to."""
    bid = bc.run_started(station, now)
    bc.run_finished(
        station,
        bid,
        outcome if outcome is not None else RunOutcome.result({"soh": 1}),
        attachment if attachment is not None else f"att-{station}",
        now,
    )
    return bid


def only(batches: list[CompletedBatch[str]]) -> CompletedBatch[str]:
    assert len(batches) == 1, batches
    return batches[0]


# -- forming ---------------------------------------------------------------------------


def test_batch_ids_are_the_module_and_a_six_digit_counter() -> None:
    bc = make()
    assert [bc.open(["s1"], 0.0), bc.open(["s2"], 0.0)] == [
        "SOH_model-000001",
        "SOH_model-000002",
    ]


def test_open_without_stations_forms_no_batch() -> None:
    assert make().open([], 0.0) is None


def test_station_waiting_in_an_open_batch_is_left_out_of_a_new_batch() -> None:
    bc = make()
    first = bc.open(["s1", "s2"], 0.0)
    bc.open(["s1", "s3"], 1.0)
    assert bc.run_started("s1", 1.0) == first


def test_new_batch_counts_only_stations_not_already_waiting() -> None:
    bc = make()
    bc.open(["s1", "s2"], 0.0)
    second = bc.open(["s1", "s3"], 1.0)
    run(bc, "s3")
    batch = next(b for b in bc.poll(1.0) if b.batch_id == second)
    assert batch.members == 1


def test_open_forms_no_batch_when_every_station_already_waits() -> None:
    bc = make()
    bc.open(["s1", "s2"], 0.0)
    assert bc.open(["s2", "s1"], 1.0) is None


def test_running_station_joins_the_new_batch_with_its_next_run() -> None:
    bc = make()
    bc.open(["s1"], 0.0)
    bc.run_started("s1", 0.0)
    second = bc.open(["s1"], 0.5)
    assert bc.run_started("s1", 0.6) == second


def test_run_started_returns_none_when_the_station_waits_in_no_batch() -> None:
    assert make().run_started("s1", 0.0) is None


def test_a_station_listed_twice_is_one_member() -> None:
    bc = make()
    bc.open(["s1", "s1"], 0.0)
    run(bc, "s1")
    assert only(bc.poll(0.0)).members == 1


def test_waiting_in_reports_the_batch_a_station_waits_in() -> None:
    bc = make()
    bid = bc.open(["s1"], 0.0)
    assert bc.waiting_in("s1") == bid


# -- completion ------------------------------------------------------------------------


def test_batch_completes_when_every_member_finished() -> None:
    bc = make()
    bid = bc.open(["s1", "s2"], 0.0)
    run(bc, "s1")
    run(bc, "s2")
    batch = only(bc.poll(0.1))
    assert (batch.batch_id, batch.timed_out) == (bid, False)


def test_batch_stays_open_while_a_member_is_running() -> None:
    bc = make()
    bc.open(["s1", "s2"], 0.0)
    run(bc, "s1")
    bc.run_started("s2", 0.0)
    assert bc.poll(4.9) == []


def test_batch_completes_early_at_the_completion_ratio() -> None:
    bc = make(ratio=0.5)
    bc.open(["s1", "s2", "s3", "s4"], 0.0)
    run(bc, "s1")
    run(bc, "s2")
    assert only(bc.poll(0.1)).timed_out is False


def test_batch_below_the_completion_ratio_stays_open() -> None:
    bc = make(ratio=0.8)
    bc.open(["s1", "s2", "s3", "s4", "s5"], 0.0)
    for s in ("s1", "s2", "s3"):
        run(bc, s)
    assert bc.poll(0.1) == []


def test_batch_times_out_after_timeout_seconds() -> None:
    bc = make(timeout=5.0)
    bc.open(["s1", "s2"], 10.0)
    run(bc, "s1", now=10.0)
    batch = only(bc.poll(15.0))
    assert (batch.timed_out, batch.created_at) == (True, 10.0)


def test_batch_does_not_time_out_before_timeout_seconds() -> None:
    bc = make(timeout=5.0)
    bc.open(["s1"], 10.0)
    assert bc.poll(14.99) == []


def test_a_completed_batch_comes_out_of_poll_once() -> None:
    bc = make()
    bc.open(["s1"], 0.0)
    run(bc, "s1")
    bc.poll(0.0)
    assert bc.poll(100.0) == []


def test_poll_returns_batches_oldest_first() -> None:
    bc = make()
    bc.open(["s1"], 0.0)
    bc.open(["s2"], 0.0)
    run(bc, "s2")
    run(bc, "s1")
    assert [b.batch_id for b in bc.poll(0.0)] == ["SOH_model-000001", "SOH_model-000002"]


def test_a_timed_out_batch_no_longer_holds_its_waiting_members() -> None:
    bc = make(timeout=5.0)
    bc.open(["s1"], 0.0)
    bc.poll(5.0)
    assert bc.run_started("s1", 6.0) is None


def test_members_of_a_timed_out_batch_can_join_a_new_batch() -> None:
    bc = make(timeout=5.0)
    bc.open(["s1"], 0.0)
    bc.poll(5.0)
    assert bc.open(["s1"], 6.0) == "SOH_model-000002"


def test_open_batches_lists_batches_not_yet_handed_out() -> None:
    bc = make()
    bc.open(["s1"], 0.0)
    second = bc.open(["s2"], 0.0)
    run(bc, "s1")
    bc.poll(0.0)
    assert bc.open_batches() == [second]


def test_next_deadline_is_the_oldest_open_batch_timeout() -> None:
    bc = make(timeout=5.0)
    bc.open(["s1"], 10.0)
    bc.open(["s2"], 11.0)
    assert bc.next_deadline() == 15.0


def test_next_deadline_is_none_when_nothing_is_open() -> None:
    assert make().next_deadline() is None


def test_a_new_policy_applies_to_batches_formed_afterwards() -> None:
    bc = make(timeout=5.0)
    bc.open(["s1"], 0.0)
    bc.policy = BatchPolicy(timeout_seconds=1.0)
    bc.open(["s2"], 0.0)
    assert [b.batch_id for b in bc.poll(1.0)] == ["SOH_model-000002"]


# -- results ---------------------------------------------------------------------------


def test_station_id_is_injected_into_a_dict_result() -> None:
    bc = make()
    bc.open(["s1"], 0.0)
    run(bc, "s1", RunOutcome.result({"soh": 0.97}))
    assert only(bc.poll(0.0)).results == [{"station_id": "s1", "soh": 0.97}]


def test_station_id_set_by_the_callback_is_kept() -> None:
    bc = make()
    bc.open(["s1"], 0.0)
    run(bc, "s1", RunOutcome.result({"station_id": "S-1", "soh": 0.97}))
    assert only(bc.poll(0.0)).results == [{"station_id": "S-1", "soh": 0.97}]


def test_a_non_dict_result_is_wrapped_with_the_station_id() -> None:
    bc = make()
    bc.open(["s1"], 0.0)
    run(bc, "s1", RunOutcome.result([1, 2]))
    assert only(bc.poll(0.0)).results == [{"station_id": "s1", "result": [1, 2]}]


def test_none_outcomes_are_left_out_of_the_results() -> None:
    bc = make()
    bc.open(["s1", "s2", "s3"], 0.0)
    run(bc, "s1", RunOutcome.none())
    run(bc, "s2", RunOutcome.result(None))
    run(bc, "s3", RunOutcome.result({"x": 1}))
    assert only(bc.poll(0.0)).results == [{"station_id": "s3", "x": 1}]


def test_errors_are_counted_as_failed_and_left_out_of_the_results() -> None:
    bc = make()
    bc.open(["s1", "s2"], 0.0)
    run(bc, "s1", RunOutcome.error("ValueError"))
    run(bc, "s2", RunOutcome.result({"x": 1}))
    batch = only(bc.poll(0.0))
    assert (batch.failed, batch.succeeded, len(batch.results)) == (1, 1, 1)


def test_none_outcomes_count_as_succeeded() -> None:
    bc = make()
    bc.open(["s1"], 0.0)
    run(bc, "s1", RunOutcome.none())
    assert only(bc.poll(0.0)).succeeded == 1


def test_attachments_of_every_finished_run_are_kept() -> None:
    bc = make()
    bc.open(["s1", "s2", "s3"], 0.0)
    run(bc, "s1", RunOutcome.none(), attachment="a1")
    run(bc, "s2", RunOutcome.error("E"), attachment="a2")
    run(bc, "s3", RunOutcome.result(1), attachment="a3")
    assert only(bc.poll(0.0)).attachments == ["a1", "a2", "a3"]


def test_a_batch_without_results_is_returned_but_not_uploadable() -> None:
    bc = make()
    bc.open(["s1"], 0.0)
    run(bc, "s1", RunOutcome.none(), attachment="a1")
    batch = only(bc.poll(0.0))
    assert (batch.uploadable, batch.attachments) == (False, ["a1"])


def test_a_batch_with_results_is_uploadable() -> None:
    bc = make()
    bc.open(["s1"], 0.0)
    run(bc, "s1")
    assert only(bc.poll(0.0)).uploadable is True


def test_completed_batch_names_its_module() -> None:
    bc = make()
    bc.open(["s1"], 0.0)
    run(bc, "s1")
    assert only(bc.poll(0.0)).module == MODULE


# -- late results ----------------------------------------------------------------------


def timed_out_run(bc: BatchCollector[str], station: str) -> str | None:
    """Open a batch for ``station``, start its run, and let the batch time out (t=5)."""
    bc.open([station], 0.0)
    bid = bc.run_started(station, 0.0)
    assert only(bc.poll(5.0)).timed_out
    return bid


def test_late_result_of_a_timed_out_batch_goes_to_the_stations_next_batch() -> None:
    bc = make(timeout=5.0)
    late = timed_out_run(bc, "s1")
    second = bc.open(["s1", "s2"], 6.0)
    bc.run_finished("s1", late, RunOutcome.result({"v": "late"}), "a-late", 6.5)
    run(bc, "s2", now=6.5)
    bc.run_started("s1", 6.6)
    batch = only(bc.poll(11.0))
    assert (batch.batch_id, batch.results[0], batch.carried) == (
        second,
        {"station_id": "s1", "v": "late"},
        1,
    )


def test_late_result_waits_for_the_next_batch_formed_with_the_station() -> None:
    bc = make(timeout=5.0)
    late = timed_out_run(bc, "s1")
    bc.run_finished("s1", late, RunOutcome.result({"v": "late"}), "a-late", 6.0)
    second = bc.open(["s1"], 7.0)
    run(bc, "s1", RunOutcome.none(), now=7.5)
    batch = only(bc.poll(7.5))
    assert (batch.batch_id, batch.results, batch.attachments) == (
        second,
        [{"station_id": "s1", "v": "late"}],
        ["a-late", "att-s1"],
    )


def test_newer_result_in_the_next_batch_replaces_the_carried_one() -> None:
    bc = make(timeout=5.0)
    late = timed_out_run(bc, "s1")
    bc.run_finished("s1", late, RunOutcome.result({"v": "late"}), "a-late", 6.0)
    bc.open(["s1"], 7.0)
    run(bc, "s1", RunOutcome.result({"v": "new"}), now=7.5, attachment="a-new")
    batch = only(bc.poll(7.5))
    assert (batch.results, batch.attachments) == (
        [{"station_id": "s1", "v": "new"}],
        ["a-late", "a-new"],
    )


def test_older_result_arriving_after_a_newer_one_does_not_replace_it() -> None:
    bc = make(timeout=5.0)
    late = timed_out_run(bc, "s1")
    bc.open(["s1"], 6.0)
    run(bc, "s1", RunOutcome.result({"v": "new"}), now=6.5, attachment="a-new")
    bc.run_finished("s1", late, RunOutcome.result({"v": "old"}), "a-old", 6.7)
    batch = only(bc.poll(6.7))
    assert (batch.results, batch.attachments) == (
        [{"station_id": "s1", "v": "new"}],
        ["a-new", "a-old"],
    )


def test_late_result_goes_to_an_open_batch_the_station_is_already_member_of() -> None:
    bc = make(timeout=5.0)
    bc.open(["s1"], 0.0)
    late = bc.run_started("s1", 0.0)
    second = bc.open(["s1"], 4.0)
    bc.poll(5.0)
    bc.run_finished("s1", late, RunOutcome.result({"v": "late"}), "a-late", 5.5)
    batch = only(bc.poll(9.0))
    assert (batch.batch_id, batch.results) == (second, [{"station_id": "s1", "v": "late"}])


def test_late_result_gets_a_batch_of_its_own_when_none_forms_within_the_timeout() -> None:
    bc = make(timeout=5.0)
    late = timed_out_run(bc, "s1")
    bc.run_finished("s1", late, RunOutcome.result({"v": "late"}), "a-late", 6.0)
    batch = only(bc.poll(11.0))
    assert (batch.batch_id, batch.results, batch.attachments, batch.timed_out) == (
        "SOH_model-000002",
        [{"station_id": "s1", "v": "late"}],
        ["a-late"],
        False,
    )


def test_late_result_does_not_get_its_own_batch_before_the_timeout() -> None:
    bc = make(timeout=5.0)
    late = timed_out_run(bc, "s1")
    bc.run_finished("s1", late, RunOutcome.result({"v": "late"}), "a-late", 6.0)
    assert bc.poll(10.9) == []


def test_late_results_due_together_share_one_batch_of_their_own() -> None:
    bc = make(timeout=5.0)
    bc.open(["s1", "s2"], 0.0)
    late1 = bc.run_started("s1", 0.0)
    late2 = bc.run_started("s2", 0.0)
    bc.poll(5.0)
    bc.run_finished("s1", late1, RunOutcome.result(1), "a1", 6.0)
    bc.run_finished("s2", late2, RunOutcome.error("E"), "a2", 6.5)
    batch = only(bc.poll(12.0))
    assert (batch.members, batch.succeeded, batch.failed, batch.attachments) == (
        2,
        1,
        1,
        ["a1", "a2"],
    )


def test_late_none_outcome_still_releases_its_attachment() -> None:
    bc = make(timeout=5.0)
    late = timed_out_run(bc, "s1")
    bc.run_finished("s1", late, RunOutcome.none(), "a-late", 6.0)
    batch = only(bc.poll(11.0))
    assert (batch.attachments, batch.uploadable) == (["a-late"], False)


def test_running_member_of_an_early_completed_batch_is_carried() -> None:
    bc = make(ratio=0.5)
    bc.open(["s1", "s2"], 0.0)
    run(bc, "s1")
    still_running = bc.run_started("s2", 0.0)
    first = only(bc.poll(0.1))
    bc.run_finished("s2", still_running, RunOutcome.result({"v": 2}), "a2", 1.0)
    second = only(bc.poll(6.0))
    assert (first.attachments, second.results) == (["att-s1"], [{"station_id": "s2", "v": 2}])


def test_run_bound_to_no_batch_goes_to_the_stations_next_batch() -> None:
    bc = make()
    bc.run_finished("s1", bc.run_started("s1", 0.0), RunOutcome.result(7), "a", 0.5)
    bid = bc.open(["s1"], 1.0)
    run(bc, "s1", RunOutcome.none(), now=1.5)
    batch = only(bc.poll(1.5))
    assert (batch.batch_id, batch.results) == (bid, [{"station_id": "s1", "result": 7}])


def test_carried_results_do_not_count_towards_completion() -> None:
    bc = make(timeout=5.0)
    late = timed_out_run(bc, "s1")
    bc.open(["s1"], 6.0)
    bc.run_finished("s1", late, RunOutcome.result(1), "a-late", 6.5)
    assert bc.poll(6.5) == []


# -- drain -----------------------------------------------------------------------------


def test_drain_hands_out_every_open_batch_and_waiting_late_result() -> None:
    bc = make(timeout=5.0)
    late = timed_out_run(bc, "s1")
    bc.run_finished("s1", late, RunOutcome.result(1), "a-late", 6.0)
    bc.open(["s2"], 6.0)
    assert sorted(b.attachments == ["a-late"] for b in bc.drain(6.1)) == [False, True]


def test_drain_marks_unfinished_batches_as_timed_out() -> None:
    bc = make()
    bc.open(["s1"], 0.0)
    assert only(bc.drain(1.0)).timed_out is True


# -- properties ------------------------------------------------------------------------

STATIONS = ("s0", "s1", "s2")
OUTCOME_KINDS = (
    "dict",
    "dict",
    "value",
    "value",
    "none",
    "result_none",
    "error",
)  # results weighted up
TIMEOUT = 5.0


def outcome_for(kind: str, run_id: int) -> RunOutcome:
    if kind == "dict":
        return RunOutcome.result({"run": run_id})
    if kind == "value":
        return RunOutcome.result(run_id)
    if kind == "none":
        return RunOutcome.none()
    if kind == "result_none":
        return RunOutcome.result(None)
    return RunOutcome.error("RuntimeError")


def run_of(result: dict[str, Any]) -> int:
    value = result["run"] if "run" in result else result["result"]
    assert isinstance(value, int)
    return value


class CollectorMachine(RuleBasedStateMachine):
    """Random interleavings of open / run_started / run_finished / poll against a model."""

    ratio = 1.0

    def __init__(self) -> None:
        super().__init__()
        self.bc: BatchCollector[str] = make(timeout=TIMEOUT, ratio=self.ratio)
        self.now = 0.0
        self.last_id = 0
        self.waiting: dict[str, str] = {}
        self.open: dict[str, tuple[float, set[str], set[str]]] = {}  # created, members, done
        self.running: list[tuple[int, str, str | None]] = []
        self.run_seq = 0
        self.outcomes: dict[int, tuple[str, str]] = {}  # run id -> (station, kind)
        self.expected_home: dict[int, str] = {}  # run id -> batch it must be in
        self.emitted: dict[str, CompletedBatch[str]] = {}
        self.seen_attachments: dict[str, str] = {}

    def ready(self, bid: str) -> bool:
        _, members, done = self.open[bid]
        return len(done) >= max(1, math.ceil(self.ratio * len(members) - 1e-9))

    @rule(stations=st.lists(st.sampled_from(STATIONS), max_size=len(STATIONS) + 1))
    def open_batch(self, stations: list[str]) -> None:
        bid = self.bc.open(stations, self.now)
        expected = {s for s in stations if s not in self.waiting}
        if not expected:
            assert bid is None
            return
        assert bid is not None
        m = re.fullmatch(r"SOH_model-(\d{6})", bid)
        assert m is not None
        assert int(m.group(1)) > self.last_id
        self.last_id = int(m.group(1))
        self.open[bid] = (self.now, expected, set())
        for s in expected:
            self.waiting[s] = bid

    @rule(station=st.sampled_from(STATIONS))
    def start(self, station: str) -> None:
        bid = self.bc.run_started(station, self.now)
        assert bid == self.waiting.pop(station, None)
        self.run_seq += 1
        self.running.append((self.run_seq, station, bid))

    @precondition(lambda self: bool(self.running))
    @rule(data=st.data(), kind=st.sampled_from(OUTCOME_KINDS))
    def finish(self, data: st.DataObject, kind: str) -> None:
        _, station, bid = data.draw(st.sampled_from(self.running))
        # run_finished names the batch, not the run: among runs of a station bound to the same
        # batch (only possible for concurrent unbound runs), the oldest started is finishing.
        oldest = min(r for r in self.running if r[1:] == (station, bid))
        self.running.remove(oldest)
        self.finish_run(oldest[0], station, bid, kind)

    def finish_run(self, run_id: int, station: str, bid: str | None, kind: str) -> None:
        self.bc.run_finished(station, bid, outcome_for(kind, run_id), f"a{run_id}", self.now)
        self.outcomes[run_id] = (station, kind)
        if bid is not None and bid in self.open:
            self.open[bid][2].add(station)
            self.expected_home[run_id] = bid

    @rule(dt=st.sampled_from([0.0, 0.5, 2.0, 5.0]))
    def advance(self, dt: float) -> None:
        self.now += dt

    @rule()
    def poll(self) -> None:
        self.take(self.bc.poll(self.now), drained=False)

    @precondition(lambda self: bool(self.running or self.open or self.outcomes))
    @rule()
    def settle(self) -> None:
        """Finish every run and drain: every finished run was handed out exactly once."""
        while self.running:
            run_id, station, bid = self.running.pop(0)
            self.finish_run(run_id, station, bid, "dict")
        self.take(self.bc.drain(self.now), drained=True)
        assert self.bc.open_batches() == []
        assert self.bc.next_deadline() is None
        assert sorted(self.seen_attachments) == sorted(f"a{r}" for r in self.outcomes)

    def take(self, batches: list[CompletedBatch[str]], *, drained: bool) -> None:
        ids = [b.batch_id for b in batches]
        assert ids == sorted(ids)
        for b in batches:
            assert b.batch_id not in self.emitted, "batch handed out twice"
            self.emitted[b.batch_id] = b
            self.check_batch(b)
            if b.batch_id in self.open:
                created, members, _ = self.open[b.batch_id]
                ready = self.ready(b.batch_id)
                assert ready or drained or self.now >= created + TIMEOUT
                assert b.timed_out is (not ready)
                assert b.members == len(members)
                del self.open[b.batch_id]
                for s in members:
                    if self.waiting.get(s) == b.batch_id:
                        del self.waiting[s]
            else:
                assert b.timed_out is False, "a batch of carried runs is not timed out"
        for bid, (created, _, _) in self.open.items():
            assert not self.ready(bid), f"{bid} reached its ratio but was not handed out"
            assert self.now < created + TIMEOUT, f"{bid} timed out but was not handed out"

    def check_batch(self, b: CompletedBatch[str]) -> None:
        runs = [int(a[1:]) for a in b.attachments]
        for a in b.attachments:
            assert a not in self.seen_attachments, f"{a} in two batches"
            self.seen_attachments[a] = b.batch_id
        assert b.failed == sum(self.outcomes[r][1] == "error" for r in runs)
        assert b.succeeded == len(runs) - b.failed
        newest: dict[str, int] = {}
        for r in sorted(runs):
            station, kind = self.outcomes[r]
            if kind in ("dict", "value"):
                newest[station] = r
        assert {res["station_id"]: run_of(res) for res in b.results} == newest
        assert len(b.results) == len(newest), "one result per station"
        assert b.uploadable is bool(b.results)
        for r, home in self.expected_home.items():
            if home == b.batch_id:
                assert r in runs, f"run {r} missing from its batch {home}"

    @invariant()
    def waiting_matches_the_model(self) -> None:
        for s in STATIONS:
            assert self.bc.waiting_in(s) == self.waiting.get(s)


class PartialCollectorMachine(CollectorMachine):
    ratio = 0.5


CollectorMachine.TestCase.settings = settings(
    max_examples=400, stateful_step_count=60, deadline=None
)
PartialCollectorMachine.TestCase.settings = settings(
    max_examples=400, stateful_step_count=60, deadline=None
)
test_batch_collector_properties_full_ratio = CollectorMachine.TestCase
test_batch_collector_properties_partial_ratio = PartialCollectorMachine.TestCase
