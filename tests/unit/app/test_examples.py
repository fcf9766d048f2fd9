"""The guide's examples run as written on the embedded in-memory bus.

Each runs as a real process with a config selecting the memory adapter and DA_MEMORY_SEED
feeding the spec's sample payloads; the test waits for the callback's log lines for both sample
stations, then stops the process with SIGINT (the guide's Ctrl-C) and checks a clean exit.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.signals import default_sigint
from tests.support.waiting import wait_for

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "examples"
SAMPLES = ROOT / "src" / "da_app" / "samples"


def _run_until(script: str, needles: list[str], tmp_path: Path, timeout: float = 30.0) -> str:
    env = dict(os.environ)
    env.update(
        DATA_ANALYSIS_CONFIG=str(EXAMPLES / "config.memory.yaml"),
        DA_MEMORY_SEED=str(SAMPLES),
        PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(EXAMPLES)]),
        PYTHONUNBUFFERED="1",
        DATA_ANALYSIS_LOG=str(tmp_path / "app.log"),
    )
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLES / script)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=default_sigint,
    )
    out: list[str] = []
    assert proc.stdout is not None
    stdout = proc.stdout
    os.set_blocking(stdout.fileno(), False)

    def all_logged() -> bool:
        ended = proc.poll() is not None
        out.extend(iter(stdout.readline, ""))  # what the process wrote so far
        if all(any(n in o for o in out) for n in needles):
            return True
        if ended:
            raise AssertionError(f"{script} ended before logging {needles}:\n{''.join(out)}")
        return False

    try:
        wait_for(
            all_logged,
            timeout,
            what=f"{needles} from {script}",
            interval=0.02,
            observe=lambda: "".join(out),
        )
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=30)
        out.append(rest or "")
    finally:
        if proc.poll() is None:
            proc.kill()
    text = "".join(out)
    assert proc.returncode == 0, text
    return text


@pytest.mark.timeout(90)
def test_sync_main_processes_the_samples_and_stops_on_sigint(tmp_path: Path) -> None:
    text = _run_until("sync_main.py", ["处理场站 S0001 的数据", "处理场站 S0002 的数据"], tmp_path)
    assert "处理场站 S0001 的数据" in text
    assert "处理场站 S0002 的数据" in text
    assert "service stopped" in text


@pytest.mark.timeout(90)
def test_async_main_uses_the_batch_upload_handler(tmp_path: Path) -> None:
    text = _run_until(
        "async_main.py", ["批次", "upload to MODULE-OUTPUT-LOAD_PREDICTION"], tmp_path
    )
    assert "处理场站 S0001 的数据" in text
    assert "上传 2 个场站结果" in text
    assert "stations ['S0001', 'S0002']" in text or "stations ['S0002', 'S0001']" in text
    assert "收到停止信号" in text or "service stopped" in text
