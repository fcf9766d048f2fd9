"""The guide's configuration names: ``from d_a.config import KAFKA_CONFIG`` and friends.

``KAFKA_CONFIG``, ``OFFSET_COMMIT_CONFIG``, ``TOPIC_DETAIL``, ``MODULE_DEPENDENCIES`` and
``MODULE_OUTPUT_TOPICS`` are the deployment's configuration file (found as
``da_app.settings.find_config_file`` finds it: ``DATA_ANALYSIS_CONFIG``, then ``config.yaml``,
``config.yml``, ``config.py`` or ``config/config.py`` in the working directory, then a
``d_a/config.py`` under a ``sys.path`` entry other than this package's) merged over the
defaults (``da_app.settings.guide_config``). With no file they are the defaults: the default
catalog, and a ``KAFKA_CONFIG`` without ``bootstrap_servers``, which a service refuses unless
the in-memory bus is asked for (``adapter='memory'``). ``SERVICE_CONFIG`` (the ``service``
section, ``{}`` by default), any other UPPER_CASE name the file defines, and ``CONFIG_FILE``
(the file used, or None) are exposed too. The values are read once, when this module is first
imported; they are plain dicts, as in the guide, and are validated when a service is built.

The guide's Docker and Kubernetes layout (the package installed with pip, ``PYTHONPATH=/app``,
the ConfigMap's ``config.py`` mounted at ``/app/d_a/config.py``): Python imports this module,
not the mounted file (an installed regular package wins over a directory without
``__init__.py``), and this module finds the mounted file through ``sys.path`` and exposes its
values; the services find it the same way. Do not point ``DATA_ANALYSIS_CONFIG`` at this
module itself: it reports that as an error.
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
