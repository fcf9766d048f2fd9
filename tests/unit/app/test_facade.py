"""The ``d_a`` façade: the guide's imports work, cheaply, with or without a config file.

Import-time behaviour is checked in a fresh interpreter (``python -c``) started in an empty
directory, so no module already imported by the test session hides it.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import d_a

SRC = Path(__file__).resolve().parents[3] / "src"


def run(code: str, cwd: Path, **env: str) -> Any:
    """Run ``code`` in a fresh interpreter in ``cwd``; return the JSON it prints last."""
    environ = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATA_ANALYSIS_CONFIG", "PYTHONPATH", "LOG_LEVEL", "DATA_ANALYSIS_LOG")
    }
    environ.update(env, PYTHONPATH=str(SRC))
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_import_d_a_without_a_config_file_loads_neither_services_nor_config(
    tmp_path: Path,
) -> None:
    loaded = run(
        """
        import json, sys
        import d_a
        print(json.dumps(sorted(m for m in sys.modules if m.startswith(("d_a", "da_app")))))
        """,
        tmp_path,
    )
    assert loaded == ["d_a"]


def test_d_a_config_gives_the_defaults_without_a_config_file(tmp_path: Path) -> None:
    values = run(
        """
        import json
        from d_a.config import KAFKA_CONFIG, OFFSET_COMMIT_CONFIG, CONFIG_FILE
        print(json.dumps([KAFKA_CONFIG, OFFSET_COMMIT_CONFIG, CONFIG_FILE]))
        """,
        tmp_path,
    )
    assert values == [
        {
            "consumer": {
                "group_id": "data_analysis_group",
                "auto_offset_reset": "latest",
                "enable_auto_commit": False,
                "max_poll_records": 500,
            },
            "producer": {"acks": "all"},
        },
        {
            "commit_interval_seconds": 5.0,
            "commit_batch_size": 100,
            "max_commit_retries": 3,
            "commit_retry_delay": 1.0,
        },
        None,
    ]


def test_d_a_config_default_catalog_names_are_complete(tmp_path: Path) -> None:
    values = run(
        """
        import json
        from d_a.config import TOPIC_DETAIL, MODULE_DEPENDENCIES, MODULE_OUTPUT_TOPICS
        print(json.dumps([len(TOPIC_DETAIL), MODULE_DEPENDENCIES, MODULE_OUTPUT_TOPICS]))
        """,
        tmp_path,
    )
    assert values[0] == 13
    assert values[1]["operation_optimization"] == ["load_prediction"]
    assert values[2]["SOH_model"] == "MODULE-OUTPUT-SOH_MODEL"


def test_config_py_in_the_working_directory_feeds_d_a_config(tmp_path: Path) -> None:
    (tmp_path / "config.py").write_text(
        "KAFKA_CONFIG = {'consumer': {'bootstrap_servers': ['k1:9092'], 'group_id': 'g1'}}\n"
        "MODULE_OUTPUT_TOPICS = {'load_prediction': 'LP-OUT'}\n"
        "REGION = 'south'\n",
        encoding="utf-8",
    )
    values = run(
        """
        import json
        from d_a.config import KAFKA_CONFIG, MODULE_OUTPUT_TOPICS, REGION, CONFIG_FILE
        print(json.dumps([KAFKA_CONFIG["consumer"], MODULE_OUTPUT_TOPICS["load_prediction"],
                          MODULE_OUTPUT_TOPICS["pv_prediction"], REGION, CONFIG_FILE]))
        """,
        tmp_path,
    )
    assert values == [
        {
            "group_id": "g1",
            "auto_offset_reset": "latest",
            "enable_auto_commit": False,
            "max_poll_records": 500,
            "bootstrap_servers": ["k1:9092"],
        },
        "LP-OUT",
        "MODULE-OUTPUT-PV_PREDICTION",
        "south",
        str(tmp_path / "config.py"),
    ]


def test_yaml_named_by_the_env_var_feeds_d_a_config_under_the_guide_names(
    tmp_path: Path,
) -> None:
    config = tmp_path / "etc" / "da.yaml"
    config.parent.mkdir()
    config.write_text(
        "kafka: {bootstrap_servers: 'k1:9092'}\nservice: {max_workers: 4}\n", encoding="utf-8"
    )
    values = run(
        """
        import json
        from d_a.config import KAFKA_CONFIG, SERVICE_CONFIG
        print(json.dumps([KAFKA_CONFIG, SERVICE_CONFIG]))
        """,
        tmp_path,
        DATA_ANALYSIS_CONFIG=str(config),
    )
    assert values == [{"bootstrap_servers": "k1:9092"}, {"max_workers": 4}]


def test_guide_imports_work_and_leave_the_root_logger_alone(tmp_path: Path) -> None:
    state = run(
        """
        import json, logging
        root = logging.getLogger()
        before = (list(root.handlers), root.level)
        from d_a import DataAnalysisService, AsyncDataAnalysisService
        from d_a.config import KAFKA_CONFIG
        import da_app, da_app.settings
        print(json.dumps([
            (list(root.handlers), root.level) == before,
            DataAnalysisService.__name__,
            AsyncDataAnalysisService.__name__,
        ]))
        """,
        tmp_path,
    )
    assert state == [True, "DataAnalysisService", "AsyncDataAnalysisService"]


def test_env_var_pointing_at_d_a_config_itself_is_reported(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import d_a.config"],
        cwd=tmp_path,
        env={
            **os.environ,
            "PYTHONPATH": str(SRC),
            "DATA_ANALYSIS_CONFIG": str(SRC / "d_a" / "config.py"),
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "loads itself" in done.stderr


def test_lazy_export_is_the_services_class() -> None:
    services = importlib.import_module("da_app.services")
    assert d_a.DataAnalysisService is services.DataAnalysisService
    assert d_a.AsyncDataAnalysisService is services.AsyncDataAnalysisService


def test_unknown_attribute_of_d_a_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'Nope'"):
        _ = d_a.Nope


def test_dir_of_d_a_lists_the_lazy_exports() -> None:
    assert {"DataAnalysisService", "AsyncDataAnalysisService"} <= set(dir(d_a))
