"""Errors raised by the domain."""

from __future__ import annotations


class DataAnalysisError(Exception):
    """Base class of every error this project raises on purpose."""


class ConfigError(DataAnalysisError):
    """The configuration is invalid. ``problems`` lists one clear sentence per problem."""

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__(
            "invalid configuration: " + "; ".join(self.problems)
            if len(self.problems) == 1
            else "invalid configuration:\n  - " + "\n  - ".join(self.problems)
        )


class CommitError(DataAnalysisError):
    """A commit was refused or failed; the offsets stay held and are retried."""


class DeliveryError(DataAnalysisError):
    """A produced record was not acknowledged by the broker."""
