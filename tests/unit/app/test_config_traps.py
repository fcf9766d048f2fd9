"""Issue 13 item 4: the configuration traps of the guide (readers dropped by a TOPIC_DETAIL
``modules`` list, a field report that never came, ``timeout_ms``, ``multi_consumer_mode`` in
the wrong section, keys named the way the file wrote them)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from da_app.services import DataAnalysisService
from da_app.settings import Settings, guide_config
from da_core.catalog import default_catalog
from da_core.codec import StdlibJsonCodec
from da_core.engine import Engine
from da_core.engine.intake import FIELD_REPORT_AFTER
from da_core.errors import ConfigError
from da_core.types import Record

from .helpers import PARAM, param


def settings(raw: dict[str, Any], source: str | None = None) -> Settings:
    return Settings.from_raw(raw, environ={}, source=source)


def problems(raw: dict[str, Any], source: str | None = None) -> str:
    with pytest.raises(ConfigError) as exc:
        settings(raw, source)
    return str(exc.value)


# ------------------------------------------------------------ (a) a TOPIC_DETAIL modules list

GUIDE_ENTRY = {PARAM: {"modules": ["load_prediction", "operation_optimization"]}}


def test_a_topic_modules_list_adds_readers_and_keeps_the_default_ones() -> None:
    cat = settings({"TOPIC_DETAIL": GUIDE_ENTRY}).catalog
    readers = {n for n, m in cat.modules.items() if PARAM in m.inputs}
    default_readers = {n for n, m in default_catalog().modules.items() if PARAM in m.inputs}
    assert readers == default_readers
    assert {"electricity_price", "SOH_model", "customer_mining"} <= readers


def test_a_new_reader_listed_on_a_topic_reads_it() -> None:
    entry = {"SCHEDULE-DEVICE-PV": {"modules": ["customer_mining"]}}
    cat = settings({"TOPIC_DETAIL": entry}).catalog
    assert "SCHEDULE-DEVICE-PV" in cat.modules["customer_mining"].inputs
    assert "SCHEDULE-DEVICE-PV" in cat.modules["pv_prediction"].inputs  # a default reader


def test_a_module_s_own_inputs_still_drop_a_topic() -> None:
    only_rt = ["SCHEDULE-STATION-REALTIME-DATA"]
    raw = {"TOPIC_DETAIL": GUIDE_ENTRY, "MODULES": {"SOH_model": {"inputs": only_rt}}}
    assert settings(raw).catalog.modules["SOH_model"].inputs == tuple(only_rt)


def test_d_a_config_shows_the_merged_readers() -> None:
    topic = guide_config({"TOPIC_DETAIL": GUIDE_ENTRY})["TOPIC_DETAIL"][PARAM]
    assert topic["modules"][:2] == ["load_prediction", "operation_optimization"]
    assert "electricity_price" in topic["modules"]


# ------------------------------------------------------------ (b) the field report


def _engine() -> Engine:
    return Engine(default_catalog(), "load_prediction", StdlibJsonCodec())


def _param_record(offset: int) -> Record:
    """A STATION-PARAM record carrying only some of the topic's configured fields."""
    row = {k: v for k, v in param("S1")[0].items() if k in ("stationId", "gridCapacity")}
    return Record(PARAM, 0, offset, json.dumps([row]).encode())


def _reports(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "event", None) == "fields_never_seen"]


def test_fields_never_seen_are_reported_after_t_seconds_of_a_quiet_topic(
    caplog: pytest.LogCaptureFixture,
) -> None:
    eng = _engine()
    eng.field_report_seconds = 300.0
    with caplog.at_level(logging.WARNING, logger="da_core.engine"):
        eng.ingest([_param_record(0), _param_record(1)], 1000.0)
        eng.tick(1299.0)
        assert _reports(caplog) == []  # 3 records, 299 s: not yet
        eng.tick(1300.0)
        eng.tick(1400.0)
    reports = _reports(caplog)
    assert len(reports) == 1  # once
    text = reports[0].getMessage()
    assert f"configured fields of {PARAM} never seen in 2 records over 300s" in text
    never = eng.fields_never_seen()[PARAM]
    assert never
    assert ": " + ", ".join(never) in text


def test_fields_never_seen_are_still_reported_after_n_records(
    caplog: pytest.LogCaptureFixture,
) -> None:
    eng = _engine()
    with caplog.at_level(logging.WARNING, logger="da_core.engine"):
        eng.ingest([_param_record(i) for i in range(FIELD_REPORT_AFTER)], 5.0)
    assert len(_reports(caplog)) == 1


def test_the_report_delay_is_a_service_setting() -> None:
    svc = DataAnalysisService(config={"service": {"adapter": "memory", "field_report_seconds": 60}})
    assert svc.engine.field_report_seconds == 60.0
    assert DataAnalysisService(adapter="memory", config={}).engine.field_report_seconds == 300.0


# ------------------------------------------------------------ (c) timeout_ms


@pytest.mark.parametrize(
    "kafka",
    [{"consumer": {"timeout_ms": 3000}}, {"timeout_ms": 3000}],
)
def test_the_guides_timeout_ms_is_the_poll_timeout(kafka: dict[str, Any]) -> None:
    s = settings({"KAFKA_CONFIG": kafka})
    assert s.service.poll_timeout_seconds == 3.0
    assert "timeout_ms" not in s.kafka.consumer  # no client setting
    assert s.kafka.poll_timeout_ms == 3000


def test_timeout_ms_from_the_kafka_config_argument_reaches_the_service() -> None:
    svc = DataAnalysisService(
        config={"service": {"adapter": "memory"}},
        kafka_config={"consumer": {"timeout_ms": 5000}},
    )
    assert svc.poll_timeout == 5.0


def test_timeout_ms_in_the_producer_section_or_conflicting_is_explained() -> None:
    text = problems({"KAFKA_CONFIG": {"producer": {"timeout_ms": 3000}}})
    assert "timeout_ms is how long the consumer's poll waits; move it to KAFKA_CONFIG" in text
    text = problems({"KAFKA_CONFIG": {"timeout_ms": 3000}, "service": {"poll_timeout_seconds": 1}})
    assert "timeout_ms says 3000 ms; set it in one place" in text
    assert "did you mean" not in problems({"KAFKA_CONFIG": {"timeout_ms": 0}})


# ------------------------------------------------------------ (d) a service key in KAFKA_CONFIG


@pytest.mark.parametrize(
    ("kafka", "where"),
    [
        ({"multi_consumer_mode": False}, "KAFKA_CONFIG['multi_consumer_mode']"),
        ({"consumer": {"multi_consumer_mode": False}}, "['consumer']['multi_consumer_mode']"),
    ],
)
def test_multi_consumer_mode_in_kafka_config_points_at_the_service_section(
    kafka: dict[str, Any], where: str
) -> None:
    text = problems({"KAFKA_CONFIG": kafka})
    assert f"{where}: 'multi_consumer_mode' is a service setting" in text
    assert "SERVICE_CONFIG['multi_consumer_mode']" in text
    assert "multi_consumer_mode= to the service" in text


def test_max_poll_records_stays_a_kafka_consumer_setting() -> None:
    assert (
        settings({"KAFKA_CONFIG": {"consumer": {"max_poll_records": 7}}}).kafka.consumer[
            "max_poll_records"
        ]
        == 7
    )


# ------------------------------------------------------------ (e) keys as the file wrote them

BAD_WINDOW = {"SCHEDULE-STATION-REALTIME-DATA": {"window_size": 0}}


def test_a_config_py_gets_python_subscripts() -> None:
    text = problems({"TOPIC_DETAIL": BAD_WINDOW}, "config.py")
    assert "TOPIC_DETAIL['SCHEDULE-STATION-REALTIME-DATA']['window_size']: must be" in text
    assert "topics." not in text


def test_a_yaml_file_gets_its_own_yaml_path() -> None:
    text = problems({"topics": BAD_WINDOW, "kafka": {"consumer": {"grup_id": "g"}}}, "c.yaml")
    assert "topics.SCHEDULE-STATION-REALTIME-DATA.window_size: must be" in text
    assert "kafka.consumer.grup_id: unknown Kafka setting" in text
    text = problems({"TOPIC_DETAIL": BAD_WINDOW}, "c.yml")
    assert "TOPIC_DETAIL.SCHEDULE-STATION-REALTIME-DATA.window_size: must be" in text


def test_a_module_problem_is_named_under_the_modules_section() -> None:
    text = problems({"modules": {"load_prediction": {"batch_timeout": -1}}}, "config.py")
    assert "modules['load_prediction']['batch_timeout']: must be > 0" in text


def test_the_guides_placeholder_topic_is_named_and_explained(tmp_path: Path) -> None:
    path = tmp_path / "config.py"
    path.write_text("TOPIC_DETAIL = {'REAL-STATION-DATA': {'window_size': 5}}\n")
    with pytest.raises(ConfigError) as exc:
        Settings.load(path)
    text = str(exc.value)
    assert "TOPIC_DETAIL['REAL-STATION-DATA']: not a topic of the default catalog" in text
    assert "a new topic needs its 'fields'" in text
