"""OffsetLedger: what may be committed (never past an in-flight record) and when."""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
)

from da_core.config import OffsetCommitPolicy
from da_core.offset_ledger import OffsetLedger
from da_core.types import TopicPartition

TP = TopicPartition("SCHEDULE-CAR-ORDER", 0)
TP1 = TopicPartition("SCHEDULE-CAR-ORDER", 1)


def make(
    batch_size: int = 100,
    interval: float = 5.0,
    retries: int = 3,
    retry_delay: float = 1.0,
) -> OffsetLedger:
    return OffsetLedger(
        OffsetCommitPolicy(
            commit_interval_seconds=interval,
            commit_batch_size=batch_size,
            max_commit_retries=retries,
            commit_retry_delay=retry_delay,
        )
    )


def tracked(ledger: OffsetLedger, tp: TopicPartition, *offsets: int) -> OffsetLedger:
    for o in offsets:
        ledger.track(tp, o)
    return ledger


def committed_at(ledger: OffsetLedger, now: float) -> dict[TopicPartition, int]:
    """Take a commit due at ``now`` and report it succeeded."""
    offsets = ledger.take_commit(now)
    assert offsets is not None
    ledger.commit_succeeded(offsets, now)
    return offsets


# -- what may be committed -------------------------------------------------------------


def test_nothing_is_committable_before_any_record_is_done() -> None:
    ledger = tracked(make(), TP, 0, 1)
    assert ledger.take_commit(100.0) is None
    assert ledger.flush() == {}


def test_commit_offset_is_the_next_offset_after_the_done_record() -> None:
    ledger = tracked(make(), TP, 41)
    ledger.done(TP, 41)
    assert ledger.take_commit(0.0) == {TP: 42}


def test_commit_stops_before_an_in_flight_record() -> None:
    ledger = tracked(make(), TP, 0, 1, 2)
    ledger.done(TP, 0)
    ledger.done(TP, 2)
    assert ledger.take_commit(0.0) == {TP: 1}


def test_commit_advances_past_held_records_when_the_blocking_one_is_done() -> None:
    ledger = tracked(make(), TP, 0, 1, 2, 3)
    for o in (3, 2, 0):
        ledger.done(TP, o)
    ledger.done(TP, 1)
    assert ledger.flush() == {TP: 4}


def test_gaps_between_tracked_offsets_are_skipped() -> None:
    ledger = tracked(make(), TP, 5, 7, 9)
    ledger.done(TP, 5)
    ledger.done(TP, 7)
    assert ledger.flush() == {TP: 8}


def test_when_everything_is_done_commit_is_last_offset_plus_one_despite_gaps() -> None:
    ledger = tracked(make(), TP, 5, 7, 9)
    for o in (9, 5, 7):
        ledger.done(TP, o)
    assert ledger.flush() == {TP: 10}


def test_partitions_are_committed_independently() -> None:
    ledger = tracked(tracked(make(), TP, 0, 1), TP1, 10, 11)
    ledger.done(TP, 0)
    ledger.done(TP1, 11)
    ledger.done(TP1, 10)
    assert ledger.take_commit(0.0) == {TP: 1, TP1: 12}


def test_in_flight_counts_tracked_records_not_yet_done() -> None:
    ledger = tracked(make(), TP, 0, 1, 2, 3)
    ledger.done(TP, 0)
    ledger.done(TP, 2)
    assert ledger.in_flight(TP) == 2


def test_in_flight_of_an_unknown_partition_is_zero() -> None:
    assert make().in_flight(TP) == 0


# -- misuse and unknown offsets --------------------------------------------------------


def test_track_rejects_an_offset_not_greater_than_the_last_tracked() -> None:
    ledger = tracked(make(), TP, 5)
    with pytest.raises(ValueError, match="increasing order"):
        ledger.track(TP, 5)


def test_done_of_an_untracked_offset_is_ignored() -> None:
    ledger = tracked(make(), TP, 5, 7)
    assert ledger.done(TP, 6) is False
    assert ledger.in_flight(TP) == 2
    assert ledger.flush() == {}


def test_done_of_an_unknown_partition_is_ignored() -> None:
    ledger = make()
    assert ledger.done(TP, 3) is False
    assert ledger.flush() == {}


def test_done_twice_counts_once() -> None:
    ledger = tracked(make(), TP, 0, 1, 2)
    assert ledger.done(TP, 1) is True
    assert ledger.done(TP, 1) is False
    assert ledger.in_flight(TP) == 2


def test_done_of_an_offset_already_passed_is_ignored() -> None:
    ledger = tracked(make(), TP, 0, 1)
    ledger.done(TP, 0)
    assert ledger.done(TP, 0) is False
    assert ledger.in_flight(TP) == 1


# -- when a commit is due --------------------------------------------------------------


def test_first_commit_is_due_as_soon_as_something_is_committable() -> None:
    ledger = tracked(make(), TP, 0)
    ledger.done(TP, 0)
    assert ledger.due(0.0) is True


def test_not_due_below_batch_size_before_the_interval() -> None:
    ledger = tracked(make(batch_size=3, interval=5.0), TP, 0, 1, 2, 3)
    ledger.done(TP, 0)
    committed_at(ledger, 10.0)
    ledger.done(TP, 1)
    ledger.done(TP, 2)
    assert ledger.due(14.9) is False


def test_due_when_batch_size_records_are_done() -> None:
    ledger = tracked(make(batch_size=3, interval=5.0), TP, 0, 1, 2, 3)
    ledger.done(TP, 0)
    committed_at(ledger, 10.0)
    for o in (1, 2, 3):
        ledger.done(TP, o)
    assert ledger.take_commit(10.1) == {TP: 4}


def test_due_when_the_interval_passed_since_the_last_commit() -> None:
    ledger = tracked(make(batch_size=100, interval=5.0), TP, 0, 1)
    ledger.done(TP, 0)
    committed_at(ledger, 10.0)
    ledger.done(TP, 1)
    assert ledger.take_commit(15.0) == {TP: 2}


def test_not_due_after_the_interval_when_nothing_new_is_committable() -> None:
    ledger = tracked(make(interval=5.0), TP, 0, 1)
    ledger.done(TP, 0)
    committed_at(ledger, 10.0)
    assert ledger.due(100.0) is False


def test_not_due_when_the_done_records_wait_behind_an_in_flight_one() -> None:
    ledger = tracked(make(batch_size=2, interval=5.0), TP, 0, 1, 2, 3)
    ledger.done(TP, 0)
    committed_at(ledger, 10.0)
    ledger.done(TP, 2)
    ledger.done(TP, 3)
    assert ledger.due(10.5) is False


def test_take_commit_returns_none_when_not_due() -> None:
    ledger = tracked(make(batch_size=100, interval=5.0), TP, 0, 1)
    ledger.done(TP, 0)
    committed_at(ledger, 10.0)
    ledger.done(TP, 1)
    assert ledger.take_commit(11.0) is None


def test_take_commit_leaves_out_partitions_without_progress() -> None:
    ledger = tracked(tracked(make(batch_size=1), TP, 0, 1), TP1, 0)
    ledger.done(TP, 0)
    ledger.done(TP1, 0)
    committed_at(ledger, 0.0)
    ledger.done(TP, 1)
    assert ledger.take_commit(0.1) == {TP: 2}


def test_take_commit_does_not_return_an_offset_already_being_committed() -> None:
    ledger = tracked(make(batch_size=1), TP, 0, 1)
    ledger.done(TP, 0)
    assert ledger.take_commit(0.0) == {TP: 1}
    assert ledger.take_commit(100.0) is None


def test_take_commit_returns_new_progress_while_an_earlier_commit_is_pending() -> None:
    ledger = tracked(make(batch_size=1), TP, 0, 1)
    ledger.done(TP, 0)
    ledger.take_commit(0.0)
    ledger.done(TP, 1)
    assert ledger.take_commit(0.1) == {TP: 2}


# -- outcome of commits ----------------------------------------------------------------


def test_commit_succeeded_records_the_committed_offset() -> None:
    ledger = tracked(make(), TP, 0)
    ledger.done(TP, 0)
    committed_at(ledger, 0.0)
    assert ledger.committed(TP) == 1


def test_committed_is_none_before_any_commit() -> None:
    ledger = tracked(make(), TP, 0)
    assert ledger.committed(TP) is None


def test_committed_never_goes_back_when_an_older_commit_succeeds_late() -> None:
    ledger = tracked(make(batch_size=1), TP, 0, 1)
    ledger.done(TP, 0)
    first = ledger.take_commit(0.0)
    ledger.done(TP, 1)
    second = ledger.take_commit(0.1)
    assert first is not None
    assert second is not None
    ledger.commit_succeeded(second, 0.2)
    ledger.commit_succeeded(first, 0.3)
    assert ledger.committed(TP) == 2


def test_failed_commit_is_not_retried_before_the_retry_delay() -> None:
    ledger = tracked(make(retry_delay=1.0, interval=5.0), TP, 0)
    ledger.done(TP, 0)
    offsets = ledger.take_commit(10.0)
    assert offsets is not None
    ledger.commit_failed(offsets, 10.0)
    assert ledger.due(10.9) is False


def test_failed_commit_is_retried_with_the_same_offsets_after_the_retry_delay() -> None:
    ledger = tracked(make(retry_delay=1.0, interval=5.0), TP, 0)
    ledger.done(TP, 0)
    offsets = ledger.take_commit(10.0)
    assert offsets is not None
    ledger.commit_failed(offsets, 10.0)
    assert ledger.take_commit(11.0) == {TP: 1}


def test_retry_includes_progress_made_since_the_failure() -> None:
    ledger = tracked(make(retry_delay=1.0, interval=5.0), TP, 0, 1)
    ledger.done(TP, 0)
    offsets = ledger.take_commit(10.0)
    assert offsets is not None
    ledger.commit_failed(offsets, 10.0)
    ledger.done(TP, 1)
    assert ledger.take_commit(11.0) == {TP: 2}


def test_retries_stop_after_max_commit_retries() -> None:
    ledger = tracked(make(retries=2, retry_delay=1.0, interval=5.0), TP, 0)
    ledger.done(TP, 0)
    now = 10.0
    offsets = ledger.take_commit(now)
    for _ in range(3):  # the first attempt and its 2 retries fail
        assert offsets is not None
        ledger.commit_failed(offsets, now)
        now += 1.0
        offsets = ledger.take_commit(now)
    assert offsets is None


def test_after_retries_are_exhausted_the_next_interval_commits_again() -> None:
    ledger = tracked(make(retries=0, retry_delay=1.0, interval=5.0), TP, 0)
    ledger.done(TP, 0)
    offsets = ledger.take_commit(10.0)
    assert offsets is not None
    ledger.commit_failed(offsets, 10.0)
    assert ledger.due(14.9) is False
    assert ledger.take_commit(15.0) == {TP: 1}


def test_after_retries_are_exhausted_the_batch_size_commits_again() -> None:
    ledger = tracked(make(batch_size=2, retries=0, interval=5.0), TP, 0, 1, 2)
    ledger.done(TP, 0)
    offsets = ledger.take_commit(10.0)
    assert offsets is not None
    ledger.commit_failed(offsets, 10.0)
    ledger.done(TP, 1)
    ledger.done(TP, 2)
    assert ledger.take_commit(10.5) == {TP: 3}


def test_a_fresh_trigger_gets_a_fresh_retry_budget() -> None:
    ledger = tracked(make(retries=1, retry_delay=1.0, interval=5.0), TP, 0)
    ledger.done(TP, 0)
    for now in (10.0, 11.0):  # attempt + its single retry
        offsets = ledger.take_commit(now)
        assert offsets is not None
        ledger.commit_failed(offsets, now)
    offsets = ledger.take_commit(16.0)  # next interval trigger
    assert offsets is not None
    ledger.commit_failed(offsets, 16.0)
    assert ledger.take_commit(17.0) == {TP: 1}


def test_a_failure_of_an_older_commit_does_not_undo_a_newer_pending_one() -> None:
    ledger = tracked(make(batch_size=1), TP, 0, 1)
    ledger.done(TP, 0)
    first = ledger.take_commit(0.0)
    ledger.done(TP, 1)
    ledger.take_commit(0.1)
    assert first is not None
    ledger.commit_failed(first, 0.2)
    assert ledger.take_commit(5.0) is None


# -- revoke and flush ------------------------------------------------------------------


def test_revoke_returns_what_may_be_committed_for_the_partition() -> None:
    ledger = tracked(make(), TP, 0, 1, 2)
    ledger.done(TP, 0)
    ledger.done(TP, 2)
    assert ledger.revoke([TP]) == {TP: 1}


def test_revoke_returns_nothing_for_a_partition_already_committed() -> None:
    ledger = tracked(make(), TP, 0)
    ledger.done(TP, 0)
    committed_at(ledger, 0.0)
    assert ledger.revoke([TP]) == {}


def test_revoke_forgets_the_partition() -> None:
    ledger = tracked(make(), TP, 0, 1)
    ledger.revoke([TP])
    assert (ledger.in_flight(TP), ledger.committed(TP)) == (0, None)


def test_revoke_leaves_other_partitions_alone() -> None:
    ledger = tracked(tracked(make(), TP, 0), TP1, 0)
    ledger.done(TP, 0)
    ledger.done(TP1, 0)
    ledger.revoke([TP])
    assert ledger.take_commit(0.0) == {TP1: 1}


def test_done_after_revoke_is_ignored() -> None:
    ledger = tracked(make(), TP, 0)
    ledger.revoke([TP])
    assert ledger.done(TP, 0) is False
    assert ledger.flush() == {}


def test_a_revoked_partition_can_be_tracked_again_from_a_lower_offset() -> None:
    ledger = tracked(make(), TP, 10, 11)
    ledger.revoke([TP])
    ledger.track(TP, 3)
    ledger.done(TP, 3)
    assert ledger.flush() == {TP: 4}


def test_flush_includes_offsets_whose_commit_is_still_pending() -> None:
    ledger = tracked(make(), TP, 0)
    ledger.done(TP, 0)
    ledger.take_commit(0.0)
    assert ledger.flush() == {TP: 1}


def test_flush_leaves_out_partitions_already_committed() -> None:
    ledger = tracked(tracked(make(), TP, 0), TP1, 0, 1)
    ledger.done(TP, 0)
    committed_at(ledger, 0.0)
    ledger.done(TP1, 0)
    assert ledger.flush() == {TP1: 1}


# -- properties ------------------------------------------------------------------------

PARTITIONS = (TP, TP1)


class LedgerMachine(RuleBasedStateMachine):
    """Random interleavings of every operation against a simple model of the partitions."""

    def __init__(self) -> None:
        super().__init__()
        self.ledger = make(batch_size=3, interval=5.0, retries=2, retry_delay=1.0)
        self.now = 0.0
        self.tracked: dict[TopicPartition, list[int]] = {tp: [] for tp in PARTITIONS}
        self.done_set: dict[TopicPartition, set[int]] = {tp: set() for tp in PARTITIONS}
        self.committed: dict[TopicPartition, int | None] = dict.fromkeys(PARTITIONS)
        self.pending: list[dict[TopicPartition, int]] = []

    # model helpers

    def in_flight(self, tp: TopicPartition) -> list[int]:
        return [o for o in self.tracked[tp] if o not in self.done_set[tp]]

    def expected_prefix(self, tp: TopicPartition) -> int | None:
        prefix = None
        for o in self.tracked[tp]:
            if o not in self.done_set[tp]:
                break
            prefix = o + 1
        return prefix

    def check_safe(self, offsets: dict[TopicPartition, int]) -> None:
        for tp, offset in offsets.items():
            flying = self.in_flight(tp)
            if flying:
                assert offset <= min(flying), "commit past an in-flight record"
            assert all(o in self.done_set[tp] for o in self.tracked[tp] if o < offset)
            assert offset <= self.tracked[tp][-1] + 1

    def record_commit(self, offsets: dict[TopicPartition, int]) -> None:
        for tp, offset in offsets.items():
            before = self.committed[tp]
            self.committed[tp] = offset if before is None else max(before, offset)

    # rules

    @rule(tp=st.sampled_from(PARTITIONS), gap=st.integers(0, 3))
    def track(self, tp: TopicPartition, gap: int) -> None:
        offsets = self.tracked[tp]
        offset = (offsets[-1] + 1 if offsets else 0) + gap
        self.ledger.track(tp, offset)
        offsets.append(offset)

    @rule(tp=st.sampled_from(PARTITIONS), data=st.data())
    def done(self, tp: TopicPartition, data: st.DataObject) -> None:
        flying = self.in_flight(tp)
        if not flying:
            return
        offset = data.draw(st.sampled_from(flying))
        assert self.ledger.done(tp, offset) is True
        self.done_set[tp].add(offset)

    @rule(tp=st.sampled_from(PARTITIONS), offset=st.integers(-2, 60))
    def done_unknown(self, tp: TopicPartition, offset: int) -> None:
        if offset in self.in_flight(tp):
            return
        assert self.ledger.done(tp, offset) is False

    @rule(dt=st.sampled_from([0.0, 0.5, 1.0, 5.0]))
    def advance(self, dt: float) -> None:
        self.now += dt

    @rule()
    def take_commit(self) -> None:
        offsets = self.ledger.take_commit(self.now)
        if offsets is None:
            return
        assert offsets, "a due commit is never empty"
        self.check_safe(offsets)
        for tp, offset in offsets.items():
            before = self.committed[tp]
            assert before is None or offset > before
        self.pending.append(offsets)

    @precondition(lambda self: bool(self.pending))
    @rule(data=st.data(), ok=st.booleans())
    def answer_commit(self, data: st.DataObject, ok: bool) -> None:
        offsets = self.pending.pop(data.draw(st.integers(0, len(self.pending) - 1)))
        if ok:
            self.ledger.commit_succeeded(offsets, self.now)
            self.record_commit(offsets)
        else:
            self.ledger.commit_failed(offsets, self.now)

    @rule(tp=st.sampled_from(PARTITIONS))
    def revoke(self, tp: TopicPartition) -> None:
        offsets = self.ledger.revoke([tp])
        self.check_safe(offsets)
        if self.beyond_committed(tp):
            assert offsets == {tp: self.expected_prefix(tp)}
        else:
            assert offsets == {}
        self.tracked[tp] = []
        self.done_set[tp] = set()
        self.committed[tp] = None
        self.pending = [
            {p: o for p, o in c.items() if p != tp} for c in self.pending if set(c) != {tp}
        ]

    @rule()
    def flush(self) -> None:
        offsets = self.ledger.flush()
        self.check_safe(offsets)
        for tp in PARTITIONS:
            if self.beyond_committed(tp):
                assert offsets.get(tp) == self.expected_prefix(tp)
            else:
                assert tp not in offsets
        self.ledger.commit_succeeded(offsets, self.now)
        self.record_commit(offsets)

    @precondition(lambda self: any(self.tracked.values()))
    @rule()
    def finish_everything(self) -> None:
        for tp in PARTITIONS:
            for offset in self.in_flight(tp):
                self.ledger.done(tp, offset)
                self.done_set[tp].add(offset)
        offsets = self.ledger.flush()
        for tp in PARTITIONS:
            if self.tracked[tp] and self.committed[tp] != self.tracked[tp][-1] + 1:
                assert offsets[tp] == self.tracked[tp][-1] + 1
        self.ledger.commit_succeeded(offsets, self.now)
        self.record_commit(offsets)

    # invariants

    @invariant()
    def committed_matches_the_confirmed_commits(self) -> None:
        for tp in PARTITIONS:
            assert self.ledger.committed(tp) == self.committed[tp]

    @invariant()
    def in_flight_matches_the_model(self) -> None:
        for tp in PARTITIONS:
            assert self.ledger.in_flight(tp) == len(self.in_flight(tp))

    @invariant()
    def due_means_there_is_something_new_to_commit(self) -> None:
        if self.ledger.due(self.now):
            assert any(self.beyond_committed(tp) for tp in PARTITIONS)

    def beyond_committed(self, tp: TopicPartition) -> bool:
        prefix = self.expected_prefix(tp)
        before = self.committed[tp]
        return prefix is not None and (before is None or prefix > before)


LedgerMachine.TestCase.settings = settings(max_examples=300, stateful_step_count=60, deadline=None)
test_ledger_properties = LedgerMachine.TestCase


def test_a_new_policy_applies_to_the_next_due_check() -> None:
    ledger = tracked(make(batch_size=100, interval=5.0), TP, 0, 1)
    ledger.done(TP, 0)
    committed_at(ledger, 10.0)
    ledger.done(TP, 1)
    ledger.policy = OffsetCommitPolicy(commit_batch_size=1, commit_interval_seconds=5.0)
    assert ledger.due(10.1) is True
