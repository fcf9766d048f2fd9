"""Intake: records in, station data out.

A record of an input topic is extracted into per-station items and applied to the stations'
windows; a record of a dependency's output topic updates the stations' dependency results; a
global topic's record updates the global windows (and makes every station dirty); a record of
a source topic under rekey routing goes to the ``Forwarder``; a bad record becomes a dead
letter. Also here: the field report (configured fields that records never carry).

Delivery (SPEC §6): a tracked record is held by one ``RecordRef`` per station it touched
(``RunState.pending``), by its dead letter, or by its shares; a record that touched nothing is
done at once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from itertools import groupby

from da_core.config import Catalog, ModuleConfig, TopicConfig
from da_core.engine.caches import EngineCaches
from da_core.engine.encoding import dead_letter_record
from da_core.engine.forwarding import Forwarder
from da_core.engine.items import DeadLetter, EngineStats, RecordRef
from da_core.engine.outbox import Lane
from da_core.engine.screen import IdMemo, record_time_problem, screen
from da_core.engine.stations import StationData, StationStore, station_of
from da_core.engine.table import StationTable
from da_core.extractors import StationItem, extract
from da_core.limits import (
    FUTURE_TIMESTAMP,
    STATION_LIMIT,
    STATION_NOT_ALLOWED,
    IntakeLimits,
)
from da_core.offset_ledger import OffsetLedger
from da_core.ports import JsonCodec
from da_core.routing import Routing
from da_core.types import Record

log = logging.getLogger("da_core.engine")

PREVIEW_BYTES = 200
"""Bytes of a bad record's value quoted in its log line."""
FIELD_REPORT_AFTER = 200
"""Records of a topic after which configured fields never seen are reported once."""
FIELD_REPORT_SECONDS = 300.0
"""Seconds (engine time) after a topic's first record after which configured fields never
seen are reported once, when fewer than ``FIELD_REPORT_AFTER`` records came (a topic such as
STATION-PARAM may never reach that many); ``Intake.field_report_seconds`` overrides it."""
REFUSED_LOG_INTERVAL = 60.0
"""Seconds between two warnings about stations refused by ``max_stations`` or the allow-list
(each says how many were refused since the last)."""
QUIET_REASONS = frozenset({STATION_LIMIT, STATION_NOT_ALLOWED})
"""Reasons logged by the periodic refused-stations warning instead of one line per record."""


class Intake:
    """Applies records to a ``StationTable``'s stations; see the module docstring."""

    def __init__(
        self,
        table: StationTable,
        store: StationStore,
        forwarder: Forwarder,
        dead_letters: Lane[DeadLetter],
        ledger: OffsetLedger,
        stats: EngineStats,
        caches: EngineCaches,
        codec: JsonCodec,
        ids: Iterator[int],
    ) -> None:
        self._table = table
        self._store = store
        self._forwarder = forwarder
        self._dead = dead_letters
        self._ledger = ledger
        self._stats = stats
        self._caches = caches
        self._codec = codec
        self._ids = ids
        self._field_seen: dict[str, set[str]] = {}
        self._field_count: dict[str, int] = {}
        self._field_reported: set[str] = set()
        self._field_first: dict[str, float] = {}  # topic -> time of its first record
        self.field_report_seconds = FIELD_REPORT_SECONDS
        self._module = ""
        self._dlq = ""
        self.inputs: dict[str, TopicConfig] = {}
        self.dep_topics: dict[str, str] = {}
        self.internal_topics: dict[str, str] = {}
        self._envelope = TopicConfig(name="__envelope__", extractor="envelope")
        self._by_topic: dict[str, TopicConfig] = {}
        self._dep_by_topic: dict[str, str] = {}
        self._routed: dict[str, tuple[TopicConfig, str]] = {}
        self._internal: frozenset[str] = frozenset()
        self.limits = IntakeLimits()
        self._ids_ok = IdMemo()
        self._refused_unlogged: dict[str, int] = {}
        self._refused_logged_at = -float("inf")

    def configure(self, catalog: Catalog, module: ModuleConfig, routing: Routing) -> None:
        """Work out what each topic's records are to this module.

        ``inputs``: input topic name -> config; ``dep_topics``: a dependency's output topic ->
        the dependency. With rekey routing, source topics map to (config, internal topic) in
        ``_routed``, and the internal topics stand in for them in ``_by_topic`` and
        ``_dep_by_topic``; ``internal_topics``: source topic -> its internal topic."""
        self._module = module.name
        self._dlq = catalog.dead_letter_topic
        self.inputs = {t: catalog.topics[t] for t in module.inputs}
        self.dep_topics = {catalog.output_topic_of(d): d for d in module.dependencies}
        self._by_topic = dict(self.inputs)
        self._dep_by_topic = dict(self.dep_topics)
        self._routed = {}
        if routing.rekey:
            for name, cfg in self.inputs.items():
                if not cfg.is_global:
                    internal = routing.internal_topic(name)
                    self._routed[name] = (cfg, internal)
                    del self._by_topic[name]
                    self._by_topic[internal] = cfg
            for out_topic, dep in self.dep_topics.items():
                internal = routing.internal_topic(out_topic)
                self._routed[out_topic] = (self._envelope, internal)
                del self._dep_by_topic[out_topic]
                self._dep_by_topic[internal] = dep
        self.internal_topics = {s: i for s, (_, i) in self._routed.items()}
        self._internal = frozenset(self.internal_topics.values())
        if catalog.limits != self.limits:
            self.limits = catalog.limits
            self._ids_ok.clear()

    def route(self, topic: str) -> tuple[TopicConfig, str | None] | None:
        """What a record of ``topic`` is applied as: ``(config, None)`` for an input (or, in
        rekey routing, an internal station-keyed) topic, ``(envelope, dependency)`` for a
        dependency's output; None for a source topic of rekey routing (split, never applied)
        and for topics this module does not read. Used by ``restore.Restorer``."""
        cfg = self._by_topic.get(topic)
        if cfg is not None:
            return cfg, None
        dep = self._dep_by_topic.get(topic)
        return None if dep is None else (self._envelope, dep)

    def ingest(self, records: Sequence[Record], tracked: bool, now: float) -> set[str]:
        """Apply ``records``; returns the ids of the stations they changed. ``tracked`` False:
        read outside the group (global topics read in full), applied but never committed.
        ``now``: the caller's time, against which the clock skew bound is checked and which
        dates the field report.

        Under rekey routing a record is counted (fields dropped, elements skipped) where it is
        split, not again when its shares come back from the internal topics."""
        dirty: set[str] = set()
        stats = self._stats
        inputs = self._by_topic
        routed = self._routed
        stations = self._store.stations
        states = self._table.states
        station_for = self._table.station_for
        add_items = self._store.add_items
        set_dependency = self._store.set_dependency
        ledger = self._ledger
        codec = self._codec
        plans = self._caches.plans
        tp_of = self._caches.tp_of
        reported = self._field_reported
        limits = self.limits
        skew = limits.max_clock_skew_seconds
        memo = self._ids_ok
        internal = self._internal
        refusals = 0
        for rec in records:
            stats.records_in += 1
            if rec.timestamp - now > skew:
                problem = record_time_problem(rec.timestamp, limits, now)
                self.reject(rec, FUTURE_TIMESTAMP, problem or "", tracked)
                continue
            topic = inputs.get(rec.topic)
            dep = None
            if topic is None:
                if routed:
                    route = routed.get(rec.topic)
                    if route is not None:
                        self._forward(rec, route[0], route[1], now)
                        continue
                dep = self._dep_by_topic.get(rec.topic)
                if dep is None:
                    stats.records_ignored += 1
                    if tracked:
                        tp = tp_of(rec)
                        ledger.track(tp, rec.offset)
                        ledger.done(tp, rec.offset)
                    continue
                topic = self._envelope
            ex = extract(topic, rec, codec, plans)
            if ex.rejection is not None:
                self.reject(rec, ex.rejection.reason, ex.rejection.detail, tracked)
                continue
            items: Sequence[StationItem] = ex.items
            future = 0
            checked = screen(items, limits, now, memo)
            if checked is not None:
                if checked.reason is not None:
                    self.reject(rec, checked.reason, checked.detail, tracked)
                    continue
                items, future = checked.items, checked.future
            if not (internal and rec.topic in internal):  # shares were counted when split
                stats.bad_fields += ex.bad_fields
                stats.skipped_items += ex.skipped_items + future
                stats.future_items += future
            if dep is None and topic.name not in reported:
                self._note_fields(topic, ex.seen_fields, now)
            if topic.is_global:
                self._apply_global(topic, items, dirty)
                if tracked:
                    tp = tp_of(rec)
                    ledger.track(tp, rec.offset)
                    self._table.hold(tp, rec.offset, dirty)
                continue
            touched: list[StationData] = []
            refused: str | None = None
            # runs of one station's items (a history record is one run): the station is looked
            # up, refused or made once per run, as it would be for each item. Most records
            # hold one item: one run without ``groupby``.
            runs: Iterable[tuple[str, Sequence[StationItem]]]
            if len(items) == 1:
                runs = ((station_of(items[0]), items),)
            else:
                runs = [(sid, list(group)) for sid, group in groupby(items, station_of)]
            for sid, run in runs:
                st = stations.get(sid)
                if st is None:
                    why = self._refusal(sid, len(stations))
                    if why is not None:
                        n = len(run)
                        refused = why
                        refusals += n
                        stats.stations_refused[why] = stats.stations_refused.get(why, 0) + n
                        self._refused_unlogged[why] = self._refused_unlogged.get(why, 0) + n
                        continue
                    st = station_for(sid)
                    if st is None:
                        continue
                stats.items_in += len(run)
                if dep is not None:
                    for item in run:
                        set_dependency(st, dep, item.values, item.time)
                else:
                    add_items(st, topic, run)
                if (not touched or touched[-1] is not st) and st not in touched:
                    touched.append(st)
            if not touched:
                if refused is not None:
                    self.reject(rec, refused, self._refusal_detail(refused), tracked)
                    continue
                if tracked:
                    tp = tp_of(rec)
                    ledger.track(tp, rec.offset)
                    ledger.done(tp, rec.offset)
                continue
            if tracked:
                tp = tp_of(rec)
                ledger.track(tp, rec.offset)
                ref = RecordRef(tp, rec.offset, len(touched))
                for st in touched:
                    states[st.station_id].pending.append(ref)
                    st.partitions.add(tp)
                    dirty.add(st.station_id)
            else:
                for st in touched:
                    dirty.add(st.station_id)
        if refusals:
            self._log_refused(now)
        return dirty

    # ------------------------------------------------------------------ station bounds

    def admissible(
        self, rec: Record, items: Sequence[StationItem], now: float
    ) -> Sequence[StationItem] | None:
        """For replay (``restore.Restorer``): the items of ``rec`` that live intake would apply
        (the same clock-skew, identifier and event-time checks), or None when it would reject
        the whole record. Counts nothing: the record was counted when first consumed."""
        limits = self.limits
        if rec.timestamp - now > limits.max_clock_skew_seconds:
            return None
        checked = screen(items, limits, now, self._ids_ok)
        if checked is None:
            return items
        return None if checked.reason is not None else checked.items

    def refusal(self, station_id: str, known: int) -> str | None:
        """Why a new station is not taken (allow-list, ``max_stations``), or None."""
        return self._refusal(station_id, known)

    def _refusal(self, station_id: str, known: int) -> str | None:
        """Why a new station is not taken (allow-list, ``max_stations``), or None."""
        allow = self.limits.station_allow_list
        if allow is not None and station_id not in allow:
            return STATION_NOT_ALLOWED
        if known >= self.limits.max_stations:
            return STATION_LIMIT
        return None

    def _refusal_detail(self, reason: str) -> str:
        if reason == STATION_NOT_ALLOWED:
            return "no station of the record is in station_allow_list"
        return f"the engine already keeps max_stations={self.limits.max_stations} stations"

    def _log_refused(self, now: float) -> None:
        """One warning per ``REFUSED_LOG_INTERVAL`` at most, with the counts since the last."""
        if now - self._refused_logged_at < REFUSED_LOG_INTERVAL:
            return
        counts = self._refused_unlogged
        self._refused_logged_at = now
        log.warning(
            "stations refused since the last report: %s (max_stations=%d, allow-list %s)",
            ", ".join(f"{reason}={n}" for reason, n in sorted(counts.items())),
            self.limits.max_stations,
            "off" if self.limits.station_allow_list is None else "on",
            extra={"da_module": self._module, "reason": "station_refused"},
        )
        self._refused_unlogged = {}

    def _forward(self, rec: Record, topic: TopicConfig, internal: str, now: float) -> None:
        """Split a source record (rekey routing) after the checks direct routing makes; its
        dropped fields and skipped elements are counted here, once."""
        ex = extract(topic, rec, self._codec, self._caches.plans)
        if ex.rejection is not None:
            self.reject(rec, ex.rejection.reason, ex.rejection.detail, True)
            return
        items: Sequence[StationItem] = ex.items
        future = 0
        checked = screen(items, self.limits, now, self._ids_ok)
        if checked is not None:
            if checked.reason is not None:
                self.reject(rec, checked.reason, checked.detail, True)
                return
            items, future = checked.items, checked.future
        problem = self._forwarder.forward(rec, topic, internal, items)
        if problem is not None:
            self.reject(rec, problem[0], problem[1], True)
            return
        stats = self._stats
        stats.bad_fields += ex.bad_fields
        stats.skipped_items += ex.skipped_items + future
        stats.future_items += future

    def _apply_global(
        self, topic: TopicConfig, items: Sequence[StationItem], dirty: set[str]
    ) -> None:
        self._store.apply_global(topic, items)
        self._stats.global_values_cached += 1
        stations = self._store.stations
        log.info(
            "global data cached: topic %s, applied to %d existing stations",
            topic.name,
            len(stations),
            extra={"event": "global_cached", "topic": topic.name, "da_module": self._module},
        )
        dirty.update(stations)

    def reject(self, rec: Record, reason: str, detail: str, tracked: bool) -> None:
        """Count and log a bad record and queue its dead letter, which holds it if tracked.

        One line per record, with the topic, partition and offset, the detail and the value's
        first ``PREVIEW_BYTES`` bytes escaped (``%r``): nothing taken from the record can
        break the line or forge another. Refused stations (``QUIET_REASONS``) are reported by
        the periodic warning instead."""
        stats = self._stats
        stats.bad_input[reason] = stats.bad_input.get(reason, 0) + 1
        if reason not in QUIET_REASONS:
            preview = (rec.value or b"")[:PREVIEW_BYTES].decode("utf-8", "replace")
            log.warning(
                "bad input on %s[%d]@%d: %s (%r); preview: %r",
                rec.topic,  # a configured name (the subscription), not record data
                rec.partition,
                rec.offset,
                reason,
                detail,
                preview,
                extra={
                    "event": "bad_input",
                    "topic": rec.topic,
                    "da_module": self._module,
                    "reason": reason,
                },
            )
        refs: tuple[RecordRef, ...] = ()
        if tracked:
            tp = self._caches.tp_of(rec)
            self._ledger.track(tp, rec.offset)
            refs = (RecordRef(tp, rec.offset, 1),)
        out = dead_letter_record(rec, reason, detail, self._module, self._dlq)
        dl_id = next(self._ids)
        self._dead.add(dl_id, DeadLetter(dl_id, rec, reason, detail, out), refs)

    # ------------------------------------------------------------------ the field report

    def _note_fields(self, topic: TopicConfig, seen: Iterable[str], now: float | None) -> None:
        name = topic.name
        if name in self._field_reported:
            return
        acc = self._field_seen.setdefault(name, set())
        acc.update(seen)
        n = self._field_count[name] = self._field_count.get(name, 0) + 1
        if now is not None:
            self._field_first.setdefault(name, now)
        if n >= FIELD_REPORT_AFTER or self._field_report_due(name, now):
            self._report_fields(topic, now)

    def _field_report_due(self, name: str, now: float | None) -> bool:
        first = self._field_first.get(name)
        return first is not None and now is not None and now - first >= self.field_report_seconds

    def report_due_fields(self, now: float) -> None:
        """Report the topics whose first record is ``field_report_seconds`` old (the engine's
        tick calls this: a topic that stopped sending is reported all the same)."""
        for name in list(self._field_first):
            if name not in self._field_reported and self._field_report_due(name, now):
                topic = self.inputs.get(name)
                if topic is not None:
                    self._report_fields(topic, now)

    def _report_fields(self, topic: TopicConfig, now: float | None) -> None:
        """Report once, after ``FIELD_REPORT_AFTER`` records or ``field_report_seconds``
        (whichever first), the configured fields of ``topic`` no record carried."""
        name = topic.name
        self._field_reported.add(name)
        acc = self._field_seen.get(name, set())
        n = self._field_count.get(name, 0)
        never = [f for f in topic.all_fields() if f not in acc]
        if never:
            first = self._field_first.get(name)
            span = now - first if now is not None and first is not None else None
            log.warning(
                "data quality: configured fields of %s never seen in %d records%s: %s",
                name,
                n,
                f" over {span:.0f}s" if span is not None else "",
                ", ".join(never),
                extra={
                    "event": "fields_never_seen",
                    "topic": name,
                    "da_module": self._module,
                },
            )

    def fields_never_seen(self) -> dict[str, list[str]]:
        """Per input topic with records, the configured fields that no record has carried."""
        return {
            name: [f for f in self.inputs[name].all_fields() if f not in seen]
            for name, seen in self._field_seen.items()
            if name in self.inputs
        }
