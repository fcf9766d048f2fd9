"""Per-module settings: given under ``modules:``, they reach the module the service runs.

Precedence, per setting: the service's constructor argument > the file's ``modules.<name>``
entry > the file's ``service`` section > the catalog's own value.
"""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from da_app.settings import Settings, build_module_catalog
from da_app.testing import Harness
from da_core.catalog import default_catalog
from da_core.errors import ConfigError

from .helpers import PARAM, RT, echo_window, param, realtime

LP = "load_prediction"


def _window_after_a_two_hour_gap(config: dict[str, Any], **kwargs: Any) -> list[float]:
    """The last four hours of S1's REALTIME window: 10 at hour 0, 40 at hour 3, none between."""
    h = Harness(LP, echo_window, config=config, **kwargs)
    try:
        h.publish(PARAM, param("S1"))
        h.publish(RT, realtime("S1", 0, 10.0))
        h.publish(RT, realtime("S1", 3, 40.0))
        h.run_until_idle()
        inputs = h.service.get_inputs("S1")
        assert inputs is not None
        return list(inputs["outputPowerPerStationAvg_window"][-4:])
    finally:
        h.stop()


def test_linear_fill_given_under_modules_fills_the_gap_linearly() -> None:
    config = {"modules": {LP: {"fill_strategy": "linear"}}}
    assert _window_after_a_two_hour_gap(config) == [10.0, 20.0, 30.0, 40.0]


def test_linear_fill_given_in_the_service_section_fills_the_gap_linearly() -> None:
    config = {"service": {"fill_strategy": "linear"}}
    assert _window_after_a_two_hour_gap(config) == [10.0, 20.0, 30.0, 40.0]


def test_the_gap_is_zero_filled_by_default() -> None:
    assert _window_after_a_two_hour_gap({}) == [10.0, 0.0, 0.0, 40.0]


def test_a_constructor_argument_wins_over_the_modules_entry() -> None:
    config = {"modules": {LP: {"fill_strategy": "linear"}}}
    window = _window_after_a_two_hour_gap(config, fill_strategy="forward")
    assert window == [10.0, 10.0, 10.0, 40.0]


@pytest.mark.parametrize(
    ("key", "value", "read"),
    [
        ("batch_timeout", 2.5, lambda m: m.batch.timeout_seconds),
        ("completion_ratio", 0.5, lambda m: m.batch.completion_ratio),
        ("output_mode", "station", lambda m: m.output_mode),
        ("fill_strategy", "forward", lambda m: m.fill_strategy),
        ("min_run_interval_seconds", 0.25, lambda m: m.trigger.min_run_interval),
    ],
)
def test_a_setting_under_modules_reaches_the_running_service(
    key: str, value: Any, read: Any
) -> None:
    h = Harness(LP, echo_window, config={"modules": {LP: {key: value}}})
    try:
        assert read(h.service.catalog.module(LP)) == value
        assert read(h.engine.catalog.module(LP)) == value
    finally:
        h.stop()


def test_a_setting_under_modules_survives_a_reload() -> None:
    h = Harness(LP, echo_window, config={})
    try:
        h.service.reload_config({"modules": {LP: {"batch_timeout": 2.5}}})
        assert h.service.catalog.module(LP).batch.timeout_seconds == 2.5
    finally:
        h.stop()


# --------------------------------------------------------------- the order, one by one

SERVICE: dict[str, Any] = {
    "fill_strategy": "forward",
    "output_mode": "station",
    "batch_timeout": 7,
    "completion_ratio": 0.9,
    "min_run_interval_seconds": 2.0,
}
MODULE: dict[str, Any] = {
    "fill_strategy": "linear",
    "output_mode": "batch",
    "batch_timeout": 3,
    "completion_ratio": 0.5,
    "min_run_interval_seconds": 0.5,
}
ARGS: dict[str, Any] = {
    "fill_strategy": "missing",
    "output_mode": "station",
    "batch_timeout": 1.5,
    "completion_ratio": 0.25,
    "min_run_interval_seconds": 0.0,
}


def _values(settings: Settings, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    m = build_module_catalog(settings, LP, overrides).module(LP)
    return {
        "fill_strategy": m.fill_strategy,
        "output_mode": m.output_mode,
        "batch_timeout": m.batch.timeout_seconds,
        "completion_ratio": m.batch.completion_ratio,
        "min_run_interval_seconds": m.trigger.min_run_interval,
    }


def test_the_modules_entry_wins_over_the_service_section() -> None:
    s = Settings.from_raw({"service": SERVICE, "modules": {LP: MODULE}}, environ={})
    assert _values(s) == MODULE


def test_a_constructor_argument_wins_over_both_sections() -> None:
    s = Settings.from_raw({"service": SERVICE, "modules": {LP: MODULE}}, environ={})
    assert _values(s, ARGS) == ARGS


def test_the_service_section_wins_over_the_catalog() -> None:
    s = Settings.from_raw({"service": SERVICE}, environ={})
    assert _values(s) == SERVICE


def test_the_modules_entry_of_another_module_does_not_apply() -> None:
    raw = {"service": SERVICE, "modules": {"operation_optimization": MODULE}}
    s = Settings.from_raw(raw, environ={})
    assert _values(s) == SERVICE


def test_one_setting_under_modules_leaves_the_others_to_the_service_section() -> None:
    s = Settings.from_raw({"service": SERVICE, "modules": {LP: {"batch_timeout": 3}}}, environ={})
    assert _values(s) == {**SERVICE, "batch_timeout": 3}


def test_a_catalog_built_in_code_keeps_its_values_under_default_service_settings() -> None:
    base = default_catalog()
    m = base.module(LP)
    custom = base.replace_module(attrs.evolve(m, fill_strategy="linear", output_mode="station"))
    assert _values(Settings(catalog=custom))["fill_strategy"] == "linear"
    assert _values(Settings(catalog=custom))["output_mode"] == "station"


def test_data_expire_seconds_follows_argument_then_service_then_catalog() -> None:
    s = Settings.from_raw({"service": {"data_expire_seconds": 120}}, environ={})
    assert build_module_catalog(s, LP).data_expire_seconds == 120
    assert build_module_catalog(s, LP, {"data_expire_seconds": 30}).data_expire_seconds == 30
    in_code = Settings(catalog=attrs.evolve(default_catalog(), data_expire_seconds=300.0))
    assert build_module_catalog(in_code, LP).data_expire_seconds == 300


def test_an_invalid_constructor_argument_is_a_config_error_naming_the_setting() -> None:
    with pytest.raises(ConfigError, match=r"modules\.load_prediction\.fill_strategy"):
        build_module_catalog(Settings.from_raw({}, environ={}), LP, {"fill_strategy": "cubic"})


def test_an_unknown_override_is_refused() -> None:
    with pytest.raises(TypeError, match="fill_strateg"):
        build_module_catalog(Settings.from_raw({}, environ={}), LP, {"fill_strateg": "zero"})


def test_a_module_the_catalog_lacks_is_left_to_the_caller() -> None:
    cat = build_module_catalog(Settings.from_raw({}, environ={}), "no_such_module")
    with pytest.raises(ConfigError, match="unknown module 'no_such_module'"):
        cat.module("no_such_module")


# --------------------------------------------------------------- min_run_interval_seconds


def test_runs_are_a_second_apart_by_default_outside_the_harness() -> None:
    s = Settings.from_raw({}, environ={})
    assert build_module_catalog(s, LP).module(LP).trigger.min_run_interval == 1.0
    assert default_catalog().module(LP).trigger.min_run_interval == 0.0  # the bare engine's


def test_a_negative_min_run_interval_is_refused() -> None:
    with pytest.raises(ConfigError, match="min_run_interval_seconds"):
        Settings.from_raw({"service": {"min_run_interval_seconds": -1}}, environ={})


def test_the_harness_runs_at_once_unless_the_configuration_says_otherwise() -> None:
    with Harness(LP, echo_window) as h:
        assert h.engine.module.trigger.min_run_interval == 0.0
    with Harness(LP, echo_window, config={"modules": {LP: {"min_run_interval_seconds": 2}}}) as h:
        assert h.engine.module.trigger.min_run_interval == 2.0


def test_a_service_with_an_interval_coalesces_updates_and_runs_when_it_has_passed() -> None:
    runs: list[float] = []

    def callback(sid: str, inp: dict[str, Any]) -> dict[str, Any]:
        runs.append(inp["outputPowerPerStationAvg"])
        return {"ok": True}

    with Harness(LP, callback, config={"service": {"min_run_interval_seconds": 1.0}}) as h:
        h.publish(PARAM, param("S1"))
        h.publish(RT, realtime("S1", 0, 1.0), key="S1")
        h.run_until_idle()
        assert runs == [1.0]
        for v in (2.0, 3.0, 4.0):
            h.publish(RT, realtime("S1", 0, v), key="S1")
        h.run_until_idle()
        assert runs == [1.0]  # within the second: held, not run
        h.advance(1.0)
        h.run_until_idle()
        assert runs == [1.0, 4.0]  # one run, with the newest value
        h.advance(10.0)
        h.run_until_idle()
        assert runs == [1.0, 4.0]
        rt = {tp: off for tp, off in h.committed().items() if tp.topic == RT}
        assert sum(off or 0 for off in rt.values()) == 4  # every held record committed
