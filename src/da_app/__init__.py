"""The application layer: configuration (``settings``), the composition root, the sync and
async services, the health/metrics server, logging set-up and the ``da-app`` command.

Importing it is cheap and has no side effects: no configuration file is read, no logging is
configured and nothing connects until a service is built.
"""
