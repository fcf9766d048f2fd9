"""A test harness for model authors: a service on the in-memory bus, no Kafka needed.

    from da_app.testing import Harness

    def my_model(station_id, module_input):
        return {"load": module_input["outputPowerPerStationAvg"]}

    h = Harness("load_prediction", my_model)
    h.publish_sample("SCHEDULE-STATION-PARAM")          # payloads from spec/samples, or your own
    h.publish("SCHEDULE-STATION-REALTIME-DATA", {"realTimeData": [...]})
    h.run_until_idle()
    results = h.results()                                # what the module published
    h.advance(5)                                         # move the manual clock (batch timeouts)

The harness drives the service's runner step by step on the calling thread (callbacks still
run in the worker pool), so tests are deterministic and never sleep.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from da_adapters.memory import ManualClock, MemoryBroker
from da_app.runtime import BatchUploadHandler, Callback, ResultHandler, SyncRunner
from da_app.services import DataAnalysisService
from da_core.types import TopicPartition

SAMPLES_DIR = Path(__file__).resolve().parent / "samples"
"""Copies of the spec's sample payloads (one per topic), shipped with the package."""


class Harness:
    """One module's service on a private in-memory broker with a manual clock."""

    def __init__(
        self,
        module: str,
        callback: Callback,
        *,
        result_handler: ResultHandler | None = None,
        batch_upload_handler: BatchUploadHandler | None = None,
        config: Mapping[str, Any] | None = None,
        broker: MemoryBroker | None = None,
        clock: ManualClock | None = None,
        group_id: str | None = None,
        **service_kwargs: Any,
    ) -> None:
        self.clock = clock or ManualClock()
        self.broker = broker or MemoryBroker(self.clock)
        self.service = DataAnalysisService(
            module_name=module,
            config=dict(config or {}),
            adapter="memory",
            broker=self.broker,
            clock=self.clock,
            group_id=group_id or f"test-{module}",
            auto_offset_reset="earliest",
            **service_kwargs,
        )
        self.runner: SyncRunner = self.service.build_runner(
            callback, result_handler, batch_upload_handler
        )
        self.runner.subscribe()
        self.service.started_at = self.clock.time()

    @property
    def engine(self) -> Any:
        return self.service.engine

    # ------------------------------------------------------------------ input

    def publish(
        self,
        topic: str,
        payload: Any,
        *,
        key: bytes | str | None = None,
        timestamp: float | None = None,
        partition: int | None = None,
    ) -> None:
        """Publish a payload (dict/list → JSON; bytes as is) to a topic of the broker."""
        value = payload if isinstance(payload, bytes) or payload is None else _dumps(payload)
        k = key.encode() if isinstance(key, str) else key
        self.broker.produce(topic, value, key=k, timestamp=timestamp, partition=partition)

    def publish_sample(self, topic: str, **kwargs: Any) -> Any:
        """Publish the sample payload of ``topic`` from the spec; returns the payload."""
        payload = load_sample(topic)
        self.publish(topic, payload, **kwargs)
        return payload

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    # ------------------------------------------------------------------ driving

    def step(self) -> int:
        return self.runner.step()

    def run_until_idle(self, timeout: float = 10.0) -> int:
        """Step until no record is left to read and no work is in flight; returns steps.

        Open batches whose members all finished complete on their own; batches waiting on a
        timeout need ``advance`` first. Raises TimeoutError when work is still going on after
        ``timeout`` wall seconds (a callback that never returns)."""
        deadline = time.monotonic() + timeout
        steps = 0
        quiet = 0
        self.runner.core.request_global_refresh()  # global topics created since the last settle
        while time.monotonic() < deadline:
            activity = self.runner.step()
            steps += 1
            if activity == 0 and self.runner.quiescent() and self._caught_up():
                quiet += 1
                if quiet >= 2:
                    return steps
            else:
                quiet = 0
        raise TimeoutError("harness did not become idle")

    def _caught_up(self) -> bool:
        c = self.runner.consumer
        member = getattr(c, "member_id", None)
        wanted = self.broker.group_assignment(self.service.group_id).get(member or "", frozenset())
        if set(c.assignment()) != set(wanted):
            return False  # a rebalance is still being taken up
        for lag in c.lag_info():
            if (
                lag.high_watermark is not None
                and lag.position is not None
                and (lag.position < lag.high_watermark)
            ):
                return False
        return True

    def stop(self) -> None:
        """Stop as a well-behaved service does: drain, commit, leave the group."""
        self.runner.stop()

    def crash(self) -> None:
        """Drop the service without stop(): nothing more is committed."""
        self.runner.abandon()

    # ------------------------------------------------------------------ output

    def published(self, topic: str) -> list[Any]:
        """Decoded values of every record on ``topic``, in partition then offset order."""
        return [json.loads(r.value) for r in self.broker.records(topic) if r.value]

    def results(self) -> list[dict[str, Any]]:
        """Every station result published to the module's output topic (batch or station mode)."""
        out: list[dict[str, Any]] = []
        for env in self.published(self.service.engine.module.output):
            out.extend(env.get("results", []))
        return out

    def dead_letters(self) -> list[tuple[dict[str, str], bytes | None]]:
        """(headers, value) of every dead-lettered record."""
        topic = self.service.catalog.dead_letter_topic
        return [
            ({k: v.decode() for k, v in r.headers}, r.value) for r in self.broker.records(topic)
        ]

    def committed(self) -> dict[TopicPartition, int | None]:
        """The group's committed offsets for every partition of the module's topics."""
        tps = [
            TopicPartition(t, p)
            for t in self.service.engine.topics
            for p in range(self.broker.partition_count(t))
        ]
        return self.broker.committed(self.service.group_id, tps)


def load_sample(topic: str) -> Any:
    """The sample payload of a topic from ``shared/spec/samples`` (decoded JSON)."""
    path = SAMPLES_DIR / f"{topic}.json"
    return json.loads(path.read_text(encoding="utf-8"))


def _dumps(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False).encode("utf-8")
