"""Finding and loading the configuration file, and naming its sections.

Where the configuration comes from (``find_config_file``), first match wins:

1. the explicit path given to ``load_raw_config`` / ``Settings.load``;
2. the file named by the environment variable ``DATA_ANALYSIS_CONFIG``;
3. ``config.yaml``, ``config.yml``, ``config.py``, ``config/config.py`` in the working directory;
4. ``d_a/config.py`` in a ``sys.path`` entry, in ``sys.path`` order, other than the installed
   package's own ``d_a/config.py``: the guide's Docker and Kubernetes layout (the package
   installed with pip, ``PYTHONPATH=/app``, the ConfigMap's ``config.py`` mounted at
   ``/app/d_a/config.py``).

An explicit path or ``DATA_ANALYSIS_CONFIG`` naming a missing file is an error; finding nothing
is not here (the defaults), but a service then refuses to start unless the in-memory bus was
asked for (``Settings.resolve_adapter``), naming the places ``searched_places`` lists. Note
that steps 3 and 4 *execute* the ``config.py`` they find.

Forms:

* ``.yaml`` / ``.yml`` / ``.json``: a mapping read with ``yaml.safe_load``; sections by the
  guide's names (``KAFKA_CONFIG``, ``OFFSET_COMMIT_CONFIG``, ``TOPIC_DETAIL``,
  ``MODULE_DEPENDENCIES``, ``MODULE_OUTPUT_TOPICS``) or lower-case ones (``kafka``,
  ``offset_commit``, ``topics``, ``module_dependencies``, ``module_output_topics``), plus
  ``modules`` / ``MODULES`` (per-module settings, see ``da_core.catalog``) and ``service`` /
  ``SERVICE_CONFIG`` (``ServiceSettings``).
* ``.py``: executed as a module; its UPPER_CASE names are taken (the guide's ``config.py``),
  as are lower-case names that are settings (the guide writes ``max_workers = 32`` and
  ``data_expire_seconds = 600`` at module level). Other lower-case names (imports, helpers)
  are skipped.

A service setting may also be written at the top level (``max_workers: 32`` or
``MAX_WORKERS = 32``): it is folded into the ``service`` section. An unknown lower-case
top-level key is an error; unknown UPPER_CASE names are kept (``config.py`` files define
helper constants) and exposed by ``d_a.config``, but not otherwise used.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any, Final

import yaml

from da_app.settings._text import suggest
from da_app.settings.service import service_keys
from da_core.errors import ConfigError

CONFIG_ENV_VAR: Final = "DATA_ANALYSIS_CONFIG"
CANDIDATE_FILES: Final = ("config.yaml", "config.yml", "config.py", "config/config.py")
GUIDE_MOUNT: Final = os.path.join("d_a", "config.py")
"""The guide's mount point, relative to a ``sys.path`` entry (``/app/d_a/config.py``)."""

_SECTION_ALIASES: Final[Mapping[str, str]] = {
    "KAFKA_CONFIG": "KAFKA_CONFIG",
    "kafka": "KAFKA_CONFIG",
    "kafka_config": "KAFKA_CONFIG",
    "OFFSET_COMMIT_CONFIG": "OFFSET_COMMIT_CONFIG",
    "offset_commit": "OFFSET_COMMIT_CONFIG",
    "offset_commit_config": "OFFSET_COMMIT_CONFIG",
    "TOPIC_DETAIL": "TOPIC_DETAIL",
    "topics": "TOPIC_DETAIL",
    "topic_detail": "TOPIC_DETAIL",
    "MODULE_DEPENDENCIES": "MODULE_DEPENDENCIES",
    "module_dependencies": "MODULE_DEPENDENCIES",
    "MODULE_OUTPUT_TOPICS": "MODULE_OUTPUT_TOPICS",
    "module_output_topics": "MODULE_OUTPUT_TOPICS",
    "MODULES": "MODULES",
    "modules": "MODULES",
    "SERVICE_CONFIG": "SERVICE_CONFIG",
    "service": "SERVICE_CONFIG",
    "service_config": "SERVICE_CONFIG",
}


SECTION_ALIASES: Final = _SECTION_ALIASES
"""Every accepted section name -> its canonical (UPPER_CASE) name."""


def _is_config_name(name: str) -> bool:
    """A module-level name of a ``config.py`` that is configuration."""
    if name.startswith("_"):
        return False
    return name.isupper() or name in _SECTION_ALIASES or name in service_keys()


def normalize(raw: Mapping[Any, Any], problems: list[str]) -> dict[str, Any]:
    """``normalize_raw_config`` appending its problems instead of raising them."""
    out: dict[str, Any] = {}
    origin: dict[str, str] = {}
    shorthand: dict[str, Any] = {}
    known_service = service_keys()
    for key, value in raw.items():
        if not isinstance(key, str):
            problems.append(f"top-level key {key!r}: expected a name")
            continue
        canon = _SECTION_ALIASES.get(key)
        if canon is None and key.lower() in known_service:
            name = key.lower()
            if name in shorthand:
                problems.append(f"{key}: the service setting {name!r} is given twice")
            shorthand[name] = value
            continue
        if canon is None:
            if key.isupper():
                out[key] = value
            else:
                known = [*_SECTION_ALIASES, *known_service]
                problems.append(
                    f"{key}: unknown top-level setting{suggest(key, known)}; known sections are "
                    "KAFKA_CONFIG (kafka), OFFSET_COMMIT_CONFIG (offset_commit), TOPIC_DETAIL "
                    "(topics), MODULE_DEPENDENCIES, MODULE_OUTPUT_TOPICS, MODULES, "
                    "SERVICE_CONFIG (service)"
                )
            continue
        if canon in origin:
            problems.append(f"{key} and {origin[canon]} both set {canon}; keep one of them")
            continue
        origin[canon] = key
        out[canon] = value
    if shorthand:
        section = out.get("SERVICE_CONFIG")
        if section is None:
            out["SERVICE_CONFIG"] = shorthand
        elif isinstance(section, Mapping):
            for name in sorted(set(section) & set(shorthand)):
                problems.append(
                    f"{name}: set both at the top level and in the service section; keep one"
                )
            out["SERVICE_CONFIG"] = {**shorthand, **section}
    return out


def normalize_raw_config(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The raw configuration with every section under its canonical UPPER_CASE name
    (``KAFKA_CONFIG``, ``OFFSET_COMMIT_CONFIG``, ``TOPIC_DETAIL``, ``MODULE_DEPENDENCIES``,
    ``MODULE_OUTPUT_TOPICS``, ``MODULES``, ``SERVICE_CONFIG``; top-level service settings
    folded into ``SERVICE_CONFIG``; other UPPER_CASE names kept). Values are not validated."""
    problems: list[str] = []
    out = normalize(raw, problems)
    if problems:
        raise ConfigError(problems)
    return out


# ------------------------------------------------------------------------ finding, loading

_loading = threading.local()


def find_config_file(path: str | os.PathLike[str] | None = None) -> Path | None:
    """The configuration file to load (see the module docstring), or None when there is none."""
    if path is not None:
        explicit = Path(path)
        if not explicit.is_file():
            raise ConfigError(f"configuration file {explicit}: no such file")
        return explicit
    from_env = os.environ.get(CONFIG_ENV_VAR, "").strip()
    if from_env:
        named = Path(from_env)
        if not named.is_file():
            raise ConfigError(f"{CONFIG_ENV_VAR}={from_env}: no such file")
        return named
    for name in CANDIDATE_FILES:
        candidate = Path.cwd() / name
        if candidate.is_file():
            return candidate
    mounted = _mounted_configs()
    return mounted[0] if mounted else None


def _own_config_dirs() -> set[Path]:
    """The installed ``d_a`` package's directories (its own ``config.py`` is not a mount).
    ``find_spec`` locates the package without importing it (``da_app`` may not import
    ``d_a``: layers import downward only)."""
    try:
        spec = importlib.util.find_spec("d_a")
    except (ImportError, ValueError):
        return set()
    locations = (spec.submodule_search_locations or []) if spec is not None else []
    return {Path(p).resolve() for p in locations if (Path(p) / "__init__.py").is_file()}


def _mounted_configs() -> list[Path]:
    """``d_a/config.py`` files of ``sys.path`` entries, in order, but the package's own."""
    own = _own_config_dirs()
    found: list[Path] = []
    for entry in sys.path:
        candidate = Path(os.path.abspath(entry or os.curdir)) / GUIDE_MOUNT
        try:
            if candidate.is_file() and candidate.resolve().parent not in own:
                found.append(candidate)
        except OSError:  # an unreadable sys.path entry is no configuration
            continue
    return found


def searched_places(path: str | os.PathLike[str] | None = None) -> list[str]:
    """Every place ``find_config_file`` looks, in order, as a reader would check them (for
    the message of a service that found no Kafka configuration)."""
    places: list[str] = []
    if path is not None:
        places.append(f"the path given: {path}")
    from_env = os.environ.get(CONFIG_ENV_VAR, "").strip()
    places.append(f"{CONFIG_ENV_VAR}={from_env}" if from_env else f"{CONFIG_ENV_VAR} (not set)")
    places.extend(str(Path.cwd() / name) for name in CANDIDATE_FILES)
    entries = [os.path.abspath(e or os.curdir) for e in sys.path if Path(e or os.curdir).is_dir()]
    places.append(
        f"{GUIDE_MOUNT} under each sys.path entry ({', '.join(entries)}), "
        "but the installed package's own"
    )
    return places


def load_raw_config(path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The raw configuration mapping, ``{}`` when no file is found. Raises ``ConfigError``
    naming the file when it cannot be read, is not valid YAML/Python or is not a mapping."""
    found = find_config_file(path)
    if found is None:
        return {}
    suffix = found.suffix.lower()
    if suffix in (".yaml", ".yml", ".json"):
        return _load_yaml(found)
    if suffix == ".py":
        return _load_python(found)
    raise ConfigError(f"{found}: unsupported configuration file type; use .yaml, .yml or .py")


def _load_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read it: {exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML{_yaml_where(exc)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: the top level must be a mapping of settings, not {type(data).__name__}"
        )
    return data


def _yaml_where(exc: yaml.YAMLError) -> str:
    """Where and what a YAML error is, *without* the text of the offending line: PyYAML's
    own message quotes that line, which may be a password's (the error reaches the log and
    the ``reload rejected`` line). The chained exception is dropped for the same reason."""
    if not isinstance(exc, yaml.MarkedYAMLError):
        return ""
    mark = exc.problem_mark or exc.context_mark
    where = "" if mark is None else f" at line {mark.line + 1}, column {mark.column + 1}"
    what = "; ".join(t for t in (exc.context, exc.problem) if t)
    return f"{where}: {what}" if what else where


def _load_python(path: Path) -> dict[str, Any]:
    key = str(path.resolve())
    active: set[str] = getattr(_loading, "paths", set())
    if key in active:
        raise ConfigError(
            f"{path}: the configuration file loads itself (does {CONFIG_ENV_VAR} point at the "
            "d_a.config module? point it at your own config.py or YAML file)"
        )
    _loading.paths = active | {key}
    try:
        spec = importlib.util.spec_from_file_location("_data_analysis_user_config", path)
        if spec is None or spec.loader is None:
            raise ConfigError(f"{path}: cannot be loaded as a Python module")
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except ConfigError:
            raise
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read it: {exc}") from exc
        except Exception as exc:
            raise ConfigError(f"{path}: executing it failed: {type(exc).__name__}: {exc}") from exc
        except SystemExit as exc:  # a config.py that calls sys.exit() must not end the service
            raise ConfigError(f"{path}: executing it called sys.exit({exc.code!r})") from None
    finally:
        _loading.paths = active
    return {
        name: value
        for name, value in vars(module).items()
        if _is_config_name(name)
        and (name.isupper() or not (isinstance(value, ModuleType) or callable(value)))
    }
