"""The catalog a service runs: per-module settings merged once, in one order.

A module's ``fill_strategy``, ``output_mode``, ``batch_timeout``, ``completion_ratio`` and
``min_run_interval_seconds`` can be set in four places. ``build_module_catalog`` merges them
for the module the service runs, first match wins:

1. the service's constructor argument (``overrides``), when not None;
2. the file's ``modules.<name>`` entry (``Settings.module_keys`` says which keys it gave);
3. the file's ``service`` section (a key in ``ServiceSettings.configured``, or, for settings
   built in code, a value other than the field's default);
4. the catalog's own value (the default catalog's, or what a catalog built in code says);
   except for ``ALWAYS_DEFAULT_KEYS`` (``min_run_interval_seconds``), where the service
   section's value applies even when it is its default: the catalog's default for it is the
   engine's "no limit", the service's a production default (1 s).

``data_expire_seconds`` follows the same order without step 2 (it is the catalog's, not a
module's); ``topics`` and ``interval_seconds`` arguments replace the module's inputs and
trigger interval. Other modules of the catalog are left as they are. The catalog's intake
limits (``Catalog.limits``) are the service section's (``intake_limits``).

The file's values were validated when the settings were built; the merged catalog is
validated once here, which is where constructor arguments are checked.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

import attrs

from da_app.settings.aggregate import Settings
from da_app.settings.service import (
    ALWAYS_DEFAULT_KEYS,
    MODULE_DEFAULT_KEYS,
    ServiceSettings,
    intake_limits,
)
from da_core.config import Catalog, ModuleConfig

OVERRIDE_KEYS: Final = (
    "topics",
    "data_expire_seconds",
    "interval_seconds",
    *MODULE_DEFAULT_KEYS,
)
"""The keys ``overrides`` may hold (the services' constructor arguments of the same names);
None means "not given"."""

_Apply = Callable[[ModuleConfig, Any], ModuleConfig]

_APPLY: Final[Mapping[str, _Apply]] = {
    "fill_strategy": lambda m, v: attrs.evolve(m, fill_strategy=v),
    "output_mode": lambda m, v: attrs.evolve(m, output_mode=v),
    "batch_timeout": lambda m, v: attrs.evolve(
        m, batch=attrs.evolve(m.batch, timeout_seconds=float(v))
    ),
    "completion_ratio": lambda m, v: attrs.evolve(
        m, batch=attrs.evolve(m.batch, completion_ratio=float(v))
    ),
    "min_run_interval_seconds": lambda m, v: attrs.evolve(
        m, trigger=attrs.evolve(m.trigger, min_run_interval=float(v))
    ),
}


def build_module_catalog(
    settings: Settings,
    module_name: str,
    overrides: Mapping[str, Any] | None = None,
    *,
    base: Catalog | None = None,
) -> Catalog:
    """``base`` (default: ``settings.catalog``) with the settings of ``module_name`` merged as
    the module docstring says, validated. A module the catalog lacks is left to the caller
    (``catalog.module(name)`` raises the clear error). Raises ``ConfigError`` listing every
    problem of the merged catalog; ``TypeError`` for a key not in ``OVERRIDE_KEYS``."""
    given = dict(overrides or {})
    unknown = sorted(set(given) - set(OVERRIDE_KEYS))
    if unknown:
        raise TypeError(f"build_module_catalog: unknown override(s) {', '.join(unknown)}")
    cat = settings.catalog if base is None else base
    module = cat.modules.get(module_name)
    if module is not None:
        cat = cat.replace_module(_merged_module(module, settings, given))
    expire = given.get("data_expire_seconds")
    if expire is None and _service_sets(settings.service, "data_expire_seconds"):
        expire = settings.service.data_expire_seconds
    if expire is not None:
        cat = attrs.evolve(cat, data_expire_seconds=float(expire))
    cat = attrs.evolve(cat, limits=intake_limits(settings.service))
    return cat.validate()


def _merged_module(m: ModuleConfig, settings: Settings, given: Mapping[str, Any]) -> ModuleConfig:
    in_file = settings.module_keys.get(m.name, frozenset())
    for key in MODULE_DEFAULT_KEYS:
        value = given.get(key)
        if value is None:
            if key in in_file or not (
                key in ALWAYS_DEFAULT_KEYS or _service_sets(settings.service, key)
            ):
                continue  # the catalog's value stands: the module entry's, or its default
            value = getattr(settings.service, key)
        m = _APPLY[key](m, value)
    topics = given.get("topics")
    if topics is not None:
        m = attrs.evolve(m, inputs=tuple(topics))
    interval = given.get("interval_seconds")
    if interval is not None:
        m = attrs.evolve(m, trigger=attrs.evolve(m.trigger, interval_seconds=interval))
    return m


_DEFAULTS: Final = ServiceSettings()


def _service_sets(service: ServiceSettings, key: str) -> bool:
    """Whether the service section sets ``key``: given in the file or environment, or (for
    settings built in code, which list nothing in ``configured``) not the default."""
    return key in service.configured or getattr(service, key) != getattr(_DEFAULTS, key)
