"""The guide's kafka-python-style ``KAFKA_CONFIG`` keys: the one table of what each key is.

Every key the framework accepts has one ``KafkaKey`` row in ``KAFKA_KEYS``: which side it
applies to, the kind of value it takes (what ``da_app.settings`` validates), and what it
becomes for each client (what ``da_adapters.kafka_config`` translates). Both read this table;
neither keeps a list of key names of its own.

Invariants of the table:

* ``scope`` is ``shared`` or ``security`` (both sides), ``consumer`` or ``producer``. A key
  is known to exactly one scope.
* A key with an ``ignored`` reason is accepted and dropped by the settings with a warning
  (the framework does that job itself); it never reaches a client.
* ``librdkafka`` / ``aiokafka`` name the client's property or argument when the value passes
  through unchanged. Keys whose value must be reshaped (``bootstrap_servers``, ``acks``,
  ``security_protocol``…) are translated by functions in ``kafka_config``, which take
  precedence; their client name is still given here when one exists, for the record.
* ``librdkafka_drop`` / ``aiokafka_drop``: the key is dropped for that client, with this
  reason in the client's notes. A key with neither a name nor a drop reason for a client is
  dropped with a generic "no equivalent" note.

Also here: the rejected keys (settings refused with a reason), the raw pass-through section
names, and the secret-key test used to redact settings before they are shown or logged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final, Literal

import attrs

Scope = Literal["shared", "security", "consumer", "producer"]
Side = Literal["consumer", "producer"]
Kind = Literal["int", "count", "bool", "text", "choice", "any", "servers", "acks"]
"""``int``: an integer >= 0; ``count``: an integer >= 1; ``bool``; ``text``: a non-empty
string; ``choice``: one of ``choices``; ``any``: passed as given (classes, callables);
``servers``: a list of ``host:port`` or a comma-separated string; ``acks``: ``'all'``, 0, 1."""

SIDES: Final[tuple[Side, Side]] = ("consumer", "producer")


@attrs.frozen
class KafkaKey:
    """One kafka-python setting (see the module docstring for the meaning of each field)."""

    name: str
    scope: Scope
    kind: Kind = "int"
    choices: tuple[str, ...] = ()
    librdkafka: str | None = None
    librdkafka_consumer: str | None = None
    """The consumer's property when it differs from ``librdkafka`` (the producer's)."""
    aiokafka: str | None = None
    aiokafka_ssl: str | None = None
    """The argument of ``aiokafka.helpers.create_ssl_context`` (or the context attribute) the
    value becomes: aiokafka takes a ready ``SSLContext``, which the adapter builds."""
    librdkafka_drop: str = ""
    aiokafka_drop: str = ""
    ignored: str = ""

    def applies_to(self, side: Side) -> bool:
        return self.scope in ("shared", "security", side)

    def librdkafka_for(self, side: Side) -> str | None:
        if side == "consumer" and self.librdkafka_consumer is not None:
            return self.librdkafka_consumer
        return self.librdkafka


def _k(name: str, scope: Scope, kind: Kind = "int", **kw: Any) -> KafkaKey:
    return KafkaKey(name, scope, kind, **kw)


def _same(name: str, scope: Scope, kind: Kind = "int", **kw: Any) -> KafkaKey:
    """A key aiokafka takes under its kafka-python name."""
    return KafkaKey(name, scope, kind, aiokafka=name, **kw)


_NEGOTIATED = "the clients negotiate the protocol version with the broker"
_RECONNECT = "aiokafka uses retry_backoff_ms"
_NO_BUFFERS = "not configurable in aiokafka"

KAFKA_KEYS: Final[tuple[KafkaKey, ...]] = (
    # ------------------------------------------------------------ shared: both sides
    _same("bootstrap_servers", "shared", "servers", librdkafka="bootstrap.servers"),
    _same("client_id", "shared", "text", librdkafka="client.id"),
    _same(
        "request_timeout_ms",
        "shared",
        librdkafka="request.timeout.ms",
        librdkafka_consumer="socket.timeout.ms",
    ),
    _same("retry_backoff_ms", "shared", librdkafka="retry.backoff.ms"),
    _k(
        "reconnect_backoff_ms",
        "shared",
        librdkafka="reconnect.backoff.ms",
        aiokafka_drop=_RECONNECT,
    ),
    _k(
        "reconnect_backoff_max_ms",
        "shared",
        librdkafka="reconnect.backoff.max.ms",
        aiokafka_drop=_RECONNECT,
    ),
    # The Java/kafka-python key is the period of the proactive metadata refresh (how soon a
    # topic created after subscribing is seen); librdkafka calls that period
    # topic.metadata.refresh.interval.ms. Its own metadata.max.age.ms is the cache's max age
    # and defaults to three refresh periods.
    _same("metadata_max_age_ms", "shared", librdkafka="topic.metadata.refresh.interval.ms"),
    _same("connections_max_idle_ms", "shared", librdkafka="connections.max.idle.ms"),
    _k(
        "receive_buffer_bytes",
        "shared",
        librdkafka="socket.receive.buffer.bytes",
        aiokafka_drop=_NO_BUFFERS,
    ),
    _k(
        "send_buffer_bytes",
        "shared",
        librdkafka="socket.send.buffer.bytes",
        aiokafka_drop=_NO_BUFFERS,
    ),
    _k("api_version", "shared", ignored=_NEGOTIATED),
    _k("api_version_auto_timeout_ms", "shared", ignored=_NEGOTIATED),
    # ------------------------------------------------------------ security: both sides
    _same(
        "security_protocol",
        "security",
        "choice",
        choices=("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"),
        librdkafka="security.protocol",
    ),
    _k("ssl_cafile", "security", "text", aiokafka_ssl="cafile", librdkafka="ssl.ca.location"),
    _k(
        "ssl_certfile",
        "security",
        "text",
        aiokafka_ssl="certfile",
        librdkafka="ssl.certificate.location",
    ),
    _k("ssl_keyfile", "security", "text", aiokafka_ssl="keyfile", librdkafka="ssl.key.location"),
    _k("ssl_password", "security", "text", aiokafka_ssl="password", librdkafka="ssl.key.password"),
    _k("ssl_crlfile", "security", "text", aiokafka_ssl="crlfile", librdkafka="ssl.crl.location"),
    _k("ssl_ciphers", "security", "text", aiokafka_ssl="ciphers", librdkafka="ssl.cipher.suites"),
    _k(
        "ssl_check_hostname",
        "security",
        "bool",
        librdkafka="ssl.endpoint.identification.algorithm",
        aiokafka_ssl="check_hostname",
    ),
    _same(
        "sasl_mechanism",
        "security",
        "choice",
        choices=("PLAIN", "GSSAPI", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"),
        librdkafka="sasl.mechanisms",
    ),
    _same("sasl_plain_username", "security", "text", librdkafka="sasl.username"),
    _same("sasl_plain_password", "security", "text", librdkafka="sasl.password"),
    _same(
        "sasl_kerberos_service_name", "security", "text", librdkafka="sasl.kerberos.service.name"
    ),
    _same(
        "sasl_kerberos_domain_name",
        "security",
        "text",
        librdkafka_drop="librdkafka derives it from the broker host",
    ),
    _same(
        "sasl_oauth_token_provider",
        "security",
        "any",
        librdkafka_drop="set an 'oauth_cb' in KAFKA_CONFIG['confluent'] instead",
    ),
    # ------------------------------------------------------------------------ consumer
    _same("group_id", "consumer", "text", librdkafka="group.id"),
    _same("group_instance_id", "consumer", "text", librdkafka="group.instance.id"),
    _same(
        "auto_offset_reset",
        "consumer",
        "choice",
        choices=("earliest", "latest", "none"),
        librdkafka="auto.offset.reset",
    ),
    _k("enable_auto_commit", "consumer", "bool"),
    _k(
        "auto_commit_interval_ms",
        "consumer",
        ignored="auto-commit is always off; commits follow OFFSET_COMMIT_CONFIG",
    ),
    # librdkafka has no such property: the confluent adapter passes it to consume()
    _same("max_poll_records", "consumer", "count"),
    _same("max_poll_interval_ms", "consumer", librdkafka="max.poll.interval.ms"),
    _same("session_timeout_ms", "consumer", librdkafka="session.timeout.ms"),
    _same("heartbeat_interval_ms", "consumer", librdkafka="heartbeat.interval.ms"),
    _same("fetch_min_bytes", "consumer", librdkafka="fetch.min.bytes"),
    _same("fetch_max_wait_ms", "consumer", librdkafka="fetch.wait.max.ms"),
    _same("fetch_max_bytes", "consumer", librdkafka="fetch.max.bytes"),
    _same("max_partition_fetch_bytes", "consumer", librdkafka="max.partition.fetch.bytes"),
    _same(
        "isolation_level",
        "consumer",
        "choice",
        choices=("read_uncommitted", "read_committed"),
        librdkafka="isolation.level",
    ),
    _k(
        "partition_assignment_strategy",
        "consumer",
        "any",
        librdkafka="partition.assignment.strategy",
    ),
    _same("check_crcs", "consumer", "bool", librdkafka="check.crcs"),
    _same(
        "exclude_internal_topics",
        "consumer",
        "bool",
        librdkafka_drop="librdkafka never matches internal topics by pattern",
    ),
    _same("client_rack", "consumer", "text", librdkafka="client.rack"),
    _k(
        "consumer_timeout_ms",
        "consumer",
        ignored="the framework polls with its own timeout (poll_timeout_seconds)",
    ),
    # ------------------------------------------------------------------------ producer
    _same("acks", "producer", "acks", librdkafka="acks"),
    _k(
        "retries",
        "producer",
        librdkafka="retries",
        aiokafka_drop="aiokafka retries until request_timeout_ms",
    ),
    _k(
        "max_in_flight_requests_per_connection",
        "producer",
        "count",
        librdkafka="max.in.flight.requests.per.connection",
        aiokafka_drop="aiokafka sends one batch per partition at a time",
    ),
    _same(
        "compression_type",
        "producer",
        "choice",
        choices=("none", "gzip", "snappy", "lz4", "zstd"),
        librdkafka="compression.type",
    ),
    _same("linger_ms", "producer", librdkafka="linger.ms"),
    _k("batch_size", "producer", librdkafka="batch.size", aiokafka="max_batch_size"),
    _k(
        "buffer_memory",
        "producer",
        librdkafka="queue.buffering.max.kbytes",
        aiokafka_drop="aiokafka bounds its buffer by max_batch_size per partition",
    ),
    _same("max_request_size", "producer", librdkafka="message.max.bytes"),
    _same("enable_idempotence", "producer", "bool", librdkafka="enable.idempotence"),
    _k(
        "delivery_timeout_ms",
        "producer",
        librdkafka="delivery.timeout.ms",
        aiokafka_drop="aiokafka bounds delivery by request_timeout_ms",
    ),
    _k("partitioner", "producer", "any", librdkafka="partitioner"),
    _k("max_block_ms", "producer", ignored="the framework applies back-pressure itself"),
)

KEYS_BY_NAME: Final[Mapping[str, KafkaKey]] = {k.name: k for k in KAFKA_KEYS}


def names(scope: Scope) -> frozenset[str]:
    """The keys of one scope."""
    return frozenset(k.name for k in KAFKA_KEYS if k.scope == scope)


KAFKA_SHARED_KEYS: Final = names("shared")
KAFKA_SECURITY_KEYS: Final = names("security")
KAFKA_CONSUMER_KEYS: Final = names("consumer")
KAFKA_PRODUCER_KEYS: Final = names("producer")
KAFKA_KNOWN_KEYS: Final = frozenset(KEYS_BY_NAME)

REJECTED_KEYS: Final[Mapping[str, str]] = {
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
"""kafka-python settings refused, with the reason."""

RAW_SECTIONS: Final[Mapping[str, str]] = {
    "confluent": "confluent",
    "librdkafka": "confluent",
    "aiokafka": "aiokafka",
}
"""Names of the raw pass-through sections of ``KAFKA_CONFIG`` → the client they are for."""


def librdkafka_renames(side: Side) -> dict[str, str]:
    """kafka-python key → librdkafka property, for the keys of ``side`` that have one."""
    out: dict[str, str] = {}
    for k in KAFKA_KEYS:
        target = k.librdkafka_for(side)
        if target is not None and k.applies_to(side):
            out[k.name] = target
    return out


def aiokafka_renames(side: Side) -> dict[str, str]:
    """kafka-python key → aiokafka constructor argument, for the keys of ``side``."""
    return {k.name: k.aiokafka for k in KAFKA_KEYS if k.aiokafka and k.applies_to(side)}


def aiokafka_ssl_inputs() -> dict[str, str]:
    """kafka-python ``ssl_*`` key → the SSL context input it becomes for aiokafka."""
    return {k.name: k.aiokafka_ssl for k in KAFKA_KEYS if k.aiokafka_ssl}


def librdkafka_drops() -> dict[str, str]:
    """Keys librdkafka has no use for → why (whichever side they appear on)."""
    return {k.name: k.librdkafka_drop for k in KAFKA_KEYS if k.librdkafka_drop}


def aiokafka_drops() -> dict[str, str]:
    """Keys aiokafka has no use for → why (whichever side they appear on)."""
    return {k.name: k.aiokafka_drop for k in KAFKA_KEYS if k.aiokafka_drop}


# ------------------------------------------------------------------ values shared by both

REDACTED: Final = "***"

_SECRET_MARKERS: Final = (
    "password",
    "secret",
    "token",
    "jaas",
    "credential",
    "private",
    # librdkafka's ``sasl.oauthbearer.config`` carries the unsecured JWS's claims, often a
    # client secret or a bearer token inline ("principal=... clientSecret=..."), under a
    # name that mentions none of the words above.
    "oauthbearer.config",
    "oauthbearer_config",
)


def is_secret_key(key: str) -> bool:
    """Whether a setting's value is a secret: its name mentions a password, secret, token,
    credential, JAAS config, private key or OAUTHBEARER configuration
    (``sasl.oauthbearer.config``), or it is an inline PEM key (``ssl.key.pem``)."""
    k = key.lower()
    return any(m in k for m in _SECRET_MARKERS) or k.endswith("key.pem")


def redact(settings: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``settings`` (recursively) with every secret value replaced by ``'***'``."""
    out: dict[str, Any] = {}
    for key, value in settings.items():
        if isinstance(key, str) and is_secret_key(key) and value is not None:
            out[key] = REDACTED
        elif isinstance(value, Mapping):
            out[key] = redact(value)
        else:
            out[key] = value
    return out


def servers_list(value: Any) -> list[str]:
    """``bootstrap_servers`` as a list: accepts a list/tuple or a comma-separated string."""
    if value is None:
        return []
    if isinstance(value, str):
        parts: Iterable[Any] = value.split(",")
    elif isinstance(value, (list, tuple)):
        parts = value
    else:
        parts = [value]
    return [str(p).strip() for p in parts if str(p).strip()]
