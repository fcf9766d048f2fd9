"""Logging per the guide: the file at DATA_ANALYSIS_LOG, rotation, LOG_LEVEL, the JSON format,
context fields, and a library that leaves logging alone until the entry point configures it."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import Any

import pytest

from da_app.logconfig import LOG_FORMAT, configure_logging, ensure_logging
from da_app.testing import Harness
from tests.support.signals import default_sigint

from .helpers import PARAM, RT, param, realtime

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def _restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield
    for h in list(root.handlers):
        if h not in handlers:
            root.removeHandler(h)
            h.close()
    root.setLevel(level)


def _ours() -> list[logging.Handler]:
    return [h for h in logging.getLogger().handlers if getattr(h, "_da_handler", False)]


def _flush() -> None:
    for h in _ours():
        h.flush()


def test_the_log_file_appears_at_data_analysis_log_in_the_guides_format(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "logs" / "nested" / "app.log"
    monkeypatch.setenv("DATA_ANALYSIS_LOG", str(path))
    monkeypatch.delenv("LOG_LEVEL", raising=False)
    configure_logging(console=False)
    logging.getLogger("da_core.engine").info("处理场站 %s 的数据", "S0001")
    _flush()
    text = path.read_text(encoding="utf-8")
    assert text.endswith("INFO da_core.engine 处理场站 S0001 的数据\n")
    assert text.startswith("[")
    assert "] INFO da_core.engine" in text
    (handler,) = _ours()
    assert isinstance(handler, RotatingFileHandler)
    assert (handler.maxBytes, handler.backupCount) == (10 * 1024 * 1024, 5)
    assert handler.encoding == "utf-8"
    assert handler.formatter is not None
    assert handler.formatter._fmt == LOG_FORMAT


def test_the_log_file_rotates_at_the_configured_size_and_keeps_the_backups(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "app.log"
    monkeypatch.setenv("DATA_ANALYSIS_LOG", str(path))
    monkeypatch.setenv("DATA_ANALYSIS_LOG_MAX_BYTES", "1000")
    monkeypatch.setenv("DATA_ANALYSIS_LOG_BACKUPS", "2")
    configure_logging(console=False)
    log = logging.getLogger("da_app.test")
    for i in range(200):
        log.warning("line %03d %s", i, "x" * 40)
    _flush()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["app.log", "app.log.1", "app.log.2"]
    for name in files:
        assert (tmp_path / name).stat().st_size <= 1000
    assert "line 199" in path.read_text(encoding="utf-8")
    assert "line 000" not in "".join((tmp_path / n).read_text(encoding="utf-8") for n in files)


def test_configuring_twice_replaces_the_handlers_instead_of_duplicating_them(
    tmp_path: Path,
) -> None:
    configure_logging(console=True, log_file=str(tmp_path / "a.log"))
    configure_logging(console=True, log_file=str(tmp_path / "b.log"))
    assert len(_ours()) == 2
    assert {Path(h.baseFilename).name for h in _ours() if isinstance(h, RotatingFileHandler)} == {
        "b.log"
    }


@pytest.mark.parametrize(
    ("level", "written", "dropped"),
    [("WARNING", ["warn"], ["info", "debug"]), ("DEBUG", ["warn", "info", "debug"], [])],
)
def test_log_level_is_honoured(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    level: str,
    written: list[str],
    dropped: list[str],
) -> None:
    path = tmp_path / "app.log"
    monkeypatch.setenv("DATA_ANALYSIS_LOG", str(path))
    monkeypatch.setenv("LOG_LEVEL", level)
    configure_logging(console=False)
    log = logging.getLogger("da_app.test")
    log.warning("msg-warn")
    log.info("msg-info")
    log.debug("msg-debug")
    _flush()
    text = path.read_text(encoding="utf-8")
    for w in written:
        assert f"msg-{w}" in text
    for d in dropped:
        assert f"msg-{d}" not in text


def _json_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_the_json_format_carries_station_topic_and_batch_fields(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "app.log"
    monkeypatch.setenv("DATA_ANALYSIS_LOG", str(path))
    monkeypatch.setenv("DATA_ANALYSIS_LOG_FORMAT", "json")
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    configure_logging(console=False)

    def model(sid: str, inp: dict[str, Any]) -> dict[str, Any]:
        if sid == "BAD":
            raise ValueError("model exploded")
        return {"ok": True}

    h = Harness("load_prediction", model)
    h.publish(PARAM, param("S1", "BAD"))
    h.publish(RT, realtime("S1", 0, 1.0), key="S1")
    h.publish(RT, realtime("BAD", 0, 1.0), key="BAD")
    h.publish(RT, b"{broken json")
    h.run_until_idle()
    h.stop()
    _flush()
    lines = _json_lines(path)
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)

    def first(prefix: str) -> dict[str, Any]:
        return next(line for line in lines if line["message"].startswith(prefix))

    failed = first("callback failed for station 'BAD'")  # ids are escaped (repr)
    assert failed["station_id"] == "BAD"
    assert failed["batch_id"].startswith("load_prediction-")
    assert failed["level"] == "ERROR"
    assert "ValueError: model exploded" in failed["exception"]
    bad = first("bad input on " + RT)
    assert bad["topic"] == RT
    assert bad["da_module"] == "load_prediction"
    created = first("batch created")
    assert created["batch_id"].startswith("load_prediction-")
    received = first(f"batch {created['batch_id']} received result of station")
    assert received["station_id"] in ("S1", "BAD")


def test_an_unknown_log_format_is_rejected_by_the_settings() -> None:
    from da_app.settings import Settings
    from da_core.errors import ConfigError

    with pytest.raises(ConfigError, match="DATA_ANALYSIS_LOG_FORMAT"):
        Settings.from_raw({}, environ={"DATA_ANALYSIS_LOG_FORMAT": "xml"})
    s = Settings.from_raw({"service": {"log_format": "text"}}, environ={})
    assert s.service.log_format == "text"
    s = Settings.from_raw({}, environ={"DATA_ANALYSIS_LOG_FORMAT": "json"})
    assert s.service.log_format == "json"


def test_importing_the_library_leaves_the_root_logger_untouched() -> None:
    code = (
        "import json, logging\n"
        "root = logging.getLogger()\n"
        "before = (list(root.handlers), root.level)\n"
        "import d_a, da_app, da_core, da_adapters\n"
        "import d_a.config, da_app.services, da_app.http, da_app.metrics, da_app.health\n"
        "import da_app.main, da_app.testing, da_app.logconfig, da_app.runtime\n"
        "import da_core.engine, da_adapters.memory\n"
        "after = (list(root.handlers), root.level)\n"
        "print(json.dumps({'same': before == after, 'handlers': len(root.handlers),"
        " 'level': root.level}))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATA_ANALYSIS", "LOG_"))}
    env["PYTHONPATH"] = str(ROOT / "src")
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=ROOT / "tests",  # no config file here
    )
    assert json.loads(out.stdout) == {"same": True, "handlers": 0, "level": logging.WARNING}


def test_da_app_run_logs_to_the_file_configured_in_the_service_section(tmp_path: Path) -> None:
    log_file = tmp_path / "from-config.log"
    cfg = tmp_path / "config.yaml"
    cfg.write_text(
        json.dumps(
            {"service": {"adapter": "memory", "log_file": str(log_file), "log_format": "json"}}
        )
    )
    env = {k: v for k, v in os.environ.items() if k not in ("DATA_ANALYSIS_LOG", "LOG_LEVEL")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT)])
    # SIGTERM only once the service handles it (readiness, not a timer: before that, Python's
    # default action kills the process); a readiness that never comes fails fast, exit code 3.
    code = (
        "import os, signal, threading\n"
        "from da_app.main import main\n"
        "from tests.support.waiting import wait_for\n"
        "def stop_when_ready():\n"
        "    try:\n"
        "        wait_for(lambda: signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL, 30,\n"
        "                 what='the service to handle SIGTERM', interval=0.01)\n"
        "    except AssertionError as exc:\n"
        "        print(exc, flush=True)\n"
        "        os._exit(3)\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "threading.Thread(target=stop_when_ready, daemon=True).start()\n"
        f"raise SystemExit(main(['run', '--config', {str(cfg)!r}, '--callback', 'json:dumps']))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        # A runner that ignores SIGTERM (CI does) passes that on; the service then leaves the
        # signal alone and the child would never stop.
        preexec_fn=default_sigint,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = _json_lines(log_file)
    messages = [line["message"] for line in lines]
    assert any(m.startswith("service started: module load_prediction") for m in messages)
    assert any(m.startswith("service stopped: module load_prediction") for m in messages)


# ------------------------------------------------------------ issue 13 item 2: ensure_logging


def test_ensure_logging_configures_an_unconfigured_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    ensure_logging(log_file=str(tmp_path / "a.log"), level="debug")
    assert root.level == logging.DEBUG
    assert {type(h) for h in _ours()} == {RotatingFileHandler, logging.StreamHandler}


def test_ensure_logging_keeps_the_applications_handlers_and_adds_the_asked_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = logging.getLogger()
    own = logging.StreamHandler()
    own.setFormatter(logging.Formatter("APP %(message)s"))
    monkeypatch.setattr(root, "handlers", [own])
    root.setLevel(logging.INFO)
    path = tmp_path / "logs" / "app.log"
    asked = {"log_file", "log_level"}
    ensure_logging(configured=asked, log_file=str(path), level="warning")
    ensure_logging(configured=asked, log_file=str(path), level="warning")  # idempotent
    assert root.level == logging.WARNING
    files = [h for h in root.handlers if isinstance(h, RotatingFileHandler)]
    assert len(files) == 1
    assert root.handlers[0] is own
    logging.getLogger("da.t").warning("hello")
    files[0].flush()
    assert path.read_text(encoding="utf-8") == "APP hello\n"  # the application's format


def test_ensure_logging_leaves_a_configured_application_alone_when_nothing_is_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = logging.getLogger()
    own = logging.StreamHandler()
    monkeypatch.setattr(root, "handlers", [own])
    root.setLevel(logging.ERROR)
    ensure_logging(log_file=str(tmp_path / "x.log"), level="DEBUG")  # defaults, not asked
    assert root.handlers == [own]
    assert root.level == logging.ERROR
    assert not (tmp_path / "x.log").exists()
