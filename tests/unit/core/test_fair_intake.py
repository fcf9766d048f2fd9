"""FairIntake: per-topic quotas, round-robin, partition order, high-water pausing."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from da_core.fair_intake import FairIntake
from da_core.types import Record, TopicPartition


def recs(topic: str, n: int, partition: int = 0, start: int = 0) -> list[Record]:
    return [Record(topic, partition, start + i, b"{}") for i in range(n)]


def test_a_burst_topic_gets_its_quota_while_others_get_everything_they_have() -> None:
    intake = FairIntake(quota=10)
    intake.put(recs("BURST", 1000))
    intake.put(recs("QUIET", 3))
    taken = intake.take()
    assert sum(r.topic == "BURST" for r in taken) == 10
    assert sum(r.topic == "QUIET" for r in taken) == 3
    assert intake.backlog("BURST") == 990
    assert intake.stats_line() == "[BURST:10,QUIET:3]"


def test_topics_over_high_water_are_reported_for_pausing_until_drained() -> None:
    intake = FairIntake(quota=10, high_water=20)
    intake.put(recs("BURST", 25))
    assert intake.over_high_water() == {"BURST"}
    intake.take()
    assert intake.over_high_water() == set()


def test_revoked_partitions_are_dropped_from_the_buffer() -> None:
    intake = FairIntake(quota=1)
    intake.put(recs("T", 5, partition=0) + recs("T", 5, partition=1))
    assert intake.drop_partitions([TopicPartition("T", 1)]) == 5
    assert all(r.partition == 0 for r in intake.take())


@given(
    st.lists(st.tuples(st.sampled_from("ABC"), st.integers(0, 2)), max_size=200),
    st.integers(1, 7),
)
def test_every_record_comes_out_once_in_partition_order(
    arrivals: list[tuple[str, int]], quota: int
) -> None:
    intake = FairIntake(quota=quota)
    next_offset: dict[tuple[str, int], int] = {}
    sent = []
    for topic, part in arrivals:
        off = next_offset.get((topic, part), 0)
        next_offset[(topic, part)] = off + 1
        sent.append(Record(topic, part, off, b"{}"))
    intake.put(sent)
    out: list[Record] = []
    while len(intake):
        batch = intake.take()
        per_topic: dict[str, int] = {}
        for r in batch:
            per_topic[r.topic] = per_topic.get(r.topic, 0) + 1
        assert all(n <= quota for n in per_topic.values())
        out.extend(batch)
    assert sorted(out, key=lambda r: (r.topic, r.partition, r.offset)) == sorted(
        sent, key=lambda r: (r.topic, r.partition, r.offset)
    )
    last: dict[tuple[str, int], int] = {}
    for r in out:
        assert r.offset > last.get((r.topic, r.partition), -1)
        last[(r.topic, r.partition)] = r.offset
