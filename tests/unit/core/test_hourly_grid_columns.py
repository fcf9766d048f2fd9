"""The columnar ``HourlyGridWindow`` reads exactly as the item-keeping grid it replaced
(``reference_grid.ReferenceGrid``), values of every JSON type coming back as the type they went
in as."""

from __future__ import annotations

from typing import Any

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from da_core.extractors import StationItem
from da_core.station_window import HourlyGridWindow, WindowItem
from da_core.station_window.columns import Column
from tests.unit.core.reference_grid import ReferenceGrid
from tests.unit.core.test_station_window import Item

SIZE = 5
FIELDS = ("p", "q", "r", "extra")
GUN_FIELDS = ("g", "h")


# Every JSON value a record can hold, with the edges of the typed storage: -0.0, ints at and
# beyond what a double holds exactly, bools (ints to Python, not to us), None, containers.
_value = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, -0.0, 1.5, 2**53 * 1.0]),
    st.integers(-1000, 1000),
    st.sampled_from([2**53, -(2**53), 2**53 + 1, -(2**53) - 1, 10**30]),
    st.booleans(),
    st.none(),
    st.text(max_size=3),
    st.lists(st.integers(0, 3), max_size=2),
    st.dictionaries(st.sampled_from("xy"), st.integers(0, 3), max_size=2),
)
_number = st.one_of(st.floats(-1e6, 1e6), st.integers(-1000, 1000))


@st.composite
def _items(draw: st.DrawFn) -> Item:
    slot = draw(st.one_of(st.none(), st.integers(0, 14)))
    time = float(draw(st.integers(0, 14)) * 3600 + draw(st.sampled_from([0, 1, 1800, 3599])))
    numeric = draw(st.booleans())  # mostly numbers, as REALTIME, or anything
    values = draw(st.dictionaries(st.sampled_from(FIELDS), _number if numeric else _value))
    ids = tuple(draw(st.lists(st.sampled_from("ABCD"), max_size=4, unique=draw(st.booleans()))))
    gun_values = {}
    for f in draw(st.lists(st.sampled_from(GUN_FIELDS), unique=True)):
        length = len(ids) if draw(st.integers(0, 4)) else draw(st.integers(0, 3))
        gun_values[f] = tuple(
            draw(st.lists(_number if numeric else _value, min_size=length, max_size=length))
        )
    return Item(
        station_id=draw(st.sampled_from(["S1", "S2"])),
        time=time,
        values=values,
        raw={"whole": "record"},
        event_time=draw(st.one_of(st.none(), st.just(time - 5.0))),
        slot=slot,
        device=draw(st.sampled_from([None, None, "d1"])),
        gun_ids=ids,
        gun_values=gun_values,
        slot_list=draw(st.sampled_from([None, None, (1, 2.5)])),
    )


@st.composite
def _runs(draw: st.DrawFn) -> list[Item]:
    """A record's items for one station: mostly a run ``add_items`` writes column by column
    (consecutive slots, one set of fields and guns), sometimes with one item that breaks it."""
    n = draw(st.integers(1, 12))
    s0 = draw(st.integers(0, 20))
    numeric = draw(st.booleans())
    value = _number if numeric else _value
    fields = draw(st.lists(st.sampled_from(FIELDS), unique=True))
    ids = tuple(draw(st.lists(st.sampled_from("ABCD"), max_size=3, unique=True)))
    gun_fields = draw(st.lists(st.sampled_from(GUN_FIELDS), unique=True))
    run = []
    for i in range(n):
        gun_values = {
            f: tuple(draw(st.lists(value, min_size=len(ids), max_size=len(ids))))
            for f in gun_fields
        }
        run.append(
            Item(
                station_id="S1",
                time=float((s0 + i) * 3600 + draw(st.integers(0, 10))),
                values={f: draw(value) for f in fields},
                raw={"whole": "record"},
                event_time=float((s0 + i) * 3600),
                slot=s0 + i,
                gun_ids=ids,
                gun_values=gun_values,
            )
        )
    if draw(st.booleans()):
        i = draw(st.integers(0, n - 1))
        breaks = draw(
            st.sampled_from(["slot", "guns", "field", "extra_field", "device", "gun_length"])
        )
        it = run[i]
        if breaks == "slot":
            run[i] = attrs.evolve(it, slot=(it.slot or 0) + draw(st.sampled_from([-2, 3])))
        elif breaks == "guns":
            run[i] = attrs.evolve(it, gun_ids=(*it.gun_ids, "E"))
        elif breaks == "field" and it.values:
            run[i] = attrs.evolve(it, values=dict(list(it.values.items())[1:]))
        elif breaks == "extra_field":
            run[i] = attrs.evolve(it, values={**it.values, "extra": 1.0})
        elif breaks == "device":
            run[i] = attrs.evolve(it, device="d1")
        elif breaks == "gun_length" and it.gun_values:
            f = next(iter(it.gun_values))
            run[i] = attrs.evolve(it, gun_values={**it.gun_values, f: (*it.gun_values[f], 1.0)})
    return run


_ops = st.lists(
    st.one_of(
        _items().map(lambda it: ("add", it)),
        _runs().map(lambda run: ("add_items", run)),
        st.tuples(st.integers(0, 60000), st.sampled_from([1.0, 3600.0, 7200.0])).map(
            lambda a: ("expire", a)
        ),
    ),
    min_size=1,
    max_size=40,
)


def _typed(values: list[Any]) -> list[tuple[str, str]]:
    """Values compared with their exact types (``1 == 1.0 == True`` would hide a change)."""
    return [(type(v).__name__, repr(v)) for v in values]


def _view(it: WindowItem | None) -> tuple[Any, ...] | None:
    """What a grid keeps of an item: everything but ``raw``; gun fields as long as the gun ids,
    by gun id (a duplicated id keeps its last value, as the grids read them)."""
    if it is None:
        return None
    n = len(it.gun_ids)
    guns = {
        f: {g: repr(v) for g, v in zip(it.gun_ids, vals, strict=True)}
        for f, vals in it.gun_values.items()
        if n and len(vals) == n
    }
    values = {f: (type(v).__name__, repr(v)) for f, v in it.values.items()}
    return (
        it.station_id,
        it.time,
        values,
        it.event_time,
        it.gun_ids,
        guns,
        it.device,
        it.slot_list,
    )


def _assert_same(w: HourlyGridWindow, ref: ReferenceGrid[Any]) -> None:
    assert w.slots() == ref.slots()
    assert w.newest_slot == ref.newest_slot
    assert w.held() == ref.held()
    assert w.is_empty() == ref.is_empty()
    assert w.last_time == ref.last_time
    assert w.latest() is ref.latest()  # the newest slot's item is kept as it came
    for f in (*FIELDS, "absent"):
        assert _typed(w.series(f)) == _typed(ref.series(f)), f
    assert w.gun_ids() == ref.gun_ids()
    for f in (*GUN_FIELDS, "absent"):
        assert [_typed(s) for s in w.gun_series(f)] == [_typed(s) for s in ref.gun_series(f)], f
    assert [_view(it) for it in w.items()] == [_view(it) for it in ref.items()]


def _apply(w: HourlyGridWindow, ref: ReferenceGrid[Any], op: str, arg: Any) -> None:
    """One step to both grids: the reference adds a run item by item."""
    if op == "add":
        w.add(arg)
        ref.add(arg)
    elif op == "add_items":
        w.add_items(arg)
        for it in arg:
            ref.add(it)
    else:
        now, ttl = arg
        w.expire(float(now), ttl)
        ref.expire(float(now), ttl)


@settings(max_examples=400, deadline=None)
@given(_ops, st.sampled_from([SIZE, 16]))
def test_the_columnar_grid_reads_as_the_reference_grid_after_every_step(
    ops: list[tuple[str, Any]], size: int
) -> None:
    """Size 16 lets a run written in bulk (8 or more items) reuse rows still holding an older
    slot's values, which it must overwrite or clear."""
    w = HourlyGridWindow(size)
    ref: ReferenceGrid[Any] = ReferenceGrid(size)
    for op, arg in ops:
        _apply(w, ref, op, arg)
        _assert_same(w, ref)


@settings(max_examples=200, deadline=None)
@given(_ops, st.integers(1, 8))
def test_a_grid_rebuilt_from_all_items_reads_as_the_reference_rebuilt_alike(
    ops: list[tuple[str, Any]], size: int
) -> None:
    """``all_items`` (used when a topic's window is resized) carries everything a grid reads."""
    w = HourlyGridWindow(SIZE)
    ref: ReferenceGrid[Any] = ReferenceGrid(SIZE)
    for op, arg in ops:
        _apply(w, ref, op, arg)
    copy = HourlyGridWindow(size)
    ref_copy: ReferenceGrid[Any] = ReferenceGrid(size)
    for it in w.all_items():
        copy.add(it)
    for it in ref.all_items():
        ref_copy.add(it)
    for f in FIELDS:
        assert _typed(copy.series(f)) == _typed(ref_copy.series(f))
    for f in GUN_FIELDS:
        assert [_typed(s) for s in copy.gun_series(f)] == [
            _typed(s) for s in ref_copy.gun_series(f)
        ]
    assert copy.slots() == ref_copy.slots()
    assert copy.last_time == ref_copy.last_time


@given(st.lists(_value, min_size=1, max_size=6), st.data())
def test_a_column_gives_back_what_was_put_and_forgets_what_was_cleared(
    values: list[Any], data: st.DataObject
) -> None:
    col = Column(len(values))
    for row, v in enumerate(values):
        col.put(row, "an earlier value")
        col.put(row, v)
    cleared = data.draw(st.sets(st.integers(0, len(values) - 1)))
    for row in cleared:
        col.clear(row)
    expected = [None if row in cleared else v for row, v in enumerate(values)]
    assert _typed([col.get(row) for row in range(len(values))]) == _typed(expected)
    everywhere = bytearray([1] * len(values))
    assert _typed(col.read(0, everywhere)) == _typed(expected)
    start = data.draw(st.integers(0, len(values) - 1))
    assert _typed(col.read(start, everywhere)) == _typed(expected[start:] + expected[:start])
    assert not any(row in col.objs for row in cleared)


@given(st.lists(st.one_of(st.none(), _value), min_size=1, max_size=40), st.data())
def test_a_column_reads_each_present_row_as_put_and_none_elsewhere(
    values: list[Any], data: st.DataObject
) -> None:
    """``read`` against ``get`` row by row, for any mix of kinds and any present mask (runs
    of gaps at the ends, in the middle, everywhere, nowhere)."""
    size = len(values)
    col = Column(size)
    for row, v in enumerate(values):
        if v is not None:
            col.put(row, v)
    present = bytearray(data.draw(st.lists(st.integers(0, 1), min_size=size, max_size=size)))
    start = data.draw(st.integers(0, size - 1))
    expected = [col.get(row) if present[row] else None for row in range(size)]
    assert _typed(col.read(start, present)) == _typed(expected[start:] + expected[:start])


def test_a_replacement_with_a_repeated_gun_id_clears_the_guns_it_lacks() -> None:
    """Two gun ids, two columns, but one of them repeated: the other gun's column must still be
    cleared in that row (its count alone does not say every column was written)."""
    w = HourlyGridWindow(3)
    ref: ReferenceGrid[Any] = ReferenceGrid(3)
    for it in (
        Item("S1", 10.0, {}, None, slot=1, gun_ids=("A", "B"), gun_values={"g": (1.0, 2.0)}),
        Item("S1", 10.0, {}, None, slot=2, gun_ids=("A", "B"), gun_values={"g": (3.0, 4.0)}),
        Item("S1", 20.0, {}, None, slot=1, gun_ids=("A", "A"), gun_values={"g": (5.0, 6.0)}),
    ):
        w.add(it)
        ref.add(it)
    assert w.gun_series("g") == [[None, 6.0, 3.0], [None, None, 4.0]]
    _assert_same(w, ref)


def test_the_newest_slot_s_item_is_kept_as_it_came_and_older_ones_are_rebuilt() -> None:
    w = HourlyGridWindow(3)
    older = Item("S1", 1.0, {"p": 1}, {"raw": 1}, slot=1, device="d1")
    newest = Item("S1", 2.0, {"p": 2}, {"raw": 2}, slot=2)
    w.add(older)
    w.add(newest)
    assert w.latest() is newest
    rebuilt = w.items()[1]
    assert rebuilt is not None
    assert rebuilt is not older
    assert rebuilt.raw is None  # a grid keeps no raw
    assert _view(rebuilt) == _view(older)


def test_a_history_message_is_written_column_by_column_and_reads_as_added_one_by_one() -> None:
    """The bulk path is taken for a run (the kept latest is the run's last item) and a lean
    run keeps its latest without ``raw``."""
    run = [
        Item(
            "S1",
            h * 3600.0,
            {"p": float(h), "q": h},
            {"row": h},
            slot=h,
            gun_ids=("A", "B"),
            gun_values={"g": (h, h + 0.5)},
        )
        for h in range(200)
    ]
    w = HourlyGridWindow(168)
    ref: ReferenceGrid[Any] = ReferenceGrid(168)
    w.add_items(run)
    for it in run:
        ref.add(it)
    _assert_same(w, ref)
    assert w.latest() is run[-1]
    lean = HourlyGridWindow(168)
    lean.add_items([StationItem(*attrs.astuple(it, recurse=False)) for it in run[:-1]], lean=True)
    assert _typed(lean.series("q")[1:]) == _typed(w.series("q")[:-1])
    kept = lean.latest()
    assert kept is not None
    assert kept.raw is None
    assert _view(kept) == _view(run[-2])


def test_a_run_reusing_rows_of_older_slots_clears_the_fields_and_guns_it_lacks() -> None:
    """Rows of a ring are reused: a run written in bulk over rows whose older slots held other
    fields and guns must not let those show through."""
    w = HourlyGridWindow(16)
    ref: ReferenceGrid[Any] = ReferenceGrid(16)
    older = [
        Item(
            "S1",
            s * 3600.0,
            {"p": float(s)},
            None,
            slot=s,
            gun_ids=("A", "B"),
            gun_values={"g": (1.0, 2.0), "h": (3, 4)},
        )
        for s in range(10)
    ]
    run = [
        Item("S1", s * 3600.0, {"q": 1.0}, None, slot=s, gun_ids=("B",), gun_values={"g": (5.0,)})
        for s in range(16, 24)
    ]
    for it in older:
        w.add(it)
        ref.add(it)
    w.add_items(run)
    for it in run:
        ref.add(it)
    assert w.series("p") == [8.0, 9.0] + [None] * 14
    assert w.gun_ids() == ["A", "B"]
    assert w.gun_series("g") == [[1.0, 1.0] + [None] * 14, [2.0, 2.0] + [None] * 6 + [5.0] * 8]
    _assert_same(w, ref)
