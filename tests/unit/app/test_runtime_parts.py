"""The small parts the runtime's core and shells are built from: upload parts, programs."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from da_app.runtime import actions as a
from da_app.runtime.programs import call, drive, port_calls
from da_app.runtime.upload_parts import UploadParts
from da_core.types import TopicPartition

TP0, TP1 = TopicPartition("T", 0), TopicPartition("T", 1)


def test_an_upload_is_done_when_its_last_part_comes_back() -> None:
    parts = UploadParts()
    parts.started(7, 3)
    assert parts.part_done(a.UploadDone(7, True)) is None
    assert parts.part_done(a.UploadDone(7, True)) is None
    assert len(parts) == 1
    assert parts.part_done(a.UploadDone(7, True)) == (True, None)
    assert len(parts) == 0


def test_the_first_failed_part_gives_the_uploads_error() -> None:
    parts = UploadParts()
    parts.started(1, 3)
    parts.part_done(a.UploadDone(1, False, "first"))
    parts.part_done(a.UploadDone(1, False, "second"))
    assert parts.part_done(a.UploadDone(1, True)) == (False, "first")


def test_a_part_of_an_unknown_upload_is_ignored() -> None:
    parts = UploadParts()
    assert parts.part_done(a.UploadDone(99, False, "late")) is None
    assert len(parts) == 0


class RecordingConsumer:
    """Records the port calls made on it; answers polls and metadata."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.calls: list[tuple[str, Any]] = []

    def pause(self, partitions: list[TopicPartition]) -> None:
        self.calls.append(("pause", list(partitions)))

    def resume(self, partitions: list[TopicPartition]) -> None:
        self.calls.append(("resume", list(partitions)))

    def poll(self, timeout: float, max_records: int = 500) -> list[str]:
        self.calls.append(("poll", (timeout, max_records)))
        return [f"{self.name}-record"]

    def partitions_for(self, topic: str) -> list[int]:
        return [0, 1] if self.name == "global" else [0]


def _perform(op: a.Op, consumer: Any, global_consumer: Any = None) -> Any:
    return drive(port_calls(op, consumer, global_consumer, listener=None), call)  # type: ignore[arg-type]


def test_a_poll_pauses_then_resumes_then_polls() -> None:
    c = RecordingConsumer("group")
    plan = a.PollPlan(0.5, 100, [TP0], [TP1])
    assert _perform(a.Poll(plan), c) == ["group-record"]
    assert c.calls == [("pause", [TP0]), ("resume", [TP1]), ("poll", (0.5, 100))]


def test_global_partitions_are_asked_of_the_global_reader_when_there_is_one() -> None:
    c, g = RecordingConsumer("group"), RecordingConsumer("global")
    assert _perform(a.Partitions(("G",), True), c, g) == {"G": [0, 1]}
    assert _perform(a.Partitions(("G",), True), c) == {"G": [0]}
    assert _perform(a.Partitions(("T",)), c, g) == {"T": [0]}


def test_a_failed_operation_is_thrown_into_the_program_that_made_it() -> None:
    def program() -> Generator[str, Any, str]:
        try:
            yield "boom"
        except ValueError as exc:
            return f"handled {exc}"
        return "not reached"

    def perform(op: str) -> None:
        raise ValueError(op)

    assert drive(program(), perform) == "handled boom"


def test_an_operation_failure_the_program_does_not_handle_propagates() -> None:
    def program() -> Generator[str, Any, None]:
        yield "boom"

    def perform(op: str) -> None:
        raise ValueError(op)

    with pytest.raises(ValueError, match="boom"):
        drive(program(), perform)
