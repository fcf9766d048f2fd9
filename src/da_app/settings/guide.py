"""The guide's module values: ``KAFKA_CONFIG``, ``OFFSET_COMMIT_CONFIG``, ``TOPIC_DETAIL``,
``MODULE_DEPENDENCIES`` and ``MODULE_OUTPUT_TOPICS`` as plain dicts (what ``d_a.config``
exposes), with their defaults. Values are not validated here (``Settings.from_raw`` does that).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, Final

import attrs

from da_adapters.kafka_keys import SIDES
from da_app.settings.kafka import DEFAULT_GROUP_ID
from da_app.settings.loading import normalize_raw_config
from da_core.catalog import default_catalog
from da_core.config import TopicConfig

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
    default entry of that topic (its ``modules`` list adds to the default readers, see
    ``aggregate.merge_topic_readers``); the other sections update their defaults key by key.
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
                    listed = entry.get("modules")
                    merged = {**base, **entry}
                    if isinstance(listed, (list, tuple)):  # as Settings merges the readers
                        readers = base.get("modules") or []
                        merged["modules"] = [*listed, *(m for m in readers if m not in listed)]
                    default[name] = merged
                else:
                    default[name] = entry
        else:
            default.update(value)
    return out


def _merge_kafka(default: dict[str, Any], user: Mapping[str, Any]) -> dict[str, Any]:
    if not any(side in user for side in SIDES):
        return dict(user)
    merged: dict[str, Any] = {}
    top = {k: v for k, v in user.items() if k not in SIDES}
    for side in SIDES:
        base = {k: v for k, v in default.get(side, {}).items() if k not in top}
        own = user.get(side, {})
        merged[side] = {**base, **own} if isinstance(own, Mapping) else own
    merged.update(top)
    return merged
