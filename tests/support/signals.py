"""Subprocess set-up for tests that signal a child (SIGINT for Ctrl-C, SIGHUP for reload).

A shell that starts a job in the background without job control sets SIGINT to "ignore" for
it, and ``nohup`` does the same for SIGHUP; children inherit that. Python then installs no
``KeyboardInterrupt`` handler, and the service (which takes over a signal only while it has its
default disposition) installs no reload handler: the child would never see the test's signal.
``default_sigint`` (a ``preexec_fn``) gives the child the default dispositions back, so the
suite behaves the same in the foreground, in the background, under ``nohup`` and under CI.
"""

from __future__ import annotations

import signal


def default_sigint() -> None:
    """Restore the default disposition of SIGINT, SIGHUP and SIGTERM in a child before it
    executes."""
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)
