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
        """Synchronously commit next-to-read offsets. Raises ``CommitError`` on failure."""

    def committed(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int | None]:
        """The group's committed next-to-read offsets (None when nothing is committed)."""

    def assignment(self) -> set[TopicPartition]:
        """Partitions currently given to this member by the group (not those of ``assign``)."""

    def pause(self, partitions: Sequence[TopicPartition]) -> None: ...

    def resume(self, partitions: Sequence[TopicPartition]) -> None: ...

    def lag_info(self) -> list[PartitionLag]:
        """Committed offset, position and high watermark of every assigned partition."""

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

    def close(self) -> None: ...


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

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None: ...

    async def committed(
        self, partitions: Sequence[TopicPartition]
    ) -> dict[TopicPartition, int | None]: ...

    def assignment(self) -> set[TopicPartition]: ...

    def pause(self, partitions: Sequence[TopicPartition]) -> None: ...

    def resume(self, partitions: Sequence[TopicPartition]) -> None: ...

    async def lag_info(self) -> list[PartitionLag]: ...

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

    async def close(self) -> None: ...


class JsonCodec(Protocol):
    """How the core decodes and encodes JSON; the application injects a fast one (orjson).

    A codec may also offer ``loads_checked(data) -> (value, vouched)``: ``vouched`` True
    promises the value holds no lone surrogate, no non-finite number and no integer beyond
    64 bits, and spares the extractors their cleaning walk (``da_core.extractors.tree``)."""

    def loads(self, data: bytes) -> Any:
        """Decode UTF-8 JSON bytes; raise ``ValueError`` (incl. UnicodeDecodeError) when invalid."""

    def dumps(self, value: Any) -> bytes:
        """Encode to UTF-8 JSON without ASCII escaping (``ensure_ascii=False``)."""
