"""What both harnesses share: the service on a private in-memory broker with a manual clock,
publishing, reading what the service published, and the test for "nothing left to do".

Only the driving differs between the sync ``Harness`` and the ``AsyncHarness`` (plain calls
or coroutines); everything here is a plain call on either, between two steps.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Generic, TypeVar

from da_adapters.memory import ManualClock, MemoryBroker
from da_app.runtime import BatchUploadHandler, Callback, ResultHandler
from da_app.runtime.shell import Shell
from da_app.service_base import _ServiceBase
from da_core.engine import Engine
from da_core.types import PartitionLag, TopicPartition

SAMPLES_DIR = Path(__file__).resolve().parent.parent / "samples"
"""Copies of the spec's sample payloads (one per topic), shipped with the package."""

S = TypeVar("S", bound=_ServiceBase)
R = TypeVar("R", bound=Shell[Any, Any])

Callables = tuple[Callback, ResultHandler | None, BatchUploadHandler | None]
"""The user's callback, result handler and batch upload handler, as ``build_runner`` takes them."""


def _runs_at_once(config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` with ``min_run_interval_seconds: 0`` in its service section unless it gives
    one: on a manual clock a station dirty again right after its run would otherwise wait for
    an ``advance`` (the production default, 1 s); a test of the interval sets it."""
    out = dict(config)
    key = "SERVICE_CONFIG" if "SERVICE_CONFIG" in out else "service"
    section = dict(out.get(key) or {})
    section.setdefault("min_run_interval_seconds", 0.0)
    out[key] = section
    return out


class HarnessBase(Generic[S, R]):
    """One module's service (``S``) and its runner (``R``), built but not driven: subclasses
    build them (``_build``) and drive the runner. Stations run as soon as they are dirty
    (``min_run_interval_seconds: 0``) unless the configuration says otherwise."""

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
        service_kwargs.update(
            module_name=module,
            config=_runs_at_once(config or {}),
            adapter="memory",
            broker=self.broker,
            clock=self.clock,
            group_id=group_id or f"test-{module}",
            auto_offset_reset="earliest",
        )
        self.service: S
        self.runner: R
        callables = (callback, result_handler, batch_upload_handler)
        self.service, self.runner = self._build(service_kwargs, callables)
        self.service.started_at = self.clock.time()

    def _build(self, service_kwargs: dict[str, Any], callables: Callables) -> tuple[S, R]:
        """The service (built from ``service_kwargs``) and its runner (``build_runner``)."""
        raise NotImplementedError

    @property
    def engine(self) -> Engine:
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
        """Move the manual clock (batch timeouts, commit intervals, retry backoffs)."""
        self.clock.advance(seconds)

    # ------------------------------------------------------------------ settling

    def _settling(self, timeout: float) -> Settling:
        """A new ``Settling`` for ``run_until_idle``; global topics created since the last
        one are looked up again."""
        self.runner.core.request_global_refresh()
        return Settling(timeout)

    def _caught_up_with(self, lags: Iterable[PartitionLag]) -> bool:
        """The consumer holds the partitions the group gave it (no rebalance still being
        taken up) and has read each of them to its end (``lags``: its ``lag_info()``)."""
        c = self.runner.consumer
        member = getattr(c, "member_id", None)
        wanted = self.broker.group_assignment(self.service.group_id).get(member or "", frozenset())
        if set(c.assignment()) != set(wanted):
            return False
        return not any(
            lag.high_watermark is not None
            and lag.position is not None
            and lag.position < lag.high_watermark
            for lag in lags
        )

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


class Settling:
    """When stepping may end: after ``needed`` quiet steps in a row (a quiet step did
    nothing and left nothing to do). ``timeout`` is in wall seconds (``time.monotonic``): a
    callback that never returns keeps the steps busy, and ``settled`` then raises."""

    def __init__(
        self, timeout: float, needed: int = 2, what: str = "harness did not become idle"
    ) -> None:
        self._deadline = time.monotonic() + timeout
        self._needed = needed
        self._what = what
        self._quiet = 0
        self.steps = 0
        """Steps noted so far."""

    def settled(self, quiet: bool) -> bool:
        """Note one step; True once enough quiet ones came in a row. Raises TimeoutError
        when the deadline has passed before."""
        self.steps += 1
        self._quiet = self._quiet + 1 if quiet else 0
        if self._quiet >= self._needed:
            return True
        if time.monotonic() >= self._deadline:
            raise TimeoutError(self._what)
        return False


def load_sample(topic: str) -> Any:
    """The sample payload of a topic from ``shared/spec/samples`` (decoded JSON)."""
    path = SAMPLES_DIR / f"{topic}.json"
    return json.loads(path.read_text(encoding="utf-8"))


def _dumps(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False).encode("utf-8")
