"""Rekey forwarding: the first stage of ``station_routing: rekey`` (see ``da_core.routing``).

A source record of a non-global topic is split into one share per station, each queued on the
outbox's forward lane for its internal station-keyed topic at ``partition_for_key(station,
rekey_partitions)``. The source record is tracked in the ledger and held by every share: it is
done (committable) once all its shares are acknowledged. Also here: the colocation check of
``direct`` routing (whether this member's assignment would split a station's data).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from da_core.config import TopicConfig
from da_core.engine.caches import EngineCaches
from da_core.engine.items import EngineStats, Forward, RecordRef
from da_core.engine.outbox import Lane
from da_core.extractors import StationItem
from da_core.limits import BAD_STRING, TOO_DEEP
from da_core.offset_ledger import OffsetLedger
from da_core.ports import JsonCodec
from da_core.routing import SOURCE_HEADER, Routing, colocation_problem, shares
from da_core.types import OutboundRecord, Record, TopicPartition


class Forwarder:
    """Splits source records into shares on ``lane``; see the module docstring."""

    def __init__(
        self,
        routing: Routing,
        lane: Lane[Forward],
        ledger: OffsetLedger,
        stats: EngineStats,
        caches: EngineCaches,
        codec: JsonCodec,
        ids: Iterator[int],
    ) -> None:
        self.routing = routing
        self.partitions: int | None = None
        """Partition count of the internal topics; None until the runner has made sure they
        exist (ingesting a source record before is an error)."""
        self._lane = lane
        self._ledger = ledger
        self._stats = stats
        self._caches = caches
        self._codec = codec
        self._ids = ids

    def set_partitions(self, n: int) -> None:
        if n < 1:
            raise ValueError(f"rekey partitions must be at least 1, not {n}")
        self.partitions = n

    def forward(
        self, rec: Record, topic: TopicConfig, internal: str, items: Sequence[StationItem]
    ) -> tuple[str, str] | None:
        """Queue one share of ``rec`` per station of ``items`` (its extraction with
        ``topic``'s extractor, screened: ids are valid) for ``internal``; a record without
        stations is done at once. Returns (reason, detail) instead, queueing nothing, when a
        share cannot be encoded (the caller dead-letters the record)."""
        n = self.partitions
        if n is None:
            raise RuntimeError("rekey routing: rekey_partitions must be set before ingesting")
        plan = self._caches.plans.get(topic)
        try:
            parts = shares(
                items, rec.value or b"", plan.wrapper_key, plan.extractor == "array", self._codec
            )
        except (TypeError, ValueError, RecursionError, OverflowError) as exc:
            return encoding_problem(exc)
        tp = self._caches.tp_of(rec)
        self._ledger.track(tp, rec.offset)
        self._stats.records_forwarded += 1
        if not parts:
            self._ledger.done(tp, rec.offset)
            return None
        self._stats.shares_forwarded += len(parts)
        refs = (RecordRef(tp, rec.offset, len(parts)),)
        headers = (
            (SOURCE_HEADER, f"{rec.topic}/{rec.partition}/{rec.offset}".encode()),
            *rec.headers,
        )
        for sid, value in parts:
            key = sid.encode()
            out = OutboundRecord(
                internal, value, key, headers, self._caches.partition_of(key, n), rec.timestamp
            )
            fid = next(self._ids)
            self._lane.add(fid, Forward(fid, out), refs)
        return None

    def colocation_count_topics(self, group_topics: Sequence[str]) -> list[str]:
        """The topics whose partition counts ``colocation_problem`` needs (direct routing:
        every non-global group topic, ``group_topics``; rekey: none)."""
        return [] if self.routing.rekey else list(group_topics)

    def colocation_problem(
        self,
        sources: Sequence[str],
        internal: Sequence[str],
        assigned: set[TopicPartition],
        counts: Mapping[str, int],
    ) -> str | None:
        """See ``da_core.routing.colocation_problem``."""
        return colocation_problem(self.routing, list(sources), list(internal), assigned, counts)


def encoding_problem(exc: BaseException) -> tuple[str, str]:
    """The reason code and detail of a value the codec could not encode again (the codec's
    messages differ: orjson says "Recursion limit reached", the stdlib raises
    ``RecursionError``; both refuse lone surrogates)."""
    text = f"{type(exc).__name__}: {exc}"[:200]
    if isinstance(exc, RecursionError) or "ecursion" in str(exc):
        return TOO_DEEP, f"a share cannot be encoded: {text}"
    return BAD_STRING, f"a share cannot be encoded: {text}"
