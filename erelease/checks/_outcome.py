"""The vocabulary of a test's outcome: reasons, the internal failure signal, safe text.

A test ends either normally (reason ``ok``) or by raising :class:`CheckFailure`
somewhere deep in the OAuth or network code; the runner turns either into a
:class:`~erelease.model.CheckResult`. Everything that ends up in a message —
a vendor's ``error_description``, a TLS error — passes through :func:`sanitize`
and :func:`redact`, because a hostile or careless vendor can put control
characters, megabytes, or our own credentials into its responses.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Literal, get_args
from urllib.parse import quote, quote_plus

from erelease.model import Secret

__all__ = [
    "REASONS",
    "CheckFailure",
    "Reason",
    "Stage",
    "redact",
    "sanitize",
    "utc_now",
]

Reason = Literal[
    "ok",
    "dns",
    "connect",
    "tls",
    "timeout",
    "http_status",
    "invalid_client",
    "invalid_grant",
    "bad_response",
    "upload_unreachable",
    "secret_unavailable",
]

#: Every reason a result can carry (SPEC §5.5), in the order a user reads about them.
REASONS: tuple[Reason, ...] = get_args(Reason)

#: The longest piece of server-supplied text a message quotes.
MAX_QUOTE = 200


class CheckFailure(Exception):
    """Raised inside a test to end it with ``reason``; never leaves :mod:`erelease.checks`.

    ``retryable`` marks transient failures (connect errors, 429, 5xx);
    ``retry_after`` is a server's ``Retry-After`` in seconds, if it sent one.
    """

    def __init__(
        self,
        reason: Reason,
        message: str,
        *,
        retryable: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.reason: Reason = reason
        self.message = message
        self.retryable = retryable
        self.retry_after = retry_after

    def with_message(self, message: str) -> CheckFailure:
        return CheckFailure(
            self.reason, message, retryable=self.retryable, retry_after=self.retry_after
        )


class Stage:
    """Where a running test is, so that hitting its deadline can say what was slow.

    Each step calls :meth:`enter` with the result it would end with if time ran
    out right now, e.g. ``("timeout", "no answer from the token endpoint at x")``;
    the runner appends "within <timeout>".
    """

    __slots__ = ("message", "reason")

    def __init__(self) -> None:
        self.reason: Reason = "timeout"
        self.message = "the test did not finish"

    def enter(self, reason: Reason, message: str) -> None:
        self.reason = reason
        self.message = message


def sanitize(text: str, limit: int = MAX_QUOTE) -> str:
    """One printable line of at most ``limit`` characters.

    Control and format characters (terminal escapes, bidi overrides, NUL) become
    spaces, runs of whitespace collapse, and long text is cut with ``…``.
    """
    if not text.isprintable():  # the common case (plain ASCII) skips the per-character pass
        text = "".join(" " if unicodedata.category(ch) in ("Cc", "Cf") else ch for ch in text)
    cleaned = " ".join(text.split())
    if len(cleaned) > limit:
        cleaned = cleaned[: max(0, limit - 1)].rstrip() + "…"
    return cleaned


def redact(text: str, secrets: Iterable[Secret | str | None]) -> str:
    """``text`` with every known secret value replaced by ``***``.

    Servers sometimes echo what they were sent ("unknown user x@y"), so the raw
    value, its URL-encoded forms (the form body and §2.3.1 Basic encoding) and
    the form :func:`sanitize` gives it (a quoted ``error_description`` has
    been sanitized before it gets here) are all removed. Values shorter than
    four characters are left alone: they would mangle ordinary words and carry
    no real secret.
    """
    values: set[str] = set()
    for item in secrets:
        if item is None:
            continue
        raw = item.reveal() if isinstance(item, Secret) else item
        if len(raw) < 4:
            continue
        values.update({raw, quote_plus(raw, safe=""), quote(raw, safe="")})
        cleaned = sanitize(raw, len(raw) + 1)
        if len(cleaned) >= 4:
            values.add(cleaned)
    for value in sorted(values, key=len, reverse=True):
        text = text.replace(value, "***")
    return text


def utc_now() -> str:
    """ISO 8601 UTC to the second, e.g. ``2026-05-09T07:35:25Z``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
