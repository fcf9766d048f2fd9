"""Translating the guide's kafka-python-style settings into each client's own configuration.

Pure functions: no client is imported and nothing is connected, so every translation is unit
tested. Input is anything shaped like ``da_app.settings.KafkaSettings`` (see
``KafkaConfigSource``): the effective ``consumer`` and ``producer`` mappings of kafka-python
keys (``bootstrap_servers``, ``group_id``, ``acks``…) and the raw pass-through sections
``confluent`` (librdkafka properties) and ``aiokafka`` (constructor arguments). A raw section's
top-level keys apply to both sides; its optional ``consumer`` / ``producer`` sub-mappings apply
to one side. Raw settings are merged last and win, with one exception:

* Auto-commit is always off (``enable.auto.commit=false`` / ``enable_auto_commit=False``), even
  when a raw section asks for it; offsets are committed by the framework only after results
  are uploaded (SPEC §6).

Other invariants of the results:

* librdkafka consumers also get ``enable.auto.offset.store=false`` so that nothing is committed
  implicitly: the confluent adapter must commit explicit offsets
  (``consumer.commit(offsets=[...])``), never the "stored" ones.
* librdkafka producers default to ``partitioner=murmur2_random`` so keyed records land on the
  same partition as with the Java client and aiokafka (librdkafka's own default is CRC32-based).
* librdkafka values are ``str``, ``int``, ``float`` or ``bool`` (callbacks from a raw section
  are passed through untouched).
* ``max_poll_records`` is not a librdkafka property: it is returned in
  ``ClientConfig.max_poll_records`` (the confluent adapter passes it to ``consume()``); for
  aiokafka it is both a constructor argument and reported there.
* aiokafka takes an ``ssl.SSLContext``, which a pure function must not build: the kafka-python
  ``ssl_*`` keys are returned in ``ClientConfig.ssl`` as ``cafile``, ``certfile``, ``keyfile``,
  ``password``, ``crlfile`` (the arguments of ``aiokafka.helpers.create_ssl_context``) plus
  ``check_hostname`` and ``ciphers`` (to set on the context). The adapter builds the context
  and passes it as ``ssl_context``.
* A setting a client has no equivalent for is dropped and explained in ``ClientConfig.notes``
  (the adapter logs them once), never silently.

Which key becomes which property or argument, and which are dropped for which client, is the
table in ``da_adapters.kafka_keys``; the functions here reshape values that need it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

import attrs

# the secret test and servers_list are part of this module's API too (the adapters import them)
from da_adapters.kafka_keys import REDACTED as REDACTED
from da_adapters.kafka_keys import (
    aiokafka_drops,
    aiokafka_renames,
    aiokafka_ssl_inputs,
    librdkafka_drops,
    librdkafka_renames,
)
from da_adapters.kafka_keys import is_secret_key as is_secret_key
from da_adapters.kafka_keys import redact as redact
from da_adapters.kafka_keys import servers_list as servers_list


class KafkaConfigSource(Protocol):
    """What the translations read; ``da_app.settings.KafkaSettings`` satisfies it."""

    @property
    def consumer(self) -> Mapping[str, Any]: ...

    @property
    def producer(self) -> Mapping[str, Any]: ...

    @property
    def confluent(self) -> Mapping[str, Any]: ...

    @property
    def aiokafka(self) -> Mapping[str, Any]: ...


@attrs.frozen
class KafkaSections:
    """A plain ``KafkaConfigSource`` for callers that hold the mappings themselves."""

    consumer: Mapping[str, Any] = attrs.field(factory=dict)
    producer: Mapping[str, Any] = attrs.field(factory=dict)
    confluent: Mapping[str, Any] = attrs.field(factory=dict)
    aiokafka: Mapping[str, Any] = attrs.field(factory=dict)


@attrs.frozen(repr=False)
class ClientConfig:
    """One client's configuration.

    ``config``: the librdkafka property dict or the aiokafka keyword arguments, ready to pass.
    ``notes``: one sentence per setting that was dropped or changed, for the adapter to log.
    ``max_poll_records``: the per-poll record limit (consumers), a framework setting.
    ``ssl``: aiokafka only, the inputs of the SSL context the adapter must build (see the
    module docstring); empty when no ``ssl_*`` key is set.
    """

    config: dict[str, Any]
    notes: tuple[str, ...] = ()
    max_poll_records: int | None = None
    ssl: Mapping[str, Any] = attrs.field(factory=dict)

    def __repr__(self) -> str:
        return (
            f"ClientConfig(config={redact(self.config)!r}, notes={self.notes!r}, "
            f"max_poll_records={self.max_poll_records!r}, ssl={redact(self.ssl)!r})"
        )


# ------------------------------------------------------------------------- shared helpers

_Special = Callable[[Any, dict[str, Any], list[str]], None]

RDKAFKA_PARTITIONERS: tuple[str, ...] = (
    "random",
    "consistent",
    "consistent_random",
    "murmur2",
    "murmur2_random",
    "fnv1a",
    "fnv1a_random",
)
DEFAULT_RDKAFKA_PARTITIONER = "murmur2_random"
RDKAFKA_ASSIGNORS: tuple[str, ...] = ("range", "roundrobin", "cooperative-sticky")
_ASSIGNOR_CLASS_NAMES = {
    "RangePartitionAssignor": "range",
    "RoundRobinPartitionAssignor": "roundrobin",
}


def _skip(value: Any, out: dict[str, Any], notes: list[str]) -> None:
    """Settings applied outside the mapping (auto-commit, max_poll_records): no note."""


def _rdk_value(value: Any) -> str | int | float | bool:
    if isinstance(value, (str, bool, int, float)):
        return value
    return str(value)


def _acks(value: Any) -> str | int:
    """kafka-python ``acks`` (``'all'``, ``-1``, ``0``, ``1`` or their strings) as ``'all'|0|1``."""
    text = str(value).strip().lower()
    if text in ("all", "-1"):
        return "all"
    try:
        return int(text)
    except ValueError:
        return text


def _translate(
    side: Mapping[str, Any],
    renames: Mapping[str, str],
    specials: Mapping[str, _Special],
    drops: Mapping[str, str],
    out: dict[str, Any],
    notes: list[str],
    where: str,
    client: str,
) -> None:
    for key, value in side.items():
        if value is None:
            continue
        if key in specials:
            specials[key](value, out, notes)
        elif key in renames:
            out[renames[key]] = value
        elif key in drops:
            notes.append(f"{where} {key!r} ignored by {client}: {drops[key]}")
        else:
            notes.append(f"{where} {key!r} has no {client} equivalent; ignored")


def _raw(section: Mapping[str, Any], side: str) -> dict[str, Any]:
    shared = {k: v for k, v in section.items() if k not in ("consumer", "producer")}
    own = section.get(side)
    if isinstance(own, Mapping):
        shared.update(own)
    return shared


# ----------------------------------------------------------------------------- librdkafka

_RDK_CONSUMER = librdkafka_renames("consumer")
_RDK_PRODUCER = librdkafka_renames("producer")
_RDK_DROPS = librdkafka_drops()


def _rdk_common_specials() -> dict[str, _Special]:
    def servers(value: Any, out: dict[str, Any], notes: list[str]) -> None:
        out["bootstrap.servers"] = ",".join(servers_list(value))

    def protocol(value: Any, out: dict[str, Any], notes: list[str]) -> None:
        out["security.protocol"] = str(value).upper()

    def check_hostname(value: Any, out: dict[str, Any], notes: list[str]) -> None:
        out["ssl.endpoint.identification.algorithm"] = "https" if value else "none"

    return {
        "bootstrap_servers": servers,
        "security_protocol": protocol,
        "ssl_check_hostname": check_hostname,
    }


def to_librdkafka_consumer(source: KafkaConfigSource) -> ClientConfig:
    """librdkafka properties for a ``confluent_kafka.Consumer``."""
    notes: list[str] = []
    out: dict[str, Any] = {}
    consumer = source.consumer

    def reset(value: Any, out: dict[str, Any], notes: list[str]) -> None:
        text = str(value).lower()
        aliases = {"none": "error", "smallest": "earliest", "largest": "latest"}
        out["auto.offset.reset"] = aliases.get(text, text)

    def assignors(value: Any, out: dict[str, Any], notes: list[str]) -> None:
        items = [value] if isinstance(value, str) or not isinstance(value, Iterable) else value
        names: list[str] = []
        for item in items:
            name = item if isinstance(item, str) else getattr(item, "__name__", repr(item))
            name = _ASSIGNOR_CLASS_NAMES.get(name, name)
            if name in RDKAFKA_ASSIGNORS:
                names.append(name)
            else:
                notes.append(
                    f"consumer partition_assignment_strategy {name!r} has no librdkafka "
                    f"equivalent ({', '.join(RDKAFKA_ASSIGNORS)}); ignored"
                )
        if names:
            out["partition.assignment.strategy"] = ",".join(names)

    specials = {
        **_rdk_common_specials(),
        "auto_offset_reset": reset,
        "partition_assignment_strategy": assignors,
        "enable_auto_commit": _skip,
        "max_poll_records": _skip,
    }
    _translate(consumer, _RDK_CONSUMER, specials, _RDK_DROPS, out, notes, "consumer", "librdkafka")
    out["enable.auto.offset.store"] = False
    raw = _raw(source.confluent, "consumer")
    if raw.get("enable.auto.commit") not in (None, False, "false", "False", 0):
        notes.append("KAFKA_CONFIG['confluent'] 'enable.auto.commit' overridden: always off")
    out.update(raw)
    out["enable.auto.commit"] = False
    mpr = consumer.get("max_poll_records")
    return ClientConfig(
        config={k: v if callable(v) else _rdk_value(v) for k, v in out.items()},
        notes=tuple(notes),
        max_poll_records=int(mpr) if mpr is not None else None,
    )


def to_librdkafka_producer(source: KafkaConfigSource) -> ClientConfig:
    """librdkafka properties for a ``confluent_kafka.Producer``."""
    notes: list[str] = []
    out: dict[str, Any] = {"partitioner": DEFAULT_RDKAFKA_PARTITIONER}

    def acks(value: Any, out: dict[str, Any], notes: list[str]) -> None:
        out["acks"] = str(_acks(value))

    def compression(value: Any, out: dict[str, Any], notes: list[str]) -> None:
        out["compression.type"] = str(value).lower()

    def buffer_memory(value: Any, out: dict[str, Any], notes: list[str]) -> None:
        out["queue.buffering.max.kbytes"] = max(1, int(value) // 1024)

    def partitioner(value: Any, out: dict[str, Any], notes: list[str]) -> None:
        if isinstance(value, str) and value in RDKAFKA_PARTITIONERS:
            out["partitioner"] = value
        else:
            notes.append(
                f"producer partitioner {value!r} is not a librdkafka partitioner "
                f"({', '.join(RDKAFKA_PARTITIONERS)}); using {DEFAULT_RDKAFKA_PARTITIONER}"
            )

    specials = {
        **_rdk_common_specials(),
        "acks": acks,
        "compression_type": compression,
        "buffer_memory": buffer_memory,
        "partitioner": partitioner,
    }
    _translate(
        source.producer, _RDK_PRODUCER, specials, _RDK_DROPS, out, notes, "producer", "librdkafka"
    )
    out.update(_raw(source.confluent, "producer"))
    return ClientConfig(
        config={k: v if callable(v) else _rdk_value(v) for k, v in out.items()},
        notes=tuple(notes),
    )


# -------------------------------------------------------------------------------- aiokafka

_AIO_CONSUMER = aiokafka_renames("consumer")
_AIO_PRODUCER = aiokafka_renames("producer")
_AIO_DROPS = aiokafka_drops()
_SSL_KEYS = aiokafka_ssl_inputs()


def _aio_specials(ssl: dict[str, Any]) -> dict[str, _Special]:
    def servers(value: Any, out: dict[str, Any], notes: list[str]) -> None:
        out["bootstrap_servers"] = servers_list(value)

    def protocol(value: Any, out: dict[str, Any], notes: list[str]) -> None:
        out["security_protocol"] = str(value).upper()

    def ssl_key(key: str) -> _Special:
        def put(value: Any, out: dict[str, Any], notes: list[str]) -> None:
            ssl[_SSL_KEYS[key]] = value

        return put

    return {
        "bootstrap_servers": servers,
        "security_protocol": protocol,
        **{key: ssl_key(key) for key in _SSL_KEYS},
    }


def to_aiokafka_consumer(source: KafkaConfigSource) -> ClientConfig:
    """Keyword arguments for ``aiokafka.AIOKafkaConsumer`` (plus ``ssl``, see the module)."""
    notes: list[str] = []
    out: dict[str, Any] = {}
    ssl: dict[str, Any] = {}

    def assignors(value: Any, out: dict[str, Any], notes: list[str]) -> None:
        items = [value] if isinstance(value, str) or not isinstance(value, Iterable) else value
        items = list(items)
        classes = [item for item in items if not isinstance(item, str)]
        if len(classes) != len(items):
            notes.append(
                "consumer partition_assignment_strategy names are not understood by aiokafka; "
                "put assignor classes in KAFKA_CONFIG['aiokafka']['partition_assignment_strategy']"
            )
        if classes:
            out["partition_assignment_strategy"] = tuple(classes)

    specials = {
        **_aio_specials(ssl),
        "partition_assignment_strategy": assignors,
        "enable_auto_commit": _skip,
    }
    consumer = source.consumer
    _translate(consumer, _AIO_CONSUMER, specials, _AIO_DROPS, out, notes, "consumer", "aiokafka")
    raw = _raw(source.aiokafka, "consumer")
    if raw.get("enable_auto_commit"):
        notes.append("KAFKA_CONFIG['aiokafka'] 'enable_auto_commit' overridden: always off")
    out.update(raw)
    out["enable_auto_commit"] = False
    mpr = out.get("max_poll_records")
    return ClientConfig(
        config=out,
        notes=tuple(notes),
        max_poll_records=int(mpr) if mpr is not None else None,
        ssl=ssl,
    )


def to_aiokafka_producer(source: KafkaConfigSource) -> ClientConfig:
    """Keyword arguments for ``aiokafka.AIOKafkaProducer`` (plus ``ssl``, see the module)."""
    notes: list[str] = []
    out: dict[str, Any] = {}
    ssl: dict[str, Any] = {}

    def acks(value: Any, out: dict[str, Any], notes: list[str]) -> None:
        out["acks"] = _acks(value)

    def compression(value: Any, out: dict[str, Any], notes: list[str]) -> None:
        text = str(value).lower()
        out["compression_type"] = None if text == "none" else text

    def partitioner(value: Any, out: dict[str, Any], notes: list[str]) -> None:
        if callable(value):
            out["partitioner"] = value
        elif value not in ("murmur2", "murmur2_random", "default"):
            notes.append(
                f"producer partitioner {value!r} is not an aiokafka partitioner; using "
                "aiokafka's default (murmur2, like the Java client)"
            )

    specials = {
        **_aio_specials(ssl),
        "acks": acks,
        "compression_type": compression,
        "partitioner": partitioner,
    }
    _translate(
        source.producer, _AIO_PRODUCER, specials, _AIO_DROPS, out, notes, "producer", "aiokafka"
    )
    out.update(_raw(source.aiokafka, "producer"))
    return ClientConfig(config=out, notes=tuple(notes), ssl=ssl)
