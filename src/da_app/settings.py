"""Finding, loading and validating the configuration: the one place raw dicts are read.

Where the configuration comes from (``find_config_file``), first match wins:

1. the explicit path given to ``load_raw_config`` / ``Settings.load``;
2. the file named by the environment variable ``DATA_ANALYSIS_CONFIG``;
3. ``config.yaml``, ``config.yml``, ``config.py``, ``config/config.py`` in the working directory.

An explicit path or ``DATA_ANALYSIS_CONFIG`` naming a missing file is an error; finding nothing
is not (the defaults run the default catalog on the embedded in-memory bus). Note that step 3
*executes* a ``config.py`` found in the working directory.

Forms:

* ``.yaml`` / ``.yml`` / ``.json``: a mapping read with ``yaml.safe_load``; sections by the
  guide's names (``KAFKA_CONFIG``, ``OFFSET_COMMIT_CONFIG``, ``TOPIC_DETAIL``,
  ``MODULE_DEPENDENCIES``, ``MODULE_OUTPUT_TOPICS``) or lower-case ones (``kafka``,
  ``offset_commit``, ``topics``, ``module_dependencies``, ``module_output_topics``), plus
  ``modules`` / ``MODULES`` (per-module settings, see ``da_core.catalog``) and ``service`` /
  ``SERVICE_CONFIG`` (``ServiceSettings``).
* ``.py``: executed as a module; its UPPER_CASE names are taken (the guide's ``config.py``),
  as are lower-case names that are settings (the guide writes ``max_workers = 32`` and
  ``data_expire_seconds = 600`` at module level). Other lower-case names (imports, helpers)
  are skipped.

A service setting may also be written at the top level (``max_workers: 32`` or
``MAX_WORKERS = 32``): it is folded into the ``service`` section. An unknown lower-case
top-level key is an error; unknown UPPER_CASE names are kept (``config.py`` files define
helper constants) and exposed by ``d_a.config``, but not otherwise used.

Environment: ``DATA_ANALYSIS_LOG`` (log file), ``LOG_LEVEL``, ``DATA_ANALYSIS_LOG_FORMAT``,
``DATA_ANALYSIS_HEALTH_HOST``, ``DATA_ANALYSIS_HEALTH_PORT``, ``DATA_ANALYSIS_METRICS_HOST`` and
``DATA_ANALYSIS_METRICS_PORT`` override the ``service`` section's ``log_file``, ``log_level``,
``log_format``, ``health_*`` and ``metrics_*``.

``Settings.from_raw`` validates everything once and raises one ``ConfigError`` listing every
problem, each naming the key. Nothing past this module reads the raw mapping.
"""

from __future__ import annotations

import copy
import difflib
import functools
import importlib.util
import os
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any, Final, Literal

import attrs
import yaml

from da_adapters.kafka_config import is_secret_key, redact, servers_list
from da_core.catalog import build_catalog, default_catalog
from da_core.config import FILL_NAMES, OUTPUT_MODES, Catalog, TopicConfig
from da_core.errors import ConfigError
from da_core.routing import DEFAULT_TEMPLATE, ROUTING_MODES, Routing

CONFIG_ENV_VAR: Final = "DATA_ANALYSIS_CONFIG"
LOG_FILE_ENV_VAR: Final = "DATA_ANALYSIS_LOG"
LOG_LEVEL_ENV_VAR: Final = "LOG_LEVEL"
CANDIDATE_FILES: Final = ("config.yaml", "config.yml", "config.py", "config/config.py")

AdapterName = Literal["memory", "confluent", "aiokafka"]
ADAPTERS: Final = ("memory", "confluent", "aiokafka")
LOG_FORMATS: Final = ("text", "json")
LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
DEFAULT_GROUP_ID: Final = "data_analysis_group"

# --------------------------------------------------------------------------- raw sections

_SECTION_ALIASES: Final[Mapping[str, str]] = {
    "KAFKA_CONFIG": "KAFKA_CONFIG",
    "kafka": "KAFKA_CONFIG",
    "kafka_config": "KAFKA_CONFIG",
    "OFFSET_COMMIT_CONFIG": "OFFSET_COMMIT_CONFIG",
    "offset_commit": "OFFSET_COMMIT_CONFIG",
    "offset_commit_config": "OFFSET_COMMIT_CONFIG",
    "TOPIC_DETAIL": "TOPIC_DETAIL",
    "topics": "TOPIC_DETAIL",
    "topic_detail": "TOPIC_DETAIL",
    "MODULE_DEPENDENCIES": "MODULE_DEPENDENCIES",
    "module_dependencies": "MODULE_DEPENDENCIES",
    "MODULE_OUTPUT_TOPICS": "MODULE_OUTPUT_TOPICS",
    "module_output_topics": "MODULE_OUTPUT_TOPICS",
    "MODULES": "MODULES",
    "modules": "MODULES",
    "SERVICE_CONFIG": "SERVICE_CONFIG",
    "service": "SERVICE_CONFIG",
    "service_config": "SERVICE_CONFIG",
}


@functools.cache
def _service_keys() -> frozenset[str]:
    return frozenset(f.name for f in attrs.fields(ServiceSettings) if f.name != "configured")


def _is_config_name(name: str) -> bool:
    """A module-level name of a ``config.py`` that is configuration."""
    if name.startswith("_"):
        return False
    return name.isupper() or name in _SECTION_ALIASES or name in _service_keys()


def _suggest(key: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(key, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _normalize(raw: Mapping[Any, Any], problems: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    origin: dict[str, str] = {}
    shorthand: dict[str, Any] = {}
    service_keys = _service_keys()
    for key, value in raw.items():
        if not isinstance(key, str):
            problems.append(f"top-level key {key!r}: expected a name")
            continue
        canon = _SECTION_ALIASES.get(key)
        if canon is None and key.lower() in service_keys:
            name = key.lower()
            if name in shorthand:
                problems.append(f"{key}: the service setting {name!r} is given twice")
            shorthand[name] = value
            continue
        if canon is None:
            if key.isupper():
                out[key] = value
            else:
                known = [*_SECTION_ALIASES, *service_keys]
                problems.append(
                    f"{key}: unknown top-level setting{_suggest(key, known)}; known sections are "
                    "KAFKA_CONFIG (kafka), OFFSET_COMMIT_CONFIG (offset_commit), TOPIC_DETAIL "
                    "(topics), MODULE_DEPENDENCIES, MODULE_OUTPUT_TOPICS, MODULES, "
                    "SERVICE_CONFIG (service)"
                )
            continue
        if canon in origin:
            problems.append(f"{key} and {origin[canon]} both set {canon}; keep one of them")
            continue
        origin[canon] = key
        out[canon] = value
    if shorthand:
        section = out.get("SERVICE_CONFIG")
        if section is None:
            out["SERVICE_CONFIG"] = shorthand
        elif isinstance(section, Mapping):
            for name in sorted(set(section) & set(shorthand)):
                problems.append(
                    f"{name}: set both at the top level and in the service section; keep one"
                )
            out["SERVICE_CONFIG"] = {**shorthand, **section}
    return out


def normalize_raw_config(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The raw configuration with every section under its canonical UPPER_CASE name
    (``KAFKA_CONFIG``, ``OFFSET_COMMIT_CONFIG``, ``TOPIC_DETAIL``, ``MODULE_DEPENDENCIES``,
    ``MODULE_OUTPUT_TOPICS``, ``MODULES``, ``SERVICE_CONFIG``; top-level service settings
    folded into ``SERVICE_CONFIG``; other UPPER_CASE names kept). Values are not validated."""
    problems: list[str] = []
    out = _normalize(raw, problems)
    if problems:
        raise ConfigError(problems)
    return out


# ------------------------------------------------------------------------ finding, loading

_loading = threading.local()


def find_config_file(path: str | os.PathLike[str] | None = None) -> Path | None:
    """The configuration file to load (see the module docstring), or None when there is none."""
    if path is not None:
        explicit = Path(path)
        if not explicit.is_file():
            raise ConfigError(f"configuration file {explicit}: no such file")
        return explicit
    from_env = os.environ.get(CONFIG_ENV_VAR, "").strip()
    if from_env:
        named = Path(from_env)
        if not named.is_file():
            raise ConfigError(f"{CONFIG_ENV_VAR}={from_env}: no such file")
        return named
    for name in CANDIDATE_FILES:
        candidate = Path.cwd() / name
        if candidate.is_file():
            return candidate
    return None


def load_raw_config(path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The raw configuration mapping, ``{}`` when no file is found. Raises ``ConfigError``
    naming the file when it cannot be read, is not valid YAML/Python or is not a mapping."""
    found = find_config_file(path)
    if found is None:
        return {}
    suffix = found.suffix.lower()
    if suffix in (".yaml", ".yml", ".json"):
        return _load_yaml(found)
    if suffix == ".py":
        return _load_python(found)
    raise ConfigError(f"{found}: unsupported configuration file type; use .yaml, .yml or .py")


def _load_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read it: {exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: the top level must be a mapping of settings, not {type(data).__name__}"
        )
    return data


def _load_python(path: Path) -> dict[str, Any]:
    key = str(path.resolve())
    active: set[str] = getattr(_loading, "paths", set())
    if key in active:
        raise ConfigError(
            f"{path}: the configuration file loads itself (does {CONFIG_ENV_VAR} point at the "
            "d_a.config module? point it at your own config.py or YAML file)"
        )
    _loading.paths = active | {key}
    try:
        spec = importlib.util.spec_from_file_location("_data_analysis_user_config", path)
        if spec is None or spec.loader is None:
            raise ConfigError(f"{path}: cannot be loaded as a Python module")
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except ConfigError:
            raise
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read it: {exc}") from exc
        except Exception as exc:
            raise ConfigError(f"{path}: executing it failed: {type(exc).__name__}: {exc}") from exc
    finally:
        _loading.paths = active
    return {
        name: value
        for name, value in vars(module).items()
        if _is_config_name(name)
        and (name.isupper() or not (isinstance(value, ModuleType) or callable(value)))
    }


# -------------------------------------------------------------------------- Kafka settings


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


KAFKA_SHARED_KEYS: Final = _names(
    "bootstrap_servers client_id request_timeout_ms retry_backoff_ms reconnect_backoff_ms "
    "reconnect_backoff_max_ms metadata_max_age_ms connections_max_idle_ms "
    "receive_buffer_bytes send_buffer_bytes api_version api_version_auto_timeout_ms"
)
KAFKA_SECURITY_KEYS: Final = _names(
    "security_protocol ssl_cafile ssl_certfile ssl_keyfile ssl_password ssl_crlfile "
    "ssl_ciphers ssl_check_hostname sasl_mechanism sasl_plain_username sasl_plain_password "
    "sasl_kerberos_service_name sasl_kerberos_domain_name sasl_oauth_token_provider"
)
KAFKA_CONSUMER_KEYS: Final = _names(
    "group_id group_instance_id auto_offset_reset enable_auto_commit "
    "auto_commit_interval_ms max_poll_records max_poll_interval_ms session_timeout_ms "
    "heartbeat_interval_ms fetch_min_bytes fetch_max_wait_ms fetch_max_bytes "
    "max_partition_fetch_bytes isolation_level partition_assignment_strategy check_crcs "
    "exclude_internal_topics client_rack consumer_timeout_ms"
)
KAFKA_PRODUCER_KEYS: Final = _names(
    "acks retries max_in_flight_requests_per_connection compression_type linger_ms "
    "batch_size buffer_memory max_request_size enable_idempotence delivery_timeout_ms "
    "partitioner max_block_ms"
)
_KAFKA_KNOWN = KAFKA_SHARED_KEYS | KAFKA_SECURITY_KEYS | KAFKA_CONSUMER_KEYS | KAFKA_PRODUCER_KEYS

_KAFKA_REJECTED: Final[Mapping[str, str]] = {
    "transactional_id": "transactions are not supported (delivery is at-least-once through "
    "the framework's offset commits)",
    "key_serializer": "the framework encodes records itself",
    "value_serializer": "the framework encodes records itself",
    "key_deserializer": "the framework decodes records itself",
    "value_deserializer": "the framework decodes records itself",
    "default_offset_commit_callback": "the framework commits offsets itself",
    "ssl_context": "use ssl_cafile / ssl_certfile / ssl_keyfile (a ready context for aiokafka "
    "can go in KAFKA_CONFIG['aiokafka']['ssl_context'])",
}
_KAFKA_IGNORED: Final[Mapping[str, str]] = {
    "consumer_timeout_ms": "the framework polls with its own timeout (poll_timeout_seconds)",
    "api_version": "the clients negotiate the protocol version with the broker",
    "api_version_auto_timeout_ms": "the clients negotiate the protocol version with the broker",
    "max_block_ms": "the framework applies back-pressure itself",
    "auto_commit_interval_ms": "auto-commit is always off; commits follow OFFSET_COMMIT_CONFIG",
}
_RAW_SECTIONS: Final[Mapping[str, str]] = {
    "confluent": "confluent",
    "librdkafka": "confluent",
    "aiokafka": "aiokafka",
}
_KAFKA_CHOICES: Final[Mapping[str, tuple[str, ...]]] = {
    "auto_offset_reset": ("earliest", "latest", "none"),
    "isolation_level": ("read_uncommitted", "read_committed"),
    "security_protocol": ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"),
    "sasl_mechanism": ("PLAIN", "GSSAPI", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"),
    "compression_type": ("none", "gzip", "snappy", "lz4", "zstd"),
}
_KAFKA_BOOLS: Final = _names(
    "enable_auto_commit check_crcs exclude_internal_topics ssl_check_hostname enable_idempotence"
)
_KAFKA_STRINGS: Final = _names(
    "client_id group_id group_instance_id client_rack ssl_cafile ssl_certfile ssl_keyfile "
    "ssl_password ssl_crlfile ssl_ciphers sasl_plain_username sasl_plain_password "
    "sasl_kerberos_service_name sasl_kerberos_domain_name"
)
_KAFKA_ANY: Final = frozenset(
    {"partition_assignment_strategy", "partitioner", "sasl_oauth_token_provider"}
)
_KAFKA_MIN_ONE: Final = frozenset({"max_poll_records", "max_in_flight_requests_per_connection"})


@attrs.frozen(repr=False)
class KafkaSettings:
    """The guide's ``KAFKA_CONFIG``, normalised and validated.

    * ``consumer`` / ``producer``: the effective kafka-python-style settings of each side:
      top-level keys (the flat form) distributed to the side they apply to, then the nested
      ``consumer`` / ``producer`` section over them. ``bootstrap_servers`` is a list of
      ``host:port`` strings (given as a list or a comma-separated string). Defaults filled
      in: ``group_id='data_analysis_group'``, ``auto_offset_reset='latest'``,
      ``enable_auto_commit=False``, ``acks='all'``.
    * ``common``: the top-level connection and security settings shared by both sides
      (already merged into ``consumer`` and ``producer``).
    * ``confluent`` / ``aiokafka``: raw pass-through sections (``KAFKA_CONFIG['confluent']``
      or ``['librdkafka']``: librdkafka properties; ``['aiokafka']``: constructor arguments),
      applied last by ``da_adapters.kafka_config``. Top-level keys apply to both sides; the
      optional ``consumer`` / ``producer`` sub-mappings (also accepted as a raw section inside
      a side's section) to one side.
    * ``warnings``: settings that were changed or ignored, one sentence each, for the
      application to log (auto-commit is always forced off).

    ``repr()`` and ``redacted()`` hide secrets (passwords, tokens, keys).
    """

    consumer: Mapping[str, Any] = attrs.field(factory=dict)
    producer: Mapping[str, Any] = attrs.field(factory=dict)
    common: Mapping[str, Any] = attrs.field(factory=dict)
    confluent: Mapping[str, Any] = attrs.field(factory=dict)
    aiokafka: Mapping[str, Any] = attrs.field(factory=dict)
    warnings: tuple[str, ...] = ()

    @classmethod
    def from_raw(cls, raw: Mapping[str, Any] | None, where: str = "KAFKA_CONFIG") -> KafkaSettings:
        """Validate ``raw`` (the guide's ``KAFKA_CONFIG``); ``ConfigError`` lists every problem."""
        problems: list[str] = []
        settings = _parse_kafka(raw, where, problems)
        if problems:
            raise ConfigError(problems)
        return settings

    @property
    def bootstrap_servers(self) -> tuple[str, ...]:
        """The consumer's brokers (the producer's when only those are set); empty: none."""
        servers = self.consumer.get("bootstrap_servers") or self.producer.get("bootstrap_servers")
        return tuple(servers or ())

    @property
    def has_brokers(self) -> bool:
        """Whether any broker address is configured, including in a raw section."""
        if self.bootstrap_servers:
            return True
        raw = [
            self.confluent,
            self.aiokafka,
            *(s.get(side) or {} for s in (self.confluent, self.aiokafka) for side in _SIDES),
        ]
        return any(r.get("bootstrap.servers") or r.get("bootstrap_servers") for r in raw)

    def redacted(self) -> KafkaSettings:
        """A copy with every secret value replaced by ``'***'``."""
        return KafkaSettings(
            consumer=redact(self.consumer),
            producer=redact(self.producer),
            common=redact(self.common),
            confluent=redact(self.confluent),
            aiokafka=redact(self.aiokafka),
            warnings=self.warnings,
        )

    def __repr__(self) -> str:
        r = self.redacted()
        return (
            f"KafkaSettings(consumer={dict(r.consumer)!r}, producer={dict(r.producer)!r}, "
            f"common={dict(r.common)!r}, confluent={dict(r.confluent)!r}, "
            f"aiokafka={dict(r.aiokafka)!r}, warnings={r.warnings!r})"
        )


_SIDES: Final = ("consumer", "producer")


def _parse_kafka(raw: Any, where: str, problems: list[str]) -> KafkaSettings:
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        problems.append(f"{where}: expected a mapping of Kafka settings")
        raw = {}
    warnings: list[str] = []
    raw_sections: dict[str, dict[str, Any]] = {"confluent": {}, "aiokafka": {}}
    common: dict[str, Any] = {}
    flat: dict[str, dict[str, Any]] = {"consumer": {}, "producer": {}}
    nested: dict[str, dict[str, Any]] = {"consumer": {}, "producer": {}}
    for key, value in raw.items():
        here = f"{where}[{key!r}]"
        if key in _SIDES:
            if not isinstance(value, Mapping):
                problems.append(f"{here}: expected a mapping of {key} settings")
                continue
            nested[key] = _parse_side(key, value, here, raw_sections, problems, warnings)
        elif key in _RAW_SECTIONS:
            _parse_raw_section(value, here, raw_sections[_RAW_SECTIONS[key]], None, problems)
        elif _known_kafka_key(key, here, problems):
            ok, checked = _check_kafka_value(key, value, here, problems, warnings)
            if not ok:
                continue
            if key in KAFKA_CONSUMER_KEYS:
                flat["consumer"][key] = checked
            elif key in KAFKA_PRODUCER_KEYS:
                flat["producer"][key] = checked
            else:
                common[key] = checked
    consumer = {**common, **flat["consumer"], **nested["consumer"]}
    producer = {**common, **flat["producer"], **nested["producer"]}
    consumer.setdefault("group_id", DEFAULT_GROUP_ID)
    consumer.setdefault("auto_offset_reset", "latest")
    consumer.setdefault("enable_auto_commit", False)
    producer.setdefault("acks", "all")
    _cross_checks(consumer, producer, where, problems)
    _force_raw_auto_commit_off(raw_sections, where, warnings)
    return KafkaSettings(
        consumer=consumer,
        producer=producer,
        common=common,
        confluent=raw_sections["confluent"],
        aiokafka=raw_sections["aiokafka"],
        warnings=tuple(warnings),
    )


def _parse_side(
    side: str,
    section: Mapping[str, Any],
    where: str,
    raw_sections: dict[str, dict[str, Any]],
    problems: list[str],
    warnings: list[str],
) -> dict[str, Any]:
    own = KAFKA_CONSUMER_KEYS if side == "consumer" else KAFKA_PRODUCER_KEYS
    other = "producer" if side == "consumer" else "consumer"
    out: dict[str, Any] = {}
    for key, value in section.items():
        here = f"{where}[{key!r}]"
        if key in _RAW_SECTIONS:
            _parse_raw_section(value, here, raw_sections[_RAW_SECTIONS[key]], side, problems)
            continue
        if key in _KAFKA_KNOWN and key not in own and key not in _shared_keys():
            problems.append(
                f"{here}: {key!r} is a {other} setting; move it to "
                f"{where.rsplit('[', 1)[0]}[{other!r}]"
            )
            continue
        if not _known_kafka_key(key, here, problems):
            continue
        ok, checked = _check_kafka_value(key, value, here, problems, warnings)
        if ok:
            out[key] = checked
    return out


def _shared_keys() -> frozenset[str]:
    return KAFKA_SHARED_KEYS | KAFKA_SECURITY_KEYS


def _known_kafka_key(key: Any, where: str, problems: list[str]) -> bool:
    if not isinstance(key, str):
        problems.append(f"{where}: expected a setting name")
        return False
    if key in _KAFKA_REJECTED:
        problems.append(f"{where}: not supported: {_KAFKA_REJECTED[key]}")
        return False
    if key not in _KAFKA_KNOWN:
        problems.append(
            f"{where}: unknown Kafka setting{_suggest(key, _KAFKA_KNOWN)}; use kafka-python "
            "names (bootstrap_servers, group_id, acks…); client-specific settings go in "
            "KAFKA_CONFIG['confluent'] (librdkafka properties) or KAFKA_CONFIG['aiokafka'] "
            "(aiokafka arguments)"
        )
        return False
    return True


def _shown(key: str, value: Any) -> str:
    return f"a {type(value).__name__}" if is_secret_key(key) else repr(value)


def _check_kafka_value(
    key: str, value: Any, where: str, problems: list[str], warnings: list[str]
) -> tuple[bool, Any]:
    """(keep, normalised value); a problem or warning is recorded when not kept."""
    if value is None:
        return False, None
    if key in _KAFKA_IGNORED:
        warnings.append(f"{where}: ignored: {_KAFKA_IGNORED[key]}")
        return False, None
    if key == "bootstrap_servers":
        servers = servers_list(value)
        if not isinstance(value, (str, list, tuple)) or not all(
            isinstance(s, str) for s in ([value] if isinstance(value, str) else value)
        ):
            problems.append(f"{where}: expected a list of 'host:port' or a comma-separated string")
            return False, None
        return bool(servers), servers
    if key == "acks":
        text = str(value).strip().lower()
        if isinstance(value, bool) or text not in ("all", "-1", "0", "1"):
            problems.append(f"{where}: expected 'all', 0 or 1 (got {value!r})")
            return False, None
        return True, "all" if text in ("all", "-1") else int(text)
    if key in _KAFKA_CHOICES:
        choices = _KAFKA_CHOICES[key]
        choice = value.strip() if isinstance(value, str) else None
        if choice is not None and key in ("security_protocol", "sasl_mechanism"):
            choice = choice.upper()
        elif choice is not None:
            choice = choice.lower()
            choice = {"smallest": "earliest", "largest": "latest"}.get(choice, choice)
        if choice not in choices:
            problems.append(f"{where}: {value!r} is not one of {', '.join(choices)}")
            return False, None
        return True, choice
    if key in _KAFKA_BOOLS:
        if not isinstance(value, bool):
            problems.append(f"{where}: expected True or False (got {_shown(key, value)})")
            return False, None
        if key == "enable_auto_commit" and value:
            warnings.append(
                f"{where}: True was turned off: the framework commits offsets itself, only "
                "after results are uploaded (OFFSET_COMMIT_CONFIG); auto-commit would lose "
                "records on a crash"
            )
            return True, False
        return True, value
    if key in _KAFKA_STRINGS:
        if not isinstance(value, str) or not value:
            problems.append(f"{where}: expected a non-empty string (got {_shown(key, value)})")
            return False, None
        return True, value
    if key in _KAFKA_ANY:
        return True, value
    if isinstance(value, bool) or not isinstance(value, int):
        problems.append(f"{where}: expected an integer (got {value!r})")
        return False, None
    minimum = 1 if key in _KAFKA_MIN_ONE else 0
    if value < minimum:
        problems.append(f"{where}: must be >= {minimum} (got {value})")
        return False, None
    return True, value


def _parse_raw_section(
    value: Any,
    where: str,
    target: dict[str, Any],
    side: str | None,
    problems: list[str],
) -> None:
    if not isinstance(value, Mapping):
        problems.append(f"{where}: expected a mapping of client settings")
        return
    if side is not None:
        into: dict[str, Any] = dict(target.get(side) or {})
        for key, item in value.items():
            if not isinstance(key, str):
                problems.append(f"{where}: setting names must be strings (got {key!r})")
            elif key in _SIDES:
                problems.append(f"{where}[{key!r}]: already inside the {side} section")
            else:
                into[key] = item
        target[side] = into
        return
    for key, item in value.items():
        if not isinstance(key, str):
            problems.append(f"{where}: setting names must be strings (got {key!r})")
        elif key in _SIDES:
            if not isinstance(item, Mapping):
                problems.append(f"{where}[{key!r}]: expected a mapping of {key} settings")
                continue
            _parse_raw_section(item, f"{where}[{key!r}]", target, key, problems)
        else:
            target[key] = item


def _force_raw_auto_commit_off(
    raw_sections: dict[str, dict[str, Any]], where: str, warnings: list[str]
) -> None:
    for client, key in (("confluent", "enable.auto.commit"), ("aiokafka", "enable_auto_commit")):
        section = raw_sections[client]
        for scope in (section, section.get("consumer") or {}):
            if key in scope and scope[key] not in (False, "false", "False", 0, None):
                warnings.append(
                    f"{where}[{client!r}][{key!r}]: turned off: the framework commits offsets "
                    "itself, only after results are uploaded"
                )
            if isinstance(scope, dict):
                scope.pop(key, None)


def _cross_checks(
    consumer: Mapping[str, Any], producer: Mapping[str, Any], where: str, problems: list[str]
) -> None:
    session, heartbeat = consumer.get("session_timeout_ms"), consumer.get("heartbeat_interval_ms")
    if session is not None and heartbeat is not None and heartbeat >= session:
        problems.append(
            f"{where}: consumer heartbeat_interval_ms ({heartbeat}) must be lower than "
            f"session_timeout_ms ({session}); a third of it is usual"
        )
    if producer.get("enable_idempotence") and producer.get("acks") != "all":
        problems.append(f"{where}: producer enable_idempotence needs acks='all'")
    for side, values in (("consumer", consumer), ("producer", producer)):
        protocol = values.get("security_protocol", "PLAINTEXT")
        mechanism = values.get("sasl_mechanism", "PLAIN")
        if str(protocol).startswith("SASL") and mechanism in (
            "PLAIN",
            "SCRAM-SHA-256",
            "SCRAM-SHA-512",
        ):
            missing = [
                k for k in ("sasl_plain_username", "sasl_plain_password") if not values.get(k)
            ]
            if missing:
                problems.append(
                    f"{where}: {side} uses {protocol} with {mechanism} but {' and '.join(missing)} "
                    "is not set"
                )


# ------------------------------------------------------------------------ service settings


@attrs.frozen
class ServiceSettings:
    """The ``service`` section (``SERVICE_CONFIG``): how this process runs.

    * ``adapter``: ``'memory'``, ``'confluent'``, ``'aiokafka'`` or None (``'auto'``): the
      in-memory bus when no broker is configured, else confluent-kafka for the sync service
      and aiokafka for the async one (``Settings.resolve_adapter``).
    * ``module_name``: the module this process runs, when not given in code.
    * ``max_workers``: station callbacks run in parallel by the sync service (threads);
      ``max_concurrency``: the same for the async service (tasks).
    * ``poll_timeout_seconds``: the longest one poll waits for records;
      ``max_poll_records``: the most records one poll returns (per topic in multi-consumer
      mode); the consumer's ``max_poll_records`` in ``KAFKA_CONFIG`` sets it too.
    * ``multi_consumer_mode``: per-topic fair fetching; None: on when the module reads 3 or
      more topics (``Settings.multi_consumer``).
    * ``station_routing``: ``rekey`` (every non-global topic is split by station into an
      internal station-keyed topic, so any number of instances keep each station's data
      together) or ``direct`` (records are applied where consumed: one instance only; the
      service refuses to go on when the group has other members). None: ``rekey`` with Kafka,
      ``direct`` on the in-memory bus (``Settings.routing_mode``). ``rekey_partitions`` (None:
      the largest partition count of the source topics), ``rekey_topic_template`` (with
      ``{group}`` and ``{topic}``) and ``rekey_replication_factor`` (None: the broker's
      default) shape the internal topics; see ``da_core.routing``.
    * ``output_mode`` (``batch``/``station``), ``fill_strategy`` (``zero``, ``linear``,
      ``forward``, ``missing``), ``batch_timeout`` (s), ``completion_ratio`` (0..1]: defaults
      for the module the service runs (constructor arguments win; ``configured`` says which
      were set explicitly).
    * ``data_expire_seconds`` and ``dead_letter_topic``: the catalog's (also accepted at the
      top level); ``Settings`` keeps both places equal.
    * ``health_host``/``health_port`` (``/health``, ``/ready``, ``/status``) and
      ``metrics_host``/``metrics_port`` (Prometheus): port 0 disables the server;
      ``metrics_enabled=False`` disables metrics too. Both bind 127.0.0.1 unless configured
      (containers set ``0.0.0.0``). The environment variables ``DATA_ANALYSIS_HEALTH_HOST``,
      ``DATA_ANALYSIS_HEALTH_PORT``, ``DATA_ANALYSIS_METRICS_HOST`` and
      ``DATA_ANALYSIS_METRICS_PORT`` win over the file.
    * ``health_stuck_seconds``: ``/health`` fails when the engine loop has not completed an
      iteration for this long (service clock); ``ready_upload_failing_seconds``: ``/ready``
      fails while uploads have been failing for longer than this.
    * ``log_format`` (``text``/``json``; env ``DATA_ANALYSIS_LOG_FORMAT`` wins),
      ``log_level`` (env ``LOG_LEVEL`` wins) and
      ``log_file`` (env ``DATA_ANALYSIS_LOG`` wins; default ``data_analysis.log``).
    * ``configured``: the names of the settings given explicitly (file or environment).
    """

    adapter: AdapterName | None = None
    module_name: str | None = None
    max_workers: int = 32
    max_concurrency: int = 64
    poll_timeout_seconds: float = 0.1
    max_poll_records: int = 500
    multi_consumer_mode: bool | None = None
    station_routing: str | None = None
    rekey_partitions: int | None = None
    rekey_topic_template: str = DEFAULT_TEMPLATE
    rekey_replication_factor: int | None = None
    output_mode: str = "batch"
    fill_strategy: str = "zero"
    data_expire_seconds: float = 600.0
    batch_timeout: float = 5.0
    completion_ratio: float = 1.0
    dead_letter_topic: str = "DATA-ANALYSIS-DEAD-LETTER"
    health_host: str = "127.0.0.1"
    health_port: int = 8080
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 8001
    metrics_enabled: bool = True
    health_stuck_seconds: float = 30.0
    ready_upload_failing_seconds: float = 30.0
    log_format: str = "text"
    log_level: str = "INFO"
    log_file: str = "data_analysis.log"
    configured: frozenset[str] = frozenset()


_SERVICE_INTS: Final[Mapping[str, tuple[int, int | None]]] = {
    "max_workers": (1, None),
    "max_concurrency": (1, None),
    "max_poll_records": (1, None),
    "health_port": (0, 65535),
    "metrics_port": (0, 65535),
}
_SERVICE_POSITIVE: Final = frozenset(
    {
        "poll_timeout_seconds",
        "data_expire_seconds",
        "batch_timeout",
        "health_stuck_seconds",
        "ready_upload_failing_seconds",
    }
)
_SERVICE_OPTIONAL_INTS: Final = frozenset({"rekey_partitions", "rekey_replication_factor"})
_SERVICE_CHOICES: Final[Mapping[str, tuple[str, ...]]] = {
    "output_mode": OUTPUT_MODES,
    "fill_strategy": FILL_NAMES,
    "log_format": LOG_FORMATS,
    "log_level": LOG_LEVELS,
}
_SERVICE_STRINGS: Final = frozenset(
    {"health_host", "metrics_host", "log_file", "dead_letter_topic", "module_name"}
)


_SERVICE_ENV_VARS: Final = (
    (LOG_FILE_ENV_VAR, "log_file"),
    (LOG_LEVEL_ENV_VAR, "log_level"),
    ("DATA_ANALYSIS_LOG_FORMAT", "log_format"),
    ("DATA_ANALYSIS_HEALTH_HOST", "health_host"),
    ("DATA_ANALYSIS_HEALTH_PORT", "health_port"),
    ("DATA_ANALYSIS_METRICS_HOST", "metrics_host"),
    ("DATA_ANALYSIS_METRICS_PORT", "metrics_port"),
)
"""Environment variables that win over the ``service`` section."""


def _parse_service(raw: Any, environ: Mapping[str, str], problems: list[str]) -> ServiceSettings:
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        problems.append("SERVICE_CONFIG: expected a mapping of service settings")
        raw = {}
    values: dict[str, Any] = {}
    known = _service_keys()
    for key, value in raw.items():
        where = f"SERVICE_CONFIG[{key!r}]"
        if key not in known:
            problems.append(
                f"{where}: unknown service setting{_suggest(str(key), known)}; known: "
                + ", ".join(sorted(known))
            )
            continue
        ok, checked = _check_service_value(key, value, where, problems)
        if ok:
            values[key] = checked
    for env_name, key in _SERVICE_ENV_VARS:
        env_value: Any = environ.get(env_name, "").strip()
        if env_value:
            if key in _SERVICE_INTS:
                try:
                    env_value = int(env_value)
                except ValueError:
                    problems.append(f"env {env_name}: expected an integer (got {env_value!r})")
                    continue
            ok, checked = _check_service_value(key, env_value, f"env {env_name}", problems)
            if ok:
                values[key] = checked
    ports = (values.get("health_port", 8080), values.get("metrics_port", 8001))
    if ports[0] and ports[0] == ports[1]:
        problems.append(
            f"SERVICE_CONFIG: health_port and metrics_port are both {ports[0]}; use two ports"
        )
    return ServiceSettings(**values, configured=frozenset(values))


def _check_service_value(key: str, value: Any, where: str, problems: list[str]) -> tuple[bool, Any]:
    if key == "adapter":
        if value is None or value == "auto":
            return True, None
        if value not in ADAPTERS:
            problems.append(f"{where}: {value!r} is not one of auto, {', '.join(ADAPTERS)}")
            return False, None
        return True, value
    if key == "multi_consumer_mode":
        if value is not None and not isinstance(value, bool):
            problems.append(f"{where}: expected True, False or None (automatic)")
            return False, None
        return True, value
    if key == "station_routing":
        if value is None or value == "auto":
            return True, None
        if value not in ROUTING_MODES:
            problems.append(f"{where}: {value!r} is not one of auto, {', '.join(ROUTING_MODES)}")
            return False, None
        return True, value
    if key in _SERVICE_OPTIONAL_INTS:
        if value is None:
            return True, None
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            problems.append(f"{where}: expected a whole number >= 1 or None (got {value!r})")
            return False, None
        return True, value
    if key == "rekey_topic_template":
        try:
            Routing(mode="rekey", topic_template=value).internal_topic("T")
        except (ConfigError, AttributeError, TypeError) as exc:
            problems.append(f"{where}: {exc}")
            return False, None
        return True, value
    if key == "metrics_enabled":
        if not isinstance(value, bool):
            problems.append(f"{where}: expected True or False (got {value!r})")
            return False, None
        return True, value
    if key in _SERVICE_INTS:
        low, high = _SERVICE_INTS[key]
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append(f"{where}: expected an integer (got {value!r})")
            return False, None
        if value < low or (high is not None and value > high):
            bounds = f">= {low}" if high is None else f"between {low} and {high}"
            problems.append(f"{where}: must be {bounds} (got {value})")
            return False, None
        return True, value
    if key in _SERVICE_POSITIVE or key == "completion_ratio":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            problems.append(f"{where}: expected a number (got {value!r})")
            return False, None
        if key == "completion_ratio" and not 0 < value <= 1:
            problems.append(f"{where}: must be in (0, 1] (got {value})")
            return False, None
        if value <= 0:
            problems.append(f"{where}: must be > 0 (got {value})")
            return False, None
        return True, float(value)
    if key in _SERVICE_CHOICES:
        choices = _SERVICE_CHOICES[key]
        text = value
        if key == "log_level" and isinstance(value, str):
            text = {"WARN": "WARNING"}.get(value.upper(), value.upper())
        if text not in choices:
            problems.append(f"{where}: {value!r} is not one of {', '.join(choices)}")
            return False, None
        return True, text
    if key in _SERVICE_STRINGS:
        if key == "module_name" and value is None:
            return True, None
        if not isinstance(value, str) or not value:
            problems.append(f"{where}: expected a non-empty string (got {value!r})")
            return False, None
        return True, value
    raise AssertionError(f"service setting {key!r} has no validation")  # pragma: no cover


# ------------------------------------------------------------------------------- Settings

_CATALOG_SECTIONS: Final[Mapping[str, str]] = {
    "TOPIC_DETAIL": "TOPIC_DETAIL",
    "MODULE_DEPENDENCIES": "MODULE_DEPENDENCIES",
    "MODULE_OUTPUT_TOPICS": "MODULE_OUTPUT_TOPICS",
    "OFFSET_COMMIT_CONFIG": "OFFSET_COMMIT_CONFIG",
    "MODULES": "modules",
}


@attrs.frozen
class Settings:
    """Everything a deployment configures, validated: the catalog (topics, modules, commit
    policy), Kafka and the service. ``source`` is the file it was loaded from, if any."""

    catalog: Catalog
    kafka: KafkaSettings = attrs.field(factory=KafkaSettings)
    service: ServiceSettings = ServiceSettings()
    source: str | None = None

    @classmethod
    def from_raw(
        cls,
        raw: Mapping[str, Any],
        *,
        environ: Mapping[str, str] | None = None,
        source: str | None = None,
    ) -> Settings:
        """Validate a raw configuration (``load_raw_config``'s result, or a dict in the same
        shapes). Raises one ``ConfigError`` listing every problem. ``environ`` defaults to
        ``os.environ`` (``DATA_ANALYSIS_LOG``, ``LOG_LEVEL``, the health/metrics host and
        port variables)."""
        problems: list[str] = []
        norm = _normalize(raw, problems)
        env = os.environ if environ is None else environ
        service = _parse_service(norm.get("SERVICE_CONFIG"), env, problems)
        kafka = _parse_kafka(norm.get("KAFKA_CONFIG"), "KAFKA_CONFIG", problems)
        cat_raw = {dst: norm[src] for src, dst in _CATALOG_SECTIONS.items() if src in norm}
        for key in ("data_expire_seconds", "dead_letter_topic"):
            if key in service.configured:
                cat_raw[key] = getattr(service, key)
        try:
            catalog = build_catalog(cat_raw)
        except ConfigError as exc:
            problems.extend(exc.problems)
            catalog = default_catalog()
        service = attrs.evolve(
            service,
            data_expire_seconds=catalog.data_expire_seconds,
            dead_letter_topic=catalog.dead_letter_topic,
        )
        if service.module_name is not None and service.module_name not in catalog.modules:
            problems.append(
                f"SERVICE_CONFIG['module_name']: unknown module {service.module_name!r}; known: "
                + ", ".join(sorted(catalog.modules))
            )
        service, kafka = _reconcile_poll_records(service, kafka, problems, explicit_kafka=False)
        if problems:
            raise ConfigError(problems)
        return cls(catalog=catalog, kafka=kafka, service=service, source=source)

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None) -> Settings:
        """Find, load and validate the configuration (defaults when no file is found)."""
        found = find_config_file(path)
        raw = load_raw_config(found) if found is not None else {}
        return cls.from_raw(raw, source=str(found) if found is not None else None)

    def with_kafka_config(self, kafka_config: Mapping[str, Any] | KafkaSettings) -> Settings:
        """These settings with Kafka replaced (a service's ``kafka_config=`` argument). A
        ``max_poll_records`` in its consumer settings wins over the service section's."""
        problems: list[str] = []
        kafka = (
            kafka_config
            if isinstance(kafka_config, KafkaSettings)
            else _parse_kafka(kafka_config, "kafka_config", problems)
        )
        service, kafka = _reconcile_poll_records(self.service, kafka, problems, explicit_kafka=True)
        if problems:
            raise ConfigError(problems)
        return attrs.evolve(self, kafka=kafka, service=service)

    def resolve_adapter(self, *, asynchronous: bool) -> AdapterName:
        """The adapter to use: the configured one, else memory without brokers, else
        aiokafka for the async service and confluent-kafka for the sync one."""
        if self.service.adapter is not None:
            return self.service.adapter
        if not self.kafka.has_brokers:
            return "memory"
        return "aiokafka" if asynchronous else "confluent"

    def routing_mode(self, adapter: str) -> str:
        """``station_routing`` as configured, else ``rekey`` with Kafka and ``direct`` on the
        in-memory bus (one process: its instances are the ones the process starts)."""
        if self.service.station_routing is not None:
            return self.service.station_routing
        return "direct" if adapter == "memory" else "rekey"

    def multi_consumer(self, module: str) -> bool:
        """Whether ``module`` fetches per topic: as configured, else when it reads 3+ topics."""
        if self.service.multi_consumer_mode is not None:
            return self.service.multi_consumer_mode
        return len(self.catalog.subscriptions(module)) >= 3


def _reconcile_poll_records(
    service: ServiceSettings,
    kafka: KafkaSettings,
    problems: list[str],
    *,
    explicit_kafka: bool,
) -> tuple[ServiceSettings, KafkaSettings]:
    """Make ``service.max_poll_records`` and the consumer's ``max_poll_records`` one value."""
    from_kafka = kafka.consumer.get("max_poll_records")
    value = service.max_poll_records
    if from_kafka is not None and from_kafka != value:
        if "max_poll_records" in service.configured and not explicit_kafka:
            problems.append(
                f"max_poll_records: SERVICE_CONFIG says {value} but KAFKA_CONFIG's consumer "
                f"says {from_kafka}; set it in one place"
            )
        value = from_kafka
    service = attrs.evolve(service, max_poll_records=value)
    kafka = attrs.evolve(kafka, consumer={**kafka.consumer, "max_poll_records": value})
    return service, kafka


# -------------------------------------------------------------- the guide's module values

DEFAULT_KAFKA_CONFIG: Final[Mapping[str, Any]] = {
    "consumer": {
        "group_id": DEFAULT_GROUP_ID,
        "auto_offset_reset": "latest",
        "enable_auto_commit": False,
        "max_poll_records": 500,
    },
    "producer": {"acks": "all"},
}


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


def _topic_entry(topic: TopicConfig) -> dict[str, Any]:
    always = ("fields", "window_size", "modules", "frequency")
    defaults = TopicConfig(name=topic.name)
    entry: dict[str, Any] = {}
    for f in attrs.fields(TopicConfig):
        value = getattr(topic, f.name)
        if f.name != "name" and (f.name in always or value != getattr(defaults, f.name)):
            entry[f.name] = _plain(value)
    return entry


def default_guide_config() -> dict[str, Any]:
    """The guide's five names with their default values (the default catalog, no brokers)."""
    cat = default_catalog()
    return {
        "KAFKA_CONFIG": copy.deepcopy(_plain(DEFAULT_KAFKA_CONFIG)),
        "OFFSET_COMMIT_CONFIG": attrs.asdict(cat.commit),
        "TOPIC_DETAIL": {name: _topic_entry(t) for name, t in cat.topics.items()},
        "MODULE_DEPENDENCIES": {
            name: list(m.dependencies) for name, m in cat.modules.items() if m.dependencies
        },
        "MODULE_OUTPUT_TOPICS": {name: m.output for name, m in cat.modules.items()},
    }


def guide_config(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The guide's names (``KAFKA_CONFIG``, ``OFFSET_COMMIT_CONFIG``, ``TOPIC_DETAIL``,
    ``MODULE_DEPENDENCIES``, ``MODULE_OUTPUT_TOPICS``) from a raw configuration merged over
    ``default_guide_config()``, plus its other sections and UPPER_CASE names as given.

    Merging: a nested ``KAFKA_CONFIG``'s sections update the default sections (a key set at
    its top level removes the default of that key from the sections, so it is not shadowed);
    a flat ``KAFKA_CONFIG`` is taken as written; each ``TOPIC_DETAIL`` entry updates the
    default entry of that topic; the other sections update their defaults key by key.
    Values are not validated here (``Settings.from_raw`` does that).
    """
    norm = copy.deepcopy(normalize_raw_config(raw))
    out = default_guide_config()
    for key, value in norm.items():
        default = out.get(key)
        if not isinstance(value, Mapping) or not isinstance(default, dict):
            out[key] = value
        elif key == "KAFKA_CONFIG":
            out[key] = _merge_kafka(default, value)
        elif key == "TOPIC_DETAIL":
            for name, entry in value.items():
                base = default.get(name)
                if isinstance(base, dict) and isinstance(entry, Mapping):
                    default[name] = {**base, **entry}
                else:
                    default[name] = entry
        else:
            default.update(value)
    return out


def _merge_kafka(default: dict[str, Any], user: Mapping[str, Any]) -> dict[str, Any]:
    if not any(side in user for side in _SIDES):
        return dict(user)
    merged: dict[str, Any] = {}
    top = {k: v for k, v in user.items() if k not in _SIDES}
    for side in _SIDES:
        base = {k: v for k, v in default.get(side, {}).items() if k not in top}
        own = user.get(side, {})
        merged[side] = {**base, **own} if isinstance(own, Mapping) else own
    merged.update(top)
    return merged
