"""Ports: what the domain needs from the outside world, as typing Protocols.

Sync and async ports are kept separate; an adapter implements one or both. Every adapter must
pass the contract suite in ``tests/contracts/``, which is the executable form of these docstrings.

Offsets
-------
An *offset* names one record of one partition. A *committed offset* and a *position* are always
the **next offset to read**: after consuming the record at offset 41 and finishing with it, the
consumer commits 42. Committing N for a partition promises that every record below N is done;
a new member of the group starts reading at N. Nothing in this project ever commits the offset
of a record that is itself still being processed.

Assignment and revoke
---------------------
``subscribe`` joins the consumer group; the group gives this member a set of partitions. The
``RebalanceListener`` is told, *from inside* ``poll`` on the polling thread (or task), which
partitions were revoked (before they are handed to another member: this is the last moment to
commit their offsets) and which were assigned (reading starts at the committed offset, or at
``auto_offset_reset`` when there is none or it is out of range). ``assign`` instead reads
partitions outside any group (used for global topics, read in full by every instance); it never
commits.

Range reads (restoring state by replay)
---------------------------------------
``watermarks`` gives a partition's low watermark (the oldest retained offset) and high watermark
(the next offset to be written); ``offsets_for_times`` turns a time into the first offset at or
after it. ``assign_at`` reads partitions outside the group from exactly the given offsets and
``unassign`` stops reading them; ``position`` says how far a read has got. A read of
``[start, end)`` is: ``assign_at({tp: start})``; ``poll`` until ``position(tp) >= end``, keeping
only records with ``offset < end`` (``poll`` cannot stop at ``end`` itself: records past it may
come in the same batch); ``unassign([tp])``. None of these touches the group: the group's
assignment, positions and committed offsets stay as they are.

Pause and resume
----------------
``pause`` stops ``poll`` from returning records of those partitions without leaving the group
or losing the position; ``resume`` undoes it. Used for back-pressure.

Delivery
--------
``produce`` hands a record to the producer and returns at once. Exactly one ``DeliveryReport``
per record reaches ``on_delivery``, from inside a later ``poll``/``flush`` of the producer. A
report without error means the broker acknowledged the record with the configured ``acks``; only
then may the offsets of the inputs behind that output be committed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from da_core.types import DeliveryReport, OutboundRecord, PartitionLag, Record, TopicPartition


@runtime_checkable
class Clock(Protocol):
    """The source of time. ``time()`` is seconds since the epoch (float), never decreasing."""

    def time(self) -> float: ...


class RebalanceListener(Protocol):
    """Told about assignment changes from inside ``poll`` (sync) or ``getmany`` (async)."""

    def on_assigned(self, partitions: Sequence[TopicPartition]) -> None: ...

    def on_revoked(self, partitions: Sequence[TopicPartition]) -> None: ...


class Consumer(Protocol):
    """A synchronous group consumer. Not thread-safe: one thread calls every method."""

    def subscribe(self, topics: Sequence[str], listener: RebalanceListener | None = None) -> None:
        """Join the group for these topics (replacing any earlier subscription)."""

    def assign(self, partitions: Sequence[TopicPartition], *, from_beginning: bool = True) -> None:
        """Read these partitions outside the group (no commits), from the beginning or the end.

        Adds to what ``subscribe`` gives, and repeated calls add more (a partition already
        assigned keeps its position); used for global topics."""

    def partitions_for(self, topic: str) -> list[int]:
        """Partition numbers of a topic (empty when the topic does not exist)."""

    def create_topics(
        self, topics: Sequence[str], partitions: int, replication_factor: int | None = None
    ) -> None:
        """Create the topics that do not exist yet with ``partitions`` partitions (None
        replication factor: the broker's default); existing topics are left as they are.
        Administrative: used for the internal topics of rekey routing."""

    def poll(self, timeout: float, max_records: int = 500) -> list[Record]:
        """Return up to ``max_records`` records, waiting at most ``timeout`` seconds for the first.

        Records of one partition come in offset order. Rebalance callbacks run inside this call.
        """

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Synchronously commit next-to-read offsets. Raises ``CommitError`` on failure,
        within a bounded time even while the broker is unreachable (never blocks for the
        length of an outage)."""

    def connected(self) -> bool | None:
        """Whether the client is connected to the cluster now: False once it has lost every
        broker (told by the client, e.g. librdkafka's all-brokers-down), True once a broker
        answers again, None while it cannot tell yet. Cheap; never does I/O itself."""

    def committed(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int | None]:
        """The group's committed next-to-read offsets (None when nothing is committed)."""

    def assignment(self) -> set[TopicPartition]:
        """Partitions currently given to this member by the group (not those of ``assign``)."""

    def pause(self, partitions: Sequence[TopicPartition]) -> None: ...

    def resume(self, partitions: Sequence[TopicPartition]) -> None: ...

    def lag_info(self) -> list[PartitionLag]:
        """Committed offset, position and high watermark of every assigned partition."""

    def watermarks(
        self, partitions: Sequence[TopicPartition]
    ) -> dict[TopicPartition, tuple[int, int]]:
        """``(low, high)`` of each partition, asked of the broker now (never cached): ``low`` is
        the offset of the oldest retained record, ``high`` the offset the next record will get;
        ``low == high`` when the partition holds no record. Any partition of an existing topic
        may be asked, assigned or not."""

    def offsets_for_times(
        self, times: Mapping[TopicPartition, float]
    ) -> dict[TopicPartition, int | None]:
        """For each partition, the earliest retained offset whose record timestamp is ``>=``
        the given time (seconds since the epoch; Kafka's milliseconds are rounded up, so a
        record stamped in the same millisecond but before the time is not included). None
        when no retained record is that recent (the caller then uses the high watermark).
        Any partition of an existing topic may be asked, assigned or not."""

    def assign_at(self, positions: Mapping[TopicPartition, int]) -> None:
        """Read these partitions outside the group (no commits) from exactly these
        next-to-read offsets. Adds to what ``assign``/``assign_at`` already read; a partition
        already read this way moves to the new offset (records of its old position still
        buffered are dropped, never returned). An offset outside ``[low, high]`` is out of
        range and reading resets per ``auto_offset_reset``. A partition the group gives this
        member must not be passed (read it through the group)."""

    def unassign(self, partitions: Sequence[TopicPartition]) -> None:
        """Stop reading partitions added by ``assign``/``assign_at``: no record of them is
        returned by a later ``poll``. Partitions not read that way are ignored (the group's
        assignment is never changed here)."""

    def position(self, partition: TopicPartition) -> int | None:
        """The next offset ``poll`` returns for a partition this consumer reads (by the group,
        ``assign`` or ``assign_at``): one past the last record returned, or the offset given to
        ``assign_at`` while nothing has been returned yet. None when unknown (not read here, or
        the start is still being resolved)."""

    def close(self) -> None:
        """Leave the group (revoking partitions through the listener) and release resources."""


class Producer(Protocol):
    """A synchronous producer. ``produce`` is thread-safe; ``poll``/``flush`` serve reports."""

    def produce(
        self, record: OutboundRecord, on_delivery: Callable[[DeliveryReport], None]
    ) -> None:
        """Queue a record; ``on_delivery`` gets exactly one report later. Raises ``DeliveryError``
        only when the record cannot even be queued (then no report follows)."""

    def poll(self, timeout: float = 0.0) -> int:
        """Serve delivery reports that are ready; returns how many were served."""

    def flush(self, timeout: float) -> int:
        """Wait until every queued record has its report; returns how many are still pending."""

    def close(self, timeout: float | None = None) -> None:
        """Deliver what is queued (for at most ``timeout`` seconds when given, else the
        adapter's own bound), then release the client; what is left gets failed reports."""


class AsyncConsumer(Protocol):
    """The asyncio form of ``Consumer``; same semantics, awaited. One task calls it at a time."""

    async def start(self) -> None: ...

    async def subscribe(
        self, topics: Sequence[str], listener: RebalanceListener | None = None
    ) -> None: ...

    async def assign(
        self, partitions: Sequence[TopicPartition], *, from_beginning: bool = True
    ) -> None: ...

    async def partitions_for(self, topic: str) -> list[int]: ...

    async def create_topics(
        self, topics: Sequence[str], partitions: int, replication_factor: int | None = None
    ) -> None: ...

    async def poll(self, timeout: float, max_records: int = 500) -> list[Record]: ...

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """As ``Consumer.commit``: bounded in time, raises ``CommitError`` on failure."""

    def connected(self) -> bool | None:
        """As ``Consumer.connected`` (a plain method: reads state the client keeps)."""

    async def committed(
        self, partitions: Sequence[TopicPartition]
    ) -> dict[TopicPartition, int | None]: ...

    def assignment(self) -> set[TopicPartition]: ...

    def pause(self, partitions: Sequence[TopicPartition]) -> None: ...

    def resume(self, partitions: Sequence[TopicPartition]) -> None: ...

    async def lag_info(self) -> list[PartitionLag]: ...

    async def watermarks(
        self, partitions: Sequence[TopicPartition]
    ) -> dict[TopicPartition, tuple[int, int]]: ...

    async def offsets_for_times(
        self, times: Mapping[TopicPartition, float]
    ) -> dict[TopicPartition, int | None]: ...

    async def assign_at(self, positions: Mapping[TopicPartition, int]) -> None: ...

    async def unassign(self, partitions: Sequence[TopicPartition]) -> None: ...

    async def position(self, partition: TopicPartition) -> int | None: ...

    async def close(self) -> None: ...


class AsyncProducer(Protocol):
    """The asyncio form of ``Producer``: ``send`` resolves to the record's delivery report."""

    async def start(self) -> None: ...

    async def send(self, record: OutboundRecord) -> DeliveryReport:
        """Produce and wait for the broker's answer. Never raises for a broker refusal: the
        report carries the error."""

    async def send_many(self, records: Sequence[OutboundRecord]) -> list[DeliveryReport]:
        """``send`` for many records at once, in order: all are handed to the client before
        any answer is awaited (one task instead of one per record). One report per record,
        in the records' order; never raises for a broker refusal."""

    async def flush(self, timeout: float) -> None: ...

    async def close(self, timeout: float | None = None) -> None:
        """As ``Producer.close``: deliver for at most ``timeout`` seconds (else the adapter's
        own bound), then release the client; what is left gets failed reports."""


class JsonCodec(Protocol):
    """How the core decodes and encodes JSON; the application injects a fast one (orjson).

    A codec may also offer ``loads_checked(data) -> (value, vouched)``: ``vouched`` True
    promises the value holds no lone surrogate, no non-finite number and no integer beyond
    64 bits, and spares the extractors their cleaning walk (``da_core.extractors.tree``)."""

    def loads(self, data: bytes) -> Any:
        """Decode UTF-8 JSON bytes; raise ``ValueError`` (incl. UnicodeDecodeError) when invalid."""

    def dumps(self, value: Any) -> bytes:
        """Encode to UTF-8 JSON without ASCII escaping (``ensure_ascii=False``)."""
