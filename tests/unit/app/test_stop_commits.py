"""A stop stays bounded when commits fail or never answer: once a commit of the stop has failed,
none is tried again in it (the broker's loss may not be known yet, and each attempt would wait
for the client's own commit timeout), and on the async shell a commit waits only for what is
left of the stop's budget. Run over both shells where the decision is the core's."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from typing import Any

import pytest

from da_adapters.memory import ManualClock, MemoryBroker
from da_app.runtime import AsyncRunner, SyncRunner
from da_app.services import AsyncDataAnalysisService, DataAnalysisService
from da_core.errors import CommitError
from da_core.types import TopicPartition

from .helpers import PARAM, RT, param, realtime


def _model(sid: str, inp: dict[str, Any]) -> dict[str, Any]:
    return {"ok": True}


def _publish(broker: MemoryBroker, topic: str, payload: Any, key: str) -> None:
    broker.produce(topic, json.dumps(payload).encode(), key=key.encode())


class Commits:
    """Stands in for the consumer's ``commit``: counts the attempts; raises while ``failing``,
    or never answers while ``hanging`` (async only)."""

    def __init__(self) -> None:
        self.attempts = 0
        self.failing = False
        self.hanging = False

    def sync(self, offsets: Mapping[TopicPartition, int]) -> None:
        self.attempts += 1
        if self.failing:
            raise CommitError("commit timed out after 10s (broker unreachable?)")

    async def async_(self, offsets: Mapping[TopicPartition, int]) -> None:
        self.attempts += 1
        if self.hanging:
            await asyncio.Event().wait()
        if self.failing:
            raise CommitError("commit timed out after 10s (broker unreachable?)")


async def _runner(
    kind: str, commits: Commits
) -> tuple[ManualClock, MemoryBroker, SyncRunner | AsyncRunner]:
    clock = ManualClock()
    broker = MemoryBroker(clock)
    common: dict[str, Any] = {
        "module_name": "load_prediction",
        "config": {"service": {"min_run_interval_seconds": 0}},
        "adapter": "memory",
        "broker": broker,
        "clock": clock,
        "group_id": f"stop-commits-{kind}",
        "auto_offset_reset": "earliest",
    }
    limits: dict[str, Any] = {"poll_timeout": 0.01, "shutdown_timeout": 1.0}
    runner: SyncRunner | AsyncRunner
    if kind == "sync":
        svc = DataAnalysisService(**common)
        clients = svc.container.clients()
        consumer = clients.consumer()
        setattr(consumer, "commit", commits.sync)  # noqa: B010 (the instance's own method)
        runner = SyncRunner(svc.engine, consumer, clients.producer(), clock, _model, **limits)
        runner.subscribe()
    else:
        asvc = AsyncDataAnalysisService(**common)
        aclients = asvc.container.clients()
        aconsumer = aclients.consumer()
        setattr(aconsumer, "commit", commits.async_)  # noqa: B010
        runner = AsyncRunner(asvc.engine, aconsumer, aclients.producer(), clock, _model, **limits)
        await runner.open()
    return clock, broker, runner


async def _step(runner: SyncRunner | AsyncRunner) -> None:
    if isinstance(runner, AsyncRunner):
        await runner.step()
        await asyncio.sleep(0)
    else:
        runner.step()


async def _stop(runner: SyncRunner | AsyncRunner) -> None:
    if isinstance(runner, AsyncRunner):
        await asyncio.wait_for(runner.stop(), 30.0)  # a hang fails the test, not the suite
    else:
        runner.stop()


async def _processed_with_commits_failing(
    kind: str, commits: Commits
) -> tuple[ManualClock, SyncRunner | AsyncRunner]:
    clock, broker, runner = await _runner(kind, commits)
    _publish(broker, PARAM, param("S1"), "S1")
    _publish(broker, RT, realtime("S1", 0, 1.0), "S1")
    commits.failing = True
    for _ in range(400):
        await _step(runner)
        if runner.stats.callback_count >= 1 and commits.attempts >= 1:
            break
    assert runner.stats.callback_count >= 1
    assert commits.attempts >= 1  # a commit failed before the stop: offsets kept for retry
    return clock, runner


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_after_a_failed_commit_a_stop_tries_no_other(
    kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    commits = Commits()
    clock, runner = await _processed_with_commits_failing(kind, commits)
    clock.advance(60.0)  # the retry is due: the stop's drain commits, and that fails too
    before = commits.attempts
    with caplog.at_level(logging.WARNING, logger="da_app.runner"):
        await _stop(runner)
    assert commits.attempts == before + 1
    assert any(
        "a commit of this stop failed" in r.getMessage() and "not committed" in r.getMessage()
        for r in caplog.records
    )


async def test_a_commit_that_never_answers_waits_only_for_the_stops_budget(
    caplog: pytest.LogCaptureFixture,
) -> None:
    commits = Commits()
    _clock, runner = await _processed_with_commits_failing("async", commits)
    commits.failing = False
    commits.hanging = True
    before = commits.attempts
    with caplog.at_level(logging.ERROR, logger="da_app.runner"):
        await _stop(runner)
    assert commits.attempts == before + 1
    assert any("gave up after" in r.getMessage() for r in caplog.records)
