"""The ``service`` section (``SERVICE_CONFIG``): how this process runs, validated from a table.

The table is ``ServiceSettings`` itself: every field is declared by ``_setting(default, check,
help)``, so one line holds a key's type (the annotation), its range or choices (the check), its
default and its meaning. ``parse_service`` validates a raw section by running each given key's
check; a key without a check is not a setting (``configured``). A check returns the value
normalised (``'warn'`` → ``'WARNING'``, ``'auto'`` → None, numbers → float) or raises
``_Invalid`` with the reason, which is reported as ``SERVICE_CONFIG['key']: reason``.

Environment variables win over the section (``SERVICE_ENV_VARS``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, Final, Literal, TypeVar

import attrs

from da_app.settings._text import suggest
from da_core.config import FILL_NAMES, OUTPUT_MODES
from da_core.errors import ConfigError
from da_core.limits import IntakeLimits
from da_core.routing import DEFAULT_TEMPLATE, ROUTING_MODES, Routing

AdapterName = Literal["memory", "confluent", "aiokafka"]
ADAPTERS: Final = ("memory", "confluent", "aiokafka")
LOG_FORMATS: Final = ("text", "json")
LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FILE_ENV_VAR: Final = "DATA_ANALYSIS_LOG"
LOG_LEVEL_ENV_VAR: Final = "LOG_LEVEL"
INSTANCE_ID_ENV_VAR: Final = "DA_INSTANCE_ID"
ADAPTER_ENV_VAR: Final = "DATA_ANALYSIS_ADAPTER"
"""Wins over ``service.adapter``; ``memory`` asks for the in-memory bus explicitly."""

MODULE_DEFAULT_KEYS: Final = (
    "output_mode",
    "fill_strategy",
    "batch_timeout",
    "completion_ratio",
    "min_run_interval_seconds",
)
"""Service settings that are defaults for the module the service runs (its ``modules`` entry
and the service's constructor arguments win; see ``build_module_catalog``)."""

ALWAYS_DEFAULT_KEYS: Final = ("min_run_interval_seconds",)
"""Of ``MODULE_DEFAULT_KEYS``, those whose service value applies even when the service section
does not give it (the module catalog's own default is the engine's "no limit")."""

T = TypeVar("T")
Check = Callable[[Any], Any]


class _Invalid(Exception):
    """A value a check refuses; the message says why (without the key, added by the caller)."""


# ----------------------------------------------------------------------------- the checks


def _whole(low: int, high: int | None = None) -> Check:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Invalid(f"expected an integer (got {value!r})")
        if value < low or (high is not None and value > high):
            bounds = f">= {low}" if high is None else f"between {low} and {high}"
            raise _Invalid(f"must be {bounds} (got {value})")
        return value

    return check


def _optional_count(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _Invalid(f"expected a whole number >= 1 or None (got {value!r})")
    return value


def _gc_threshold(value: Any) -> tuple[int, int, int] | None:
    """None (leave the interpreter's), or three whole numbers for ``gc.set_threshold``: the
    first >= 1 (0 would turn the cyclic collector off), the others >= 0."""
    if value is None:
        return None
    if (
        isinstance(value, (list, tuple))
        and len(value) == 3
        and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)
        and value[0] >= 1
    ):
        return (int(value[0]), int(value[1]), int(value[2]))
    raise _Invalid(f"expected None or three whole numbers, the first >= 1 (got {value!r})")


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Invalid(f"expected a number (got {value!r})")
    return float(value)


def _positive(value: Any) -> float:
    number = _number(value)
    if number <= 0:
        raise _Invalid(f"must be > 0 (got {value})")
    return number


def _non_negative(value: Any) -> float:
    number = _number(value)
    if not number >= 0:
        raise _Invalid(f"must be >= 0 (got {value})")
    return number


def _allow_list(value: Any) -> tuple[str, ...] | str | None:
    """None, a list of station ids (kept as a tuple), or a file path (read by
    ``station_allow_list``)."""
    if value is None:
        return None
    if isinstance(value, str):
        if not value.strip():
            raise _Invalid("expected a file path or a list of station ids (got '')")
        return value
    if isinstance(value, (list, tuple, set, frozenset)) and all(
        isinstance(v, str) and v for v in value
    ):
        return tuple(value)
    raise _Invalid(f"expected None, a list of station ids or a file path (got {value!r})")


def _ratio(value: Any) -> float:
    number = _number(value)
    if not 0 < number <= 1:
        raise _Invalid(f"must be in (0, 1] (got {value})")
    return number


def _one_of(choices: tuple[str, ...], normalise: Callable[[Any], Any] = lambda v: v) -> Check:
    def check(value: Any) -> Any:
        text = normalise(value)
        if text not in choices:
            raise _Invalid(f"{value!r} is not one of {', '.join(choices)}")
        return text

    return check


def _auto_or(choices: tuple[str, ...]) -> Check:
    """One of ``choices``, or None / ``'auto'`` (returned as None: decided at run time)."""

    def check(value: Any) -> Any:
        if value is None or value == "auto":
            return None
        if value not in choices:
            raise _Invalid(f"{value!r} is not one of auto, {', '.join(choices)}")
        return value

    return check


def _log_level(value: Any) -> Any:
    if isinstance(value, str):
        return {"WARN": "WARNING"}.get(value.upper(), value.upper())
    return value


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Invalid(f"expected True or False (got {value!r})")
    return value


def _flag_or_auto(value: Any) -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise _Invalid("expected True, False or None (automatic)")
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise _Invalid(f"expected a non-empty string (got {value!r})")
    return value


def _optional_text(value: Any) -> str | None:
    return None if value is None else _text(value)


def _topic_template(value: Any) -> Any:
    try:
        Routing(mode="rekey", topic_template=value).internal_topic("T")
    except (ConfigError, AttributeError, TypeError) as exc:
        raise _Invalid(str(exc)) from exc
    return value


# ------------------------------------------------------------------------------ the table

_CHECK: Final = "check"
_HELP: Final = "help"


def _setting(default: T, check: Check, help: str) -> T:
    """A row of the table: a field with its check and help in the field's metadata."""
    return attrs.field(default=default, metadata={_CHECK: check, _HELP: help})


@attrs.frozen
class ServiceSettings:
    """The ``service`` section, validated; each field's help is in ``service_keys()``.

    Groups: the adapter and module; parallelism and polling; station routing (``rekey``
    splits every non-global topic by station into an internal station-keyed topic so that
    any number of instances keep each station's data together; ``direct`` applies records
    where consumed, one instance only; see ``da_core.routing``); defaults for the module the
    service runs (``MODULE_DEFAULT_KEYS``); the catalog's ``data_expire_seconds`` and
    ``dead_letter_topic`` (also accepted at the top level; ``Settings`` keeps both places
    equal); the health and metrics servers (port 0 disables one; both bind 127.0.0.1 unless
    configured, containers set ``0.0.0.0``); logging.

    ``configured``: the names of the settings given explicitly (file or environment).
    """

    # _setting returns an attrs field (a declaration), not a default object shared by instances
    adapter: AdapterName | None = _setting(  # noqa: RUF009
        None,
        _auto_or(ADAPTERS),
        "'memory', 'confluent', 'aiokafka' or 'auto' (None): the in-memory bus without "
        "brokers, else confluent-kafka for the sync service and aiokafka for the async one",
    )
    module_name: str | None = _setting(
        None, _optional_text, "the module this process runs, when not given in code"
    )
    max_workers: int = _setting(
        32, _whole(1), "station callbacks run in parallel by the sync service (threads)"
    )
    max_concurrency: int = _setting(
        64, _whole(1), "station callbacks run in parallel by the async service (tasks)"
    )
    poll_timeout_seconds: float = _setting(0.1, _positive, "the longest one poll waits (s)")
    max_poll_records: int = _setting(
        500,
        _whole(1),
        "the most records one poll returns (per topic in multi-consumer mode); the consumer's "
        "max_poll_records in KAFKA_CONFIG sets it too",
    )
    multi_consumer_mode: bool | None = _setting(
        None, _flag_or_auto, "per-topic fair fetching; None: on when the module reads 3+ topics"
    )
    station_routing: str | None = _setting(
        None,
        _auto_or(ROUTING_MODES),
        "'rekey', 'direct' or 'auto' (None): rekey with Kafka, direct on the in-memory bus",
    )
    rekey_partitions: int | None = _setting(
        None,
        _optional_count,
        "partitions of the internal topics; None: the most of the source topics",
    )
    rekey_topic_template: str = _setting(
        DEFAULT_TEMPLATE, _topic_template, "internal topic names, with {group} and {topic}"
    )
    rekey_replication_factor: int | None = _setting(
        None, _optional_count, "replicas of the internal topics; None: the broker's default"
    )
    output_mode: str = _setting(
        "batch", _one_of(OUTPUT_MODES), "results uploaded per batch or per station"
    )
    fill_strategy: str = _setting(
        "zero", _one_of(FILL_NAMES), "how gaps in a window are filled (zero, linear, forward…)"
    )
    data_expire_seconds: float = _setting(
        600.0, _positive, "how long an entry stays available (s), unless its topic says"
    )
    batch_timeout: float = _setting(
        5.0, _positive, "a batch uploads at most this long after it formed (s)"
    )
    completion_ratio: float = _setting(
        1.0, _ratio, "the share of a batch's members that finished which completes it, (0, 1]"
    )
    gc_threshold: tuple[int, int, int] | None = _setting(
        (100_000, 20, 100),
        _gc_threshold,
        "the cyclic garbage collector's thresholds (gc.set_threshold), set process-wide when "
        "the service starts: with the interpreter's (700, 10, 10) a 10,000-station service "
        "spends about a third of its time in full collections; None: leave them",
    )
    min_run_interval_seconds: float = _setting(
        1.0,
        _non_negative,
        "a station's runs start at least this far apart (s); updates meanwhile coalesce into "
        "the next run; 0: run as soon as a station is dirty",
    )
    dead_letter_topic: str = _setting(
        "DATA-ANALYSIS-DEAD-LETTER", _text, "where records that cannot be processed go"
    )
    dead_letter_max_attempts: int = _setting(
        10,
        _whole(1),
        "failed attempts (with backoff 0.2 s … 30 s) after which a dead letter is given up: "
        "the bad record is released unsent, logged at ERROR and counted (dead_letter_lost)",
    )
    callback_timeout_seconds: float = _setting(
        60.0,
        _non_negative,
        "a station run not back after this long fails with reason timeout and is retried "
        "by policy; a sync worker stays stuck until its callback returns; 0: no timeout (s)",
    )
    instance_id: str | None = _setting(
        None,
        _optional_text,
        "static group membership (group.instance.id): a stable id of this instance, such as "
        "a StatefulSet pod name (env DA_INSTANCE_ID); a restarted instance then gets its "
        "partitions back at once instead of after the session timeout. Two running "
        "processes must never share one (the broker fences the older). None: dynamic",
    )
    health_host: str = _setting("127.0.0.1", _text, "the health server's address")
    health_port: int = _setting(
        8080, _whole(0, 65535), "/health, /ready and /status; 0 disables the server"
    )
    metrics_host: str = _setting("127.0.0.1", _text, "the Prometheus server's address")
    metrics_port: int = _setting(8001, _whole(0, 65535), "Prometheus; 0 disables the server")
    metrics_enabled: bool = _setting(True, _flag, "False disables metrics (and their server)")
    health_stuck_seconds: float = _setting(
        30.0,
        _positive,
        "/health fails when the engine loop has not completed an iteration for this long (s)",
    )
    shutdown_timeout_seconds: float = _setting(
        20.0,
        _positive,
        "a stop (SIGTERM, stop()) ends within about this long whatever the broker does: "
        "bounded drain, final commit, producer flush and client close (s); keep it under "
        "the 30 s grace of Kubernetes and systemd",
    )
    ready_upload_failing_seconds: float = _setting(
        30.0, _positive, "/ready fails while uploads have been failing for longer than this (s)"
    )
    field_report_seconds: float = _setting(
        300.0,
        _positive,
        "configured fields no record of a topic carried are reported this long after its first "
        "record (s), or after 200 records, whichever comes first",
    )
    max_clock_skew_seconds: float = _setting(
        300.0,
        _non_negative,
        "a record time or event time (sendTime...) further ahead of now than this is "
        "dead-lettered as future_timestamp (s)",
    )
    max_id_length: int = _setting(
        128, _whole(1), "the longest station, device or gun id (characters); longer: bad input"
    )
    max_stations: int = _setting(
        100_000,
        _whole(1),
        "the most stations kept; records for new stations beyond it are dead-lettered "
        "(station_limit)",
    )
    station_allow_list: tuple[str, ...] | str | None = _setting(
        None,
        _allow_list,
        "None, a list of station ids, or the path of a file with one id per line: only "
        "these stations are kept (others: station_not_allowed)",
    )
    log_format: str = _setting("text", _one_of(LOG_FORMATS), "'text' or 'json'")
    log_level: str = _setting("INFO", _one_of(LOG_LEVELS, _log_level), "the root log level")
    log_file: str = _setting("data_analysis.log", _text, "the log file")
    configured: frozenset[str] = frozenset()


@functools.cache
def service_keys() -> Mapping[str, attrs.Attribute[Any]]:
    """The service settings by name: each field carries its check and help in ``metadata``."""
    return {f.name: f for f in attrs.fields(ServiceSettings) if _CHECK in f.metadata}


def service_help(key: str) -> str:
    """What a service setting means, with its default."""
    field = service_keys()[key]
    return f"{field.metadata[_HELP]} (default {field.default!r})"


SERVICE_ENV_VARS: Final[tuple[tuple[str, str, Callable[[str], Any]], ...]] = (
    (ADAPTER_ENV_VAR, "adapter", str),
    (LOG_FILE_ENV_VAR, "log_file", str),
    (LOG_LEVEL_ENV_VAR, "log_level", str),
    ("DATA_ANALYSIS_LOG_FORMAT", "log_format", str),
    ("DATA_ANALYSIS_HEALTH_HOST", "health_host", str),
    ("DATA_ANALYSIS_HEALTH_PORT", "health_port", int),
    ("DATA_ANALYSIS_METRICS_HOST", "metrics_host", str),
    ("DATA_ANALYSIS_METRICS_PORT", "metrics_port", int),
    (INSTANCE_ID_ENV_VAR, "instance_id", str),
)
"""Environment variables that win over the ``service`` section: (variable, key, parser)."""


def check_service_value(key: str, value: Any, where: str, problems: list[str]) -> tuple[bool, Any]:
    """(valid, normalised value) of one known service setting; a problem names ``where``."""
    try:
        return True, service_keys()[key].metadata[_CHECK](value)
    except _Invalid as exc:
        problems.append(f"{where}: {exc}")
        return False, None


def parse_service(raw: Any, environ: Mapping[str, str], problems: list[str]) -> ServiceSettings:
    """Validate a raw ``service`` section, then the environment over it; problems are
    appended, not raised. Settings given (and valid) are listed in ``configured``."""
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        problems.append("SERVICE_CONFIG: expected a mapping of service settings")
        raw = {}
    values: dict[str, Any] = {}
    known = service_keys()
    for key, value in raw.items():
        where = f"SERVICE_CONFIG[{key!r}]"
        if key not in known:
            problems.append(
                f"{where}: unknown service setting{suggest(str(key), known)}; known: "
                + ", ".join(sorted(known))
            )
            continue
        ok, checked = check_service_value(key, value, where, problems)
        if ok:
            values[key] = checked
    for env_name, key, parse in SERVICE_ENV_VARS:
        text = environ.get(env_name, "").strip()
        if not text:
            continue
        try:
            env_value = parse(text)
        except ValueError:
            problems.append(f"env {env_name}: expected an integer (got {text!r})")
            continue
        ok, checked = check_service_value(key, env_value, f"env {env_name}", problems)
        if ok:
            values[key] = checked
    ports = (values.get("health_port", 8080), values.get("metrics_port", 8001))
    if ports[0] and ports[0] == ports[1]:
        problems.append(
            f"SERVICE_CONFIG: health_port and metrics_port are both {ports[0]}; use two ports"
        )
    return ServiceSettings(**values, configured=frozenset(values))


def station_allow_list(service: ServiceSettings) -> frozenset[str] | None:
    """The allow-list the settings name: None, the listed ids, or the ids of the file (one a
    line; blank lines and ``#`` comments ignored). An unreadable file is a ``ConfigError``."""
    value = service.station_allow_list
    if value is None:
        return None
    if not isinstance(value, str):
        return frozenset(value)
    try:
        with open(value, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as exc:
        raise ConfigError(
            f"SERVICE_CONFIG['station_allow_list']: cannot read {value!r}: {exc.strerror}"
        ) from exc
    return frozenset(s for s in (line.strip() for line in lines) if s and not s.startswith("#"))


def intake_limits(service: ServiceSettings) -> IntakeLimits:
    """The core's ``IntakeLimits`` of these settings (reads the allow-list file, if any)."""
    return IntakeLimits(
        max_clock_skew_seconds=service.max_clock_skew_seconds,
        max_id_length=service.max_id_length,
        max_stations=service.max_stations,
        station_allow_list=station_allow_list(service),
    )
