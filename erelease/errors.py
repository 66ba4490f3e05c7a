"""The one exception tree of erelease, and the exit code each branch maps to.

Every failure a user can cause or meet (bad config, an unreachable Vault, a
locked state, a stale plan) is raised as a subclass of :class:`ErelaseError`.
The command line catches the root class, prints ``str(exc)`` as one line and
exits with ``exc.exit_code``; anything else is a bug (exit 70, traceback in a
log file). Messages are written for a district IT admin and never contain a
secret value or a library's raw error text (which can hold response bodies).

::

    ErelaseError (1)
    ├── UsageError (64)             a flag or argument that makes no sense
    ├── ConfigError (1)             connections.d/ or erelease.yaml is invalid
    ├── SecretsError (1)            Vault/OpenBao: unreachable, denied, missing, ...
    │   ├── PermissionDenied (1)    a valid token whose policies do not allow the request
    │   └── CasConflict (1)         a check-and-set write lost a race
    ├── StateError (1)              the registry cannot be read or written
    │   ├── StateConflict (1)       the registry moved under an apply (serial)
    │   └── StateLocked (4)         another process holds the stack lock
    ├── PlanError (1)               a plan cannot be applied as asked
    │   ├── DeletionRefused (1)     delete without --allow-delete, or protected
    │   └── StalePlan (5)           a saved plan no longer matches reality
    ├── CheckFailed (3)             a connectivity test failed
    └── Interrupted (130)           Ctrl-C
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "EXIT_CHANGES",
    "EXIT_INTERNAL",
    "CasConflict",
    "CheckFailed",
    "ConfigError",
    "DeletionRefused",
    "ErelaseError",
    "Interrupted",
    "PermissionDenied",
    "PlanError",
    "SecretsError",
    "StalePlan",
    "StateConflict",
    "StateError",
    "StateLocked",
    "UsageError",
]

#: ``plan --detailed-exitcode`` when the plan has changes (not an error).
EXIT_CHANGES = 2
#: An unexpected exception: a bug in erelease.
EXIT_INTERNAL = 70


class ErelaseError(Exception):
    """Root of every error erelease reports to a user. Exit code 1."""

    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} ({self.hint})"
        return self.message


class UsageError(ErelaseError):
    """Raised when a flag, argument or NAME cannot be understood. Exit 64."""

    exit_code = 64


class ConfigError(ErelaseError):
    """Raised when the configuration has errors; ``diagnostics`` lists them."""

    def __init__(self, message: str, *, diagnostics: list[Any] | None = None) -> None:
        super().__init__(message)
        self.diagnostics = diagnostics or []


class SecretsError(ErelaseError):
    """Raised when Vault/OpenBao cannot give or take what erelease needs."""


class PermissionDenied(SecretsError):
    """Raised when Vault refuses a request to a valid token: its policies do not allow it."""


class CasConflict(SecretsError):
    """Raised when a check-and-set write to Vault finds a newer version."""


class StateError(ErelaseError):
    """Raised when the state store cannot be opened, read or written."""


class StateConflict(StateError):
    """Raised when the stack's serial moved between plan and commit."""


class StateLocked(StateError):
    """Raised when another process holds the stack lock. Exit 4."""

    exit_code = 4

    def __init__(self, message: str, *, lock: Any = None) -> None:
        super().__init__(message)
        self.lock = lock


class PlanError(ErelaseError):
    """Raised when a plan cannot be applied the way it was asked."""


class DeletionRefused(PlanError):
    """Raised when a delete needs ``--allow-delete`` or hits ``protect: true``."""


class StalePlan(PlanError):
    """Raised when a saved plan's lineage, serial, digest or Vault versions moved. Exit 5."""

    exit_code = 5


class CheckFailed(ErelaseError):
    """Raised when one or more connectivity tests failed. Exit 3."""

    exit_code = 3


class Interrupted(ErelaseError):
    """Raised when the user interrupts a command (Ctrl-C). Exit 130."""

    exit_code = 130
