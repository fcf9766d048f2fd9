"""Logging as the guide describes it; only the application entry points call this.

``DATA_ANALYSIS_LOG`` (default ``data_analysis.log``) gets a UTF-8 ``RotatingFileHandler``
(10 MB × 5 backups; ``DATA_ANALYSIS_LOG_MAX_BYTES`` and ``DATA_ANALYSIS_LOG_BACKUPS`` change
them), ``LOG_LEVEL`` sets the level, the format is
``[%(asctime)s] %(levelname)s %(name)s %(message)s``; ``DATA_ANALYSIS_LOG_FORMAT=json`` writes one
JSON object per line with station_id, topic, batch_id, da_module and reason fields when a record
carries them (the engine and runners log with ``extra={...}``), for log shippers.
Importing the library never configures logging. ``da-app`` calls ``configure_logging`` (with
the ``service`` section's ``log_*`` settings, environment winning); every other entry point
(the guide's ``python sync_main.py``, an embedding program) gets ``ensure_logging`` when a
service starts:

* the root logger has no handlers (nobody configured logging): ``configure_logging`` as
  ``da-app`` does (console and the file);
* the application configured handlers (the guide's scripts call ``logging.basicConfig``):
  they are kept, and only what the operator asked for explicitly is applied, so the guide's
  ``DATA_ANALYSIS_LOG`` and ``LOG_LEVEL`` (or the ``service`` section's ``log_file`` /
  ``log_level`` / ``log_format``) still work: ``LOG_LEVEL`` (any case) sets the root level,
  and ``DATA_ANALYSIS_LOG`` adds the guide's rotating file handler (in the format of the
  application's first handler, or JSON when asked) unless a file handler already writes there.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Collection
from logging.handlers import RotatingFileHandler
from typing import Any

from da_app.events import FIELDS_ATTR, EventFilter

LOG_FORMAT = "[%(asctime)s] %(levelname)s %(name)s %(message)s"
MAX_BYTES = 10 * 1024 * 1024
BACKUPS = 5
MAX_BYTES_ENV_VAR = "DATA_ANALYSIS_LOG_MAX_BYTES"
BACKUPS_ENV_VAR = "DATA_ANALYSIS_LOG_BACKUPS"
CONTEXT_FIELDS = ("station_id", "topic", "batch_id", "da_module", "reason")


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for f in CONTEXT_FIELDS:
            v = getattr(record, f, None)
            if v is not None:
                data[f] = v
        event = getattr(record, "event", None)
        if event is not None:
            data["event"] = event
            for k, v in (getattr(record, FIELDS_ATTR, None) or {}).items():
                data.setdefault(k, v if isinstance(v, (int, float, bool, type(None))) else str(v))
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False)


def configure_logging(
    *,
    console: bool = True,
    log_file: str | None = None,
    level: str | None = None,
    fmt: str | None = None,
    max_bytes: int | None = None,
    backups: int | None = None,
) -> logging.Logger:
    """Configure the root logger per the guide (idempotent: replaces handlers it added).

    Arguments win over the environment (``DATA_ANALYSIS_LOG``, ``LOG_LEVEL``,
    ``DATA_ANALYSIS_LOG_FORMAT``, ``DATA_ANALYSIS_LOG_MAX_BYTES``, ``DATA_ANALYSIS_LOG_BACKUPS``),
    which wins over the defaults (``data_analysis.log``, INFO, text, 10 MB, 5 backups)."""
    if max_bytes is None:
        max_bytes = _env_int(MAX_BYTES_ENV_VAR, MAX_BYTES)
    if backups is None:
        backups = _env_int(BACKUPS_ENV_VAR, BACKUPS)
    root = logging.getLogger()
    for h in [h for h in root.handlers if getattr(h, "_da_handler", False)]:
        root.removeHandler(h)
        h.close()
    level_name = (level or os.getenv("LOG_LEVEL") or "INFO").upper()
    root.setLevel(getattr(logging, level_name, logging.INFO))
    style = (fmt or os.getenv("DATA_ANALYSIS_LOG_FORMAT") or "text").lower()
    formatter: logging.Formatter = (
        JsonFormatter() if style == "json" else logging.Formatter(LOG_FORMAT)
    )
    path = log_file or os.getenv("DATA_ANALYSIS_LOG") or "data_analysis.log"
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    handlers: list[logging.Handler] = [
        RotatingFileHandler(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
    ]
    if console:
        handlers.append(logging.StreamHandler())
    for h in handlers:
        h.setFormatter(formatter)
        h._da_handler = True  # type: ignore[attr-defined]
        root.addHandler(h)
    add_event_filter(root)
    return root


def add_event_filter(root: logging.Logger) -> None:
    """Put ``EventFilter`` on every root handler (once each): the core's ``event`` extras
    then show as `` event=<name>`` in any format, the application's too."""
    for h in root.handlers:
        if not any(isinstance(f, EventFilter) for f in h.filters):
            h.addFilter(EventFilter())


def ensure_logging(
    *,
    configured: Collection[str] = (),
    log_file: str | None = None,
    level: str | None = None,
    fmt: str | None = None,
) -> None:
    """Called by the services at start (see the module docstring). ``configured`` names the
    ``service`` settings given explicitly (file or environment: ``ServiceSettings.configured``);
    ``log_file``, ``level`` and ``fmt`` are their values."""
    root = logging.getLogger()
    if not root.handlers:
        configure_logging(log_file=log_file, level=level, fmt=fmt)
        return
    add_event_filter(root)
    if "log_level" in configured and level:
        root.setLevel(getattr(logging, level.upper(), logging.INFO))
    if "log_file" not in configured or not log_file:
        return
    path = os.path.abspath(log_file)
    for h in root.handlers:
        if isinstance(h, logging.FileHandler) and os.path.abspath(h.baseFilename) == path:
            return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    handler = RotatingFileHandler(
        path,
        maxBytes=_env_int(MAX_BYTES_ENV_VAR, MAX_BYTES),
        backupCount=_env_int(BACKUPS_ENV_VAR, BACKUPS),
        encoding="utf-8",
    )
    first = root.handlers[0].formatter
    if (fmt or "").lower() == "json" and "log_format" in configured:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(first if first is not None else logging.Formatter(LOG_FORMAT))
    handler._da_handler = True  # type: ignore[attr-defined]
    handler.addFilter(EventFilter())
    root.addHandler(handler)


def _env_int(name: str, default: int) -> int:
    raw = os.getenv(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer (got {raw!r})") from None
    if value < 0:
        raise ValueError(f"{name} must be >= 0 (got {value})")
    return value
