"""The engine's outbox: one backoff policy for uploads, dead letters and forwarded shares."""

from __future__ import annotations

import pytest

from da_core.catalog import default_catalog
from da_core.codec import StdlibJsonCodec
from da_core.engine import (
    DEAD_LETTER_BACKOFF,
    FORWARD_BACKOFF,
    UPLOAD_BACKOFF,
    Backoff,
    Engine,
    RecordRef,
    Upload,
)
from da_core.engine.outbox import Lane
from da_core.partitioning import partition_for_key
from da_core.routing import Routing
from da_core.types import TopicPartition
from tests.unit.core.test_engine import PARAM, RT, T0, Feed, finish_all, make, param, realtime
from tests.unit.core.test_routing import rekey_engine, rt_many


def upload(uid: int) -> Upload:
    return Upload(uid, f"b{uid}", "m", [], ())


def test_backoff_doubles_per_attempt_up_to_its_cap() -> None:
    b = Backoff(base=0.1, cap=1.0)
    assert [b.delay(a) for a in (1, 2, 3)] == pytest.approx([0.2, 0.4, 0.8])
    assert b.delay(4) == 1.0
    assert b.delay(1000) == 1.0


def test_backoff_stops_doubling_after_max_doublings() -> None:
    b = Backoff(base=1.0, cap=1e9, max_doublings=3)
    assert b.delay(3) == 8.0
    assert b.delay(50) == 8.0


def test_every_kind_uses_the_same_policy_type_with_its_own_cap() -> None:
    assert all(
        isinstance(b, Backoff) for b in (UPLOAD_BACKOFF, DEAD_LETTER_BACKOFF, FORWARD_BACKOFF)
    )
    assert UPLOAD_BACKOFF.delay(100) == 30.0
    assert DEAD_LETTER_BACKOFF.delay(100) == 30.0
    assert FORWARD_BACKOFF.delay(100) == 5.0


def test_lane_hands_out_new_items_in_order_up_to_the_limit() -> None:
    lane: Lane[Upload] = Lane(UPLOAD_BACKOFF)
    for i in (1, 2, 3):
        lane.add(i, upload(i), ())
    assert [u.upload_id for u in lane.take(T0, 2)] == [1, 2]
    assert (lane.in_flight, lane.waiting, len(lane)) == (2, 1, 3)
    assert [u.upload_id for u in lane.take(T0)] == [3]
    assert lane.take(T0) == []


def test_lane_retries_a_refused_item_after_its_backoff_with_the_attempt_counted() -> None:
    lane: Lane[Upload] = Lane(Backoff(base=1.0, cap=10.0))
    lane.add(1, upload(1), ())
    lane.take(T0)
    failed = lane.failed(1, T0)
    assert failed is not None
    assert failed[0].attempt == 1
    assert failed[1] == 2.0
    assert lane.take(T0 + 1.99) == []
    (again,) = lane.take(T0 + 2.0)
    assert again.attempt == 1
    lane.failed(1, T0 + 2.0)
    assert lane.take(T0 + 5.99) == []
    assert [u.attempt for u in lane.take(T0 + 6.0)] == [2]


def test_lane_hands_out_due_retries_before_new_items() -> None:
    lane: Lane[Upload] = Lane(Backoff(base=1.0, cap=10.0))
    lane.add(1, upload(1), ())
    lane.take(T0)
    lane.failed(1, T0)
    lane.add(2, upload(2), ())
    assert [u.upload_id for u in lane.take(T0 + 10)] == [1, 2]


def test_lane_forgets_an_acknowledged_item_and_gives_back_its_references() -> None:
    lane: Lane[Upload] = Lane(UPLOAD_BACKOFF)
    ref = RecordRef(TopicPartition(RT, 0), 7, 1)
    lane.add(1, upload(1), (ref,))
    assert lane.succeeded(1) == (ref,)
    assert lane.succeeded(1) is None
    assert lane.failed(1, T0) is None
    assert len(lane) == 0


# ----------------------------------------------------------------------------- dead letters


def test_a_refused_dead_letter_backs_off_instead_of_being_retried_at_once() -> None:
    eng, feed = make(), Feed()
    eng.ingest([feed.rec(RT, b"{not json")], T0)
    (dl,) = eng.take_dead_letters()
    eng.dead_letter_done(dl.dl_id, False, T0)
    assert eng.stats.dead_letter_failures == 1
    assert eng.take_dead_letters() == []  # the loop does not spin on it
    eng.tick(T0 + DEAD_LETTER_BACKOFF.delay(1) / 2)
    assert eng.take_dead_letters() == []
    eng.tick(T0 + DEAD_LETTER_BACKOFF.delay(1))
    (again,) = eng.take_dead_letters()
    assert again.dl_id == dl.dl_id
    assert again.attempt == 1
    assert eng.flush_offsets() == {}
    eng.dead_letter_done(again.dl_id, True, T0 + 1)
    assert eng.stats.dead_letters == 1
    assert eng.flush_offsets() == {TopicPartition(RT, 0): 1}


def test_take_dead_letters_accepts_the_time_explicitly() -> None:
    eng, feed = make(), Feed()
    eng.ingest([feed.rec(RT, b"")], T0)
    (dl,) = eng.take_dead_letters(T0)
    eng.dead_letter_done(dl.dl_id, False, T0)
    assert eng.take_dead_letters(T0) == []
    assert [d.dl_id for d in eng.take_dead_letters(T0 + 60)] == [dl.dl_id]


def test_a_dead_letter_is_retried_with_growing_delays() -> None:
    eng, feed = make(), Feed()
    eng.ingest([feed.rec(RT, b"{")], T0)
    (dl,) = eng.take_dead_letters(T0)
    now = T0
    for attempt in (1, 2, 3):
        eng.dead_letter_done(dl.dl_id, False, now)
        due = now + DEAD_LETTER_BACKOFF.delay(attempt)
        assert eng.take_dead_letters(due - 0.01) == []
        (dl,) = eng.take_dead_letters(due)
        assert dl.attempt == attempt
        now = due


# ----------------------------------------------------------------------------- uploads, shares


def test_a_refused_upload_waits_for_the_upload_backoff() -> None:
    eng, feed = make(), Feed()
    eng.ingest([feed.rec(PARAM, param("S1")), feed.rec(RT, realtime("S1", "10", 1.0))], T0)
    finish_all(eng, eng.take_runs(10, T0), T0)
    eng.tick(T0)
    (up,) = eng.take_uploads(T0)
    eng.upload_done(up.upload_id, False, T0, "down")
    assert eng.upload_failing_since == T0
    assert eng.take_uploads(T0 + UPLOAD_BACKOFF.delay(1) - 0.01) == []
    (again,) = eng.take_uploads(T0 + UPLOAD_BACKOFF.delay(1))
    assert again.attempt == 1
    eng.upload_done(again.upload_id, True, T0 + 1)
    assert eng.upload_failing_since is None


def test_a_refused_share_waits_for_the_forward_backoff() -> None:
    eng, feed = rekey_engine(), Feed()
    eng.ingest([feed.rec(RT, rt_many("A"))], T0)
    (f,) = eng.take_forwards(T0)
    eng.forward_done(f.fwd_id, False, T0, "no")
    assert eng.forwards_in_flight == 0
    assert eng.take_forwards(T0 + FORWARD_BACKOFF.delay(1) - 0.01) == []
    assert [g.attempt for g in eng.take_forwards(T0 + FORWARD_BACKOFF.delay(1))] == [1]
    assert eng.forwards_in_flight == 1


# ----------------------------------------------------------------------------- new façade methods


def test_set_rekey_partitions_is_read_back_and_must_be_positive() -> None:
    assert make().rekey_partitions is None
    eng = make()
    eng.set_rekey_partitions(6)
    assert eng.rekey_partitions == 6
    with pytest.raises(ValueError, match="at least 1"):
        eng.set_rekey_partitions(0)
    assert eng.rekey_partitions == 6


def test_shares_are_placed_with_the_partition_count_set() -> None:
    eng = Engine(
        default_catalog(), "load_prediction", StdlibJsonCodec(), routing=Routing(mode="rekey")
    )
    eng.set_rekey_partitions(3)
    eng.ingest([Feed().rec(RT, rt_many("A", "B", "C"))], T0)
    for f in eng.take_forwards(T0):
        assert f.record.key is not None
        assert f.record.partition == partition_for_key(f.record.key, 3)


def test_next_to_track_is_the_offset_after_the_last_record_tracked() -> None:
    eng, feed = make(), Feed()
    tp = TopicPartition(RT, 0)
    assert eng.next_to_track(tp) is None
    eng.ingest([feed.rec(RT, realtime("S1", "10", 1.0)), feed.rec(RT, b"{")], T0)
    assert eng.next_to_track(tp) == 2
