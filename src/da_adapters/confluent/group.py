"""``GroupMixin``: the group membership and group offsets of ``ConfluentConsumer``.

Group membership
    ``subscribe`` registers ``on_assign`` / ``on_revoke`` / ``on_lost``; librdkafka calls them
    from inside ``consume()``, i.e. inside our ``poll``, on the polling thread, so the
    ``RebalanceListener`` hears of revocations while this member still owns the partitions (the
    last moment to commit them). Works with the eager (``range``, ``roundrobin``) and the
    cooperative (``cooperative-sticky``) assignors: the callbacks carry what changed, and the
    client assigns them itself when the callback returns. ``on_lost`` (the session expired:
    the partitions already belong to someone else) is reported as a revocation too, with a
    warning, since commits for them will now be refused.

Offsets
    Auto-commit and the offset store are always off; ``commit`` sends the explicit next-to-read
    offsets synchronously and raises ``CommitError`` when the broker refuses any of them. It
    never blocks for long: while the client knows every broker to be down it refuses at once,
    without sending; otherwise it waits at most ``commit_timeout`` seconds for the answer
    (``bounded_commit``: a broker lost since the last poll, or a coordinator moved away by a
    controlled shutdown, would hold a synchronous commit for the whole outage). A commit left
    unanswered stays in flight, and no other is sent until it has its answer.
    ``committed`` asks through the never-fetching handle (``ConsumerBase._meta_consumer``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import confluent_kafka as ck

from da_adapters.confluent._support import ConfluentError
from da_adapters.confluent.bounded_commit import CommitCall
from da_adapters.confluent.consumer_base import ConsumerBase, log
from da_adapters.confluent.translate import (
    error_text,
    from_ck_partition,
    offset_or_none,
    to_ck_offsets,
    to_ck_partitions,
)
from da_adapters.wire import describe_partitions, sorted_partitions
from da_core.errors import CommitError
from da_core.ports import RebalanceListener
from da_core.types import TopicPartition


class GroupMixin(ConsumerBase):
    """Subscription, rebalance callbacks and group offsets (see the module docstring)."""

    def subscribe(self, topics: Sequence[str], listener: RebalanceListener | None = None) -> None:
        self._check_open()
        self._listener = listener
        if not topics:
            self._consumer.unsubscribe()
            self._subscribed = False
            return
        self._consumer.subscribe(
            list(topics),
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        self._subscribed = True

    def _on_assign(self, _consumer: Any, partitions: list[ck.TopicPartition]) -> None:
        assigned = sorted_partitions(
            tp for tp in map(from_ck_partition, partitions) if tp not in self._owned
        )
        if not assigned:
            return
        self._owned.update(assigned)
        log.debug("group %s: assigned %s", self.group_id, describe_partitions(assigned))
        if self._listener is not None:
            self._listener.on_assigned(assigned)

    def _on_revoke(self, _consumer: Any, partitions: list[ck.TopicPartition]) -> None:
        self._revoke([from_ck_partition(p) for p in partitions], lost=False)

    def _on_lost(self, _consumer: Any, partitions: list[ck.TopicPartition]) -> None:
        self._revoke([from_ck_partition(p) for p in partitions], lost=True)

    def _revoke(self, partitions: Sequence[TopicPartition], *, lost: bool) -> None:
        revoked = sorted_partitions(tp for tp in partitions if tp in self._owned)
        if not revoked:
            return
        if lost:
            log.warning(
                "group %s: partitions lost (session expired; commits for them will fail): %s",
                self.group_id,
                describe_partitions(revoked),
            )
        else:
            log.debug("group %s: revoked %s", self.group_id, describe_partitions(revoked))
        try:
            if self._listener is not None:
                self._listener.on_revoked(revoked)
        finally:
            self._owned.difference_update(revoked)
            paused = [tp for tp in revoked if tp in self._paused]
            self._paused.difference_update(revoked)
            if paused and not lost:
                # librdkafka keeps an application pause across unassign/assign: were this
                # partition handed back to us, it would stay paused while we think it is not.
                self._consumer.resume(to_ck_partitions(paused))

    def assignment(self) -> set[TopicPartition]:
        return set(self._owned)

    # -- offsets -------------------------------------------------------------------------------

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        self._check_open()
        if not offsets:
            return
        shown = ", ".join(f"{tp}={offset}" for tp, offset in offsets.items())
        if self._links_state() is False:
            # librdkafka's synchronous commit waits for a coordinator (for the whole outage):
            # refuse at once, the caller keeps the offsets and retries.
            raise CommitError(
                f"group {self.group_id}: commit of {shown} not sent: every broker is down"
            )
        pending = self._commit_call
        if pending is not None:
            if not pending.done:
                raise CommitError(
                    f"group {self.group_id}: commit of {shown} not sent: the previous one is "
                    f"still waiting for the group coordinator ({pending.age():.0f}s)"
                )
            self._commit_call = None  # its late answer changes nothing: the caller retried
        call = CommitCall(self._consumer, to_ck_offsets(offsets))
        if not call.wait(self._commit_timeout):
            self._commit_call = call
            raise CommitError(
                f"group {self.group_id}: commit of {shown} not answered within "
                f"{self._commit_timeout:g}s (group coordinator unreachable?)"
            )
        if isinstance(call.error, ck.KafkaException):
            raise CommitError(
                f"group {self.group_id}: commit of {shown} failed: {call.error}"
            ) from call.error
        if call.error is not None:
            raise call.error
        failed = [p for p in call.result or () if p.error is not None]
        if failed:
            reasons = "; ".join(
                f"{p.topic}[{p.partition}]: {error_text(p.error)}"
                for p in failed
                if p.error is not None
            )
            raise CommitError(f"group {self.group_id}: commit of {shown} refused: {reasons}")

    def committed(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int | None]:
        self._check_open()
        if not partitions:
            return {}
        try:
            result = self._meta_consumer().committed(
                to_ck_partitions(partitions), timeout=self._timeout
            )
        except ck.KafkaException as exc:
            raise ConfluentError(
                f"group {self.group_id}: committed offsets of "
                f"{describe_partitions(list(partitions))}: {exc}"
            ) from exc
        out: dict[TopicPartition, int | None] = {}
        for p in result:
            if p.error is not None:
                raise ConfluentError(
                    f"group {self.group_id}: committed offset of {p.topic}[{p.partition}]: "
                    f"{error_text(p.error)}"
                )
            out[from_ck_partition(p)] = offset_or_none(p.offset)
        return out
