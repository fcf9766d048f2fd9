"""Helpers every test may use: waiting on a condition with a deadline (``waiting``) and the
leak checks behind the suite-wide fixture in ``tests/conftest.py`` (``leaks``)."""
