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

from da_core.config import Catalog, ModuleConfig, TopicConfig
from da_core.engine.caches import EngineCaches
from da_core.engine.encoding import dead_letter_record
from da_core.engine.forwarding import Forwarder
from da_core.engine.items import DeadLetter, EngineStats, RecordRef
from da_core.engine.outbox import Lane
from da_core.engine.stations import StationData, StationStore
from da_core.engine.table import StationTable
from da_core.extractors import StationItem, extract
from da_core.offset_ledger import OffsetLedger
from da_core.ports import JsonCodec
from da_core.routing import Routing
from da_core.types import Record

log = logging.getLogger("da_core.engine")

PREVIEW_BYTES = 200
"""Bytes of a bad record's value quoted in its log line."""
FIELD_REPORT_AFTER = 200
"""Records of a topic after which configured fields never seen are reported once."""


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
        self._module = ""
        self._dlq = ""
        self.inputs: dict[str, TopicConfig] = {}
        self.dep_topics: dict[str, str] = {}
        self.internal_topics: dict[str, str] = {}
        self._envelope = TopicConfig(name="__envelope__", extractor="envelope")
        self._by_topic: dict[str, TopicConfig] = {}
        self._dep_by_topic: dict[str, str] = {}
        self._routed: dict[str, tuple[TopicConfig, str]] = {}

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

    def ingest(self, records: Sequence[Record], tracked: bool) -> set[str]:
        """Apply ``records``; returns the ids of the stations they changed. ``tracked`` False:
        read outside the group (global topics read in full), applied but never committed."""
        dirty: set[str] = set()
        stats = self._stats
        inputs = self._by_topic
        routed = self._routed
        stations = self._store.stations
        states = self._table.states
        station_for = self._table.station_for
        add_item = self._store.add_item
        set_dependency = self._store.set_dependency
        ledger = self._ledger
        codec = self._codec
        plans = self._caches.plans
        tp_of = self._caches.tp_of
        reported = self._field_reported
        for rec in records:
            stats.records_in += 1
            topic = inputs.get(rec.topic)
            dep = None
            if topic is None:
                if routed:
                    route = routed.get(rec.topic)
                    if route is not None:
                        self._forward(rec, route[0], route[1])
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
            stats.bad_fields += ex.bad_fields
            stats.skipped_items += ex.skipped_items
            if dep is None and topic.name not in reported:
                self._note_fields(topic, ex.seen_fields)
            if topic.is_global:
                self._apply_global(topic, ex.items, dirty)
                if tracked:
                    tp = tp_of(rec)
                    ledger.track(tp, rec.offset)
                    self._table.hold(tp, rec.offset, dirty)
                continue
            touched: list[StationData] = []
            lean = topic.window == "hourly_grid"
            for item in ex.items:
                st = stations.get(item.station_id)
                if st is None:
                    st = station_for(item.station_id)
                    if st is None:
                        continue
                stats.items_in += 1
                if dep is not None:
                    set_dependency(st, dep, item.values, item.time)
                else:
                    add_item(st, topic, item, lean)
                if (not touched or touched[-1] is not st) and st not in touched:
                    touched.append(st)
            if not touched:
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
        return dirty

    def _forward(self, rec: Record, topic: TopicConfig, internal: str) -> None:
        ex = extract(topic, rec, self._codec, self._caches.plans)
        if ex.rejection is not None:
            self.reject(rec, ex.rejection.reason, ex.rejection.detail, True)
            return
        self._forwarder.forward(rec, topic, internal, ex.items)

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
            extra={"topic": topic.name, "da_module": self._module},
        )
        dirty.update(stations)

    def reject(self, rec: Record, reason: str, detail: str, tracked: bool) -> None:
        """Count and log a bad record and queue its dead letter, which holds it if tracked."""
        stats = self._stats
        stats.bad_input[reason] = stats.bad_input.get(reason, 0) + 1
        preview = (rec.value or b"")[:PREVIEW_BYTES].decode("utf-8", "replace")
        log.warning(
            "bad input on %s[%d]@%d: %s (%s); preview: %r",
            rec.topic,
            rec.partition,
            rec.offset,
            reason,
            detail,
            preview,
            extra={"topic": rec.topic, "da_module": self._module, "reason": reason},
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

    def _note_fields(self, topic: TopicConfig, seen: Iterable[str]) -> None:
        name = topic.name
        if name in self._field_reported:
            return
        acc = self._field_seen.setdefault(name, set())
        acc.update(seen)
        n = self._field_count[name] = self._field_count.get(name, 0) + 1
        if n >= FIELD_REPORT_AFTER:
            self._field_reported.add(name)
            never = [f for f in topic.all_fields() if f not in acc]
            if never:
                log.warning(
                    "data quality: configured fields of %s never seen in %d records: %s",
                    name,
                    n,
                    ", ".join(never),
                    extra={"topic": name, "da_module": self._module},
                )

    def fields_never_seen(self) -> dict[str, list[str]]:
        """Per input topic with records, the configured fields that no record has carried."""
        return {
            name: [f for f in self.inputs[name].all_fields() if f not in seen]
            for name, seen in self._field_seen.items()
            if name in self.inputs
        }
