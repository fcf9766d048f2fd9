"""The default topic catalog of SPEC §2, as data: the module names, the 13 SCHEDULE-* topics
with their windows and readers, the module dependencies, and ``default_catalog``."""

from __future__ import annotations

import math

from da_core.config import Catalog, ModuleConfig, TopicConfig

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
