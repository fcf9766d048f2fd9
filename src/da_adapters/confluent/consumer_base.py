"""``ConsumerBase``: the state every part of ``ConfluentConsumer`` shares, and the helpers
they all use (the never-fetching offsets handle, the configuration of internal handles,
uncached watermarks).

The consumer is one object assembled from mixins, one concern per module (``group``,
``fetching``, ``side_reads``; ``consumer`` puts them together and owns ``__init__``, which sets
every attribute declared here). The declarations below are the whole state:

* ``_consumer``: the group handle; ``_manual``: the handle of ``assign``/``assign_at`` (None
  until first needed), holding exactly ``_manual_tps``, with ``_starts`` the offsets given to
  ``assign_at``; ``_meta``: the never-fetching handle for offset queries (None until needed).
* ``_owned``: the partitions the group gives this member (what the listener was told);
  ``_paused``: paused by the caller (group or manual).
* ``_commit_call``: a commit still waiting for its answer after ``_commit_timeout`` (see
  ``bounded_commit``), else None.
* ``_fatal``: a fatal client error reported by ``error_cb``, raised from the next ``poll``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import confluent_kafka as ck

from da_adapters.confluent._support import (
    ConfluentError,
    LibrdkafkaLogBridge,
    Throttle,
    brokers_up,
    error_callback,
    new_client,
)
from da_adapters.confluent.bounded_commit import CommitCall
from da_core.ports import RebalanceListener
from da_core.types import TopicPartition

log = logging.getLogger("da_adapters.confluent")

GROUP_LINK = "group"
"""The name of the group handle in ``ConsumerBase._links``."""
MANUAL_LINK = "assign"
"""The name of the handle of ``assign``/``assign_at`` in ``ConsumerBase._links``."""


class ConsumerBase:
    """The shared state of ``ConfluentConsumer`` (see the module docstring) and its helpers."""

    group_id: str
    auto_offset_reset: str
    _timeout: float
    _throttle: Throttle
    _fatal: ck.KafkaError | None
    _links: dict[str, bool]
    _own_stats: bool
    _own_errors: bool
    _what: str
    _config: dict[str, Any]
    _consumer: ck.Consumer
    _manual: ck.Consumer | None
    _meta: ck.Consumer | None
    _manual_tps: set[TopicPartition]
    _starts: dict[TopicPartition, int]
    _listener: RebalanceListener | None
    _subscribed: bool
    _owned: set[TopicPartition]
    _paused: set[TopicPartition]
    _closed: bool
    _turn: int
    _commit_timeout: float
    _commit_call: CommitCall | None

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"consumer of group {self.group_id!r} is closed")

    def _meta_consumer(self) -> ck.Consumer:
        """A handle of the same group that never subscribes nor fetches, for committed offsets
        and watermarks: on the fetching handle those requests queue behind the broker's fetch
        long-poll (``fetch.wait.max.ms``) and block for seconds while the loop consumes."""
        if self._meta is None:
            config = self._side_config(self.group_id)
            self._meta = new_client(ck.Consumer, config, f"offsets reader of {self.group_id}")
        return self._meta

    def _side_config(self, group_id: str, link: str | None = None) -> dict[str, Any]:
        """The configuration of an internal handle that never joins a group: without the
        static instance id (two handles sharing it would fence each other) or assignor.
        ``link``: the name under which a polled handle reports its connection state
        (``_links``); None for a handle that is never polled (its reports would be served
        never, or late)."""
        config = dict(self._config)
        config["group.id"] = group_id
        config["logger"] = LibrdkafkaLogBridge(None)
        for key in ("group.instance.id", "partition.assignment.strategy"):
            config.pop(key, None)
        if self._own_errors:
            config["error_cb"] = (
                error_callback(self._what, self._throttle, self._set_fatal)
                if link is None
                else self._link_error_cb(link)
            )
        if self._own_stats:
            config.pop("stats_cb", None)
            config.pop("statistics.interval.ms", None)
            if link is not None:
                config["stats_cb"] = self._link_stats_cb(link)
                config["statistics.interval.ms"] = self._config["statistics.interval.ms"]
        return config

    # -- connection state of the polled handles (see ``ConfluentConsumer.connected``) ----------

    def _links_state(self) -> bool | None:
        if not self._links:
            return None
        return all(self._links.values())

    def _mark_links(self, up: bool) -> None:
        """A request of this thread was answered (True) or not (False): every handle's
        state follows, until its next report."""
        for name in self._links or (GROUP_LINK,):
            self._links[name] = up

    def _link_error_cb(self, link: str) -> Callable[[ck.KafkaError], None]:
        def down(_error: ck.KafkaError) -> None:
            self._links[link] = False

        return error_callback(self._what, self._throttle, self._set_fatal, down)

    def _link_stats_cb(self, link: str) -> Callable[[str], None]:
        def stats(stats_json: str) -> None:
            up = brokers_up(stats_json)
            if up is not None:
                self._links[link] = up

        return stats

    def _set_fatal(self, error: ck.KafkaError) -> None:
        self._fatal = error

    def _watermarks(self, consumer: ck.Consumer, tp: TopicPartition) -> tuple[int, int]:
        try:
            low, high = consumer.get_watermark_offsets(
                ck.TopicPartition(tp.topic, tp.partition), timeout=self._timeout, cached=False
            )
        except ck.KafkaException as exc:
            raise ConfluentError(f"watermarks of {tp}: {exc}") from exc
        return int(low), int(high)
