"""The clocks: manual (tests, simulations) and system (production)."""

from __future__ import annotations

import pytest

from da_adapters.clock import SystemClock
from da_adapters.memory import ManualClock
from da_core.ports import Clock


def test_a_manual_clock_starts_at_its_fixed_default() -> None:
    assert ManualClock().time() == 1_800_000_000.0


def test_advance_moves_the_manual_clock_forwards() -> None:
    clock = ManualClock(start=100.0)

    returned = clock.advance(2.5)

    assert (returned, clock.time()) == (102.5, 102.5)


def test_a_manual_clock_refuses_to_advance_backwards() -> None:
    clock = ManualClock(start=100.0)

    with pytest.raises(ValueError, match="backwards"):
        clock.advance(-1.0)
    assert clock.time() == 100.0


def test_set_jumps_forwards_but_never_backwards() -> None:
    clock = ManualClock(start=100.0)
    clock.set(150.0)

    with pytest.raises(ValueError, match="backwards"):
        clock.set(149.0)
    assert clock.time() == 150.0


def test_both_clocks_implement_the_clock_port() -> None:
    assert isinstance(ManualClock(), Clock)
    assert isinstance(SystemClock(), Clock)


def test_the_system_clock_follows_its_source() -> None:
    readings = iter([10.0, 11.5])
    clock = SystemClock(time_source=lambda: next(readings))

    assert (clock.time(), clock.time()) == (10.0, 11.5)


def test_the_system_clock_holds_still_when_its_source_steps_back() -> None:
    readings = iter([10.0, 7.0, 12.0])
    clock = SystemClock(time_source=lambda: next(readings))

    assert [clock.time(), clock.time(), clock.time()] == [10.0, 10.0, 12.0]
