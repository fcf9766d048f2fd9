"""The packaged sample payloads are exact copies of the spec's (when the spec is beside us)."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PACKAGED = ROOT / "src" / "da_app" / "samples"
SPEC = ROOT.parent / "shared" / "spec" / "samples"


def test_every_spec_sample_is_packaged_unchanged() -> None:
    if not SPEC.is_dir():
        pytest.skip(f"the shared spec is not beside the checkout ({SPEC})")
    spec = {p.name: p.read_bytes() for p in SPEC.glob("*.json")}
    packaged = {p.name: p.read_bytes() for p in PACKAGED.glob("*.json")}
    assert len(spec) == 14
    assert packaged == spec
