"""Stable event names in log lines: ``event=<name>`` can be grepped whatever the message says.

``log_event(logger, level, event, msg, *args, **fields)`` logs ``msg % args`` followed by
`` event=<name>`` and one `` key=value`` per field, and attaches ``event`` and the fields to the
record, so ``JsonFormatter`` (``DATA_ANALYSIS_LOG_FORMAT=json``) writes them as JSON fields.
``da_core`` may not import this module (layers import downward only): its log lines carry
``extra={"event": "<name>", ...}`` and ``EventFilter``, which the logging set-up puts on the
root logger's handlers (``da_app.logconfig``), appends `` event=<name>`` to their text.

The names, what the guide's troubleshooting phrases become, are listed in ``EVENTS`` and in
``docs/operations.md`` (a test checks that each is emitted).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Final

EVENTS: Final[Mapping[str, str]] = {
    "batch_created": "a batch formed (the guide's 创建批次 ... 期望场站数: N)",
    "station_result": "a batch received a station's result (批次 ... 收到场站 S001 结果; DEBUG)",
    "batch_timeout": "a batch completed by its timeout (批次 ... 超时 (5秒))",
    "global_cached": "a global topic's value was cached (全局数据已缓存 ...)",
    "station_new": "a new station got the cached global values (新场站 ... 应用 X 个全局数据)",
    "bad_input": "a record could not be read; it goes to the dead-letter topic",
    "fields_never_seen": "configured fields no record of a topic carried",
    "upload_failed": "a batch upload failed and is retried",
    "config_reloaded": "a configuration reload was applied",
    "config_rejected": "a configuration reload was refused; the old one stays",
    "service_started": "a service started",
    "service_stopped": "a service stopped",
    "fetch_stats": "per-topic fetch counts of a cycle (多消费者拉取统计 [topic:count,...]; DEBUG)",
    "callback_failed": "a station's callback raised; the station is retried by policy",
    "commit_failed": "an offset commit failed; the offsets are kept and retried",
}
"""Event name -> meaning: the runbook table of ``docs/operations.md``. Further lines carry
names too (listed under the table there): the loop's (``partitions_assigned``,
``partitions_revoked``, ``subscribed``, ``poll_failed``, ``backpressure``, ``drain_timeout``,
``refused``, ``routing``, ``broker_lost``, ``broker_back``, ``restore_planned``,
``restore_done``, ``retention_gap``, ``first_run``, ``callback_timeout``, ``callback_late``,
``result_handler_failed``, ``undelivered_on_stop``), the confluent adapter's
(``consumer_left_open``) and the core's (``dead_letter_failed``,
``dead_letter_lost``, ``station_failing``)."""

FIELDS_ATTR: Final = "da_fields"
"""The record attribute holding ``log_event``'s fields (``JsonFormatter`` writes them)."""


def log_event(
    logger: logging.Logger,
    level: int,
    event: str,
    msg: str,
    *args: Any,
    exc_info: Any = None,
    **fields: Any,
) -> None:
    """Log ``msg % args`` plus `` event=<event>`` and `` key=value`` per field (see module)."""
    if not logger.isEnabledFor(level):
        return
    suffix = " event=%s" + "".join(f" {k}=%s" for k in fields)
    logger.log(
        level,
        msg + suffix,
        *args,
        event,
        *fields.values(),
        exc_info=exc_info,
        stacklevel=2,
        extra={"event": event, FIELDS_ATTR: dict(fields), "_da_event_text": True},
    )


class EventFilter(logging.Filter):
    """On a handler: appends `` event=<name>`` to the text of records that carry an ``event``
    attribute (``extra={"event": ...}``, the core's lines) but not yet in their text. Never
    drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        event = getattr(record, "event", None)
        if event is not None and not getattr(record, "_da_event_text", False):
            text = str(event).replace("%", "%%") if record.args else str(event)
            record.msg = f"{record.msg} event={text}"
            record._da_event_text = True
        return True
