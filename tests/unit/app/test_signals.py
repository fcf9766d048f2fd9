"""da_app.signals: SIGTERM and SIGINT stop, SIGHUP reloads, installed only over the defaults."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator

import pytest

from da_adapters.memory import ManualClock, MemoryBroker
from da_app import signals
from da_app.services import AsyncDataAnalysisService
from tests.support.waiting import wait_for

from .helpers import echo_window

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="POSIX signals")


@pytest.fixture(autouse=True)
def _default_handlers() -> Iterator[None]:
    """Each test starts from Python's default handlers and leaves them so."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    yield
    for s, handler in saved.items():
        signal.signal(s, handler)


def _kill(sig: signal.Signals) -> None:
    """Send ``sig`` to this process, refusing when it would take Python's default action."""
    assert signal.getsignal(sig) not in (signal.SIG_DFL, signal.default_int_handler)
    os.kill(os.getpid(), sig)


def test_sigterm_and_sigint_stop_and_sighup_reloads_in_a_helper_thread() -> None:
    stops: list[str] = []
    reloaded = threading.Event()
    reload_threads: list[str] = []

    def reload() -> None:
        reload_threads.append(threading.current_thread().name)
        reloaded.set()

    restore = signals.install(lambda: stops.append("stop"), reload)
    try:
        _kill(signal.SIGTERM)
        assert stops == ["stop"]
        _kill(signal.SIGHUP)
        assert reloaded.wait(10)
        assert reload_threads == ["da-reload"]
        _kill(signal.SIGINT)
        assert stops == ["stop", "stop"]
        # the first Ctrl-C puts the default back: a second one interrupts at once
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        restore()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    assert signal.getsignal(signal.SIGHUP) is signal.SIG_DFL


def test_a_handler_the_program_installed_is_left_alone() -> None:
    def mine(signum: int, frame: object) -> None:
        pass

    signal.signal(signal.SIGTERM, mine)
    restore = signals.install(lambda: None, lambda: None)
    try:
        assert signal.getsignal(signal.SIGTERM) is mine
        assert signal.getsignal(signal.SIGHUP) is not signal.SIG_DFL
    finally:
        restore()
    assert signal.getsignal(signal.SIGTERM) is mine


def test_off_the_main_thread_nothing_is_installed() -> None:
    box: list[signals.Restore] = []
    t = threading.Thread(target=lambda: box.append(signals.install(lambda: None, lambda: None)))
    t.start()
    t.join(10)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    box[0]()


def test_a_failing_reload_is_logged_and_swallowed(caplog: pytest.LogCaptureFixture) -> None:
    def boom() -> None:
        raise RuntimeError("disk gone")

    signals.reload_logged(boom)
    assert "configuration reload failed" in caplog.text


async def test_serve_runs_the_async_service_until_sigterm_and_reloads_on_sighup() -> None:
    clock = ManualClock()
    svc = AsyncDataAnalysisService(
        config={}, adapter="memory", broker=MemoryBroker(clock), clock=clock, poll_timeout=0.01
    )
    reloads: list[object] = []
    svc.reload_config = lambda new_config=None: reloads.append(new_config)  # type: ignore[method-assign]
    task = asyncio.create_task(svc.serve(echo_window))
    for _ in range(500):  # until serve() has started and installed its handlers
        if svc.runner is not None and signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            break
        await asyncio.sleep(0.01)
    _kill(signal.SIGHUP)
    for _ in range(500):
        if reloads:
            break
        await asyncio.sleep(0.01)
    assert reloads == [None]
    _kill(signal.SIGTERM)
    await asyncio.wait_for(task, 30)
    assert svc.runner is not None
    assert not svc.runner.alive
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers removed


def test_the_stop_handler_stops_without_waiting_for_logging(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A signal may arrive while the main thread is inside a log write: a handler that logged
    itself would re-enter that stream, and the error would end it before ``stop()`` (the
    service then ignored SIGTERM). So it stops first and leaves its line to a helper thread:
    even with a log handler held by another thread, the stop is immediate."""
    caplog.set_level(logging.INFO, logger="da_app.signals")
    stops: list[str] = []
    held, release = threading.Event(), threading.Event()

    def hold_the_log_handler() -> None:
        caplog.handler.acquire()
        held.set()
        release.wait(2.0)  # the bound of a handler that would wait (the old behaviour)
        caplog.handler.release()

    holder = threading.Thread(target=hold_the_log_handler)
    holder.start()
    restore = signals.install(lambda: stops.append("stop"), lambda: None)
    try:
        assert held.wait(10)
        began = time.monotonic()
        _kill(signal.SIGTERM)
        assert stops == ["stop"]
        assert time.monotonic() - began < 1.0
    finally:
        release.set()
        holder.join(10)
        restore()
    wait_for(lambda: "received SIGTERM; stopping" in caplog.text, 10, what="the stop line")
    wait_for(
        lambda: not any(t.name == "da-signal-log" for t in threading.enumerate()),
        10,
        what="the logging helper thread to end",
    )
