"""Connectivity tests: does each connection work right now, and if not, why?

The engine resolves secrets and hands over plain :mod:`targets
<erelease.checks.targets>`; :func:`run_checks` tests them all concurrently and
returns one :class:`~erelease.model.CheckResult` per target with a ``reason``
an admin can act on (SPEC §5.5). This package never reads Vault, the state
store or the config files, and never raises for a broken connection — a
failure is a result.

Modules, by concern: ``targets`` (inputs), ``_runner`` (concurrency,
deadlines, the two flows), ``_oauth`` (RFC 6749 requests and answers),
``_http`` (address-pinned requests), ``_network`` (DNS, address policy, TLS
trust, the upload probe), ``_retry`` (backoff), ``_outcome`` (reasons, safe text).
"""

from __future__ import annotations

from erelease.checks._network import FORBIDDEN_NETWORKS, is_forbidden
from erelease.checks._outcome import REASONS, Reason
from erelease.checks._runner import Progress, run_checks, run_checks_async
from erelease.checks.targets import IncomingTarget, OutgoingTarget, Target, Unavailable

__all__ = [
    "FORBIDDEN_NETWORKS",
    "REASONS",
    "IncomingTarget",
    "OutgoingTarget",
    "Progress",
    "Reason",
    "Target",
    "Unavailable",
    "is_forbidden",
    "run_checks",
    "run_checks_async",
]
