"""Integration tests: every test under this folder gets the ``integration`` marker and can use
the Kafka fixtures of ``kafka_fixtures.py`` (``kafka_bootstrap``, ``kafka_topic_factory``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.kafka_fixtures import kafka_bootstrap as kafka_bootstrap
from tests.integration.kafka_fixtures import kafka_topic_factory as kafka_topic_factory

_HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.integration)
