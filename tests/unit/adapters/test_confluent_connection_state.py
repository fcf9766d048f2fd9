"""``ConfluentConsumer.connected()``: each polled handle reports for itself, so a late ``UP``
statistics report of one handle cannot hide the outage another one saw (issue 10 item 14)."""

from __future__ import annotations

import json

from da_adapters.confluent import ConfluentConsumer
from da_adapters.confluent.consumer_base import GROUP_LINK, MANUAL_LINK


def _stats(*states: str) -> str:
    return json.dumps({"brokers": {f"b{i}": {"state": s} for i, s in enumerate(states)}})


def test_a_late_up_report_of_one_handle_does_not_hide_the_outage_of_the_other() -> None:
    consumer = ConfluentConsumer(group_id="g", bootstrap_servers="127.0.0.1:1")
    try:
        assert consumer.connected() is None
        group, manual = consumer._link_stats_cb(GROUP_LINK), consumer._link_stats_cb(MANUAL_LINK)
        group(_stats("UP"))
        manual(_stats("UP"))
        assert consumer.connected() is True
        group(_stats("INIT", "TRY_CONNECT"))  # the group handle lost its brokers
        manual(_stats("UP"))  # a report queued before the loss, served later
        assert consumer.connected() is False
        manual(_stats("INIT"))
        group(_stats("UP"))
        assert consumer.connected() is False
        manual(_stats("UP"))
        assert consumer.connected() is True
        consumer._mark_links(False)  # an unanswered probe: every handle is down
        assert consumer.connected() is False
        group(_stats())  # a document naming no broker says nothing
        assert consumer.connected() is False
    finally:
        consumer.close()
