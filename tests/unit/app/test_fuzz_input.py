"""The quick tier of the input fuzz test (issue 10): a few seeded mutations of every shipped
sample, in both station routings. The large tier is ``tests/fuzz`` (tox env ``fuzz``)."""

from __future__ import annotations

import pytest

from .fuzzing import TOPICS, fuzz_topic

QUICK_CASES = 6
SEED = 20260110


@pytest.mark.parametrize("routing", ["direct", "rekey"])
@pytest.mark.parametrize("topic", TOPICS)
def test_mutated_samples_never_crash_hang_or_stick_the_service(topic: str, routing: str) -> None:
    fuzz_topic(topic, routing, QUICK_CASES, SEED)
