"""Issue 10 item 15: secrets never reach a log line, a ``repr`` or an error, and a
configuration file cannot end the service it configures."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from da_adapters.confluent._support import describe_config
from da_adapters.kafka_keys import is_secret_key, redact
from da_adapters.memory import ManualClock, MemoryBroker
from da_app.services import DataAnalysisService
from da_app.settings import KafkaSettings, Settings, load_raw_config
from da_core.errors import ConfigError

OAUTH = "principal=svc clientSecret=oauth-s3cr3t-41 scope=read"
PASSWORD = "pw-hunter2-pw"


@pytest.mark.parametrize(
    "key", ["sasl.oauthbearer.config", "SASL.OAUTHBEARER.CONFIG", "sasl_oauthbearer_config"]
)
def test_the_oauthbearer_configuration_is_a_secret(key: str) -> None:
    assert is_secret_key(key)
    assert redact({"confluent": {key: OAUTH}}) == {"confluent": {key: "***"}}


def test_the_confluent_debug_line_hides_the_oauthbearer_configuration() -> None:
    shown = describe_config({"sasl.oauthbearer.config": OAUTH, "bootstrap.servers": "k:9092"})
    assert "oauth-s3cr3t-41" not in str(shown)
    assert shown["bootstrap.servers"] == "k:9092"


def test_settings_repr_hides_the_oauthbearer_configuration() -> None:
    raw = {"KAFKA_CONFIG": {"confluent": {"sasl.oauthbearer.config": OAUTH}}}
    text = repr(Settings.from_raw(raw, environ={}))
    text += repr(KafkaSettings.from_raw(raw["KAFKA_CONFIG"]))
    assert "oauth-s3cr3t-41" not in text


def _broken_yaml(tmp_path: Path) -> Path:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(
        "service:\n  adapter: memory\nKAFKA_CONFIG:\n  consumer:\n"
        f'    sasl_plain_password: "{PASSWORD}"x\n'
    )
    return cfg


def test_a_yaml_syntax_error_on_the_password_line_does_not_show_the_password(
    tmp_path: Path,
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_raw_config(_broken_yaml(tmp_path))
    text = str(caught.value)
    assert PASSWORD not in text
    assert "invalid YAML at line 5" in text
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


def test_a_rejected_reload_of_broken_yaml_logs_no_password(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(json.dumps({"service": {"adapter": "memory"}}))
    clock = ManualClock()
    svc = DataAnalysisService(config=cfg, broker=MemoryBroker(clock), clock=clock)
    _broken_yaml(tmp_path)
    with caplog.at_level(logging.DEBUG), pytest.raises(ConfigError) as caught:
        svc.reload_config()
    assert "configuration reload rejected" in caplog.text
    assert PASSWORD not in caplog.text
    assert PASSWORD not in str(caught.value)


def test_a_config_py_calling_sys_exit_is_a_rejected_reload(tmp_path: Path) -> None:
    cfg = tmp_path / "config.py"
    cfg.write_text("SERVICE_CONFIG = {'adapter': 'memory'}\n")
    clock = ManualClock()
    svc = DataAnalysisService(config=cfg, broker=MemoryBroker(clock), clock=clock)
    cfg.write_text("import sys\nsys.exit(3)\n")
    with pytest.raises(ConfigError, match=r"called sys\.exit\(3\)"):
        svc.reload_config()
    assert svc.settings.service.adapter == "memory"  # the old configuration stays
