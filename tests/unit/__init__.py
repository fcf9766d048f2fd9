"""Unit tests, mirroring src/."""
