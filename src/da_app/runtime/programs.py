"""The programs a runner shell runs, and the trampolines that run them.

A program is a generator that yields what it needs done and receives the answer: the core's
programs yield operations (``da_app.runtime.actions``); a ``Calls`` program yields
``(callable, args)`` and receives what the call returned. ``drive`` runs a program on the
calling thread, ``drive_async`` awaits each step; both throw an operation's exception back
into the program, so a program handles its failures where it made the call.

The ``Calls`` programs here are the same for both shells: a station run (``station_call``),
an upload through a custom handler (``handler_upload``), and the port calls that perform a
consumer operation (``port_calls``). The sync shell calls each callable; the async one awaits
what a call returns when it is awaitable (the async ports' ``pause``, ``resume`` and
``assignment`` are plain methods).
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Awaitable, Callable, Generator
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from da_app.runtime import actions as a
from da_core.engine import StationRun, Upload
from da_core.ports import AsyncConsumer, Consumer, RebalanceListener

if TYPE_CHECKING:
    from da_app.runtime.shell import Shell

Y = TypeVar("Y")

Call = tuple[Callable[..., Any], tuple[Any, ...]]
"""One step of a ``Calls`` program: a callable and its positional arguments."""
Calls = Generator[Call, Any, Any]
"""A program of calls: yields ``(callable, args)``, receives what the call returned."""


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


def drive(gen: Generator[Y, Any, Any], perform: Callable[[Y], Any]) -> Any:
    """Run a program to its end on this thread, performing each operation; returns its
    return value."""
    run = Program(gen)
    while (op := run.next()) is not None:
        try:
            run.answer(perform(op))
        except Exception as exc:
            run.fail(exc)
    return run.result


async def drive_async(gen: Generator[Y, Any, Any], perform: Callable[[Y], Awaitable[Any]]) -> Any:
    """Run a program to its end, awaiting each operation; returns its return value."""
    run = Program(gen)
    while (op := run.next()) is not None:
        try:
            run.answer(await perform(op))
        except Exception as exc:
            run.fail(exc)
    return run.result


def call(step: Call) -> Any:
    """Perform one step of a ``Calls`` program on this thread."""
    fn, args = step
    return fn(*args)


async def call_awaiting(step: Call) -> Any:
    """Perform one step of a ``Calls`` program, awaiting its result when awaitable."""
    fn, args = step
    result = fn(*args)
    return await result if inspect.isawaitable(result) else result


def port_calls(
    op: a.Op,
    consumer: Consumer | AsyncConsumer,
    global_consumer: Consumer | AsyncConsumer | None,
    listener: RebalanceListener,
) -> Calls:
    """The port calls that perform a consumer operation; returns the operation's answer.
    ``Wait``, ``Start``, ``Sleep`` and ``RequestStop`` are the shell's own (no calls here)."""
    c, gc = consumer, global_consumer or consumer
    match op:
        case a.Poll(plan):  # pause, then resume, as the core planned before its poll
            if plan.pause:
                yield c.pause, (plan.pause,)
            if plan.resume:
                yield c.resume, (plan.resume,)
            return (yield c.poll, (plan.timeout, plan.max_records))
        case a.Commit(offsets):
            yield c.commit, (offsets,)
        case a.Assignment():
            return (yield c.assignment, ())
        case a.Partitions(topics, global_reader):
            source = gc if global_reader else c
            found: dict[str, list[int]] = {}
            for t in topics:
                found[t] = yield source.partitions_for, (t,)
            return found
        case a.PollGlobal(max_records):
            return (yield gc.poll, (0.0, max_records))
        case a.Assign(partitions):
            yield functools.partial(gc.assign, from_beginning=True), (list(partitions),)
        case a.Subscribe(topics):
            yield c.subscribe, (list(topics), listener)
        case a.CreateTopics(topics, partitions, replication):
            yield c.create_topics, (list(topics), partitions, replication)
        case a.BrokerState():
            connected = getattr(c, "connected", None)  # a port without it cannot tell
            return None if connected is None else (yield connected, ())
    return None


def station_call(shell: Shell[Any, Any], run: StationRun) -> Calls:
    """A station run: the callback, then the result handler; answers its ``RunDone``
    (``seconds``: wall time of both calls, a measurement, not a deadline)."""
    t0 = time.perf_counter()
    args = (run.station_id, run.module_input)
    try:
        result = yield shell.callback, args
    except Exception as exc:
        return a.RunDone.failed(run, exc, time.perf_counter() - t0)
    failed = False
    if shell.result_handler is not None:
        try:
            yield shell.result_handler, (*args, result)
        except Exception:
            failed = a.handler_failed(run)
    return a.RunDone(run, result, None, time.perf_counter() - t0, failed)


def handler_upload(shell: Shell[Any, Any], up: Upload) -> Calls:
    """An upload through the custom ``batch_upload_handler``; answers its ``UploadDone``."""
    assert shell.batch_upload_handler is not None
    try:
        yield shell.batch_upload_handler, (up.batch_id, up.results)
    except Exception as exc:
        return a.UploadDone(up.upload_id, False, a.exc_text(exc))
    return a.UploadDone(up.upload_id, True)
