"""What the confluent consumer and producer share: building the librdkafka configuration from
the settings plus explicit overrides, routing librdkafka's log lines into ``logging``, error
callbacks, and log throttling."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import confluent_kafka as ck
from confluent_kafka.admin import AdminClient

from da_adapters.kafka_config import (
    ClientConfig,
    KafkaConfigSource,
    KafkaSections,
    redact,
    servers_list,
)
from da_adapters.log_throttle import RateLimit, line_key
from da_core.errors import ConfigError, DataAnalysisError

log = logging.getLogger("da_adapters.confluent")
rdkafka_log = logging.getLogger("da_adapters.confluent.librdkafka")

_RESET_ALIASES = {"smallest": "earliest", "beginning": "earliest", "largest": "latest"}
_RESETS = ("earliest", "latest", "error")


class ConfluentError(DataAnalysisError):
    """confluent-kafka reported an error the caller must see (a fatal client error, a failed
    metadata or offset request). The client's own message is in the text."""


class Throttle:
    """Says whether a message with this key may be logged now: once per ``interval`` seconds."""

    def __init__(self, interval: float = 30.0) -> None:
        self._interval = interval
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self._interval:
                return False
            if len(self._last) > 1000:
                self._last.clear()
            self._last[key] = now
            return True


def source_or_empty(settings: KafkaConfigSource | None) -> KafkaConfigSource:
    return settings if settings is not None else KafkaSections()


def bootstrap_string(value: str | Sequence[str]) -> str:
    return ",".join(servers_list(value))


def reset_policy(value: str) -> str:
    """``auto_offset_reset`` in librdkafka's words (``earliest``, ``latest`` or ``error``)."""
    text = str(value).strip().lower()
    text = "error" if text == "none" else _RESET_ALIASES.get(text, text)
    if text not in _RESETS:
        raise ConfigError(f"auto_offset_reset {value!r}: expected 'earliest', 'latest' or 'none'")
    return text


def log_notes(client: ClientConfig, what: str) -> None:
    for note in client.notes:
        log.warning("%s: %s", what, note)


def check_bootstrap(config: Mapping[str, Any], what: str) -> None:
    if not str(config.get("bootstrap.servers") or "").strip():
        raise ConfigError(
            f"{what}: no bootstrap servers (set KAFKA_CONFIG bootstrap_servers or pass "
            "bootstrap_servers=...)"
        )


def describe_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The configuration for a debug log: secrets redacted, callbacks named."""
    shown = {k: (f"<{type(v).__name__}>" if callable(v) else v) for k, v in config.items()}
    return redact(shown)


# librdkafka's "offset reset" line (facility OFFSET), e.g. "[thrd:main]: topic [0]: offset
# reset (at offset 2 (leader epoch -1), broker 1) to offset BEGINNING (leader epoch -1): ..."
_OFFSET_RESET = re.compile(
    r"(?P<topic>[^\s\[\]]+) \[(?P<partition>\d+)\]: offset reset \(at offset"
)


class LibrdkafkaLogBridge:
    """Passed as ``logger`` in the client configuration: librdkafka calls
    ``log(level, "%s [%s] %s", facility, client_name, line)`` (served from ``poll``) and the line
    goes to the ``da_adapters.confluent.librdkafka`` logger.

    An offset reset (the committed or fetch offset is out of range, e.g. after retention or a
    group-id change) is also reported on ``da_adapters.confluent`` as a warning naming the group
    and the partition (SPEC §8); ``auto.offset.reset`` decides where reading resumes.

    Lines at WARNING or above are rate-limited (``da_adapters.log_throttle``): during an
    outage librdkafka logs every reconnect attempt, and the loop reports the outage itself."""

    def __init__(self, group_id: str | None = None, reset: str | None = None) -> None:
        self.group_id = group_id
        self.reset = reset
        self._limit = RateLimit()

    def log(self, level: int, msg: str, *args: Any) -> None:
        if level < logging.WARNING or self._limit.allow(line_key(str(args[-1] if args else msg))):
            rdkafka_log.log(level, msg, *args)
        if self.group_id is None or len(args) < 3 or args[0] != "OFFSET":
            return
        match = _OFFSET_RESET.search(str(args[2]))
        if match:
            log.warning(
                "group %s: offset of %s[%s] is out of range; reset per auto.offset.reset=%s (%s)",
                self.group_id,
                match["topic"],
                match["partition"],
                self.reset or "latest",
                args[2],
            )


BROKER_DOWN_CODES = frozenset({ck.KafkaError._ALL_BROKERS_DOWN})
"""``error_cb`` codes that mean the client has lost every broker."""
_CONNECTION_CODES = frozenset({ck.KafkaError._TRANSPORT, ck.KafkaError._ALL_BROKERS_DOWN})


def error_callback(
    what: str,
    throttle: Throttle,
    on_fatal: Callable[[ck.KafkaError], None],
    on_down: Callable[[ck.KafkaError], None] | None = None,
) -> Callable[[ck.KafkaError], None]:
    """An ``error_cb``: logs client-level errors (throttled; a broker down is retried by the
    client, and connection errors are DEBUG lines: the loop reports the outage once), hands
    fatal ones to ``on_fatal`` and all-brokers-down to ``on_down``."""

    def on_error(error: ck.KafkaError) -> None:
        if on_down is not None and error.code() in BROKER_DOWN_CODES:
            on_down(error)
        if error.code() in _CONNECTION_CODES:
            log.debug("%s: %s: %s", what, error.name(), error.str())
            return
        if error.fatal():
            log.error("%s: fatal client error %s", what, error.str())
            on_fatal(error)
            return
        if throttle.allow(f"error:{error.code()}"):
            log.error("%s: %s: %s", what, error.name(), error.str())

    return on_error


def brokers_up(stats_json: str) -> bool | None:
    """From a librdkafka statistics document (``stats_cb``): whether any broker connection
    is up (None when the document names no broker)."""
    try:
        brokers = json.loads(stats_json).get("brokers") or {}
    except (ValueError, AttributeError):
        return None
    if not isinstance(brokers, dict) or not brokers:
        return None
    return any(isinstance(b, dict) and b.get("state") == "UP" for b in brokers.values())


_Client = TypeVar("_Client", ck.Consumer, ck.Producer, AdminClient)


def new_client(
    kind: Callable[[dict[str, Any]], _Client], config: dict[str, Any], what: str
) -> _Client:
    """``kind(config)``, a librdkafka configuration error becoming ``ConfigError``."""
    try:
        return kind(config)
    except (ck.KafkaException, ValueError, TypeError) as exc:
        raise ConfigError(f"{what}: librdkafka refused the configuration: {exc}") from exc
