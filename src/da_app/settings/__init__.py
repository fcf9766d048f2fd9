"""Finding, loading and validating the configuration: the one place raw dicts are read.

One module per concern:

* ``loading``: where the file is found (explicit path, ``DATA_ANALYSIS_CONFIG``, the working
  directory), reading YAML or executing the guide's ``config.py``, the section names;
* ``kafka``: ``KafkaSettings``, the guide's ``KAFKA_CONFIG`` validated against the key table
  of ``da_adapters.kafka_keys`` (which the client translations read too);
* ``service``: ``ServiceSettings``, the ``service`` section validated from its table;
* ``aggregate``: ``Settings``, all of it validated at once into one ``ConfigError``;
* ``modules``: ``build_module_catalog``, the catalog a service runs, per-module settings
  merged once (constructor argument > ``modules.<name>`` > ``service`` > catalog);
* ``guide``: the guide's module-level dicts (``d_a.config``).

Every name is importable from ``da_app.settings``.
"""

from __future__ import annotations

from da_adapters.kafka_keys import (
    KAFKA_CONSUMER_KEYS,
    KAFKA_PRODUCER_KEYS,
    KAFKA_SECURITY_KEYS,
    KAFKA_SHARED_KEYS,
)
from da_app.settings.aggregate import Settings
from da_app.settings.guide import DEFAULT_KAFKA_CONFIG, default_guide_config, guide_config
from da_app.settings.kafka import DEFAULT_GROUP_ID, KafkaSettings
from da_app.settings.loading import (
    CANDIDATE_FILES,
    CONFIG_ENV_VAR,
    find_config_file,
    load_raw_config,
    normalize_raw_config,
    searched_places,
)
from da_app.settings.modules import OVERRIDE_KEYS, build_module_catalog
from da_app.settings.service import (
    ADAPTER_ENV_VAR,
    ADAPTERS,
    LOG_FILE_ENV_VAR,
    LOG_FORMATS,
    LOG_LEVEL_ENV_VAR,
    LOG_LEVELS,
    MODULE_DEFAULT_KEYS,
    SERVICE_ENV_VARS,
    AdapterName,
    ServiceSettings,
    service_help,
    service_keys,
)

__all__ = [
    "ADAPTERS",
    "ADAPTER_ENV_VAR",
    "CANDIDATE_FILES",
    "CONFIG_ENV_VAR",
    "DEFAULT_GROUP_ID",
    "DEFAULT_KAFKA_CONFIG",
    "KAFKA_CONSUMER_KEYS",
    "KAFKA_PRODUCER_KEYS",
    "KAFKA_SECURITY_KEYS",
    "KAFKA_SHARED_KEYS",
    "LOG_FILE_ENV_VAR",
    "LOG_FORMATS",
    "LOG_LEVELS",
    "LOG_LEVEL_ENV_VAR",
    "MODULE_DEFAULT_KEYS",
    "OVERRIDE_KEYS",
    "SERVICE_ENV_VARS",
    "AdapterName",
    "KafkaSettings",
    "ServiceSettings",
    "Settings",
    "build_module_catalog",
    "default_guide_config",
    "find_config_file",
    "guide_config",
    "load_raw_config",
    "normalize_raw_config",
    "searched_places",
    "service_help",
    "service_keys",
]
