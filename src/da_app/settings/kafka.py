"""The guide's ``KAFKA_CONFIG``, validated into ``KafkaSettings``.

Which keys exist, which side each applies to and what kind of value each takes is the table in
``da_adapters.kafka_keys`` (shared with the translations to the clients' configurations); this
module reads it to validate and normalise a raw ``KAFKA_CONFIG`` and never lists a key itself
except where a rule is about one key (auto-commit, servers, acks, the cross-checks).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import attrs

from da_adapters.kafka_keys import (
    KAFKA_CONSUMER_KEYS,
    KAFKA_KNOWN_KEYS,
    KAFKA_PRODUCER_KEYS,
    KAFKA_SECURITY_KEYS,
    KAFKA_SHARED_KEYS,
    KEYS_BY_NAME,
    RAW_SECTIONS,
    REJECTED_KEYS,
    SIDES,
    is_secret_key,
    redact,
    servers_list,
)
from da_app.settings._text import suggest
from da_app.settings.service import service_keys
from da_core.errors import ConfigError

DEFAULT_GROUP_ID: Final = "data_analysis_group"
POLL_TIMEOUT_KEY: Final = "timeout_ms"
"""The guide's poll-timeout knob: accepted in ``KAFKA_CONFIG`` and translated (see
``KafkaSettings.poll_timeout_ms``)."""
_SIDES: Final = SIDES
_BOTH_SIDES: Final = KAFKA_SHARED_KEYS | KAFKA_SECURITY_KEYS


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
    * ``poll_timeout_ms``: the guide's ``timeout_ms`` tuning knob (空拉取排查手册: how long one
      poll waits for records, aiokafka's ``getmany(timeout_ms=...)``), given at the top level
      or in the consumer section. It is no client setting: ``Settings`` turns it into the
      service's ``poll_timeout_seconds``.

    ``repr()`` and ``redacted()`` hide secrets (passwords, tokens, keys).
    """

    consumer: Mapping[str, Any] = attrs.field(factory=dict)
    producer: Mapping[str, Any] = attrs.field(factory=dict)
    common: Mapping[str, Any] = attrs.field(factory=dict)
    confluent: Mapping[str, Any] = attrs.field(factory=dict)
    aiokafka: Mapping[str, Any] = attrs.field(factory=dict)
    warnings: tuple[str, ...] = ()
    poll_timeout_ms: int | None = None

    @classmethod
    def from_raw(cls, raw: Mapping[str, Any] | None, where: str = "KAFKA_CONFIG") -> KafkaSettings:
        """Validate ``raw`` (the guide's ``KAFKA_CONFIG``); ``ConfigError`` lists every problem."""
        problems: list[str] = []
        settings = parse_kafka(raw, where, problems)
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
            poll_timeout_ms=self.poll_timeout_ms,
        )

    def __repr__(self) -> str:
        r = self.redacted()
        return (
            f"KafkaSettings(consumer={dict(r.consumer)!r}, producer={dict(r.producer)!r}, "
            f"common={dict(r.common)!r}, confluent={dict(r.confluent)!r}, "
            f"aiokafka={dict(r.aiokafka)!r}, warnings={r.warnings!r})"
        )


def parse_kafka(raw: Any, where: str, problems: list[str]) -> KafkaSettings:
    """Validate a raw ``KAFKA_CONFIG`` named ``where``; problems are appended, not raised."""
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
    poll: dict[str, int | None] = {}  # where timeout_ms was given -> its value
    for key, value in raw.items():
        here = f"{where}[{key!r}]"
        if key in _SIDES:
            if not isinstance(value, Mapping):
                problems.append(f"{here}: expected a mapping of {key} settings")
                continue
            nested[key] = _parse_side(key, value, here, raw_sections, problems, warnings, poll)
        elif key in RAW_SECTIONS:
            _parse_raw_section(value, here, raw_sections[RAW_SECTIONS[key]], None, problems)
        elif key == POLL_TIMEOUT_KEY:
            poll[here] = _poll_timeout(value, here, problems)
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
    given = {v for v in poll.values() if v is not None}
    if len(given) > 1:
        problems.append(
            f"{' and '.join(poll)}: timeout_ms is given twice with different values; keep one"
        )
    return KafkaSettings(
        poll_timeout_ms=max(given) if given else None,
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
    poll: dict[str, int | None],
) -> dict[str, Any]:
    own = KAFKA_CONSUMER_KEYS if side == "consumer" else KAFKA_PRODUCER_KEYS
    other = "producer" if side == "consumer" else "consumer"
    out: dict[str, Any] = {}
    for key, value in section.items():
        here = f"{where}[{key!r}]"
        if key in RAW_SECTIONS:
            _parse_raw_section(value, here, raw_sections[RAW_SECTIONS[key]], side, problems)
            continue
        if key == POLL_TIMEOUT_KEY:
            if side == "consumer":
                poll[here] = _poll_timeout(value, here, problems)
            else:
                problems.append(
                    f"{here}: timeout_ms is how long the consumer's poll waits; move it to "
                    f"{where.rsplit('[', 1)[0]}['consumer']"
                )
            continue
        if key in KAFKA_KNOWN_KEYS and key not in own and key not in _BOTH_SIDES:
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


def _poll_timeout(value: Any, where: str, problems: list[str]) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        problems.append(f"{where}: expected a whole number of milliseconds >= 1 (got {value!r})")
        return None
    return value


def _known_kafka_key(key: Any, where: str, problems: list[str]) -> bool:
    if not isinstance(key, str):
        problems.append(f"{where}: expected a setting name")
        return False
    if key not in KAFKA_KNOWN_KEYS and key in service_keys():
        problems.append(
            f"{where}: {key!r} is a service setting, not a Kafka one: move it to "
            f"SERVICE_CONFIG[{key!r}] (YAML: service: {{{key}: ...}}) or pass {key}= to the "
            "service"
        )
        return False
    if key in REJECTED_KEYS:
        problems.append(f"{where}: not supported: {REJECTED_KEYS[key]}")
        return False
    if key not in KAFKA_KNOWN_KEYS:
        problems.append(
            f"{where}: unknown Kafka setting{suggest(key, KAFKA_KNOWN_KEYS)}; use kafka-python "
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
    spec = KEYS_BY_NAME[key]
    if spec.ignored:
        warnings.append(f"{where}: ignored: {spec.ignored}")
        return False, None
    kind = spec.kind
    if kind == "servers":
        servers = servers_list(value)
        if not isinstance(value, (str, list, tuple)) or not all(
            isinstance(s, str) for s in ([value] if isinstance(value, str) else value)
        ):
            problems.append(f"{where}: expected a list of 'host:port' or a comma-separated string")
            return False, None
        return bool(servers), servers
    if kind == "acks":
        text = str(value).strip().lower()
        if isinstance(value, bool) or text not in ("all", "-1", "0", "1"):
            problems.append(f"{where}: expected 'all', 0 or 1 (got {value!r})")
            return False, None
        return True, "all" if text in ("all", "-1") else int(text)
    if kind == "choice":
        choices = spec.choices
        choice = value.strip() if isinstance(value, str) else None
        # choices written in upper case (protocols, mechanisms) are matched as upper case,
        # the others as lower case, with kafka-python's old offset-reset aliases
        if choice is not None and all(c.isupper() for c in choices):
            choice = choice.upper()
        elif choice is not None:
            choice = choice.lower()
            choice = {"smallest": "earliest", "largest": "latest"}.get(choice, choice)
        if choice not in choices:
            problems.append(f"{where}: {value!r} is not one of {', '.join(choices)}")
            return False, None
        return True, choice
    if kind == "bool":
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
    if kind == "text":
        if not isinstance(value, str) or not value:
            problems.append(f"{where}: expected a non-empty string (got {_shown(key, value)})")
            return False, None
        return True, value
    if kind == "any":
        return True, value
    if isinstance(value, bool) or not isinstance(value, int):
        problems.append(f"{where}: expected an integer (got {value!r})")
        return False, None
    minimum = 1 if kind == "count" else 0
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
