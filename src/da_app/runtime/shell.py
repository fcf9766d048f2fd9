"""What both runner shells share: the core's views, and the rebalance listener."""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Sequence
from typing import Any, Generic, TypeVar

from da_app.runtime.actions import PollPlan, RunDone, UploadDone, exc_text, handler_failed
from da_app.runtime.callbacks import BatchUploadHandler, Callback, ResultHandler
from da_app.runtime.core import LoopCore
from da_app.runtime.flow import FlowControl
from da_app.runtime.stats import RunnerStats
from da_core.engine import Engine, StationRun, Upload
from da_core.ports import AsyncConsumer, AsyncProducer, Clock, Consumer, Producer
from da_core.types import TopicPartition


class CoreListener:
    """The consumer's ``RebalanceListener``: tells the core, then ``settle()`` (the sync shell
    drains and commits revoked partitions at once, inside the poll; the async shell leaves it
    to the step after the poll). ``active = False`` silences it (stop, crash)."""

    def __init__(self, core: LoopCore, settle: Callable[[], None] | None = None) -> None:
        self._core = core
        self._settle = settle
        self.active = True

    def on_assigned(self, partitions: Sequence[TopicPartition]) -> None:
        if self.active:
            self._core.on_assigned(partitions)
            if self._settle is not None:
                self._settle()

    def on_revoked(self, partitions: Sequence[TopicPartition]) -> None:
        if self.active:
            self._core.on_revoked(partitions)
            if self._settle is not None:
                self._settle()


Y = TypeVar("Y")

Calls = Generator[tuple[Callable[..., Any], tuple[Any, ...]], Any, Any]
"""A program of user calls: yields ``(callable, args)``, receives what the call returned."""


class Program(Generic[Y]):
    """One program being driven (a core program of ``Op``s, or ``Calls``): ``next()`` gives
    its next operation (None once it has ended, with its return value in ``result``);
    ``answer``/``fail`` give the operation's outcome, sent (or thrown) into the program at
    the following ``next()``."""

    def __init__(self, gen: Generator[Y, Any, Any]) -> None:
        self._gen = gen
        self._answer: Any = None
        self._failure: Exception | None = None
        self.result: Any = None

    def next(self) -> Y | None:
        failure, self._failure = self._failure, None
        try:
            if failure is not None:
                return self._gen.throw(failure)
            return self._gen.send(self._answer)
        except StopIteration as end:
            self.result = end.value
            return None

    def answer(self, value: Any) -> None:
        self._answer = value

    def fail(self, exc: Exception) -> None:
        self._answer, self._failure = None, exc


C = TypeVar("C", bound="Consumer | AsyncConsumer")
P = TypeVar("P", bound="Producer | AsyncProducer")


class Shell(Generic[C, P]):
    """What both runners keep alike: their ports, the user's callables, their ``core``, and
    the views they give of it (status, metrics, tests)."""

    core: LoopCore
    engine: Engine
    clock: Clock
    callback: Callback
    result_handler: ResultHandler | None
    batch_upload_handler: BatchUploadHandler | None
    consumer: C
    producer: P
    global_consumer: C | None

    def _bind(
        self,
        engine: Engine,
        clock: Clock,
        ports: tuple[C, P, C | None],
        callables: tuple[Callback, ResultHandler | None, BatchUploadHandler | None],
        **core_options: Any,
    ) -> None:
        """Keep the ports and callables; build the core (``LoopCore`` keyword arguments)."""
        self.engine = engine
        self.clock = clock
        self.consumer, self.producer, self.global_consumer = ports
        self.callback, self.result_handler, self.batch_upload_handler = callables
        custom = self.batch_upload_handler is not None
        self.core = LoopCore(engine, clock, custom_upload=custom, **core_options)

    @property
    def stats(self) -> RunnerStats:
        return self.core.stats

    @property
    def flow(self) -> FlowControl:
        return self.core.flow

    @property
    def subscribed(self) -> bool:
        return self.core.subscribed

    def idle(self) -> bool:
        """Nothing queued, running, uploading or waiting to be told (``LoopCore.idle``)."""
        return self.core.idle()

    def quiescent(self) -> bool:
        """Nothing can happen until records arrive or time passes (``LoopCore.quiescent``)."""
        return self.core.quiescent()


def apply_pauses(consumer: Consumer | AsyncConsumer, plan: PollPlan) -> None:
    """Pause, then resume, as the core planned before its poll."""
    if plan.pause:
        consumer.pause(plan.pause)
    if plan.resume:
        consumer.resume(plan.resume)


def station_call(shell: Shell[Any, Any], run: StationRun) -> Calls:
    """A station run: the callback, then the result handler; answers its ``RunDone``
    (``seconds``: wall time of both calls, a measurement, not a deadline)."""
    t0 = time.perf_counter()
    args = (run.station_id, run.module_input)
    try:
        result = yield shell.callback, args
    except Exception as exc:
        return RunDone.failed(run, exc, time.perf_counter() - t0)
    failed = False
    if shell.result_handler is not None:
        try:
            yield shell.result_handler, (*args, result)
        except Exception:
            failed = handler_failed(run)
    return RunDone(run, result, None, time.perf_counter() - t0, failed)


def handler_upload(shell: Shell[Any, Any], up: Upload) -> Calls:
    """An upload through the custom ``batch_upload_handler``; answers its ``UploadDone``."""
    assert shell.batch_upload_handler is not None
    try:
        yield shell.batch_upload_handler, (up.batch_id, up.results)
    except Exception as exc:
        return UploadDone(up.upload_id, False, exc_text(exc))
    return UploadDone(up.upload_id, True)
