"""The demo on a real 100x40 terminal (tmux): the live table is drawn, nothing wraps.

Skipped when tmux is not installed. Uses its own tmux server socket, so it never touches a
user's sessions, and kills only that server.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest


def _summary_drawn(screen: str) -> bool:
    """The final summary's last line (the log file) is on the pane."""
    _, found, after = screen.partition("final summary")
    return bool(found) and "log file:" in after


@pytest.mark.timeout(90)
def test_the_demo_draws_its_live_table_within_100_columns(tmp_path: Path) -> None:
    tmux = shutil.which("tmux")
    if tmux is None:
        pytest.skip("tmux is not installed")
    sock = str(tmp_path / "tmux.sock")
    cmd = (
        f"DATA_ANALYSIS_LOG={tmp_path / 'demo.log'} {sys.executable} -m da_app demo "
        "--stations 5 --duration 4 --interval 0.5 --acceleration 60; sleep 30"
    )
    base = [tmux, "-S", sock]
    subprocess.run([*base, "new-session", "-d", "-x", "100", "-y", "40", cmd], check=True)
    try:
        screen = ""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not _summary_drawn(screen):
            time.sleep(0.5)  # polling the pane until the summary's last line is drawn
            screen = subprocess.run(
                [*base, "capture-pane", "-p", "-J"], capture_output=True, text=True, check=True
            ).stdout
    finally:
        subprocess.run([*base, "kill-server"], check=False)
    assert "final summary" in screen, screen
    assert "runs/s" in screen  # the live table's header (plain lines have no table)
    assert "module graph" in screen or "level 2" in screen
    # -J joins wrapped lines: a line longer than the pane would show up here
    assert max(len(line.rstrip()) for line in screen.splitlines()) <= 100, screen
