"""Unit tests of the adapters."""
