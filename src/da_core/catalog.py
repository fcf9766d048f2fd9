"""The default topic catalog of SPEC §2, as data, and building a ``Catalog`` from a mapping.

``build_catalog`` reads the guide's names (``TOPIC_DETAIL``, ``MODULE_DEPENDENCIES``,
``MODULE_OUTPUT_TOPICS``, ``OFFSET_COMMIT_CONFIG``) as well as their lower-case forms
(``topics``, ``module_dependencies``, ``module_output_topics``, ``offset_commit``) and a
``modules`` section. A topic or module given there is merged over the default entry of the same
name; unknown keys are errors naming the key.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import attrs

from da_core.config import (
    Catalog,
    ModuleConfig,
    OffsetCommitPolicy,
    TopicConfig,
)
from da_core.errors import ConfigError

HOUR = 3600.0
DAY = 86400.0

MODULE_NAMES: tuple[str, ...] = (
    "load_prediction",
    "pv_prediction",
    "electricity_price",
    "SOH_model",
    "thermal_management",
    "operation_optimization",
    "station_guidance",
    "evaluation_model",
    "customer_mining",
)

_LP, _PV, _EP, _SOH = "load_prediction", "pv_prediction", "electricity_price", "SOH_model"
_TM, _OO, _SG, _EM = (
    "thermal_management",
    "operation_optimization",
    "station_guidance",
    ("evaluation_model"),
)
_CM = "customer_mining"

DEFAULT_TOPICS: tuple[TopicConfig, ...] = (
    TopicConfig(
        name="SCHEDULE-STATION-PARAM",
        extractor="array",
        field_types={
            "stationLng": "number",
            "stationLat": "number",
            "gunNum": "number",
            "gridCapacity": "number",
            "normalCap": "number",
            "powerNum": "number",
        },
        fields=("stationLng", "stationLat", "gunNum", "gridCapacity", "normalCap", "powerNum"),
        expire_seconds=math.inf,
        frequency="when a station is created or reconfigured",
        modules=(_LP, _OO, _EP, _SOH, _CM),
    ),
    TopicConfig(
        name="SCHEDULE-STATION-REALTIME-DATA",
        extractor="wrapped",
        wrapper_key="realTimeData",
        window="hourly_grid",
        window_size=168,
        time_key="sendTime",
        field_types={
            "outputPowerPerStationAvg": "number",
            "outputPowerPerStationMax": "number",
            "outputPowerPerGunAvg": "number_list",
            "outputPowerPerGunMax": "number_list",
        },
        fields=("outputPowerPerStationAvg", "outputPowerPerStationMax"),
        gun_key="gunPower",
        gun_fields=("outputPowerPerGunAvg", "outputPowerPerGunMax"),
        expire_seconds=2 * HOUR,
        frequency="hourly; a message may carry up to 7 days of history",
        modules=(_LP, _EP, _SOH, _TM, _EM),
    ),
    TopicConfig(
        name="SCHEDULE-ENVIRONMENT-CALENDAR",
        extractor="global",
        wrapper_key="calendar",
        is_global=True,
        field_types={"date": "string", "isHoliday": "number", "isWeekend": "number"},
        fields=("date", "isHoliday", "isWeekend"),
        alias="calendar",
        frequency="yearly",
        modules=(_LP, _EP, _SOH),
    ),
    TopicConfig(
        name="SCHEDULE-DEVICE-METER",
        optional=True,
        field_types={"meterPower": "number", "rmeterLimitPower": "number"},
        fields=("meterPower", "rmeterLimitPower"),
        frequency="every 1-15 s",
        modules=(_EP,),
    ),
    TopicConfig(
        name="SCHEDULE-DEVICE-GUN",
        optional=True,
        field_types={"gunNo": "string_list", "status": "string_list"},
        fields=("gunNo", "status"),
        alias="gun",
        frequency="every 1-15 s",
        modules=(),
    ),
    TopicConfig(
        name="SCHEDULE-CAR-ORDER",
        optional=True,
        window="second_snapshot",
        window_size=2,
        field_types={
            "soc": "number",
            "beginSOC": "number",
            "outputPower": "number",
            "terminalRequireVoltage": "number",
            "terminalRequireElectric": "number",
            "terminalMaxOutElectric": "number",
            "batteryNominalTotalCapacity": "number",
            "transactionSerialNo": "string",
            "gunNo": "string",
            "startChargeTime": "string",
            "carProducerCode": "string",
        },
        fields=(
            "transactionSerialNo",
            "gunNo",
            "soc",
            "beginSOC",
            "outputPower",
            "terminalRequireVoltage",
            "terminalRequireElectric",
            "terminalMaxOutElectric",
            "batteryNominalTotalCapacity",
            "startChargeTime",
            "carProducerCode",
        ),
        alias="order",
        frequency="~1 Hz per charging gun",
        modules=(_OO, _SG, _EP, _EM, _CM),
    ),
    TopicConfig(
        name="SCHEDULE-CAR-PRICE",
        extractor="wrapped",
        wrapper_key="fee",
        time_key="sendTime",
        field_types=dict.fromkeys(
            (
                "sharpElectricFee",
                "sharpServerFee",
                "peakElectricFee",
                "peakServerFee",
                "flatElectricFee",
                "flatServerFee",
                "ebbElectricFee",
                "ebbServerFee",
                "otherElectricFee",
                "otherServerFee",
                "lossRate",
            ),
            "number",
        ),
        fields=(
            "sharpElectricFee",
            "sharpServerFee",
            "peakElectricFee",
            "peakServerFee",
            "flatElectricFee",
            "flatServerFee",
            "ebbElectricFee",
            "ebbServerFee",
            "otherElectricFee",
            "otherServerFee",
            "lossRate",
        ),
        slot_list_prefix="feeNo",
        slot_list_name="feeNo",
        slot_list_size=48,
        expire_seconds=45 * DAY,
        frequency="monthly",
        modules=(_OO, _EP, _EM, _TM),
    ),
    TopicConfig(
        name="SCHEDULE-DEVICE-ERROR",
        optional=True,
        field_types=dict.fromkeys(
            ("hostError", "acError", "dcError", "terminalError", "storageError"), "string_list"
        ),
        fields=("hostError", "acError", "dcError", "terminalError", "storageError"),
        expire_seconds=2 * HOUR,
        frequency="on change",
        modules=(_SOH,),
    ),
    TopicConfig(
        name="SCHEDULE-DEVICE-HOST-DCDC",
        optional=True,
        window="per_device",
        device_key="hostCode",
        field_types={"dcWorkStatus": "string_list", "dcdcPower": "number_list"},
        fields=("dcWorkStatus", "dcdcPower"),
        frequency="every 1-15 s",
        modules=(_EM, _TM, _OO),
    ),
    TopicConfig(
        name="SCHEDULE-DEVICE-HOST-ACDC",
        optional=True,
        window="per_device",
        device_key="hostCode",
        field_types={"acPower": "number"},
        fields=("acPower",),
        frequency="every 1-15 s",
        modules=(_EM, _TM),
    ),
    TopicConfig(
        name="SCHEDULE-DEVICE-STORAGE",
        optional=True,
        window="per_device",
        device_key="storageCode",
        field_types=dict.fromkeys(
            (
                "batteryGroupSoc",
                "batteryGroupSoh",
                "batteryGroupElectric",
                "batteryGroupOutPower",
                "maxTemperature",
                "minTemperature",
            ),
            "number",
        ),
        fields=(
            "batteryGroupSoc",
            "batteryGroupSoh",
            "batteryGroupElectric",
            "batteryGroupOutPower",
            "maxTemperature",
            "minTemperature",
        ),
        frequency="every 1-15 s",
        modules=(_EM, _TM, _EP, _OO),
    ),
    TopicConfig(
        name="SCHEDULE-DEVICE-PV",
        field_types={"pvPreDcPower": "number_list"},
        fields=("pvPreDcPower",),
        expire_seconds=2 * HOUR,
        frequency="every 15 min",
        modules=(_PV,),
    ),
    TopicConfig(
        name="SCHEDULE-ENVIRONMENT-WEATHER",
        extractor="wrapped",
        wrapper_key="weather",
        field_types=dict.fromkeys(
            ("weatherSituationYesterday", "seasonTomorrow", "weatherSituationTomorrow"), "string"
        ),
        fields=("weatherSituationYesterday", "seasonTomorrow", "weatherSituationTomorrow"),
        expire_seconds=2 * DAY,
        frequency="daily",
        modules=(_PV,),
    ),
)

DEFAULT_DEPENDENCIES: dict[str, tuple[str, ...]] = {
    _OO: (_LP,),
    _EP: (_PV, _EM, _SOH),
    _SG: (_LP, _EM),
    _TM: (_LP, _OO),
}


def default_catalog() -> Catalog:
    """The catalog of SPEC §2 (13 SCHEDULE-* topics, 9 modules, their outputs and dependencies).

    Slow topics keep their entries longer than the 600 s default of fast telemetry:
    parameters never expire, hourly and 10-minute topics keep two periods, prices 45 days,
    weather two days.

    Readiness (``ReadinessRule`` default): a station runs once it has every input topic
    that is neither global nor ``optional``. Optional by default: the device topics (METER,
    GUN, ERROR, HOST-DCDC, HOST-ACDC, STORAGE: a station may not have the device, and ERROR
    is sent only on change) and CAR-ORDER (no orders while nobody charges); so a station
    without a storage unit runs normally, its storage listed in
    ``_data_quality.missing_topics``. ``docs/module-input.md`` lists what each module waits
    for.

    ``customer_mining`` has no reader listed in SPEC §2; by default it reads
    SCHEDULE-CAR-ORDER and SCHEDULE-STATION-PARAM (a module that reads nothing cannot run).
    """
    topics = {t.name: t for t in DEFAULT_TOPICS}
    modules = {
        name: ModuleConfig(
            name=name,
            inputs=tuple(t.name for t in DEFAULT_TOPICS if name in t.modules),
            dependencies=DEFAULT_DEPENDENCIES.get(name, ()),
        )
        for name in MODULE_NAMES
    }
    return Catalog(topics=topics, modules=modules).validate()


# ---------------------------------------------------------------- building from a mapping

_TOPIC_KEYS = {f.name for f in attrs.fields(TopicConfig)} | {"window_kind", "global"}
_MODULE_KEYS = {
    "inputs",
    "topics",
    "dependencies",
    "output_topic",
    "fill_strategy",
    "field_fill",
    "required_topics",
    "min_ready_ratio",
    "required_dependencies",
    "interval_seconds",
    "callback_max_retries",
    "callback_retry_delay",
    "batch_timeout",
    "completion_ratio",
    "output_mode",
}
_COMMIT_KEYS = {f.name for f in attrs.fields(OffsetCommitPolicy)}
_TOP_KEYS = {
    "TOPIC_DETAIL": "topics",
    "topics": "topics",
    "MODULE_DEPENDENCIES": "deps",
    "module_dependencies": "deps",
    "MODULE_OUTPUT_TOPICS": "outputs",
    "module_output_topics": "outputs",
    "OFFSET_COMMIT_CONFIG": "commit",
    "offset_commit": "commit",
    "modules": "modules",
    "data_expire_seconds": "expire",
    "dead_letter_topic": "dlq",
}


def build_catalog(raw: Mapping[str, Any], base: Catalog | None = None) -> Catalog:
    """Build and validate a catalog from the guide's names, merged over ``base`` (the default).

    Keys other than those of the catalog (e.g. ``KAFKA_CONFIG``) are ignored here; they belong
    to the application settings. Raises ``ConfigError`` listing every problem.
    """
    base = base if base is not None else default_catalog()
    problems: list[str] = []
    sections: dict[str, Any] = {}
    for key, value in raw.items():
        if key in _TOP_KEYS:
            sections[_TOP_KEYS[key]] = value

    topics = dict(base.topics)
    explicit_readers = False
    for name, spec in _mapping(sections.get("topics"), "TOPIC_DETAIL", problems).items():
        where = f"TOPIC_DETAIL[{name!r}]"
        spec = _mapping(spec, where, problems)
        unknown = sorted(set(spec) - _TOPIC_KEYS)
        if unknown:
            problems.append(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}")
        changes: dict[str, Any] = {}
        for k, v in spec.items():
            if k not in _TOPIC_KEYS:
                continue
            if k == "window_kind":
                k = "window"
            if k == "global":
                k = "is_global"
            if k in ("fields", "gun_fields", "modules"):
                v = _names(v, f"{where}.{k}", problems)
                explicit_readers |= k == "modules"
            if k == "field_fill":
                v = dict(_mapping(v, f"{where}.field_fill", problems))
            if k == "expire_seconds" and v in ("never", "inf", "infinity"):
                v = math.inf
            changes[k] = v
        if changes.get("is_global") and "extractor" not in changes:
            changes["extractor"] = "global"
        try:
            topics[name] = attrs.evolve(topics.get(name, TopicConfig(name=name)), **changes)
        except TypeError as exc:
            problems.append(f"{where}: {exc}")

    modules = dict(base.modules)
    deps = _mapping(sections.get("deps"), "MODULE_DEPENDENCIES", problems)
    outputs = _mapping(sections.get("outputs"), "MODULE_OUTPUT_TOPICS", problems)
    mod_specs = _mapping(sections.get("modules"), "modules", problems)
    for name in {*deps, *outputs, *mod_specs}:
        modules.setdefault(name, ModuleConfig(name=name))
    if explicit_readers:
        for name, m in list(modules.items()):
            readers = tuple(t.name for t in topics.values() if name in t.modules)
            modules[name] = attrs.evolve(m, inputs=readers)
    for name, value in deps.items():
        modules[name] = attrs.evolve(
            modules[name], dependencies=_names(value, f"MODULE_DEPENDENCIES[{name!r}]", problems)
        )
    for name, value in outputs.items():
        if not isinstance(value, str) or not value:
            problems.append(f"MODULE_OUTPUT_TOPICS[{name!r}]: expected a topic name")
            continue
        modules[name] = attrs.evolve(modules[name], output_topic=value)
    for name, spec in mod_specs.items():
        modules[name] = _module(
            modules[name], _mapping(spec, f"modules[{name!r}]", problems), problems
        )

    commit = base.commit
    commit_spec = _mapping(sections.get("commit"), "OFFSET_COMMIT_CONFIG", problems)
    unknown = sorted(set(commit_spec) - _COMMIT_KEYS)
    if unknown:
        problems.append(f"OFFSET_COMMIT_CONFIG: unknown key(s) {', '.join(map(repr, unknown))}")
    try:
        commit = attrs.evolve(commit, **{k: v for k, v in commit_spec.items() if k in _COMMIT_KEYS})
    except TypeError as exc:
        problems.append(f"OFFSET_COMMIT_CONFIG: {exc}")
    expire = sections.get("expire", base.data_expire_seconds)
    if not isinstance(expire, (int, float)):
        problems.append("data_expire_seconds: expected a number of seconds")
        expire = base.data_expire_seconds
    dlq = sections.get("dlq", base.dead_letter_topic)
    if problems:
        raise ConfigError(problems)
    cat = Catalog(
        topics=topics,
        modules=modules,
        commit=commit,
        data_expire_seconds=float(expire),
        dead_letter_topic=str(dlq),
    )
    return cat.validate()


def _module(m: ModuleConfig, spec: Mapping[str, Any], problems: list[str]) -> ModuleConfig:
    where = f"modules[{m.name!r}]"
    unknown = sorted(set(spec) - _MODULE_KEYS)
    if unknown:
        problems.append(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}")
    r, t, b = m.readiness, m.trigger, m.batch
    changes: dict[str, Any] = {}
    for k, v in spec.items():
        if k in ("inputs", "topics"):
            changes["inputs"] = _names(v, f"{where}.{k}", problems)
        elif k == "dependencies":
            changes["dependencies"] = _names(v, f"{where}.{k}", problems)
        elif k in ("output_topic", "fill_strategy", "output_mode"):
            changes[k] = v
        elif k == "field_fill":
            changes[k] = dict(_mapping(v, f"{where}.{k}", problems))
        elif k == "required_topics":
            r = attrs.evolve(r, required_topics=_names(v, f"{where}.{k}", problems))
        elif k == "min_ready_ratio":
            r = attrs.evolve(r, min_ratio=float(v))
        elif k == "required_dependencies":
            r = attrs.evolve(r, required_dependencies=_names(v, f"{where}.{k}", problems))
        elif k == "interval_seconds":
            t = attrs.evolve(t, interval_seconds=None if v is None else float(v))
        elif k == "callback_max_retries":
            t = attrs.evolve(t, callback_max_retries=int(v))
        elif k == "callback_retry_delay":
            t = attrs.evolve(t, callback_retry_delay=float(v))
        elif k == "batch_timeout":
            b = attrs.evolve(b, timeout_seconds=float(v))
        elif k == "completion_ratio":
            b = attrs.evolve(b, completion_ratio=float(v))
    return attrs.evolve(m, readiness=r, trigger=t, batch=b, **changes)


def _mapping(value: Any, where: str, problems: list[str]) -> Mapping[str, Any]:
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return value
    problems.append(f"{where}: expected a mapping")
    return {}


def _names(value: Any, where: str, problems: list[str]) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (list, tuple)):
        out = tuple(v for v in value if isinstance(v, str) and v != "...")
        if len(out) != len([v for v in value if v != ...]) and not all(
            isinstance(v, str) or v is ... for v in value
        ):
            problems.append(f"{where}: expected a list of names")
        return out
    problems.append(f"{where}: expected a list of names")
    return ()
