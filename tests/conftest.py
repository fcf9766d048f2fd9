"""Suite-wide fixtures."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _no_default_servers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Services started by tests do not bind the default ports 8080/8001 (several test runs
    may share a host); tests that want the servers pass explicit ports or start them."""
    monkeypatch.setenv("DATA_ANALYSIS_HEALTH_PORT", "0")
    monkeypatch.setenv("DATA_ANALYSIS_METRICS_PORT", "0")
