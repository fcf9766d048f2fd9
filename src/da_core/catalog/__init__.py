"""The default topic catalog of SPEC §2, as data, and building a ``Catalog`` from a mapping.

``build_catalog`` reads the guide's names (``TOPIC_DETAIL``, ``MODULE_DEPENDENCIES``,
``MODULE_OUTPUT_TOPICS``, ``OFFSET_COMMIT_CONFIG``) as well as their lower-case forms
(``topics``, ``module_dependencies``, ``module_output_topics``, ``offset_commit``) and a
``modules`` section. A topic or module given there is merged over the default entry of the same
name; unknown keys are errors naming the key.

Layout: ``defaults`` (the default catalog as data, ``default_catalog``) and ``builder``
(``build_catalog``). Every public name is re-exported here: import from ``da_core.catalog``.
"""

from da_core.catalog.builder import build_catalog
from da_core.catalog.defaults import (
    DAY,
    DEFAULT_DEPENDENCIES,
    DEFAULT_TOPICS,
    HOUR,
    MODULE_NAMES,
    default_catalog,
)

__all__ = [
    "DAY",
    "DEFAULT_DEPENDENCIES",
    "DEFAULT_TOPICS",
    "HOUR",
    "MODULE_NAMES",
    "build_catalog",
    "default_catalog",
]
