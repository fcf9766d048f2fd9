"""The da-app console entry point."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from da_app.demo import run_demo
from da_app.main import _load_callable, main


def test_demo_runs_every_module_and_prints_a_final_summary() -> None:
    out = io.StringIO()
    summary = run_demo(
        stations=10, duration=3.0, acceleration=20.0, max_workers=2, out=out, interval=1.0
    )
    text = out.getvalue()
    assert "final summary" in text
    assert set(summary["modules"]) == {
        "load_prediction",
        "pv_prediction",
        "electricity_price",
        "SOH_model",
        "thermal_management",
        "operation_optimization",
        "station_guidance",
        "evaluation_model",
        "customer_mining",
    }
    assert summary["published"] > 100
    lp = summary["modules"]["load_prediction"]
    assert lp["stations"] == 10
    assert lp["runs"] >= 10
    assert lp["uploads"] >= 1
    # the dependency chain: operation_optimization ran after reading load_prediction's output
    assert summary["modules"]["operation_optimization"]["runs"] > 0


def test_run_rejects_a_malformed_callback_path() -> None:
    with pytest.raises(SystemExit, match=r"package\.module:function"):
        main(["run", "--callback", "no_colon_here"])


@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("nope.missing:fn", "cannot import module 'nope.missing' (ModuleNotFoundError: No module"),
        ("json:no_such_fn", "module 'json' ("),
        ("json:__doc__", "'__doc__' is a str, not a function"),
    ],
)
def test_a_bad_callback_path_is_one_clear_line_and_exit_code_2(
    path: str, says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        _load_callable(path)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1  # one line, no traceback
    assert err.startswith(f"da-app: --callback {path}: ")
    assert says in err


def test_a_bad_callback_path_from_the_command_line_prints_no_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "DATA_ANALYSIS_LOG": str(tmp_path / "app.log")}
    proc = subprocess.run(
        [sys.executable, "-m", "da_app", "run", "--callback", "nope.missing:fn"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
    )
    assert "Traceback" not in proc.stderr
    # the configuration is loaded first: whatever it says, a bad path costs one line, not 20
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert proc.returncode == 2


def test_run_reports_an_invalid_configuration_with_exit_code_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATA_ANALYSIS_LOG", str(tmp_path / "app.log"))
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("TOPIC_DETAIL:\n  SCHEDULE-STATION-REALTIME-DATA:\n    window_size: 0\n")
    code = main(["run", "--config", str(cfg), "--callback", "json:dumps"])
    assert code == 2
    assert "window_size" in capsys.readouterr().err
