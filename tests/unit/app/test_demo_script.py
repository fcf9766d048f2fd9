"""``scripts/demo`` installs only when needed: on the first run, after pyproject.toml changed, or
when the package no longer imports from the checkout; otherwise it starts the demo at once.

Runs the real script in a temporary copy of the checkout whose ``.venv`` holds a stand-in
``python`` (the real interpreter, except that ``-m pip`` only records its arguments and creates
the ``da-app`` entry point) and a stand-in ``da-app`` that records its arguments: no network,
no real install.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

FAKE_PYTHON = """#!/usr/bin/env bash
root="$(cd "$(dirname "$0")/../.." && pwd)"
if [ "${1:-}" = "-m" ] && [ "${2:-}" = "pip" ]; then
  echo "pip $*" >>"$root/calls.log"
  echo "setuptools says a lot here" >&2
  if [ -e "$root/pip-fails" ]; then echo "ERROR: no network" >&2; exit 1; fi
  printf '#!/usr/bin/env bash\\necho "da-app $*" >>"%s/calls.log"\\n' "$root" \\
    >"$root/.venv/bin/da-app"
  chmod +x "$root/.venv/bin/da-app"
  exit 0
fi
PYTHONPATH="$root/src" exec {real} "$@"
"""


def _checkout(tmp_path: Path) -> Path:
    root = tmp_path / "checkout"
    (root / "scripts").mkdir(parents=True)
    shutil.copy2(ROOT / "scripts" / "demo", root / "scripts" / "demo")
    (root / "pyproject.toml").write_text('[project]\nname = "x"\n')
    pkg = root / "src" / "da_app"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "main.py").write_text("")
    bin_dir = root / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    py = bin_dir / "python"
    py.write_text(FAKE_PYTHON.replace("{real}", sys.executable))
    py.chmod(py.stat().st_mode | stat.S_IXUSR)
    return root


def _demo(root: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    log = root / "calls.log"
    log.unlink(missing_ok=True)
    proc = subprocess.run(
        ["bash", str(root / "scripts" / "demo"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    calls = log.read_text().splitlines() if log.exists() else []
    return proc, calls


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    if shutil.which("bash") is None:  # pragma: no cover
        pytest.skip("needs bash")
    return _checkout(tmp_path)


def test_the_first_run_installs_quietly_then_runs_the_demo(checkout: Path) -> None:
    proc, calls = _demo(checkout, "--stations", "5")
    assert proc.returncode == 0, proc.stderr
    assert [c for c in calls if c.startswith("pip")][-1].endswith("install -q -e .")
    assert calls[-1] == "da-app demo --stations 5"
    assert "setuptools says" not in proc.stderr  # pip's chatter goes to .venv/install.log
    assert "installing data-analysis" in proc.stderr
    assert "setuptools says" in (checkout / ".venv" / "install.log").read_text()


def test_a_second_run_skips_the_install(checkout: Path) -> None:
    _demo(checkout)
    proc, calls = _demo(checkout, "--duration", "1")
    assert proc.returncode == 0, proc.stderr
    assert calls == ["da-app demo --duration 1"]
    assert proc.stderr == ""


def test_a_changed_pyproject_reinstalls(checkout: Path) -> None:
    _demo(checkout)
    with (checkout / "pyproject.toml").open("a") as f:
        f.write('dependencies = ["rich"]\n')
    _, calls = _demo(checkout)
    assert any(c.endswith("install -q -e .") for c in calls)
    _, calls = _demo(checkout)
    assert calls == ["da-app demo"]


def test_a_package_that_no_longer_imports_is_reinstalled(checkout: Path) -> None:
    _demo(checkout)
    (checkout / "src" / "da_app" / "main.py").write_text("raise ImportError('broken')\n")
    _, calls = _demo(checkout)
    assert any(c.endswith("install -q -e .") for c in calls)


def test_a_failed_install_shows_its_log_and_leaves_no_stamp(checkout: Path) -> None:
    (checkout / "pip-fails").touch()
    proc, calls = _demo(checkout)
    assert proc.returncode == 1
    assert "ERROR: no network" in proc.stderr
    assert not any(c.startswith("da-app") for c in calls)
    (checkout / "pip-fails").unlink()
    _, calls = _demo(checkout)
    assert any(c.endswith("install -q -e .") for c in calls)  # retried, not skipped
