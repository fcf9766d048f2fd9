"""Issue 13 item 6: every event of the runbook table (``da_app.events.EVENTS``, listed in
``docs/operations.md``) is emitted by the code, and the event name is in the text line and in
the JSON fields."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import pytest

from da_app.events import EVENTS, EventFilter, log_event
from da_app.logconfig import JsonFormatter
from da_app.services import DataAnalysisService
from da_app.testing import Harness
from da_core.batch_collector import BatchCollector
from da_core.config import BatchPolicy
from da_core.errors import ConfigError

from .helpers import OUT_LP, PARAM, RT, param, realtime

ROOT = Path(__file__).resolve().parents[3]


def _events(caplog: pytest.LogCaptureFixture) -> set[str]:
    return {str(getattr(r, "event", "")) for r in caplog.records if getattr(r, "event", None)}


def test_every_event_of_the_table_is_emitted(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    # a service's life, a reload and a rejected reload
    svc = DataAnalysisService(config={"service": {"adapter": "memory"}})
    svc.start(lambda sid, inp: None)
    svc.reload_config({"service": {"adapter": "memory"}})
    with pytest.raises(ConfigError):
        svc.reload_config({"service": {"adapter": "memory", "max_workers": 0}})
    svc.stop()
    # the data path: a global value, a new station given it, a batch with a station's result,
    # a bad record, an upload that fails once, fields that never come
    h = Harness("load_prediction", lambda sid, inp: {"ok": 1}, config={"service": {}})
    try:
        h.service.engine.field_report_seconds = 1.0
        h.publish_sample("SCHEDULE-ENVIRONMENT-CALENDAR")
        h.run_until_idle()
        h.broker.fail_next_produce(OUT_LP, "NOT_LEADER_FOR_PARTITION")
        h.publish(PARAM, [{k: v for k, v in param("S1")[0].items() if k != "gunNum"}])
        h.publish(RT, realtime("S1", 0, 5.0))
        h.publish(RT, b"not json")
        h.run_until_idle()
        h.advance(5.0)
        h.run_until_idle()
    finally:
        h.stop()

    # the loop's events: per-topic fetch counts (multi_consumer_mode), a callback that
    # raises, a commit that fails
    def failing_for_s1(sid: str, inp: dict[str, Any]) -> dict[str, int]:
        if sid == "S1":
            raise RuntimeError("model broken")
        return {"ok": 1}

    with Harness("load_prediction", failing_for_s1, multi_consumer_mode=True) as h2:
        h2.broker.fail_commits(h2.service.group_id, count=1)
        for sid in ("S1", "S2"):  # S2's records become committable: the commit fails once
            h2.publish(PARAM, param(sid))
            h2.publish(RT, realtime(sid, 0, 5.0))
        h2.run_until_idle()
        h2.advance(10.0)
        h2.run_until_idle()
    # a batch that times out
    bc: BatchCollector[None] = BatchCollector("m", BatchPolicy(timeout_seconds=5.0))
    bc.open(["S1", "S2"], 0.0)
    bc.poll(10.0)
    missing = set(EVENTS) - _events(caplog)
    assert not missing, f"events of the table never emitted: {sorted(missing)}"


def test_the_operations_table_lists_exactly_the_events() -> None:
    doc = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    table = set(re.findall(r"\| `event=([a-z_]+)` \|", doc))
    assert table == set(EVENTS)


def test_log_event_puts_the_event_and_fields_in_text_and_json(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logger = logging.getLogger("da_app.test_events")
    with caplog.at_level(logging.INFO, logger="da_app.test_events"):
        log_event(logger, logging.INFO, "batch_created", "batch %s formed", "b-1", stations=3)
    rec = caplog.records[-1]
    assert rec.getMessage() == "batch b-1 formed event=batch_created stations=3"
    data: dict[str, Any] = json.loads(JsonFormatter().format(rec))
    assert (data["event"], data["stations"]) == ("batch_created", 3)


def test_the_filter_renders_a_core_event_extra_in_any_format() -> None:
    rec = logging.LogRecord("da_core.x", logging.INFO, __file__, 1, "cached %s", ("T",), None)
    rec.event = "global_cached"
    f = EventFilter()
    assert f.filter(rec)
    assert f.filter(rec)  # twice: rendered once
    assert rec.getMessage() == "cached T event=global_cached"
    plain = logging.LogRecord("da_core.x", logging.INFO, __file__, 1, "100% done", (), None)
    plain.event = "e"
    f.filter(plain)
    assert plain.getMessage() == "100% done event=e"
