"""Subprocess set-up for tests that stop a child with SIGINT (Ctrl-C).

A shell that starts a job in the background without job control sets SIGINT to "ignore" for
it, children inherit that, and Python then installs no ``KeyboardInterrupt`` handler: the
child would never see the test's SIGINT. ``default_sigint`` (a ``preexec_fn``) gives the child
the default disposition back, so the suite behaves the same in the foreground, in the
background and under CI.
"""

from __future__ import annotations

import signal


def default_sigint() -> None:
    """Restore SIGINT's default disposition in a child before it executes."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
