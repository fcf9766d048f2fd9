"""Abstract behaviour suites for the ports in ``da_core.ports``.

Each suite is a plain class (not collected by itself) whose fixtures a backend overrides in a
``Test...`` subclass: ``tests/unit/adapters/test_memory_contract.py`` runs them on the
in-memory broker, and the integration tests run the same classes against a real Kafka.
"""
