"""Windows: what a station keeps of one topic (docs/internals.md, "Windows"; SPEC §2)."""

from __future__ import annotations

from collections.abc import Mapping
from itertools import pairwise
from typing import TYPE_CHECKING, Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from da_core.config import TopicConfig
from da_core.errors import ConfigError
from da_core.station_window import (
    HourlyGridWindow,
    LatestWindow,
    PerDeviceWindow,
    SecondSnapshotWindow,
    WindowItem,
    make_window,
)

if TYPE_CHECKING:
    from da_core.extractors import StationItem

    def _station_items_fit_windows(item: StationItem) -> WindowItem:
        return item  # mypy checks that StationItem satisfies the WindowItem protocol


@attrs.frozen(slots=True)
class Item:
    """A stand-in for ``extractors.StationItem`` with its documented attributes."""

    station_id: str
    time: float
    values: dict[str, Any]
    raw: Any
    event_time: float | None = None
    slot: int | None = None
    device: str | None = None
    gun_ids: tuple[str, ...] = ()
    gun_values: dict[str, tuple[Any, ...]] = attrs.field(factory=dict)
    slot_list: tuple[Any, ...] | None = None


def item(
    time: float,
    *,
    slot: int | None = None,
    device: str | None = None,
    guns: Mapping[str, Any] | None = None,
    station: str = "S1",
    **values: Any,
) -> Item:
    """``guns`` maps gun id -> {gun field: value}; turned into ``gun_ids``/``gun_values``."""
    gun_ids = tuple(guns or {})
    fields = sorted({f for g in (guns or {}).values() for f in g})
    gun_values = {f: tuple((guns or {})[g].get(f) for g in gun_ids) for f in fields}
    return Item(
        station_id=station,
        time=time,
        values=dict(values),
        raw=dict(values),
        event_time=None if slot is None else slot * 3600.0,
        slot=slot,
        device=device,
        gun_ids=gun_ids,
        gun_values=gun_values,
    )


# ---------------------------------------------------------------- LatestWindow


def test_latest_window_keeps_the_last_size_items_by_arrival_oldest_first() -> None:
    w: LatestWindow[Item] = LatestWindow(2)
    a, b, c = item(10, v=1), item(5, v=2), item(7, v=3)
    for it in (a, b, c):
        w.add(it)
    assert w.items() == [b, c]


def test_latest_window_latest_is_the_newest_arrival_even_with_an_older_record_time() -> None:
    w: LatestWindow[Item] = LatestWindow(1)
    w.add(item(10, v=1))
    late = item(5, v=2)
    w.add(late)
    assert w.latest() is late


def test_latest_window_last_time_is_the_newest_record_time_held() -> None:
    w: LatestWindow[Item] = LatestWindow(2)
    w.add(item(10))
    w.add(item(5))
    assert w.last_time == 10
    w.add(item(7))  # evicts the item of time 10
    assert w.last_time == 7


def test_latest_window_expire_drops_only_items_older_than_ttl() -> None:
    w: LatestWindow[Item] = LatestWindow(3)
    old, new = item(100, v=1), item(200, v=2)
    w.add(old)
    w.add(new)
    w.expire(now=250, ttl=100)
    assert w.items() == [new]
    assert w.last_time == 200


def test_latest_window_is_empty_once_everything_expired() -> None:
    w: LatestWindow[Item] = LatestWindow(1)
    w.add(item(100))
    w.expire(now=1000, ttl=600)
    assert w.is_empty()
    assert w.latest() is None
    assert w.last_time is None


@pytest.mark.parametrize("size", [0, -1])
def test_windows_refuse_a_size_below_one(size: int) -> None:
    with pytest.raises(ValueError, match="size"):
        LatestWindow(size)
    with pytest.raises(ValueError, match="size"):
        HourlyGridWindow(size)


# ---------------------------------------------------------------- HourlyGridWindow


def test_grid_series_is_exactly_size_long_with_none_in_gaps() -> None:
    w = HourlyGridWindow(4)
    w.add(item(1, slot=10, p=1.0))
    w.add(item(1, slot=12, p=3.0))
    assert w.slots() == [9, 10, 11, 12]
    assert w.series("p") == [None, 1.0, None, 3.0]


def test_grid_series_of_a_field_missing_from_an_item_is_none_there() -> None:
    w = HourlyGridWindow(2)
    w.add(item(1, slot=1, p=1.0))
    w.add(item(1, slot=2, q=2.0))
    assert w.series("p") == [1.0, None]


def test_grid_newer_item_replaces_the_slot() -> None:
    w = HourlyGridWindow(3)
    w.add(item(100, slot=5, p=1.0))
    w.add(item(200, slot=5, p=2.0))
    assert w.series("p")[-1] == 2.0


def test_grid_older_item_does_not_replace_the_slot() -> None:
    w = HourlyGridWindow(3)
    w.add(item(200, slot=5, p=2.0))
    w.add(item(100, slot=5, p=1.0))
    assert w.series("p")[-1] == 2.0


def test_grid_item_of_equal_time_replaces_the_slot_as_the_later_arrival() -> None:
    w = HourlyGridWindow(3)
    w.add(item(100, slot=5, p=1.0))
    w.add(item(100, slot=5, p=2.0))
    assert w.series("p")[-1] == 2.0


def test_grid_incremental_message_keeps_history() -> None:
    w = HourlyGridWindow(168)
    for h in range(168):  # a 7-day history message
        w.add(item(1000, slot=h, p=float(h)))
    w.add(item(2000, slot=168, p=168.0))  # the next hour alone
    series = w.series("p")
    assert series == [float(h) for h in range(1, 169)]


def test_grid_advancing_drops_slots_that_left_the_window() -> None:
    w = HourlyGridWindow(3)
    w.add(item(1, slot=10, p=10.0))
    w.add(item(1, slot=11, p=11.0))
    w.add(item(1, slot=13, p=13.0))
    assert w.slots() == [11, 12, 13]
    assert w.series("p") == [11.0, None, 13.0]
    assert w.held() == 2


def test_grid_jump_beyond_the_window_leaves_only_the_new_slot() -> None:
    w = HourlyGridWindow(3)
    w.add(item(1, slot=10, p=10.0))
    w.add(item(9, slot=100, p=100.0))
    assert w.series("p") == [None, None, 100.0]
    assert w.held() == 1
    assert w.last_time == 9


def test_grid_ignores_an_item_older_than_the_window() -> None:
    w = HourlyGridWindow(3)
    w.add(item(1, slot=10, p=10.0))
    w.add(item(500, slot=7, p=7.0))
    assert w.series("p") == [None, None, 10.0]
    assert w.last_time == 1


def test_grid_item_without_slot_is_placed_by_its_record_time() -> None:
    w = HourlyGridWindow(2)
    w.add(item(3600 * 50 + 10, p=1.0))
    assert w.slots() == [49, 50]


def test_grid_latest_is_the_item_of_the_newest_slot() -> None:
    w = HourlyGridWindow(3)
    newest = item(1, slot=9, p=9.0)
    w.add(newest)
    w.add(item(5, slot=8, p=8.0))
    assert w.latest() is newest


def test_grid_before_any_item_has_no_slots_and_all_none_series() -> None:
    w = HourlyGridWindow(3)
    assert w.is_empty()
    assert w.slots() == []
    assert w.series("p") == [None, None, None]
    assert w.gun_series("g") == []
    assert w.latest() is None


def test_grid_expire_drops_slots_individually() -> None:
    w = HourlyGridWindow(3)
    w.add(item(100, slot=1, p=1.0))
    w.add(item(900, slot=2, p=2.0))
    w.expire(now=1000, ttl=600)
    assert w.series("p") == [None, None, 2.0]
    assert w.held() == 1
    assert w.last_time == 900


def test_grid_expire_keeps_the_window_aligned_to_the_newest_slot() -> None:
    w = HourlyGridWindow(3)
    w.add(item(900, slot=1, p=1.0))
    w.add(item(100, slot=2, p=2.0))
    w.expire(now=1000, ttl=600)
    assert w.slots() == [0, 1, 2]
    assert w.series("p") == [None, 1.0, None]


def test_grid_that_expired_entirely_starts_afresh_from_an_older_slot() -> None:
    w = HourlyGridWindow(3)
    w.add(item(100, slot=50, p=50.0))
    w.expire(now=1000, ttl=600)
    assert w.is_empty()
    w.add(item(1000, slot=10, p=10.0))
    assert w.slots() == [8, 9, 10]


def test_grid_gun_ids_are_the_union_in_first_seen_order_by_slot() -> None:
    w = HourlyGridWindow(3)
    w.add(item(1, slot=3, guns={"B": {"g": 1}, "C": {"g": 2}}))
    w.add(item(1, slot=2, guns={"A": {"g": 3}, "B": {"g": 4}}))
    assert w.gun_ids() == ["A", "B", "C"]


def test_grid_gun_series_is_aligned_to_the_union_with_none_for_absent_guns() -> None:
    w = HourlyGridWindow(3)
    w.add(item(1, slot=1, guns={"A": {"g": 1.0}}))
    w.add(item(1, slot=3, guns={"B": {"g": 2.0}, "A": {"g": 3.0}}))
    assert w.gun_ids() == ["A", "B"]
    assert w.gun_series("g") == [[1.0, None, 3.0], [None, None, 2.0]]


def test_grid_gun_series_when_every_slot_has_the_same_guns() -> None:
    w = HourlyGridWindow(2)
    w.add(item(1, slot=1, guns={"A": {"g": 1}, "B": {"g": 2}}))
    w.add(item(1, slot=2, guns={"A": {"g": 3}, "B": {"g": 4}}))
    assert w.gun_series("g") == [[1, 3], [2, 4]]


def test_grid_gun_series_of_a_field_an_item_lacks_is_none_there() -> None:
    w = HourlyGridWindow(2)
    w.add(item(1, slot=1, guns={"A": {"g": 1}}))
    w.add(item(1, slot=2, guns={"A": {"h": 2}}))
    assert w.gun_series("g") == [[1, None]]


def test_grid_gun_field_of_another_length_than_the_gun_ids_counts_as_missing() -> None:
    w = HourlyGridWindow(2)
    w.add(item(1, slot=1, guns={"A": {"g": 1}, "B": {"g": 2}}))
    bad = attrs.evolve(item(1, slot=2, guns={"A": {"g": 3}, "B": {"g": 4}}), gun_values={"g": (3,)})
    w.add(bad)
    assert w.gun_series("g") == [[1, None], [2, None]]


def test_grid_gun_union_shrinks_when_the_only_slot_with_a_gun_leaves() -> None:
    w = HourlyGridWindow(2)
    w.add(item(1, slot=1, guns={"A": {"g": 1}, "Z": {"g": 9}}))
    w.add(item(1, slot=2, guns={"A": {"g": 2}}))
    assert w.gun_ids() == ["A", "Z"]
    w.add(item(1, slot=3, guns={"A": {"g": 3}}))
    assert w.gun_ids() == ["A"]
    assert w.gun_series("g") == [[2, 3]]


def test_grid_gun_order_follows_the_slots_left_after_the_oldest_slot_leaves() -> None:
    w = HourlyGridWindow(2)
    w.add(item(1, slot=1, guns={"Z": {"g": 1}}))
    w.add(item(1, slot=2, guns={"A": {"g": 2}}))
    assert w.gun_ids() == ["Z", "A"]
    w.add(item(1, slot=3, guns={"Z": {"g": 3}, "A": {"g": 4}}))
    assert w.gun_ids() == ["A", "Z"]


def test_grid_last_time_drops_with_the_slot_that_held_it() -> None:
    w = HourlyGridWindow(2)
    w.add(item(9, slot=1))
    w.add(item(5, slot=2))
    w.add(item(6, slot=3))
    assert w.last_time == 6


def test_grid_gun_union_grows_when_a_replacement_brings_a_new_gun() -> None:
    w = HourlyGridWindow(2)
    w.add(item(1, slot=1, guns={"A": {"g": 1}}))
    assert w.gun_ids() == ["A"]
    w.add(item(2, slot=1, guns={"A": {"g": 1}, "B": {"g": 5}}))
    assert w.gun_ids() == ["A", "B"]
    assert w.gun_series("g") == [[None, 1], [None, 5]]


def test_grid_all_items_rebuild_an_equal_window() -> None:
    w = HourlyGridWindow(3)
    for s, t in ((1, 5.0), (3, 1.0), (2, 9.0)):
        w.add(item(t, slot=s, p=float(s)))
    copy = HourlyGridWindow(3)
    for it in w.all_items():
        copy.add(it)
    assert copy.items() == w.items()


# ---------------------------------------------------------------- grid properties

SIZE = 6

_grid_item = st.builds(
    lambda slot, time, v, guns: item(
        float(time), slot=slot, p=v, guns={g: {"g": float(i)} for i, g in enumerate(guns)}
    ),
    slot=st.integers(0, 30),
    time=st.integers(0, 20),
    v=st.integers(0, 1000),
    guns=st.lists(st.sampled_from("ABCD"), unique=True, max_size=3),
)
_messages = st.lists(st.lists(_grid_item, min_size=1, max_size=8), min_size=1, max_size=8)


def _reference(arrivals: list[Item]) -> dict[int, Item]:
    """Newest item per slot (by time, ties: later arrival) within the final window."""
    newest = max(it.slot for it in arrivals if it.slot is not None)
    best: dict[int, Item] = {}
    for it in arrivals:
        assert it.slot is not None
        if it.slot > newest - SIZE and (it.slot not in best or it.time >= best[it.slot].time):
            best[it.slot] = it
    return best


def _view(it: WindowItem) -> tuple[Any, ...]:
    """What a grid keeps of an item (not ``raw``), in comparable form."""
    guns = {f: dict(zip(it.gun_ids, v, strict=True)) for f, v in it.gun_values.items()}
    return (it.station_id, it.time, dict(it.values), it.gun_ids, guns, it.device, it.slot_list)


@settings(max_examples=200, deadline=None)
@given(_messages)
def test_grid_property_every_series_is_exactly_size_long(messages: list[list[Item]]) -> None:
    w = HourlyGridWindow(SIZE)
    for msg in messages:
        for it in msg:
            w.add(it)
        assert len(w.series("p")) == SIZE
        assert len(w.items()) == SIZE
        assert all(len(s) == SIZE for s in w.gun_series("g"))


@settings(max_examples=200, deadline=None)
@given(_messages)
def test_grid_property_slots_are_consecutive_and_end_at_the_newest_slot(
    messages: list[list[Item]],
) -> None:
    w = HourlyGridWindow(SIZE)
    seen: list[int] = []
    for msg in messages:
        for it in msg:
            w.add(it)
            assert it.slot is not None
            seen.append(it.slot)
        slots = w.slots()
        assert len(slots) == SIZE
        assert slots[-1] == max(seen)
        assert all(b == a + 1 for a, b in pairwise(slots))


@settings(max_examples=200, deadline=None)
@given(_messages)
def test_grid_property_a_message_never_removes_a_slot_still_inside_the_window(
    messages: list[list[Item]],
) -> None:
    w = HourlyGridWindow(SIZE)
    for msg in messages:
        before = {s: it for s, it in zip(w.slots(), w.items(), strict=False) if it is not None}
        for it in msg:
            w.add(it)
        after = dict(zip(w.slots(), w.items(), strict=False))
        lowest = w.slots()[0]
        for s, old in before.items():
            if s >= lowest:
                now = after[s]
                assert now is not None
                assert now.time >= old.time


@settings(max_examples=200, deadline=None)
@given(_messages)
def test_grid_property_newest_item_wins_per_slot(messages: list[list[Item]]) -> None:
    w = HourlyGridWindow(SIZE)
    arrivals = [it for msg in messages for it in msg]
    for it in arrivals:
        w.add(it)
    expected = _reference(arrivals)
    got = {s: it for s, it in zip(w.slots(), w.items(), strict=False) if it is not None}
    assert got.keys() == expected.keys()
    # Older slots come back rebuilt from the columns, equal in everything a grid reads.
    assert all(_view(got[s]) == _view(expected[s]) for s in got)
    assert w.latest() is got.get(w.slots()[-1])
    assert w.series("p") == [expected[s].values["p"] if s in expected else None for s in w.slots()]


@settings(max_examples=200, deadline=None)
@given(_messages)
def test_grid_property_gun_series_are_aligned_to_the_union_gun_list(
    messages: list[list[Item]],
) -> None:
    w = HourlyGridWindow(SIZE)
    for msg in messages:
        for it in msg:
            w.add(it)
        held = [x for x in w.items() if x is not None]
        union: list[str] = []
        for x in held:
            union.extend(g for g in x.gun_ids if g not in union)
        assert w.gun_ids() == union
        per_gun = w.gun_series("g")
        assert len(per_gun) == len(union)
        for gun, series in zip(union, per_gun, strict=True):
            for at_slot, value in zip(w.items(), series, strict=True):
                if at_slot is None or gun not in at_slot.gun_ids:
                    assert value is None
                else:
                    assert value == at_slot.gun_values["g"][at_slot.gun_ids.index(gun)]


@settings(max_examples=200, deadline=None)
@given(_messages, st.integers(0, 25))
def test_grid_property_never_holds_more_than_size_slots_and_tracks_their_newest_time(
    messages: list[list[Item]], expire_at: int
) -> None:
    w = HourlyGridWindow(SIZE)
    for msg in messages:
        for it in msg:
            w.add(it)
            held_now = [x for x in w.items() if x is not None]
            assert w.held() <= SIZE
            assert w.held() == len(held_now)
            assert w.last_time == max(x.time for x in held_now)
    w.expire(now=float(expire_at), ttl=5.0)
    held = [it for it in w.items() if it is not None]
    assert w.held() == len(held)
    assert all(it.time >= expire_at - 5.0 for it in held)
    assert w.last_time == max((it.time for it in held), default=None)


# ---------------------------------------------------------------- SecondSnapshotWindow


def test_snapshot_window_has_no_snapshot_before_a_second_completes() -> None:
    w: SecondSnapshotWindow[Item] = SecondSnapshotWindow(2, grace=1.0)
    w.add(item(100.2, gun="1"))
    assert w.snapshots() == []


def test_snapshot_second_completes_when_a_later_second_arrives() -> None:
    w: SecondSnapshotWindow[Item] = SecondSnapshotWindow(2, grace=1.0)
    a, b = item(100.2, gun="1"), item(100.7, gun="2")
    w.add(a)
    w.add(b)
    w.add(item(101.1, gun="1"))
    assert w.snapshots() == [(99, []), (100, [a, b])]


def test_snapshot_second_completes_by_the_clock_after_the_grace() -> None:
    w: SecondSnapshotWindow[Item] = SecondSnapshotWindow(1, grace=0.5)
    a = item(100.2, gun="1")
    w.add(a)
    assert w.deadline() == 101.5
    assert not w.advance(101.4)
    assert w.snapshots() == []
    assert w.advance(101.5)
    assert w.snapshots() == [(100, [a])]
    assert w.deadline() is None


def test_snapshot_advance_without_an_open_second_completes_nothing() -> None:
    w: SecondSnapshotWindow[Item] = SecondSnapshotWindow(2, grace=1.0)
    assert not w.advance(1000.0)
    assert w.deadline() is None


def test_snapshot_window_reports_seconds_without_orders_as_empty() -> None:
    w: SecondSnapshotWindow[Item] = SecondSnapshotWindow(3, grace=1.0)
    a, b = item(100.0), item(102.5)
    for it in (a, b, item(103.0)):
        w.add(it)
    assert w.snapshots() == [(100, [a]), (101, []), (102, [b])]


def test_snapshot_window_keeps_at_most_size_completed_seconds() -> None:
    w: SecondSnapshotWindow[Item] = SecondSnapshotWindow(2, grace=1.0)
    for t in (100.0, 101.0, 102.0, 103.0, 104.0):
        w.add(item(t))
    assert [s for s, _ in w.snapshots()] == [102, 103]
    assert w.held() == 3  # two completed seconds and the open one


def test_snapshot_late_item_joins_its_completed_second() -> None:
    w: SecondSnapshotWindow[Item] = SecondSnapshotWindow(2, grace=1.0)
    a, late = item(100.1), item(100.9)
    w.add(a)
    w.add(item(101.0))
    w.add(late)
    assert w.snapshots()[-1] == (100, [a, late])


def test_snapshot_late_item_after_a_clock_completion_joins_its_second() -> None:
    w: SecondSnapshotWindow[Item] = SecondSnapshotWindow(2, grace=0.5)
    a, late = item(100.1), item(100.9)
    w.add(a)
    assert w.advance(101.6)
    w.add(late)
    assert w.snapshots()[-1] == (100, [a, late])
    assert w.deadline() is None


def test_snapshot_late_item_older_than_the_kept_seconds_is_ignored() -> None:
    w: SecondSnapshotWindow[Item] = SecondSnapshotWindow(2, grace=1.0)
    for t in (100.0, 101.0, 102.0):
        w.add(item(t))
    w.add(item(98.0))
    assert all(it.time != 98.0 for _s, items in w.snapshots() for it in items)
    assert [it.time for it in w.all_items()] == [100.0, 101.0, 102.0]


def test_snapshot_late_item_of_a_second_between_completed_and_open_completes_it() -> None:
    w: SecondSnapshotWindow[Item] = SecondSnapshotWindow(3, grace=1.0)
    w.add(item(100.0))
    w.add(item(103.0))  # 100 completes, 103 opens
    late = item(102.0)
    w.add(late)
    assert w.snapshots()[-1] == (102, [late])
    assert w.open_second == 103


def test_snapshot_expire_drops_old_items_and_empties_the_window() -> None:
    w: SecondSnapshotWindow[Item] = SecondSnapshotWindow(2, grace=1.0)
    w.add(item(100.0))
    w.add(item(101.0))
    w.expire(now=700.5, ttl=600)
    assert w.last_time == 101.0
    assert [len(items) for _s, items in w.snapshots()] == [0, 0]
    w.expire(now=800.0, ttl=600)
    assert w.is_empty()
    assert w.snapshots() == []
    assert w.deadline() is None


def test_snapshot_expire_drops_an_old_second_while_newer_seconds_stay() -> None:
    w: SecondSnapshotWindow[Item] = SecondSnapshotWindow(3, grace=1.0)
    for t in (100.0, 101.0, 102.0):
        w.add(item(t))
    w.expire(now=700.5, ttl=600)
    assert [len(items) for _s, items in w.snapshots()] == [0, 0, 1]
    assert [it.time for it in w.all_items()] == [101.0, 102.0]


def test_snapshot_all_items_are_in_second_order() -> None:
    w: SecondSnapshotWindow[Item] = SecondSnapshotWindow(3, grace=1.0)
    for t in (100.0, 101.5, 101.2, 103.0):
        w.add(item(t))
    assert [it.time for it in w.all_items()] == [100.0, 101.5, 101.2, 103.0]


# ---------------------------------------------------------------- snapshot properties

_times = st.lists(st.integers(0, 60).map(lambda t: 1000 + t / 4), min_size=1, max_size=40)


@settings(max_examples=200, deadline=None)
@given(_times, st.integers(1, 4))
def test_snapshot_property_snapshots_are_size_consecutive_seconds_ending_at_last_completed(
    times: list[float], size: int
) -> None:
    w: SecondSnapshotWindow[Item] = SecondSnapshotWindow(size, grace=1.0)
    for t in times:
        w.add(item(t))
        snaps = w.snapshots()
        if w.last_completed is None:
            assert snaps == []
        else:
            assert [s for s, _ in snaps] == list(
                range(w.last_completed - size + 1, w.last_completed + 1)
            )
        assert len(w.snapshots()) in (0, size)
        assert w.held() <= size + 1


@settings(max_examples=200, deadline=None)
@given(_times, st.integers(1, 4))
def test_snapshot_property_every_item_sits_in_its_own_second_once(
    times: list[float], size: int
) -> None:
    w: SecondSnapshotWindow[Item] = SecondSnapshotWindow(size, grace=1.0)
    added = [item(t) for t in times]
    for it in added:
        w.add(it)
    w.advance(max(times) + 10)
    seen = [(s, it) for s, items in w.snapshots() for it in items]
    assert all(int(it.time) == s for s, it in seen)
    assert len({id(it) for _s, it in seen}) == len(seen)
    last = w.last_completed
    assert last == int(max(times))
    in_window = [it for it in added if last - size < int(it.time) <= last]
    assert sorted(id(it) for it in in_window) == sorted(id(it) for _s, it in seen)


@settings(max_examples=200, deadline=None)
@given(_times, st.integers(1, 4), st.lists(st.booleans(), max_size=40))
def test_snapshot_property_the_second_memo_holds_only_seconds_of_the_window(
    times: list[float], size: int, advances: list[bool]
) -> None:
    """A reader memoises every second of each snapshot (as assembly does); whatever the order
    of the items and of the clock's advances, an entry leaves with its second, and a second
    that has left never reappears in a snapshot."""
    w: SecondSnapshotWindow[Item] = SecondSnapshotWindow(size, grace=1.0)
    for i, t in enumerate(times):
        w.add(item(t))
        if i < len(advances) and advances[i]:
            w.advance(t + 2.5)
        last = w.last_completed
        memo = w.second_memo()
        if last is None:
            assert not memo
            continue
        window = range(last - size + 1, last + 1)
        assert set(memo) <= set(window)
        for s, items in w.snapshots():
            assert all(int(it.time) == s for it in items)
            memo[s] = tuple(items)
        assert w.held() <= size + 1


# ---------------------------------------------------------------- PerDeviceWindow


def test_per_device_window_keeps_the_newest_item_per_device() -> None:
    w: PerDeviceWindow[Item] = PerDeviceWindow()
    w.add(item(100, device="H1", p=1))
    newest = item(200, device="H1", p=2)
    w.add(newest)
    w.add(item(150, device="H1", p=3))
    assert w.devices() == {"H1": newest}


def test_per_device_window_lists_devices_sorted_by_id() -> None:
    w: PerDeviceWindow[Item] = PerDeviceWindow()
    for d in ("H3", "H1", "H2"):
        w.add(item(100, device=d))
    assert list(w.devices()) == ["H1", "H2", "H3"]


def test_per_device_window_expires_devices_individually() -> None:
    w: PerDeviceWindow[Item] = PerDeviceWindow()
    w.add(item(100, device="H1"))
    fresh = item(900, device="H2")
    w.add(fresh)
    w.expire(now=1000, ttl=600)
    assert w.devices() == {"H2": fresh}
    assert w.last_time == 900


def test_per_device_window_keeps_an_item_without_device_under_empty_id() -> None:
    w: PerDeviceWindow[Item] = PerDeviceWindow()
    it = item(100)
    w.add(it)
    assert w.devices() == {"": it}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["b", "a", "c", "d"]), st.integers(0, 9)), min_size=1))
def test_per_device_property_newest_wins_and_order_is_sorted(
    adds: list[tuple[str, int]],
) -> None:
    w: PerDeviceWindow[Item] = PerDeviceWindow()
    expected: dict[str, Item] = {}
    for device, t in adds:
        it = item(float(t), device=device)
        w.add(it)
        if device not in expected or t >= expected[device].time:
            expected[device] = it
    got = w.devices()
    assert list(got) == sorted(expected)
    assert all(got[d] is expected[d] for d in got)
    assert w.last_time == max(it.time for it in expected.values())


# ---------------------------------------------------------------- make_window


def test_make_window_builds_the_configured_kind_and_size() -> None:
    grid = make_window(
        TopicConfig(name="T", window="hourly_grid", window_size=168, time_key="sendTime")
    )
    assert isinstance(grid, HourlyGridWindow)
    assert len(grid.series("x")) == 168
    snap = make_window(
        TopicConfig(name="T", window="second_snapshot", window_size=2, snapshot_grace_seconds=0.5)
    )
    assert isinstance(snap, SecondSnapshotWindow)
    snap.add(item(10.0))
    assert snap.deadline() == 11.5
    assert isinstance(make_window(TopicConfig(name="T", window="per_device")), PerDeviceWindow)
    latest = make_window(TopicConfig(name="T", window_size=3))
    assert isinstance(latest, LatestWindow)
    assert latest.size == 3


def test_make_window_rejects_an_unknown_kind() -> None:
    with pytest.raises(ConfigError, match="window"):
        make_window(TopicConfig(name="T", window="sliding"))
