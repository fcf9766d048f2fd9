"""``Harness``: the sync service (``DataAnalysisService`` over ``SyncRunner``) stepped on the
calling thread; see the package docstring."""

from __future__ import annotations

from types import TracebackType
from typing import Any

from da_app.runtime import SyncRunner
from da_app.services import DataAnalysisService
from da_app.testing.base import Callables, HarnessBase


class Harness(HarnessBase[DataAnalysisService, SyncRunner]):
    """One module's sync service on a private in-memory broker with a manual clock. It is
    subscribed from construction; ``stop()`` (or leaving a ``with`` block) or ``crash()``
    releases its worker threads."""

    def _build(
        self, service_kwargs: dict[str, Any], callables: Callables
    ) -> tuple[DataAnalysisService, SyncRunner]:
        service = DataAnalysisService(**service_kwargs)
        runner = service.build_runner(*callables)
        runner.subscribe()
        return service, runner

    def start(self) -> Harness:
        """Nothing to do (subscribed at construction); as ``AsyncHarness.start``."""
        return self

    def __enter__(self) -> Harness:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ driving

    def step(self) -> int:
        """One loop iteration; returns how many things happened (0 = idle)."""
        return self.runner.step()

    def run_until_idle(self, timeout: float = 10.0) -> int:
        """Step until no record is left to read and no work is in flight; returns steps.

        Open batches whose members all finished complete on their own; batches waiting on a
        timeout need ``advance`` first. Raises TimeoutError when work is still going on after
        ``timeout`` wall seconds (a callback that never returns)."""
        watch = self._settling(timeout)
        while not watch.settled(self.step() == 0 and self.runner.quiescent() and self.caught_up()):
            pass
        return watch.steps

    def caught_up(self) -> bool:
        """Every assigned partition read to its end, and no rebalance pending."""
        return self._caught_up_with(self.runner.consumer.lag_info())

    def stop(self) -> None:
        """Stop as a well-behaved service does: drain, commit, leave the group, end the
        worker threads. Idempotent; nothing more after ``crash()``."""
        self.runner.stop()

    def crash(self) -> None:
        """Drop the service without stop(): nothing more is committed."""
        self.runner.abandon()
