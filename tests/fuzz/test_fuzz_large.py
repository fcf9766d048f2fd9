"""The large tier of the input fuzz test (issue 10), run by ``tox -e fuzz``: many seeded
mutations of every shipped sample in both station routings, several seeds. ``DA_FUZZ_CASES``
and ``DA_FUZZ_SEEDS`` change its size."""

from __future__ import annotations

import os

import pytest

from tests.unit.app.fuzzing import TOPICS, fuzz_topic

CASES = int(os.environ.get("DA_FUZZ_CASES", "150"))
SEEDS = [int(s) for s in os.environ.get("DA_FUZZ_SEEDS", "1,2").split(",") if s.strip()]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("routing", ["direct", "rekey"])
@pytest.mark.parametrize("topic", TOPICS)
def test_many_mutated_samples_never_crash_hang_or_stick_the_service(
    topic: str, routing: str, seed: int
) -> None:
    fuzz_topic(topic, routing, CASES, seed)
