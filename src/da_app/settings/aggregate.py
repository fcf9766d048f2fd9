"""``Settings``: everything a deployment configures, validated once into frozen values.

``Settings.from_raw`` validates a raw configuration (sections normalised by ``loading``, the
catalog by ``da_core.catalog.build_catalog``, Kafka by ``kafka``, the service section by
``service``) and raises one ``ConfigError`` listing every problem, each naming the key. Nothing
past this package reads the raw mapping.

Environment: ``DATA_ANALYSIS_LOG`` (log file), ``LOG_LEVEL``, ``DATA_ANALYSIS_LOG_FORMAT``,
``DATA_ANALYSIS_HEALTH_HOST``, ``DATA_ANALYSIS_HEALTH_PORT``, ``DATA_ANALYSIS_METRICS_HOST`` and
``DATA_ANALYSIS_METRICS_PORT`` override the ``service`` section's ``log_file``, ``log_level``,
``log_format``, ``health_*`` and ``metrics_*``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Final

import attrs

from da_app.settings._text import suggest
from da_app.settings.kafka import KafkaSettings, parse_kafka
from da_app.settings.loading import (
    CONFIG_ENV_VAR,
    SECTION_ALIASES,
    find_config_file,
    load_raw_config,
    normalize,
    searched_places,
)
from da_app.settings.paths import rename_problems, style_of, written_sections
from da_app.settings.service import (
    ADAPTER_ENV_VAR,
    AdapterName,
    ServiceSettings,
    parse_service,
)
from da_core.catalog import build_catalog, default_catalog
from da_core.config import Catalog
from da_core.errors import ConfigError

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
    policy), Kafka and the service. ``source`` is the file it was loaded from, if any.

    ``searched``: where ``load`` looked for a file (``loading.searched_places``), for the
    message of a service that finds no Kafka configuration; empty for ``from_raw``.

    ``module_keys``: per module, the names of the settings its ``modules`` entry in the file
    gives explicitly; they win over the service section's defaults for that module
    (``build_module_catalog``), which a catalog alone cannot tell from its own defaults.
    """

    catalog: Catalog
    kafka: KafkaSettings = attrs.field(factory=KafkaSettings)
    service: ServiceSettings = attrs.field(factory=ServiceSettings)
    source: str | None = None
    module_keys: Mapping[str, frozenset[str]] = attrs.field(factory=dict)
    searched: tuple[str, ...] = ()

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
        norm = normalize(raw, problems)
        env = os.environ if environ is None else environ
        service = parse_service(norm.get("SERVICE_CONFIG"), env, problems)
        kafka = parse_kafka(norm.get("KAFKA_CONFIG"), "KAFKA_CONFIG", problems)
        cat_raw = {dst: norm[src] for src, dst in _CATALOG_SECTIONS.items() if src in norm}
        if "TOPIC_DETAIL" in cat_raw:
            cat_raw["TOPIC_DETAIL"] = merge_topic_readers(cat_raw["TOPIC_DETAIL"])
        for key in ("data_expire_seconds", "dead_letter_topic"):
            if key in service.configured:
                cat_raw[key] = getattr(service, key)
        try:
            catalog = build_catalog(cat_raw)
        except ConfigError as exc:
            problems.extend(exc.problems)
            problems.extend(_new_topic_hints(cat_raw.get("TOPIC_DETAIL"), exc.problems))
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
        service = _poll_timeout(service, kafka, problems, explicit_kafka=False)
        if problems:
            written = written_sections(raw, SECTION_ALIASES)
            raise ConfigError(rename_problems(problems, written, style_of(source)))
        return cls(
            catalog=catalog,
            kafka=kafka,
            service=service,
            source=source,
            module_keys=_module_keys(norm.get("MODULES")),
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None) -> Settings:
        """Find, load and validate the configuration (defaults when no file is found)."""
        found = find_config_file(path)
        raw = load_raw_config(found) if found is not None else {}
        settings = cls.from_raw(raw, source=str(found) if found is not None else None)
        return attrs.evolve(settings, searched=tuple(searched_places(path)))

    def with_kafka_config(self, kafka_config: Mapping[str, Any] | KafkaSettings) -> Settings:
        """These settings with Kafka replaced (a service's ``kafka_config=`` argument). A
        ``max_poll_records`` in its consumer settings wins over the service section's."""
        problems: list[str] = []
        kafka = (
            kafka_config
            if isinstance(kafka_config, KafkaSettings)
            else parse_kafka(kafka_config, "kafka_config", problems)
        )
        service, kafka = _reconcile_poll_records(self.service, kafka, problems, explicit_kafka=True)
        service = _poll_timeout(service, kafka, problems, explicit_kafka=True)
        if problems:
            raise ConfigError(problems)
        return attrs.evolve(self, kafka=kafka, service=service)

    def resolve_adapter(self, *, asynchronous: bool) -> AdapterName:
        """The adapter to use: the configured one (``service.adapter`` or the environment's
        ``DATA_ANALYSIS_ADAPTER``), else aiokafka for the async service and confluent-kafka
        for the sync one. With no brokers configured and no adapter asked for, raises
        ``ConfigError`` naming every place the configuration was looked for: the in-memory
        bus is never a silent fallback (a service that runs on it consumes nothing)."""
        if self.service.adapter is not None:
            return self.service.adapter
        if not self.kafka.has_brokers:
            raise ConfigError(self.no_kafka_message())
        return "aiokafka" if asynchronous else "confluent"

    def no_kafka_message(self) -> str:
        """Why no adapter could be chosen: no brokers, where the configuration was looked
        for, and the ways to configure Kafka or ask for the in-memory bus."""
        if self.source is not None:
            found = f"the configuration file {self.source} sets no bootstrap_servers"
        elif self.searched:
            found = "no configuration file was found"
        else:
            found = "the configuration given in code sets no bootstrap_servers"
        lines = [f"no Kafka brokers configured: {found}."]
        if self.searched:
            lines.append("Looked for a configuration file in:")
            lines.extend(f"  - {place}" for place in self.searched)
        lines.append(
            "Set KAFKA_CONFIG['bootstrap_servers'] (or KAFKA_CONFIG['consumer'] and "
            "['producer']) in that file or in the kafka_config= argument, or point "
            f"{CONFIG_ENV_VAR} at your file; to run on the embedded in-memory bus (tests, "
            "demos), ask for it: adapter='memory', service: {adapter: memory} in the file, "
            f"or {ADAPTER_ENV_VAR}=memory."
        )
        return "\n".join(lines)

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


def _new_topic_hints(topics: Any, problems: list[str]) -> list[str]:
    """For each ``TOPIC_DETAIL`` entry naming no topic of the default catalog that a problem
    is about: say so (a misspelt name, or the guide's placeholder ``REAL-STATION-DATA``)."""
    if not isinstance(topics, Mapping):
        return []
    known = default_catalog().topics
    hints = []
    for name in topics:
        if isinstance(name, str) and name not in known and any(name in p for p in problems):
            hints.append(
                f"TOPIC_DETAIL[{name!r}]: not a topic of the default catalog"
                f"{suggest(name, known)}; a new topic needs its 'fields' and the 'modules' "
                "that read it"
            )
    return hints


def merge_topic_readers(topics: Any) -> Any:
    """``TOPIC_DETAIL`` with each entry's ``modules`` list merged with the default readers of
    that topic (the default catalog's), so listing some modules adds readers and never drops
    the others (the guide's ConfigMap lists two of the five readers of STATION-PARAM). To stop
    a module reading a topic, set that module's ``inputs`` (``MODULES['name']['inputs']``),
    which wins. Malformed values are left for ``build_catalog`` to report."""
    if not isinstance(topics, Mapping):
        return topics
    defaults = default_catalog().topics
    out: dict[Any, Any] = {}
    for name, entry in topics.items():
        base = defaults.get(name) if isinstance(name, str) else None
        listed = entry.get("modules") if isinstance(entry, Mapping) else None
        if base is not None and isinstance(listed, (list, tuple)):
            merged = [*listed, *(m for m in base.modules if m not in listed)]
            entry = {**entry, "modules": merged}
        out[name] = entry
    return out


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


def _poll_timeout(
    service: ServiceSettings, kafka: KafkaSettings, problems: list[str], *, explicit_kafka: bool
) -> ServiceSettings:
    """The guide's ``KAFKA_CONFIG`` ``timeout_ms`` becomes ``poll_timeout_seconds`` (one poll's
    longest wait), unless the service section sets another value (a problem, from a file)."""
    ms = kafka.poll_timeout_ms
    if ms is None:
        return service
    seconds = ms / 1000.0
    configured = "poll_timeout_seconds" in service.configured
    if configured and service.poll_timeout_seconds != seconds and not explicit_kafka:
        problems.append(
            f"poll timeout: SERVICE_CONFIG['poll_timeout_seconds'] says "
            f"{service.poll_timeout_seconds:g} s but KAFKA_CONFIG's timeout_ms says {ms} ms; "
            "set it in one place"
        )
        return service
    return attrs.evolve(service, poll_timeout_seconds=seconds)


def _module_keys(modules: Any) -> dict[str, frozenset[str]]:
    """The keys each ``modules`` entry sets (the section is valid: build_catalog checked it)."""
    if not isinstance(modules, Mapping):
        return {}
    return {
        str(name): frozenset(str(k) for k in spec)
        for name, spec in modules.items()
        if isinstance(spec, Mapping)
    }
