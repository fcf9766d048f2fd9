"""What a configuration reload changed, for its log line (``configuration reloaded: ...``).

The services apply a reload between two loop iterations (``reload_config``); this module only
compares the old and new configuration. Settings that need a restart (ports, adapter, Kafka)
are named as such.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from da_app.settings import Settings
from da_core.config import Catalog

RESTART_KEYS = ("health_host", "health_port", "metrics_host", "metrics_port", "adapter")
"""``service`` settings read once at start."""


def describe_changes(old: Catalog, new: Catalog, module: str) -> list[str]:
    """What a reload changed for ``module``: its inputs, their window and fields, its
    dependencies, batch, trigger and commit policy (for the reload log line)."""
    changes: list[str] = []
    om, nm = old.module(module), new.module(module)
    added = [t for t in nm.inputs if t not in om.inputs]
    removed = [t for t in om.inputs if t not in nm.inputs]
    if added:
        changes.append("inputs added: " + ", ".join(added))
    if removed:
        changes.append("inputs removed: " + ", ".join(removed))
    for t in nm.inputs:
        a, b = old.topics.get(t), new.topics[t]
        if a is None or t in added:
            continue
        if (a.window, a.window_size) != (b.window, b.window_size):
            changes.append(f"{t} window {a.window}/{a.window_size} -> {b.window}/{b.window_size}")
            a = attrs.evolve(a, window=b.window, window_size=b.window_size)
        if a.all_fields() != b.all_fields():
            changes.append(f"{t} fields changed")
        elif a != b:
            changes.append(f"{t} settings changed")
    for label, x, y in (
        ("dependencies", om.dependencies, nm.dependencies),
        ("batch policy", om.batch, nm.batch),
        ("trigger", om.trigger, nm.trigger),
        ("readiness", om.readiness, nm.readiness),
        ("fill strategy", om.fill_strategy, nm.fill_strategy),
        ("output mode", om.output_mode, nm.output_mode),
        ("commit policy", old.commit, new.commit),
        ("data_expire_seconds", old.data_expire_seconds, new.data_expire_seconds),
    ):
        if x != y:
            changes.append(f"{label}: {x} -> {y}")
    return changes


def describe_reload(
    old: Settings, new: Settings, old_catalog: Catalog, new_catalog: Catalog, module: str
) -> list[str]:
    """``describe_changes`` plus the changed settings that take effect after a restart."""
    changes = describe_changes(old_catalog, new_catalog, module)
    for key in RESTART_KEYS:
        if getattr(old.service, key) != getattr(new.service, key):
            changes.append(f"{key} changed (takes effect after a restart)")
    if old.kafka != new.kafka:
        changes.append("KAFKA_CONFIG changed (takes effect after a restart)")
    return changes


def summary(module: str, changes: Sequence[str]) -> str:
    """The reload log line's text after ``configuration reloaded: ``."""
    return f"module {module}; " + ("; ".join(changes) if changes else "no changes")
