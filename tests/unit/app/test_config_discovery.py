"""Issue 13 item 1: the guide's layout is found, and no service falls back to the in-memory bus
silently (a service without Kafka refuses to start unless the bus was asked for)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from da_app.main import main
from da_app.services import AsyncDataAnalysisService, DataAnalysisService
from da_app.settings import (
    ADAPTER_ENV_VAR,
    CONFIG_ENV_VAR,
    Settings,
    find_config_file,
    searched_places,
)
from da_core.errors import ConfigError

ROOT = Path(__file__).resolve().parents[3]

KAFKA_PY = "KAFKA_CONFIG = {'bootstrap_servers': ['mounted-broker:9092']}\n"


@pytest.fixture(autouse=True)
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory and no configuration in the environment."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.delenv(CONFIG_ENV_VAR, raising=False)
    monkeypatch.delenv(ADAPTER_ENV_VAR, raising=False)
    return work


def _mount(tmp_path: Path, text: str = KAFKA_PY) -> Path:
    app = tmp_path / "app"
    (app / "d_a").mkdir(parents=True)
    (app / "d_a" / "config.py").write_text(text, encoding="utf-8")
    return app


def test_a_d_a_config_py_under_a_sys_path_entry_is_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = _mount(tmp_path)
    monkeypatch.syspath_prepend(str(app))
    assert find_config_file() == app / "d_a" / "config.py"
    assert Settings.load().kafka.bootstrap_servers == ("mounted-broker:9092",)


def test_the_installed_package_s_own_config_py_is_not_taken_for_a_mount() -> None:
    import d_a

    own = Path(d_a.__file__).parent
    assert str(own.parent) in sys.path or any(Path(p).resolve() == own.parent for p in sys.path)
    assert find_config_file() is None


def test_the_working_directory_and_the_environment_win_over_a_mount(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, work: Path
) -> None:
    monkeypatch.syspath_prepend(str(_mount(tmp_path)))
    (work / "config.yaml").write_text("service: {max_workers: 3}\n")
    assert find_config_file() == work / "config.yaml"
    other = tmp_path / "other.yaml"
    other.write_text("{}\n")
    monkeypatch.setenv(CONFIG_ENV_VAR, str(other))
    assert find_config_file() == other


def test_the_guide_layout_in_a_fresh_process_feeds_d_a_config_and_the_service(
    tmp_path: Path,
) -> None:
    """The package installed, PYTHONPATH=/app, the file mounted at /app/d_a/config.py."""
    app = _mount(tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in (CONFIG_ENV_VAR, ADAPTER_ENV_VAR)}
    env["PYTHONPATH"] = os.pathsep.join([str(app), str(ROOT / "src")])
    code = (
        "from d_a.config import KAFKA_CONFIG, CONFIG_FILE\n"
        "from d_a import DataAnalysisService\n"
        "print(CONFIG_FILE)\n"
        "print(KAFKA_CONFIG['bootstrap_servers'])\n"
        "svc = DataAnalysisService(kafka_config=KAFKA_CONFIG, health_port=0, metrics_port=0)\n"
        "print(svc.adapter, svc.settings.source)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=app,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    mounted = str(app / "d_a" / "config.py")
    assert proc.stdout.splitlines() == [
        mounted,
        "['mounted-broker:9092']",
        f"confluent {mounted}",
    ]


@pytest.mark.parametrize("service", [DataAnalysisService, AsyncDataAnalysisService])
def test_a_service_without_kafka_refuses_to_start_naming_every_place_it_looked(
    service: type[DataAnalysisService] | type[AsyncDataAnalysisService], work: Path
) -> None:
    with pytest.raises(ConfigError) as exc:
        service(module_name="load_prediction")
    text = str(exc.value)
    assert "no Kafka brokers configured: no configuration file was found" in text
    for place in searched_places():
        assert place in text
    assert f"{CONFIG_ENV_VAR} (not set)" in text
    assert str(work / "config.yaml") in text
    assert "d_a/config.py under each sys.path entry" in text
    assert "adapter='memory'" in text
    assert f"{ADAPTER_ENV_VAR}=memory" in text


def test_a_file_without_brokers_is_named(work: Path) -> None:
    (work / "config.yaml").write_text("service: {max_workers: 3}\n")
    with pytest.raises(ConfigError, match=r"config\.yaml sets no bootstrap_servers"):
        DataAnalysisService()


def test_the_guide_s_kafka_config_default_without_brokers_is_refused() -> None:
    from d_a.config import KAFKA_CONFIG

    with pytest.raises(ConfigError, match="no Kafka brokers configured"):
        DataAnalysisService(kafka_config=KAFKA_CONFIG)


def test_the_in_memory_bus_asked_for_by_argument_file_or_environment(
    work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert DataAnalysisService(adapter="memory").adapter == "memory"
    assert DataAnalysisService(config={"service": {"adapter": "memory"}}).adapter == "memory"
    (work / "config.yaml").write_text("service: {adapter: memory}\n")
    assert DataAnalysisService().adapter == "memory"
    (work / "config.yaml").unlink()
    monkeypatch.setenv(ADAPTER_ENV_VAR, "memory")
    assert DataAnalysisService().adapter == "memory"


def test_da_app_run_without_kafka_exits_2_with_the_message(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATA_ANALYSIS_LOG", str(tmp_path / "run.log"))
    assert main(["run", "--callback", "json:dumps"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("da-app: invalid configuration: no Kafka brokers configured")
    assert f"{CONFIG_ENV_VAR} (not set)" in err
