"""The values a station run and a batch end with: ``RunOutcome`` (what the callback did) and
``CompletedBatch`` (what ``BatchCollector.poll`` hands out, to upload or release).

Counts of a ``CompletedBatch``: ``members`` is the number of stations the batch was formed for
(for a batch of carried runs only: the number of distinct stations carried); ``succeeded`` and
``failed`` count every run delivered in the batch, its own members' runs and carried runs alike
(``failed``: outcome ``error``), so ``succeeded + failed == len(attachments)``; ``carried``
counts the delivered runs that came from elsewhere.
"""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

import attrs

__all__ = ["CompletedBatch", "RunOutcome", "RunOutcomeKind"]

A = TypeVar("A")

RunOutcomeKind = Literal["result", "none", "error"]


@attrs.frozen(slots=True)
class RunOutcome:
    """How a station run ended: ``result`` (``value`` is the callback's return value; a None
    value is treated as ``none``), ``none`` (the callback returned None) or ``error``
    (``error_type``: e.g. the exception's class name)."""

    kind: RunOutcomeKind
    value: Any = None
    error_type: str | None = None

    @classmethod
    def result(cls, value: Any) -> RunOutcome:
        return cls("result", value)

    @classmethod
    def none(cls) -> RunOutcome:
        return cls("none")

    @classmethod
    def error(cls, error_type: str) -> RunOutcome:
        return cls("error", None, error_type)

    @property
    def failed(self) -> bool:
        return self.kind == "error"

    @property
    def has_result(self) -> bool:
        return self.kind == "result" and self.value is not None


@attrs.frozen(slots=True)
class CompletedBatch(Generic[A]):
    """A batch ready to upload (see the module doc for the counts).

    ``results`` carry ``station_id`` and leave None results out. A batch without results is
    still handed out so its attachments can be released, but is not ``uploadable``."""

    batch_id: str
    module: str
    created_at: float
    results: list[dict[str, Any]]
    attachments: list[A]
    members: int
    succeeded: int
    failed: int
    timed_out: bool
    carried: int = 0

    @property
    def uploadable(self) -> bool:
        """False for a batch without any result: release its attachments, do not upload it."""
        return bool(self.results)
