"""Which records to replay to restore station windows: a pure plan, computed before going live.

Restore by replay (SPEC §6): for every assigned partition of a windowed topic, the records the
group has already consumed and that can still matter are read again, outside the group, and
applied to the windows without running callbacks, uploading or committing; live consumption
then starts at the committed offset. This module decides the range of each partition from
facts the caller gathers through the consumer port (``committed``, ``watermarks``,
``offsets_for_times``) and a clock; it does no I/O.

The two steps
    1. ``lookback_times(partitions, expiries, now)``: the time to ask ``offsets_for_times``
       for, per partition of a topic that expires (``now - expiry``).
    2. ``plan_restore(...)`` with the answers: a ``RestorePlan`` (one ``ReplayRange`` per
       partition, and the ``RetentionGap`` warnings to log at start).

The range of a partition, ``[start, end)`` (offsets, ``end`` excluded)
    * ``end`` is the group's committed offset: everything below it was consumed before;
      everything from it on is read live, so replay and live never see a record twice.
    * No committed offset (a new group, or a new topic): nothing is replayed, whatever
      ``auto_offset_reset`` says. With ``earliest`` live consumption reads every retained
      record anyway (replaying would count them twice); with ``latest`` the operator asked
      to start from now, and the group has no state of its own to restore. Either way the
      range is empty.
    * A committed offset outside ``[low, high]`` (retention overtook the group, or the topic
      was recreated) is out of range: the client resets it per ``auto_offset_reset`` and the
      adapters warn; nothing before it can be trusted, so nothing is replayed.
    * ``start`` is the low watermark for a topic that never expires (``expiry`` None); for a
      topic that expires, the first offset stamped at or after ``now - expiry`` (the
      ``offsets_for_times`` answer; None there means no record that recent, so nothing to
      replay). A missing answer falls back to the low watermark (replaying more is safe:
      windows drop entries older than their expiry).
    * Always ``low <= start <= end <= committed``; the range is empty when ``start == end``,
      in particular whenever ``committed <= low``.

Retention shorter than a topic's expiry
    When a partition's log no longer starts at offset 0 and its oldest retained record is
    already at or after ``now - expiry`` (the ``offsets_for_times`` answer is the low
    watermark), records the windows should still hold may have been deleted: a
    ``RetentionGap`` is reported for the topic. For a topic that never expires, any deleted
    record (``low > 0``) is a gap. The signal can be a false alarm when nothing was produced
    between the deleted records and ``now - expiry``; the message says "may".

Units: times are seconds since the epoch (float), expiries seconds; offsets next-to-read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import attrs

from da_core.types import TopicPartition

Watermarks = tuple[int, int]
"""``(low, high)``: the oldest retained offset and the offset the next record will get."""


@attrs.frozen(slots=True)
class ReplayRange:
    """Offsets ``[start, end)`` of one partition to replay; empty when ``start == end``."""

    start: int
    end: int

    def __attrs_post_init__(self) -> None:
        if not 0 <= self.start <= self.end:
            raise ValueError(
                f"a replay range needs 0 <= start <= end, not [{self.start}, {self.end})"
            )

    @property
    def empty(self) -> bool:
        return self.start == self.end

    @property
    def size(self) -> int:
        """How many offsets the range spans (records, unless some were compacted away)."""
        return self.end - self.start


EMPTY = ReplayRange(0, 0)


@attrs.frozen(slots=True)
class RetentionGap:
    """Records of ``topic`` that windows should still hold may be deleted already."""

    topic: str
    partitions: tuple[int, ...]
    expiry: float | None

    @property
    def message(self) -> str:
        parts = ", ".join(str(p) for p in self.partitions)
        if self.expiry is None:
            return (
                f"topic {self.topic} never expires, but partitions {parts} no longer start at "
                "offset 0: records deleted by the topic's retention cannot be restored "
                "(stations whose only such records are gone wait for them to be sent again)"
            )
        return (
            f"topic {self.topic}: partitions {parts} start after now - {self.expiry:g}s: the "
            "topic's retention may be shorter than its expiry, so windows restored at start "
            "may miss records that are already deleted"
        )


@attrs.frozen
class RestorePlan:
    """What to replay before going live: ``ranges`` has every planned partition (empty
    ranges included, so ``len(ranges)`` is the "m" of "restoring n/m partitions");
    ``gaps`` are the warnings to log once at start."""

    ranges: Mapping[TopicPartition, ReplayRange]
    gaps: tuple[RetentionGap, ...] = ()

    @property
    def to_replay(self) -> dict[TopicPartition, ReplayRange]:
        """The partitions with something to replay."""
        return {tp: r for tp, r in self.ranges.items() if not r.empty}

    @property
    def total(self) -> int:
        """Offsets to replay over all partitions (an upper bound on records)."""
        return sum(r.size for r in self.ranges.values())


def lookback_times(
    partitions: Iterable[TopicPartition], expiries: Mapping[str, float | None], now: float
) -> dict[TopicPartition, float]:
    """The time to ask ``offsets_for_times`` for, per partition of a topic that expires
    (``now - expiry``, at least 0). Topics that never expire (None, or not in ``expiries``)
    are absent: they replay from the low watermark."""
    out: dict[TopicPartition, float] = {}
    for tp in partitions:
        expiry = expiries.get(tp.topic)
        if expiry is not None:
            out[tp] = max(0.0, now - expiry)
    return out


def plan_restore(
    partitions: Sequence[TopicPartition],
    *,
    committed: Mapping[TopicPartition, int | None],
    watermarks: Mapping[TopicPartition, Watermarks],
    expiries: Mapping[str, float | None],
    offsets_at_lookback: Mapping[TopicPartition, int | None],
) -> RestorePlan:
    """The replay range of every partition and the retention warnings (see the module
    docstring). ``offsets_at_lookback`` holds the ``offsets_for_times`` answers for
    ``lookback_times(...)``; a partition without watermarks is planned empty."""
    ranges: dict[TopicPartition, ReplayRange] = {}
    gapped: dict[str, list[int]] = {}
    for tp in partitions:
        marks = watermarks.get(tp)
        end = committed.get(tp)
        if marks is None or end is None:
            ranges[tp] = EMPTY
            continue
        low, high = marks
        if not low <= end <= high:
            ranges[tp] = EMPTY  # out of range: the client resets it; nothing to trust
            continue
        expiry = expiries.get(tp.topic)
        if expiry is None:
            start = low
            gap = low > 0
        else:
            answer = offsets_at_lookback.get(tp, low)
            start = high if answer is None else max(low, answer)
            gap = low > 0 and answer == low
        ranges[tp] = ReplayRange(min(start, end), end)
        if gap:
            gapped.setdefault(tp.topic, []).append(tp.partition)
    gaps = tuple(
        RetentionGap(topic, tuple(sorted(parts)), expiries.get(topic))
        for topic, parts in sorted(gapped.items())
    )
    return RestorePlan(ranges=ranges, gaps=gaps)
