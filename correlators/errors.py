"""Cordon's error hierarchy: bad input (events, rules, config, playbooks) versus failed execution.

Input errors carry where the problem is (`path:line`), so a SOC author can jump straight to it.
"""

from __future__ import annotations


class CordonError(Exception):
    """Base of every error Cordon raises on purpose."""


class InputError(CordonError):
    """Something a user wrote or sent is wrong. `where` is `path:line` (or `path`) when known."""

    def __init__(self, reason: str, where: str | None = None) -> None:
        self.reason = reason
        self.where = where
        super().__init__(f"{where}: {reason}" if where else reason)


class EventRejectedError(InputError):
    """One event cannot be read or normalized. The stream goes on without it."""


class RuleError(InputError):
    """A Sigma detection or correlation rule cannot be loaded or evaluated."""


class ConfigError(InputError):
    """The site configuration file is invalid."""


class StateError(CordonError):
    """The state store cannot be opened or is from an incompatible version."""


class PlaybookError(InputError):
    """A playbook cannot be loaded: bad YAML, a schema violation, or a reference to an unknown responder or rule."""
