"""Finding, loading and validating the configuration (da_app.settings)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from da_app.settings import (
    CONFIG_ENV_VAR,
    KafkaSettings,
    Settings,
    default_guide_config,
    find_config_file,
    guide_config,
    load_raw_config,
    normalize_raw_config,
)
from da_core.catalog import build_catalog, default_catalog
from da_core.errors import ConfigError

# The guide's recommended KAFKA_CONFIG, exactly as written in its "Kafka配置" section.
GUIDE_KAFKA_CONFIG: dict[str, Any] = {
    "consumer": {
        "bootstrap_servers": ["kafka1:9092", "kafka2:9092", "kafka3:9092"],
        "group_id": "data_analysis_group",
        "auto_offset_reset": "latest",
        "enable_auto_commit": False,
        "max_poll_records": 500,
        "session_timeout_ms": 30000,
        "request_timeout_ms": 40000,
        "heartbeat_interval_ms": 3000,
    },
    "producer": {
        "bootstrap_servers": ["kafka1:9092", "kafka2:9092", "kafka3:9092"],
        "acks": "all",
        "retries": 3,
        "max_in_flight_requests_per_connection": 5,
        "compression_type": "gzip",
        "linger_ms": 10,
        "batch_size": 16384,
    },
}

# The guide's Kubernetes ConfigMap config.py, verbatim (including its `...` placeholders and
# `enable_auto_commit: True`).
GUIDE_CONFIGMAP_PY = '''\
# -*- coding: utf-8 -*-
"""
配置文件
"""

# Kafka配置（嵌套格式，推荐）
KAFKA_CONFIG = {
    'consumer': {
        'bootstrap_servers': ['kafka-broker-1:9092', 'kafka-broker-2:9092', 'kafka-broker-3:9092'],
        'group_id': 'data_analysis_prod',
        'auto_offset_reset': 'latest',
        'enable_auto_commit': True,
        'max_poll_records': 500,
        'session_timeout_ms': 30000,
        'request_timeout_ms': 40000,
        'heartbeat_interval_ms': 3000,
    },
    'producer': {
        'bootstrap_servers': ['kafka-broker-1:9092', 'kafka-broker-2:9092', 'kafka-broker-3:9092'],
        'acks': 'all',
        'retries': 3,
        'max_in_flight_requests_per_connection': 5,
        'compression_type': 'gzip',
        'linger_ms': 10,
        'batch_size': 16384,
    }
}

# Topic配置（注意使用camelCase字段名）
TOPIC_DETAIL = {
    'SCHEDULE-STATION-PARAM': {
        'fields': ['stationId', 'stationTemp', 'lat', 'lng', ...],
        'frequency': '新建站或配置更改时',
        'modules': ['load_prediction', 'operation_optimization'],
        'window_size': 1
    },
    # 其他topic配置...
}

# 模块依赖配置
MODULE_DEPENDENCIES = {
    'operation_optimization': ['load_prediction'],
    'electricity_price': ['pv_prediction', 'evaluation_model', 'SOH_model'],
    # 其他依赖配置...
}

# 模块输出topic映射
MODULE_OUTPUT_TOPICS = {
    'load_prediction': 'MODULE-OUTPUT-LOAD-PREDICTION',
    'operation_optimization': 'MODULE-OUTPUT-OPERATION-OPTIMIZATION',
    # 其他模块...
}
'''

NO_ENV: dict[str, str] = {}


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Each test starts in an empty directory with no configuration variables set."""
    for name in (CONFIG_ENV_VAR, "DATA_ANALYSIS_LOG", "LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems_of(exc: pytest.ExceptionInfo[ConfigError]) -> str:
    return "\n".join(exc.value.problems)


def settings(raw: dict[str, Any]) -> Settings:
    return Settings.from_raw(raw, environ=NO_ENV)


def kafka(raw: dict[str, Any]) -> KafkaSettings:
    return KafkaSettings.from_raw(raw)


# ------------------------------------------------------------------------------- discovery


def test_explicit_path_wins_over_env_var_and_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "config.yaml", "service: {max_workers: 1}")
    env_file = write(tmp_path / "env.yaml", "service: {max_workers: 2}")
    explicit = write(tmp_path / "explicit.yaml", "service: {max_workers: 3}")
    monkeypatch.setenv(CONFIG_ENV_VAR, str(env_file))
    assert load_raw_config(explicit) == {"service": {"max_workers": 3}}


def test_env_var_wins_over_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "config.yaml", "service: {max_workers: 1}")
    env_file = write(tmp_path / "elsewhere" / "settings.yml", "service: {max_workers: 2}")
    monkeypatch.setenv(CONFIG_ENV_VAR, str(env_file))
    assert load_raw_config() == {"service": {"max_workers": 2}}


def test_working_directory_yaml_is_preferred_to_config_py(tmp_path: Path) -> None:
    write(tmp_path / "config.py", "SERVICE_CONFIG = {'max_workers': 1}\n")
    write(tmp_path / "config.yml", "service: {max_workers: 2}")
    assert find_config_file() == tmp_path / "config.yml"


def test_config_yaml_is_preferred_to_config_yml(tmp_path: Path) -> None:
    write(tmp_path / "config.yml", "{}")
    write(tmp_path / "config.yaml", "{}")
    assert find_config_file() == tmp_path / "config.yaml"


def test_config_subdirectory_is_used_when_nothing_else_is_found(tmp_path: Path) -> None:
    write(tmp_path / "config" / "config.py", "SERVICE_CONFIG = {'max_workers': 4}\n")
    assert load_raw_config() == {"SERVICE_CONFIG": {"max_workers": 4}}


def test_no_configuration_file_gives_an_empty_mapping() -> None:
    assert load_raw_config() == {}


def test_blank_env_var_is_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CONFIG_ENV_VAR, "  ")
    write(tmp_path / "config.yaml", "service: {max_workers: 5}")
    assert load_raw_config() == {"service": {"max_workers": 5}}


def test_missing_explicit_path_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nowhere\.yaml: no such file"):
        load_raw_config(tmp_path / "nowhere.yaml")


def test_env_var_naming_a_missing_file_is_an_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(CONFIG_ENV_VAR, "/no/such/config.py")
    with pytest.raises(ConfigError, match=r"DATA_ANALYSIS_CONFIG=/no/such/config.py: no such"):
        load_raw_config()


# ------------------------------------------------------------------------------ file forms


def test_yaml_may_use_lower_case_section_names(tmp_path: Path) -> None:
    path = write(
        tmp_path / "c.yaml",
        """
        kafka:
          bootstrap_servers: "k1:9092,k2:9092"
        offset_commit: {commit_batch_size: 7}
        topics:
          SCHEDULE-DEVICE-PV: {window_size: 4}
        module_output_topics: {pv_prediction: PV-OUT}
        module_dependencies: {station_guidance: [load_prediction]}
        service: {max_workers: 8}
        """,
    )
    s = settings(load_raw_config(path))
    assert s.kafka.bootstrap_servers == ("k1:9092", "k2:9092")
    assert s.catalog.commit.commit_batch_size == 7
    assert s.catalog.topics["SCHEDULE-DEVICE-PV"].window_size == 4
    assert s.catalog.output_topic_of("pv_prediction") == "PV-OUT"
    assert s.catalog.module("station_guidance").dependencies == ("load_prediction",)
    assert s.service.max_workers == 8


def test_yaml_may_use_the_guide_upper_case_names(tmp_path: Path) -> None:
    path = write(
        tmp_path / "c.yaml",
        """
        KAFKA_CONFIG: {consumer: {group_id: g1}}
        OFFSET_COMMIT_CONFIG: {commit_interval_seconds: 2.5}
        """,
    )
    s = settings(load_raw_config(path))
    assert s.kafka.consumer["group_id"] == "g1"
    assert s.catalog.commit.commit_interval_seconds == 2.5


def test_empty_yaml_file_is_an_empty_configuration(tmp_path: Path) -> None:
    assert load_raw_config(write(tmp_path / "c.yaml", "")) == {}


def test_invalid_yaml_is_an_error_naming_the_file(tmp_path: Path) -> None:
    path = write(tmp_path / "broken.yaml", "kafka: [unclosed\n")
    with pytest.raises(ConfigError, match=r"broken\.yaml: invalid YAML"):
        load_raw_config(path)


def test_yaml_that_is_not_a_mapping_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path / "list.yaml", "- a\n- b\n")
    with pytest.raises(ConfigError, match=r"list\.yaml: the top level must be a mapping"):
        load_raw_config(path)


def test_unreadable_yaml_is_an_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"kafka: \xff\xfe\n")
    with pytest.raises(ConfigError, match=r"latin1\.yaml: cannot read it"):
        load_raw_config(path)


def test_unsupported_file_type_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", "[kafka]\n")
    with pytest.raises(ConfigError, match=r"c\.toml: unsupported configuration file type"):
        load_raw_config(path)


def test_config_py_takes_upper_case_names_and_skips_helpers(tmp_path: Path) -> None:
    path = write(
        tmp_path / "config.py",
        """
        import os
        import json as service
        _SECRET = "x"
        helper = 3
        def topics(): ...
        BROKERS = ['k1:9092']
        KAFKA_CONFIG = {'bootstrap_servers': BROKERS}
        """,
    )
    assert load_raw_config(path) == {
        "BROKERS": ["k1:9092"],
        "KAFKA_CONFIG": {"bootstrap_servers": ["k1:9092"]},
    }


def test_config_py_module_level_service_settings_are_taken(tmp_path: Path) -> None:
    # The guide's 性能相关配置 snippet writes these as plain module-level names.
    path = write(tmp_path / "config.py", "max_workers = 16\ndata_expire_seconds = 300\n")
    s = settings(load_raw_config(path))
    assert (s.service.max_workers, s.catalog.data_expire_seconds) == (16, 300.0)


def test_config_py_that_raises_is_an_error_naming_the_file(tmp_path: Path) -> None:
    path = write(tmp_path / "config.py", "KAFKA_CONFIG = 1 / 0\n")
    with pytest.raises(ConfigError, match=r"config\.py: executing it failed: ZeroDivisionError"):
        load_raw_config(path)


def test_config_py_with_a_syntax_error_is_an_error_naming_the_file(tmp_path: Path) -> None:
    path = write(tmp_path / "config.py", "KAFKA_CONFIG = {\n")
    with pytest.raises(ConfigError, match=r"config\.py: executing it failed: SyntaxError"):
        load_raw_config(path)


def test_config_file_that_loads_itself_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(
        tmp_path / "config.py",
        """
        from da_app.settings import load_raw_config
        KAFKA_CONFIG = load_raw_config().get("KAFKA_CONFIG", {})
        """,
    )
    monkeypatch.setenv(CONFIG_ENV_VAR, str(path))
    with pytest.raises(ConfigError, match="loads itself"):
        load_raw_config()


def test_guide_configmap_config_py_is_accepted(tmp_path: Path) -> None:
    s = Settings.load(write(tmp_path / "config.py", GUIDE_CONFIGMAP_PY))
    assert s.kafka.consumer["group_id"] == "data_analysis_prod"
    assert s.catalog.topics["SCHEDULE-STATION-PARAM"].fields == (
        "stationId",
        "stationTemp",
        "lat",
        "lng",
    )
    assert s.catalog.output_topic_of("load_prediction") == "MODULE-OUTPUT-LOAD-PREDICTION"
    assert s.source == str(tmp_path / "config.py")


def test_settings_load_without_a_file_gives_the_defaults() -> None:
    s = Settings.load()
    assert (s.catalog, s.source, s.kafka.bootstrap_servers) == (default_catalog(), None, ())


# ---------------------------------------------------------------------- top-level sections


def test_same_section_under_two_names_is_an_error() -> None:
    with pytest.raises(ConfigError, match="kafka and KAFKA_CONFIG both set KAFKA_CONFIG"):
        normalize_raw_config({"KAFKA_CONFIG": {}, "kafka": {}})


def test_unknown_lower_case_top_level_key_is_an_error_with_a_suggestion() -> None:
    with pytest.raises(ConfigError, match=r"kafak: unknown top-level setting \(did you mean"):
        settings({"kafak": {}})


def test_unknown_upper_case_names_are_kept_but_not_used() -> None:
    assert normalize_raw_config({"BROKERS": ["k:1"]}) == {"BROKERS": ["k:1"]}
    assert settings({"BROKERS": ["k:1"]}).kafka.bootstrap_servers == ()


def test_top_level_service_setting_is_folded_into_the_service_section() -> None:
    assert settings({"MAX_WORKERS": 4, "service": {"max_concurrency": 9}}).service.max_workers == 4


def test_service_setting_given_twice_is_an_error() -> None:
    with pytest.raises(ConfigError, match="max_workers: set both at the top level and in the"):
        settings({"max_workers": 4, "service": {"max_workers": 5}})


# ---------------------------------------------------------------------------------- Kafka


def test_guide_nested_kafka_config_is_taken_as_written() -> None:
    k = kafka(GUIDE_KAFKA_CONFIG)
    assert k.consumer == GUIDE_KAFKA_CONFIG["consumer"]
    assert k.producer == GUIDE_KAFKA_CONFIG["producer"]
    assert k.warnings == ()


def test_flat_kafka_config_is_shared_by_consumer_and_producer() -> None:
    k = kafka(
        {
            "bootstrap_servers": ["k1:9092"],
            "client_id": "da",
            "group_id": "g",
            "acks": 1,
            "linger_ms": 5,
            "session_timeout_ms": 10000,
        }
    )
    assert k.consumer == {
        "bootstrap_servers": ["k1:9092"],
        "client_id": "da",
        "group_id": "g",
        "session_timeout_ms": 10000,
        "auto_offset_reset": "latest",
        "enable_auto_commit": False,
    }
    assert k.producer == {
        "bootstrap_servers": ["k1:9092"],
        "client_id": "da",
        "acks": 1,
        "linger_ms": 5,
    }


def test_top_level_bootstrap_servers_apply_to_both_sides() -> None:
    k = kafka({"bootstrap_servers": "k1:9092", "consumer": {"group_id": "g"}, "producer": {}})
    assert k.consumer["bootstrap_servers"] == k.producer["bootstrap_servers"] == ["k1:9092"]
    assert k.common == {"bootstrap_servers": ["k1:9092"]}


def test_comma_separated_bootstrap_servers_become_a_list() -> None:
    assert kafka({"bootstrap_servers": " k1:9092, k2:9092 ,"}).bootstrap_servers == (
        "k1:9092",
        "k2:9092",
    )


def test_a_section_value_wins_over_the_top_level_value() -> None:
    k = kafka({"bootstrap_servers": "top:9092", "producer": {"bootstrap_servers": ["p:9092"]}})
    assert (k.consumer["bootstrap_servers"], k.producer["bootstrap_servers"]) == (
        ["top:9092"],
        ["p:9092"],
    )


def test_defaults_fill_group_offset_reset_auto_commit_and_acks() -> None:
    k = kafka({})
    assert k.consumer == {
        "group_id": "data_analysis_group",
        "auto_offset_reset": "latest",
        "enable_auto_commit": False,
    }
    assert k.producer == {"acks": "all"}


def test_unknown_kafka_key_error_names_the_key_and_where_raw_settings_go() -> None:
    with pytest.raises(ConfigError) as exc:
        kafka({"consumer": {"fetch_wait_max": 100}})
    text = problems_of(exc)
    assert "KAFKA_CONFIG['consumer']['fetch_wait_max']: unknown Kafka setting" in text
    assert "KAFKA_CONFIG['confluent']" in text
    assert "KAFKA_CONFIG['aiokafka']" in text


def test_unknown_kafka_key_suggests_the_closest_name() -> None:
    with pytest.raises(ConfigError, match="did you mean 'bootstrap_servers'"):
        kafka({"bootstrap_server": "k:9092"})


def test_producer_key_in_the_consumer_section_says_where_it_belongs() -> None:
    with pytest.raises(ConfigError, match=r"'acks' is a producer setting; move it to KAFKA_CONFIG"):
        kafka({"consumer": {"acks": "all"}})


def test_transactional_id_is_rejected_as_unsupported() -> None:
    with pytest.raises(ConfigError, match=r"\['transactional_id'\]: not supported: transactions"):
        kafka({"producer": {"transactional_id": "t1"}})


def test_enable_auto_commit_true_is_forced_off_with_a_warning() -> None:
    k = kafka({"consumer": {"enable_auto_commit": True}})
    assert k.consumer["enable_auto_commit"] is False
    assert len(k.warnings) == 1
    assert "['enable_auto_commit']: True was turned off" in k.warnings[0]


def test_auto_commit_in_a_raw_section_is_removed_with_a_warning() -> None:
    k = kafka(
        {
            "confluent": {"consumer": {"enable.auto.commit": "true"}},
            "aiokafka": {"enable_auto_commit": True},
        }
    )
    assert k.confluent == {"consumer": {}}
    assert k.aiokafka == {}
    assert len(k.warnings) == 2


def test_ignored_kafka_python_keys_are_dropped_with_a_warning() -> None:
    k = kafka({"consumer": {"consumer_timeout_ms": 1000, "api_version": (2, 8)}})
    assert "consumer_timeout_ms" not in k.consumer
    assert "api_version" not in k.consumer
    assert [w.split(":")[0] for w in k.warnings] == [
        "KAFKA_CONFIG['consumer']['consumer_timeout_ms']",
        "KAFKA_CONFIG['consumer']['api_version']",
    ]


def test_none_values_count_as_not_set() -> None:
    assert "ssl_cafile" not in kafka({"ssl_cafile": None}).consumer


def test_legacy_offset_reset_and_lower_case_protocol_are_normalised() -> None:
    k = kafka({"auto_offset_reset": "smallest", "security_protocol": "sasl_ssl", **_PLAIN_SASL})
    assert (k.consumer["auto_offset_reset"], k.consumer["security_protocol"]) == (
        "earliest",
        "SASL_SSL",
    )


def test_acks_minus_one_means_all() -> None:
    assert kafka({"acks": -1}).producer["acks"] == "all"


def test_every_bad_kafka_value_is_reported_in_one_error() -> None:
    with pytest.raises(ConfigError) as exc:
        kafka(
            {
                "consumer": {"session_timeout_ms": "30s", "auto_offset_reset": "oldest"},
                "producer": {"acks": 2, "enable_idempotence": "yes", "batch_size": -1},
            }
        )
    assert len(exc.value.problems) == 5


def test_a_badly_typed_secret_is_not_echoed_in_the_error() -> None:
    with pytest.raises(ConfigError) as exc:
        kafka({"ssl_password": 123456789})
    assert "123456789" not in str(exc.value)
    assert "expected a non-empty string (got a int)" in str(exc.value)


def test_heartbeat_must_be_lower_than_the_session_timeout() -> None:
    with pytest.raises(ConfigError, match=r"heartbeat_interval_ms \(3000\) must be lower than"):
        kafka({"consumer": {"session_timeout_ms": 3000, "heartbeat_interval_ms": 3000}})


def test_idempotence_requires_acks_all() -> None:
    with pytest.raises(ConfigError, match="enable_idempotence needs acks='all'"):
        kafka({"producer": {"enable_idempotence": True, "acks": 1}})


def test_sasl_plain_without_credentials_is_an_error() -> None:
    with pytest.raises(ConfigError, match="sasl_plain_username and sasl_plain_password"):
        kafka({"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN"})


def test_raw_sections_are_kept_shared_and_per_side() -> None:
    k = kafka(
        {
            "librdkafka": {
                "statistics.interval.ms": 1000,
                "producer": {"queue.buffering.max.ms": 5},
            },
            "consumer": {"confluent": {"fetch.error.backoff.ms": 50}},
            "aiokafka": {"consumer": {"rebalance_timeout_ms": 1000}},
        }
    )
    assert k.confluent == {
        "statistics.interval.ms": 1000,
        "producer": {"queue.buffering.max.ms": 5},
        "consumer": {"fetch.error.backoff.ms": 50},
    }
    assert k.aiokafka == {"consumer": {"rebalance_timeout_ms": 1000}}


def test_a_raw_section_must_be_a_mapping() -> None:
    with pytest.raises(ConfigError, match=r"KAFKA_CONFIG\['confluent'\]: expected a mapping"):
        kafka({"confluent": ["bootstrap.servers=k:9092"]})


_PLAIN_SASL = {"sasl_plain_username": "svc", "sasl_plain_password": "hunter2-pw"}
_SECRETS: dict[str, Any] = {
    "security_protocol": "SASL_SSL",
    "sasl_mechanism": "PLAIN",
    **_PLAIN_SASL,
    "ssl_password": "keypass-77",
    "confluent": {"sasl.oauthbearer.client.secret": "cs-88"},
    "aiokafka": {"consumer": {"my_token": "tok-99"}},
}


def test_redacted_replaces_every_secret() -> None:
    r = kafka(_SECRETS).redacted()
    assert r.consumer["sasl_plain_password"] == r.producer["ssl_password"] == "***"
    assert r.common["sasl_plain_password"] == "***"
    assert r.confluent["sasl.oauthbearer.client.secret"] == "***"
    assert r.aiokafka["consumer"]["my_token"] == "***"
    assert r.consumer["sasl_plain_username"] == "svc"


def test_repr_shows_no_secret() -> None:
    text = repr(settings({"KAFKA_CONFIG": _SECRETS}))
    assert "svc" in text
    for secret in ("hunter2-pw", "keypass-77", "cs-88", "tok-99"):
        assert secret not in text


def test_brokers_in_a_raw_section_count_as_configured() -> None:
    k = kafka({"confluent": {"bootstrap.servers": "k:9092"}})
    assert (k.bootstrap_servers, k.has_brokers) == ((), True)


# -------------------------------------------------------------------------------- service


def test_service_defaults() -> None:
    svc = settings({}).service
    assert (svc.adapter, svc.max_workers, svc.max_concurrency, svc.max_poll_records) == (
        None,
        32,
        64,
        500,
    )
    assert (svc.health_host, svc.health_port, svc.metrics_port) == ("127.0.0.1", 8080, 8001)
    assert (svc.log_file, svc.log_level, svc.configured) == (
        "data_analysis.log",
        "INFO",
        frozenset(),
    )


def test_unknown_service_key_is_an_error_naming_the_key() -> None:
    # named under the section name the configuration used (issue 13 item 4)
    with pytest.raises(ConfigError, match=r"service\['max_worker'\]: unknown service"):
        settings({"service": {"max_worker": 3}})
    with pytest.raises(ConfigError, match=r"SERVICE_CONFIG\['max_worker'\]: unknown service"):
        settings({"SERVICE_CONFIG": {"max_worker": 3}})


def test_explicit_service_settings_are_recorded_as_configured() -> None:
    s = settings({"service": {"fill_strategy": "linear", "batch_timeout": 3}})
    assert s.service.configured == {"fill_strategy", "batch_timeout"}
    assert s.service.batch_timeout == 3.0


def test_every_problem_of_every_section_is_reported_in_one_error() -> None:
    with pytest.raises(ConfigError) as exc:
        settings(
            {
                "service": {"max_workers": 0, "log_format": "xml"},
                "KAFKA_CONFIG": {"consumer": {"nope": 1}},
                "TOPIC_DETAIL": {"SCHEDULE-DEVICE-PV": {"window_size": 0}},
            }
        )
    text = problems_of(exc)
    assert len(exc.value.problems) == 4
    for fragment in ("max_workers", "log_format", "'nope'", "window_size"):
        assert fragment in text


def test_log_environment_variables_override_the_file() -> None:
    s = Settings.from_raw(
        {"service": {"log_file": "a.log", "log_level": "DEBUG"}},
        environ={"DATA_ANALYSIS_LOG": "/var/log/da.log", "LOG_LEVEL": "warn"},
    )
    assert (s.service.log_file, s.service.log_level) == ("/var/log/da.log", "WARNING")


def test_an_invalid_log_level_variable_is_an_error_naming_it() -> None:
    with pytest.raises(ConfigError, match="env LOG_LEVEL: 'LOUD' is not one of"):
        Settings.from_raw({}, environ={"LOG_LEVEL": "LOUD"})


def test_health_and_metrics_ports_must_differ() -> None:
    with pytest.raises(ConfigError, match="health_port and metrics_port are both 9000"):
        settings({"service": {"health_port": 9000, "metrics_port": 9000}})


def test_port_zero_is_accepted_to_disable_a_server() -> None:
    assert settings({"service": {"health_port": 0, "metrics_port": 0}}).service.health_port == 0


def test_port_out_of_range_is_an_error() -> None:
    with pytest.raises(ConfigError, match="health_port'\\]: must be between 0 and 65535"):
        settings({"service": {"health_port": 70000}})


@pytest.mark.parametrize(
    ("raw", "asynchronous", "expected"),
    [
        ({"service": {"adapter": "memory"}}, False, "memory"),
        ({"service": {"adapter": "memory"}}, True, "memory"),
        ({"KAFKA_CONFIG": {"bootstrap_servers": "k:9092"}}, False, "confluent"),
        ({"KAFKA_CONFIG": {"bootstrap_servers": "k:9092"}}, True, "aiokafka"),
        ({"service": {"adapter": "aiokafka"}}, False, "aiokafka"),
        (
            {"service": {"adapter": "auto"}, "KAFKA_CONFIG": {"bootstrap_servers": "k:9092"}},
            False,
            "confluent",
        ),
    ],
)
def test_adapter_resolution(raw: dict[str, Any], asynchronous: bool, expected: str) -> None:
    assert settings(raw).resolve_adapter(asynchronous=asynchronous) == expected


@pytest.mark.parametrize("raw", [{}, {"service": {"adapter": "auto"}}])
def test_no_brokers_and_no_adapter_asked_for_is_refused(raw: dict[str, Any]) -> None:
    """Issue 13 item 1: the in-memory bus is never a silent fallback."""
    with pytest.raises(ConfigError, match="no Kafka brokers configured"):
        settings(raw).resolve_adapter(asynchronous=False)


def test_unknown_adapter_is_an_error() -> None:
    with pytest.raises(ConfigError, match="'kafka-python' is not one of auto, memory"):
        settings({"service": {"adapter": "kafka-python"}})


def test_multi_consumer_mode_is_on_by_default_for_three_or_more_topics() -> None:
    s = settings({})
    assert len(s.catalog.subscriptions("load_prediction")) >= 3
    assert s.multi_consumer("load_prediction") is True
    assert len(s.catalog.subscriptions("pv_prediction")) == 2
    assert s.multi_consumer("pv_prediction") is False


def test_multi_consumer_mode_false_wins() -> None:
    assert (
        settings({"service": {"multi_consumer_mode": False}}).multi_consumer("load_prediction")
        is False
    )


def test_consumer_max_poll_records_sets_the_service_value() -> None:
    s = settings({"KAFKA_CONFIG": {"consumer": {"max_poll_records": 200}}})
    assert (s.service.max_poll_records, s.kafka.consumer["max_poll_records"]) == (200, 200)


def test_service_max_poll_records_reaches_the_consumer_settings() -> None:
    s = settings({"service": {"max_poll_records": 50}})
    assert s.kafka.consumer["max_poll_records"] == 50


def test_conflicting_max_poll_records_is_an_error() -> None:
    with pytest.raises(ConfigError, match="max_poll_records: SERVICE_CONFIG says 50 but"):
        settings({"service": {"max_poll_records": 50}, "KAFKA_CONFIG": {"max_poll_records": 200}})


def test_with_kafka_config_replaces_kafka_and_its_poll_limit_wins() -> None:
    s = settings({"service": {"max_poll_records": 50}}).with_kafka_config(GUIDE_KAFKA_CONFIG)
    assert s.kafka.bootstrap_servers == ("kafka1:9092", "kafka2:9092", "kafka3:9092")
    assert s.service.max_poll_records == 500


def test_with_kafka_config_reports_bad_keys_under_kafka_config() -> None:
    with pytest.raises(ConfigError, match=r"kafka_config\['bogus'\]"):
        settings({}).with_kafka_config({"bogus": 1})


def test_service_data_expire_seconds_and_dead_letter_topic_reach_the_catalog() -> None:
    s = settings({"service": {"data_expire_seconds": 120, "dead_letter_topic": "DLQ"}})
    assert (s.catalog.data_expire_seconds, s.catalog.dead_letter_topic) == (120.0, "DLQ")


def test_unknown_module_name_is_an_error_listing_the_modules() -> None:
    with pytest.raises(ConfigError, match="unknown module 'load_predict'; known: SOH_model"):
        settings({"service": {"module_name": "load_predict"}})


# ------------------------------------------------------------------ the guide's module values


def test_default_guide_values_describe_the_default_catalog() -> None:
    built, default = build_catalog(default_guide_config()), default_catalog()
    assert built.topics == default.topics
    assert built.commit == default.commit
    assert {n: (m.inputs, m.dependencies, m.output) for n, m in built.modules.items()} == {
        n: (m.inputs, m.dependencies, m.output) for n, m in default.modules.items()
    }


def test_default_kafka_config_has_no_brokers() -> None:
    assert default_guide_config()["KAFKA_CONFIG"] == {
        "consumer": {
            "group_id": "data_analysis_group",
            "auto_offset_reset": "latest",
            "enable_auto_commit": False,
            "max_poll_records": 500,
        },
        "producer": {"acks": "all"},
    }


def test_guide_config_merges_a_topic_entry_over_its_default() -> None:
    topics = guide_config({"topics": {"SCHEDULE-DEVICE-PV": {"window_size": 9}}})["TOPIC_DETAIL"]
    assert topics["SCHEDULE-DEVICE-PV"]["window_size"] == 9
    assert topics["SCHEDULE-DEVICE-PV"]["fields"] == ["pvPreDcPower"]
    assert len(topics) == len(default_catalog().topics)


def test_guide_config_merges_nested_kafka_sections_over_the_defaults() -> None:
    cfg = guide_config({"KAFKA_CONFIG": {"consumer": {"group_id": "mine"}}})["KAFKA_CONFIG"]
    assert cfg["consumer"]["group_id"] == "mine"
    assert cfg["consumer"]["max_poll_records"] == 500
    assert cfg["producer"] == {"acks": "all"}


def test_guide_config_takes_a_flat_kafka_config_as_written() -> None:
    flat = {"bootstrap_servers": ["k:9092"], "group_id": "g"}
    assert guide_config({"KAFKA_CONFIG": flat})["KAFKA_CONFIG"] == flat


def test_guide_config_top_level_kafka_key_is_not_shadowed_by_a_default_section() -> None:
    cfg = guide_config({"KAFKA_CONFIG": {"group_id": "top", "producer": {}}})["KAFKA_CONFIG"]
    assert kafka(cfg).consumer["group_id"] == "top"


def test_guide_config_does_not_share_state_between_calls() -> None:
    guide_config({})["KAFKA_CONFIG"]["consumer"]["group_id"] = "mutated"
    assert guide_config({})["KAFKA_CONFIG"]["consumer"]["group_id"] == "data_analysis_group"
