"""Station routing: how several instances of one module keep each station's data together.

Kafka places a record by its key, and SPEC §2 says keys may be absent or anything. Worse, some
topics carry many stations per message (REALTIME's ``realTimeData``, PARAM arrays, CAR-PRICE's
``fee``, WEATHER, module result envelopes). Partition ownership of the *source* topics therefore
says nothing about which stations an instance sees. Two modes:

* ``rekey`` (the Kafka default): a re-keying stage. Every non-global topic the module reads (its
  inputs and its dependencies' output topics) is consumed in the group like before, but its
  records are not applied: each is split by station and every station's share is produced to an
  internal, station-keyed topic (``topic_template``, one per source topic, all with the same
  partition count), at ``partition_for_key(station_id, partitions)``. The group also consumes the
  internal topics; with range assignment over equal partition counts, partition ``p`` of every
  internal topic goes to one member, so a station's data all lands on one instance. A source
  record is done (committable) once every share of it is acknowledged by the broker; an
  internal record follows the usual delivery rules (SPEC §6). Kafka Streams' repartition topics
  work the same way.
* ``direct``: records are applied where they are consumed. Correct for one instance only; the
  runner refuses to go on when the group hands it part of a topic (another member exists).

A share keeps the source's shape (``[...]`` for arrays, ``{wrapper_key: [...]}`` for wrapped
topics and envelopes) so the second stage runs the topic's own extractor; a record that carries
one station only is forwarded byte for byte. Shares keep the source timestamp and carry the
header ``da.src`` = ``topic/partition/offset``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence, Set
from typing import Any

import attrs

from da_core.errors import ConfigError
from da_core.extractors import StationItem
from da_core.ports import JsonCodec
from da_core.types import TopicPartition

ROUTING_MODES: tuple[str, ...] = ("direct", "rekey")
DEFAULT_TEMPLATE = "{group}.{topic}.by-station"
SOURCE_HEADER = "da.src"
MAX_TOPIC_NAME = 249
_ILLEGAL = re.compile(r"[^A-Za-z0-9._-]")


def _check_mode(inst: Any, attribute: Any, value: str) -> None:
    if value not in ROUTING_MODES:
        raise ConfigError(
            f"station_routing must be one of {', '.join(ROUTING_MODES)}, not {value!r}"
        )


def _check_template(inst: Any, attribute: Any, value: str) -> None:
    if "{topic}" not in value:
        raise ConfigError(
            f"rekey_topic_template {value!r} must contain {{topic}} (one internal topic per "
            "source topic)"
        )
    try:
        value.format(group="g", topic="t")
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(
            f"rekey_topic_template {value!r} may only use {{group}} and {{topic}}: {exc}"
        ) from exc


def _check_partitions(inst: Any, attribute: Any, value: int | None) -> None:
    if value is not None and value < 1:
        raise ConfigError(f"rekey_partitions must be at least 1, not {value}")


@attrs.frozen
class Routing:
    """How this module's instances route station data (see the module docstring).

    ``partitions``: partition count for internal topics the service creates (None: the largest
    partition count among the source topics). ``replication_factor`` None: the broker's default.
    """

    mode: str = attrs.field(default="direct", validator=_check_mode)
    group: str = "data_analysis_group"
    topic_template: str = attrs.field(default=DEFAULT_TEMPLATE, validator=_check_template)
    partitions: int | None = attrs.field(default=None, validator=_check_partitions)
    replication_factor: int | None = None

    @property
    def rekey(self) -> bool:
        return self.mode == "rekey"

    def internal_topic(self, source: str) -> str:
        """The internal station-keyed topic of a source topic (characters Kafka does not allow
        in topic names become ``_``)."""
        name = self.topic_template.format(
            group=_ILLEGAL.sub("_", self.group), topic=_ILLEGAL.sub("_", source)
        )
        if len(name) > MAX_TOPIC_NAME:
            raise ConfigError(
                f"internal topic name for {source!r} is {len(name)} characters, more than "
                f"Kafka's {MAX_TOPIC_NAME}; shorten rekey_topic_template or the group id"
            )
        return name


def shares(
    items: Sequence[StationItem],
    value: bytes,
    wrapper_key: str | None,
    is_array: bool,
    codec: JsonCodec,
) -> list[tuple[str, bytes]]:
    """Split one record's extracted items into per-station payloads of the source's shape.

    One station: the record's own bytes. Several: each station's source objects (``raw``), in
    their original order, as ``[...]`` (``is_array``) or ``{wrapper_key: [...]}``."""
    if not items:
        return []
    first = items[0].station_id
    if all(it.station_id == first for it in items):
        return [(first, value)]
    groups: dict[str, list[Any]] = {}
    for it in items:
        groups.setdefault(it.station_id, []).append(it.raw)
    if is_array or wrapper_key is None:
        return [(sid, codec.dumps(raws)) for sid, raws in groups.items()]
    return [(sid, codec.dumps({wrapper_key: raws})) for sid, raws in groups.items()]


def plan_internal_topics(
    routing: Routing, source_counts: Mapping[str, int], internal_counts: Mapping[str, int]
) -> tuple[int, list[str]]:
    """The partition count of the internal topics and which of them to create.

    ``source_counts``/``internal_counts``: partition counts as the cluster reports them (0: the
    topic does not exist). Existing internal topics keep their count, and must all have the same
    one (else co-location is impossible: a ``ConfigError`` naming them and the fix). New ones
    get that count, else ``routing.partitions``, else the largest source count (at least 1)."""
    existing = {t: n for t, n in internal_counts.items() if n > 0}
    missing = sorted(t for t, n in internal_counts.items() if n <= 0)
    counts = set(existing.values())
    if len(counts) > 1:
        listing = ", ".join(f"{t}={n}" for t, n in sorted(existing.items()))
        raise ConfigError(
            "the internal station-keyed topics have different partition counts "
            f"({listing}); a station could then live on two instances. Give them one count "
            "(delete them while no instance runs, or add partitions) or change "
            "rekey_topic_template to start new ones"
        )
    if counts:
        return counts.pop(), missing
    if routing.partitions is not None:
        return routing.partitions, missing
    return max([1, *source_counts.values()]), missing


def colocation_problem(
    routing: Routing,
    topics: Sequence[str],
    internal_topics: Sequence[str],
    assigned: Set[TopicPartition],
    counts: Mapping[str, int],
) -> str | None:
    """Why this member's assignment breaks station co-location, or None when it keeps it.

    ``direct``: the member must hold every partition of every (non-global) group topic, since
    records are applied where they are read. ``rekey``: it must hold the same partition numbers
    of every internal topic (range assignment over equal partition counts does that). The
    message names ``routing.group``."""
    group = routing.group
    if routing.rekey:
        held = {
            t: frozenset(tp.partition for tp in assigned if tp.topic == t) for t in internal_topics
        }
        if len(set(held.values())) > 1:
            listing = "; ".join(f"{t}: {sorted(p)}" for t, p in sorted(held.items()))
            return (
                f"group {group}: the internal station-keyed topics are not assigned by partition "
                f"number ({listing}), so a station's data would be split across instances. Use "
                "range assignment (partition_assignment_strategy: range / RangePartitionAssignor)"
            )
        return None
    for t in topics:
        n = counts.get(t, 0)
        held_n = sum(1 for tp in assigned if tp.topic == t)
        if n > 0 and held_n < n:
            return (
                f"group {group}: this instance holds {held_n} of the {n} partitions of {t}, so "
                "another instance shares the group; station_routing 'direct' keeps a station's "
                "data together only with one instance. Set station_routing: rekey "
                "(SERVICE_CONFIG) to run several instances, or run one"
            )
    return None
