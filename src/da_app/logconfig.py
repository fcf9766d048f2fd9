"""Logging as the guide describes it; only the application entry points call this.

``DATA_ANALYSIS_LOG`` (default ``data_analysis.log``) gets a UTF-8 ``RotatingFileHandler``
(10 MB × 5 backups), ``LOG_LEVEL`` sets the level, the format is
``[%(asctime)s] %(levelname)s %(name)s %(message)s``; ``DATA_ANALYSIS_LOG_FORMAT=json`` writes one
JSON object per line with station_id, topic and batch_id fields when a record carries them.
Importing the library never configures logging.
"""

from __future__ import annotations

import json
import logging
import os
from logging.handlers import RotatingFileHandler
from typing import Any

LOG_FORMAT = "[%(asctime)s] %(levelname)s %(name)s %(message)s"
MAX_BYTES = 10 * 1024 * 1024
BACKUPS = 5
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
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False)


def configure_logging(
    *,
    console: bool = True,
    log_file: str | None = None,
    level: str | None = None,
    fmt: str | None = None,
    max_bytes: int = MAX_BYTES,
    backups: int = BACKUPS,
) -> logging.Logger:
    """Configure the root logger per the guide (idempotent: replaces handlers it added)."""
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
    return root
