"""What both runner shells share: their ports and callables, the core they drive and its
views, and the rebalance listener. The programs they run are in ``programs``; how delivery
reports become completions, in ``deliveries``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from da_app.runtime.callbacks import BatchUploadHandler, Callback, ResultHandler
from da_app.runtime.core import LoopCore
from da_app.runtime.flow import FlowControl
from da_app.runtime.stats import RunnerStats
from da_core.engine import Engine
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
        ports: tuple[C, P, C | None, C | None],
        callables: tuple[Callback, ResultHandler | None, BatchUploadHandler | None],
        settle: Callable[[], None] | None = None,
        **core_options: Any,
    ) -> None:
        """Keep the ports (group consumer, producer, global reader, restore reader) and the
        callables; build the core (``LoopCore`` keyword arguments) and the listener
        (``settle``: see ``CoreListener``)."""
        self.engine = engine
        self.clock = clock
        self.consumer, self.producer, self.global_consumer, self.restore_consumer = ports
        """``restore_consumer`` replays partitions outside the group before they go live
        (None: no restore)."""
        core_options.setdefault("restore_reader", self.restore_consumer is not None)
        self.callback, self.result_handler, self.batch_upload_handler = callables
        custom = self.batch_upload_handler is not None
        self.core = LoopCore(engine, clock, custom_upload=custom, **core_options)
        self._listener = CoreListener(self.core, settle)
        self._abandoned = False
        """``abandon()`` was called: a crash is simulated, nothing more is committed."""

    @property
    def stats(self) -> RunnerStats:
        return self.core.stats

    @property
    def stuck_workers(self) -> int:
        """Workers still busy with a run that timed out (``watch``)."""
        return self.core.watch.stuck

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
