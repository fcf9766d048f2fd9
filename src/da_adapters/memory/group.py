"""Consumer-group state of the in-memory broker: members, range assignment, and the rules by
which partitions change hands. A plain state machine: the broker calls it under its lock.

Hand-over rules
---------------
A rebalance moves the generation and gives each member a *target* at once. A member *owns* a
partition from the moment it is told of it (``claim``, then ``on_assigned``) until it hands it
back (``revocations``, then ``on_revoked``, then ``release``); a partition is claimable only
when nobody else owns it. So the old owner's ``on_revoked`` (the last moment to commit) always
returns before the new owner starts, and the new owner starts at what was committed there.

* eager (the real clients' range assignor): at a new generation a member revokes everything
  it owns, then claims its whole target at once, when all of it is free (one ``on_assigned``
  per generation, even when empty).
* cooperative: a member revokes only what left its target and claims what is free of the
  rest, incrementally.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from da_core.types import TopicPartition


def range_assign(
    subscriptions: Mapping[str, Sequence[str]], partition_counts: Mapping[str, int]
) -> dict[str, frozenset[TopicPartition]]:
    """Kafka's ``RangeAssignor``: per topic, members subscribed to it in member-id order get
    consecutive ranges; the first ``partitions % members`` members get one extra partition.
    Topics missing from ``partition_counts`` (not created yet) assign nothing."""
    result: dict[str, set[TopicPartition]] = {member: set() for member in subscriptions}
    topics = sorted({t for topics in subscriptions.values() for t in topics})
    for topic in topics:
        n = partition_counts.get(topic)
        if n is None:
            continue
        members = sorted(m for m, subscribed in subscriptions.items() if topic in subscribed)
        per_member, extra = divmod(n, len(members))
        start = 0
        for i, member in enumerate(members):
            size = per_member + (1 if i < extra else 0)
            result[member].update(TopicPartition(topic, p) for p in range(start, start + size))
            start += size
    return {member: frozenset(tps) for member, tps in result.items()}


class Member:
    __slots__ = ("acked_generation", "member_id", "owned", "subscription", "target")

    def __init__(self, member_id: str, subscription: tuple[str, ...]) -> None:
        self.member_id = member_id
        self.subscription = subscription
        self.target: frozenset[TopicPartition] = frozenset()
        """What the current generation gives this member."""
        self.owned: set[TopicPartition] = set()
        """What the member has been told it has (assigned and not yet released)."""
        self.acked_generation = -1
        """The generation whose assignment the member has received in full."""


class GroupState:
    """One consumer group: members, generation, ownership and committed offsets."""

    def __init__(self, group_id: str, *, eager: bool) -> None:
        self.group_id = group_id
        self.eager = eager
        self.members: dict[str, Member] = {}
        self.generation = 0
        self.committed: dict[TopicPartition, int] = {}
        self.owners: dict[TopicPartition, str] = {}
        self.commit_failures = 0
        """Injected: how many of the next commits fail."""

    def subscribes_to(self, topic: str) -> bool:
        return any(topic in m.subscription for m in self.members.values())

    def add(self, member_id: str, subscription: tuple[str, ...]) -> None:
        self.members[member_id] = Member(member_id, subscription)

    def subscribe(self, member_id: str, subscription: tuple[str, ...]) -> None:
        self.members[member_id].subscription = subscription

    def remove(self, member_id: str) -> bool:
        """Drop a member, releasing what it owns; False when it was not a member."""
        member = self.members.pop(member_id, None)
        if member is None:
            return False
        self._disown(member_id, member.owned)
        return True

    def rebalance(self, partition_counts: Mapping[str, int]) -> None:
        self.generation += 1
        targets = range_assign(
            {m.member_id: m.subscription for m in self.members.values()}, partition_counts
        )
        for member in self.members.values():
            member.target = targets[member.member_id]

    def revocations(self, member_id: str) -> set[TopicPartition]:
        """What the member must hand back now (it keeps owning it until ``release``)."""
        member = self.members.get(member_id)
        if member is None:
            return set()
        if self.eager:
            return set(member.owned) if member.acked_generation != self.generation else set()
        return member.owned - member.target

    def release(self, member_id: str, partitions: Iterable[TopicPartition]) -> None:
        member = self.members.get(member_id)
        partitions = set(partitions)
        if member is not None:
            member.owned -= partitions
        self._disown(member_id, partitions)

    def claimable(self, member_id: str) -> set[TopicPartition] | None:
        """What the member may take now, or None when there is nothing to take yet."""
        member = self.members.get(member_id)
        if member is None:
            return None
        if self.eager:
            if member.acked_generation == self.generation or member.owned:
                return None
            if not all(self._free_for(tp, member_id) for tp in member.target):
                return None
            return set(member.target)
        wanted = {tp for tp in member.target - member.owned if self._free_for(tp, member_id)}
        return wanted or None

    def claim(self, member_id: str) -> set[TopicPartition] | None:
        """Take what ``claimable`` allows; returns the partitions taken."""
        taken = self.claimable(member_id)
        if taken is None:
            return None
        member = self.members[member_id]
        for tp in taken:
            self.owners[tp] = member_id
        member.owned |= taken
        if member.owned == member.target:
            member.acked_generation = self.generation
        return taken

    def needs_sync(self, member_id: str) -> bool:
        """True when ``revocations`` or ``claim`` has something for this member."""
        return bool(self.revocations(member_id)) or self.claimable(member_id) is not None

    def owner_of(self, tp: TopicPartition) -> str | None:
        return self.owners.get(tp)

    def _free_for(self, tp: TopicPartition, member_id: str) -> bool:
        return self.owners.get(tp, member_id) == member_id

    def _disown(self, member_id: str, partitions: Iterable[TopicPartition]) -> None:
        for tp in partitions:
            if self.owners.get(tp) == member_id:
                del self.owners[tp]
