"""The guide's configuration names: ``from d_a.config import KAFKA_CONFIG`` and friends.

``KAFKA_CONFIG``, ``OFFSET_COMMIT_CONFIG``, ``TOPIC_DETAIL``, ``MODULE_DEPENDENCIES`` and
``MODULE_OUTPUT_TOPICS`` are the deployment's configuration file (found as
``da_app.settings.load_raw_config`` finds it: ``DATA_ANALYSIS_CONFIG``, then ``config.yaml``,
``config.yml``, ``config.py`` or ``config/config.py`` in the working directory) merged over
the defaults (``da_app.settings.guide_config``). With no file they are the defaults: the
default catalog, and a ``KAFKA_CONFIG`` without ``bootstrap_servers``, which means the
embedded in-memory bus. ``SERVICE_CONFIG`` (the ``service`` section, ``{}`` by default), any
other UPPER_CASE name the file defines, and ``CONFIG_FILE`` (the file used, or None) are
exposed too. The values are read once, when this module is first imported; they are plain
dicts, as in the guide, and are validated when a service is built from them.

Deployments that mount their file at ``/app/d_a/config.py`` (the guide's Docker and
Kubernetes examples): a file mounted over this module simply replaces it, so
``from d_a.config import KAFKA_CONFIG`` returns that file's values; the services, however,
load their settings (topics, modules, commit policy, service section) through
``da_app.settings``, so point ``DATA_ANALYSIS_CONFIG`` at the file
(``DATA_ANALYSIS_CONFIG=/app/d_a/config.py``), which is the supported way, or mount it as
``config.py`` (or ``config.yaml``) in the working directory (``/app``). Do not point
``DATA_ANALYSIS_CONFIG`` at this module itself: it reports that as an error.
"""

from __future__ import annotations

from typing import Any

from da_app.settings import find_config_file, guide_config, load_raw_config

_file = find_config_file()
_values: dict[str, Any] = guide_config(load_raw_config(_file) if _file is not None else {})

CONFIG_FILE: str | None = str(_file) if _file is not None else None
KAFKA_CONFIG: dict[str, Any] = _values.pop("KAFKA_CONFIG")
OFFSET_COMMIT_CONFIG: dict[str, Any] = _values.pop("OFFSET_COMMIT_CONFIG")
TOPIC_DETAIL: dict[str, Any] = _values.pop("TOPIC_DETAIL")
MODULE_DEPENDENCIES: dict[str, Any] = _values.pop("MODULE_DEPENDENCIES")
MODULE_OUTPUT_TOPICS: dict[str, Any] = _values.pop("MODULE_OUTPUT_TOPICS")
SERVICE_CONFIG: dict[str, Any] = _values.pop("SERVICE_CONFIG", None) or {}
globals().update({k: v for k, v in _values.items() if k.isupper() and k not in globals()})
del _file, _values
