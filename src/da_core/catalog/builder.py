"""Building a ``Catalog`` from a mapping, merged over the default catalog.

``build_catalog`` reads the guide's names (``TOPIC_DETAIL``, ``MODULE_DEPENDENCIES``,
``MODULE_OUTPUT_TOPICS``, ``OFFSET_COMMIT_CONFIG``) as well as their lower-case forms
(``topics``, ``module_dependencies``, ``module_output_topics``, ``offset_commit``) and a
``modules`` section. A topic or module given there is merged over the default entry of the same
name; unknown keys are errors naming the key.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import attrs

from da_core.catalog.defaults import default_catalog
from da_core.config import (
    Catalog,
    ModuleConfig,
    OffsetCommitPolicy,
    TopicConfig,
)
from da_core.errors import ConfigError

_TOPIC_KEYS = {f.name for f in attrs.fields(TopicConfig)} | {"window_kind", "global"}
_MODULE_KEYS = {
    "inputs",
    "topics",
    "dependencies",
    "output_topic",
    "fill_strategy",
    "field_fill",
    "required_topics",
    "min_ready_ratio",
    "required_dependencies",
    "interval_seconds",
    "callback_max_retries",
    "callback_retry_delay",
    "min_run_interval_seconds",
    "batch_timeout",
    "completion_ratio",
    "output_mode",
}
_COMMIT_KEYS = {f.name for f in attrs.fields(OffsetCommitPolicy)}
_TOP_KEYS = {
    "TOPIC_DETAIL": "topics",
    "topics": "topics",
    "MODULE_DEPENDENCIES": "deps",
    "module_dependencies": "deps",
    "MODULE_OUTPUT_TOPICS": "outputs",
    "module_output_topics": "outputs",
    "OFFSET_COMMIT_CONFIG": "commit",
    "offset_commit": "commit",
    "modules": "modules",
    "data_expire_seconds": "expire",
    "dead_letter_topic": "dlq",
}


def build_catalog(raw: Mapping[str, Any], base: Catalog | None = None) -> Catalog:
    """Build and validate a catalog from the guide's names, merged over ``base`` (the default).

    Keys other than those of the catalog (e.g. ``KAFKA_CONFIG``) are ignored here; they belong
    to the application settings. Raises ``ConfigError`` listing every problem.
    """
    base = base if base is not None else default_catalog()
    problems: list[str] = []
    sections: dict[str, Any] = {}
    for key, value in raw.items():
        if key in _TOP_KEYS:
            sections[_TOP_KEYS[key]] = value

    topics = dict(base.topics)
    explicit_readers = False
    for name, spec in _mapping(sections.get("topics"), "TOPIC_DETAIL", problems).items():
        where = f"TOPIC_DETAIL[{name!r}]"
        spec = _mapping(spec, where, problems)
        unknown = sorted(set(spec) - _TOPIC_KEYS)
        if unknown:
            problems.append(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}")
        changes: dict[str, Any] = {}
        for k, v in spec.items():
            if k not in _TOPIC_KEYS:
                continue
            if k == "window_kind":
                k = "window"
            if k == "global":
                k = "is_global"
            if k in ("fields", "gun_fields", "modules"):
                v = _names(v, f"{where}.{k}", problems)
                explicit_readers |= k == "modules"
            if k == "field_fill":
                v = dict(_mapping(v, f"{where}.field_fill", problems))
            if k == "expire_seconds" and v in ("never", "inf", "infinity"):
                v = math.inf
            changes[k] = v
        if changes.get("is_global") and "extractor" not in changes:
            changes["extractor"] = "global"
        try:
            topics[name] = attrs.evolve(topics.get(name, TopicConfig(name=name)), **changes)
        except TypeError as exc:
            problems.append(f"{where}: {exc}")

    modules = dict(base.modules)
    deps = _mapping(sections.get("deps"), "MODULE_DEPENDENCIES", problems)
    outputs = _mapping(sections.get("outputs"), "MODULE_OUTPUT_TOPICS", problems)
    mod_specs = _mapping(sections.get("modules"), "modules", problems)
    for name in {*deps, *outputs, *mod_specs}:
        modules.setdefault(name, ModuleConfig(name=name))
    if explicit_readers:
        for name, m in list(modules.items()):
            readers = tuple(t.name for t in topics.values() if name in t.modules)
            modules[name] = attrs.evolve(m, inputs=readers)
    for name, value in deps.items():
        modules[name] = attrs.evolve(
            modules[name], dependencies=_names(value, f"MODULE_DEPENDENCIES[{name!r}]", problems)
        )
    for name, value in outputs.items():
        if not isinstance(value, str) or not value:
            problems.append(f"MODULE_OUTPUT_TOPICS[{name!r}]: expected a topic name")
            continue
        modules[name] = attrs.evolve(modules[name], output_topic=value)
    for name, spec in mod_specs.items():
        modules[name] = _module(
            modules[name], _mapping(spec, f"modules[{name!r}]", problems), problems
        )

    commit = base.commit
    commit_spec = _mapping(sections.get("commit"), "OFFSET_COMMIT_CONFIG", problems)
    unknown = sorted(set(commit_spec) - _COMMIT_KEYS)
    if unknown:
        problems.append(f"OFFSET_COMMIT_CONFIG: unknown key(s) {', '.join(map(repr, unknown))}")
    try:
        commit = attrs.evolve(commit, **{k: v for k, v in commit_spec.items() if k in _COMMIT_KEYS})
    except TypeError as exc:
        problems.append(f"OFFSET_COMMIT_CONFIG: {exc}")
    expire = sections.get("expire", base.data_expire_seconds)
    if not isinstance(expire, (int, float)):
        problems.append("data_expire_seconds: expected a number of seconds")
        expire = base.data_expire_seconds
    dlq = sections.get("dlq", base.dead_letter_topic)
    if problems:
        raise ConfigError(problems)
    cat = Catalog(
        topics=topics,
        modules=modules,
        commit=commit,
        data_expire_seconds=float(expire),
        dead_letter_topic=str(dlq),
    )
    return cat.validate()


def _module(m: ModuleConfig, spec: Mapping[str, Any], problems: list[str]) -> ModuleConfig:
    where = f"modules[{m.name!r}]"
    unknown = sorted(set(spec) - _MODULE_KEYS)
    if unknown:
        problems.append(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}")
    r, t, b = m.readiness, m.trigger, m.batch
    changes: dict[str, Any] = {}
    for k, v in spec.items():
        if k in ("inputs", "topics"):
            changes["inputs"] = _names(v, f"{where}.{k}", problems)
        elif k == "dependencies":
            changes["dependencies"] = _names(v, f"{where}.{k}", problems)
        elif k in ("output_topic", "fill_strategy", "output_mode"):
            changes[k] = v
        elif k == "field_fill":
            changes[k] = dict(_mapping(v, f"{where}.{k}", problems))
        elif k == "required_topics":
            r = attrs.evolve(r, required_topics=_names(v, f"{where}.{k}", problems))
        elif k == "min_ready_ratio":
            r = attrs.evolve(r, min_ratio=float(v))
        elif k == "required_dependencies":
            r = attrs.evolve(r, required_dependencies=_names(v, f"{where}.{k}", problems))
        elif k == "interval_seconds":
            t = attrs.evolve(t, interval_seconds=None if v is None else float(v))
        elif k == "callback_max_retries":
            t = attrs.evolve(t, callback_max_retries=int(v))
        elif k == "callback_retry_delay":
            t = attrs.evolve(t, callback_retry_delay=float(v))
        elif k == "min_run_interval_seconds":
            t = attrs.evolve(t, min_run_interval=float(v))
        elif k == "batch_timeout":
            b = attrs.evolve(b, timeout_seconds=float(v))
        elif k == "completion_ratio":
            b = attrs.evolve(b, completion_ratio=float(v))
    return attrs.evolve(m, readiness=r, trigger=t, batch=b, **changes)


def _mapping(value: Any, where: str, problems: list[str]) -> Mapping[str, Any]:
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return value
    problems.append(f"{where}: expected a mapping")
    return {}


def _names(value: Any, where: str, problems: list[str]) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (list, tuple)):
        out = tuple(v for v in value if isinstance(v, str) and v != "...")
        if len(out) != len([v for v in value if v != ...]) and not all(
            isinstance(v, str) or v is ... for v in value
        ):
            problems.append(f"{where}: expected a list of names")
        return out
    problems.append(f"{where}: expected a list of names")
    return ()
