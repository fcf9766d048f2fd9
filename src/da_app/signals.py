"""Process signals for a service in the foreground: the one home of SIGTERM, SIGINT and SIGHUP.

* SIGTERM and SIGINT: stop cleanly (finish in-flight work, upload, commit, leave the group).
  After the first SIGINT the previous handler is back, so a second Ctrl-C interrupts at once.
* SIGHUP: reload the configuration; an invalid one is logged and the old one stays.

Handlers are installed only for signals whose handler is still Python's default, so a program
that installed its own keeps it (and under ``asyncio.run`` Ctrl-C keeps cancelling the main
task, as asyncio arranges). ``install`` uses ``signal.signal`` and works on the main thread
only (elsewhere it installs nothing); ``install_on_loop`` uses the event loop's handlers.
Both return a function that puts the previous handlers back.

``DataAnalysisService.start(background=False)``, ``AsyncDataAnalysisService.serve()`` and
``da-app run`` use them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from da_core.errors import ConfigError

log = logging.getLogger("da_app.signals")

Restore = Callable[[], None]


def _wanted() -> list[signal.Signals]:
    sigs = [signal.SIGTERM, signal.SIGINT]
    if hasattr(signal, "SIGHUP"):  # not on Windows
        sigs.append(signal.SIGHUP)
    return sigs


def _is_default(sig: signal.Signals) -> bool:
    current = signal.getsignal(sig)
    if sig == signal.SIGINT:
        return current is signal.default_int_handler
    return current is signal.SIG_DFL


def reload_logged(reload: Callable[[], None]) -> None:
    """Reload for a signal: a rejected configuration is already logged with its reasons by
    ``reload_config``; anything else is logged here. Never raises."""
    log.info("received SIGHUP; reloading the configuration")
    try:
        reload()
    except ConfigError:
        pass  # logged by reload_config; the old configuration stays
    except Exception:
        log.exception("configuration reload failed; the old configuration stays active")


def install(stop: Callable[[], None], reload: Callable[[], None]) -> Restore:
    """``signal.signal`` handlers on the main thread. ``stop`` must be safe to call from a
    signal handler (set a flag); ``reload`` runs in a helper thread, as it may wait for the
    engine loop, which the handler interrupted."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous: dict[signal.Signals, Any] = {}

    def handle(signum: int, frame: FrameType | None) -> None:
        # A handler runs between two bytecodes of the main thread, possibly inside its write
        # to stderr: logging here would re-enter that stream ("reentrant call"), and the
        # error escaping logging's own report would end the handler before ``stop()``: the
        # service would not stop (seen as a hang on SIGTERM). So: no I/O here; the line is
        # logged by a helper thread, which waits for the main thread's write.
        sig = signal.Signals(signum)
        if sig.name == "SIGHUP":
            threading.Thread(
                target=reload_logged, args=(reload,), name="da-reload", daemon=True
            ).start()
            return
        if sig == signal.SIGINT:  # a second Ctrl-C interrupts at once
            signal.signal(sig, previous[sig])
        stop()
        threading.Thread(
            target=log.info,
            args=("received %s; stopping", sig.name),
            name="da-signal-log",
            daemon=True,
        ).start()

    for sig in _wanted():
        if _is_default(sig):
            previous[sig] = signal.signal(sig, handle)

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        previous.clear()

    return restore


def install_on_loop(
    loop: asyncio.AbstractEventLoop, stop: Callable[[], None], reload: Callable[[], None]
) -> Restore:
    """The event loop's handlers (they run as loop callbacks, so ``reload`` runs on the loop
    and applies at once). Where the loop has no signal support, installs nothing."""
    installed: list[signal.Signals] = []

    def on_stop(sig: signal.Signals) -> None:
        log.info("received %s; stopping", sig.name)
        if sig == signal.SIGINT:
            loop.remove_signal_handler(sig)
        stop()

    for sig in _wanted():
        if not _is_default(sig):
            continue
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            if sig.name == "SIGHUP":
                loop.add_signal_handler(sig, reload_logged, reload)
            else:
                loop.add_signal_handler(sig, on_stop, sig)
            installed.append(sig)

    def restore() -> None:
        for sig in installed:
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)
        installed.clear()

    return restore
