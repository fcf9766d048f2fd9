"""A restore request that fails (a broker fault: not leader, fenced epoch, broker lost) is
retried with a backoff; it never ends the loop (it once killed the loop thread during a
takeover on the real broker)."""

from __future__ import annotations

from typing import Any

from da_adapters.codec import OrjsonCodec
from da_adapters.memory import ManualClock
from da_app.runtime import actions as a
from da_app.runtime.restore import RestorePhase
from da_app.runtime.stats import RunnerStats
from da_core.catalog import default_catalog
from da_core.engine import Engine
from da_core.errors import DeliveryError
from da_core.types import TopicPartition

PARAM = TopicPartition("SCHEDULE-STATION-PARAM", 0)


def test_a_failed_restore_request_is_retried_after_a_backoff_and_the_restore_completes() -> None:
    clock = ManualClock()
    phase = RestorePhase(
        Engine(default_catalog(), "load_prediction", OrjsonCodec()),
        clock,
        RunnerStats(),
        enabled=True,
    )
    phase.assigned([PARAM])
    facts_asked = 0
    sleeps: list[float] = []

    def answer(op: a.Op) -> Any:
        nonlocal facts_asked
        if isinstance(op, a.RestoreFacts):
            facts_asked += 1
            if facts_asked == 1:
                raise DeliveryError("Not leader for partition")
            # nothing committed: nothing to replay
            return {}, dict.fromkeys(op.partitions, (0, 0)), {}
        if isinstance(op, a.Sleep):
            sleeps.append(op.seconds)
            return False
        return [], {}

    def run_step() -> None:
        program = phase.step(lambda records: len(records))
        reply: Any = None
        while True:
            try:
                op = program.send(reply)
            except StopIteration:
                return
            try:
                reply = answer(op)
            except Exception as exc:
                reply = None
                try:
                    op = program.throw(exc)
                except StopIteration:
                    return
                reply = answer(op)

    run_step()  # the request fails: logged, backed off, the partition stays restoring
    assert sleeps == [0.5]
    assert phase.active
    run_step()  # the retry plans it again and the (empty) restore completes
    assert facts_asked == 2
    assert not phase.active
