"""When and how long to wait before trying a transient failure again.

Connect errors, 429 and 5xx are worth another try; an answer about the
credentials (any other 4xx) is not — repeating a rejected password can lock a
vendor account. Delays grow exponentially with "equal jitter" (half fixed,
half random) so that 32 tests that failed together do not retry together. A
server's ``Retry-After`` (RFC 9110 §10.2.3, RFC 6585 §4 for 429) wins over the
backoff but is capped. Nothing ever sleeps past the test's deadline: if the
next attempt could not finish in time the last real failure is reported,
which tells an admin more than ``timeout`` would.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

from erelease.checks._outcome import CheckFailure

__all__ = ["RetryPolicy", "parse_retry_after", "retrying"]

T = TypeVar("T")
logger = logging.getLogger("erelease.checks")


@dataclass(frozen=True)
class RetryPolicy:
    """``retries`` further attempts after the first, with these delays (seconds)."""

    retries: int = 2
    base: float = 0.2
    cap: float = 5.0
    retry_after_cap: float = 10.0

    def delay(
        self,
        attempt: int,
        *,
        retry_after: float | None = None,
        rng: Callable[[], float] = random.random,
    ) -> float:
        """The wait before attempt ``attempt + 1`` (``attempt`` counts from 0)."""
        if retry_after is not None:
            # Retry-After is a minimum; a little jitter on top spreads the herd.
            wait = min(max(retry_after, 0.0), self.retry_after_cap)
            return wait + rng() * min(0.1 * wait, 0.5)
        ceiling = min(self.cap, self.base * 2.0**attempt)
        return ceiling / 2 + rng() * ceiling / 2


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delay-seconds or an HTTP-date."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(int(value))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = datetime.now(UTC).timestamp() if now is None else now
    return max(0.0, when.timestamp() - current)


async def retrying(
    attempt: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy,
    deadline: float,
    what: str,
) -> T:
    """Run ``attempt`` until it succeeds, fails for good, or retries/time run out.

    ``deadline`` is a :func:`time.monotonic` value; ``what`` names the step in
    debug logs (never a credential).
    """
    tries = 0
    while True:
        tries += 1
        try:
            return await attempt()
        except CheckFailure as failure:
            if not failure.retryable:
                raise
            suffix = f" ({tries} attempts)" if tries > 1 else ""
            if tries > policy.retries:
                raise failure.with_message(failure.message + suffix) from None
            wait = policy.delay(tries - 1, retry_after=failure.retry_after)
            if time.monotonic() + wait >= deadline:
                note = f"{tries} attempt{'s' if tries > 1 else ''}; no time left to retry"
                raise failure.with_message(f"{failure.message} ({note})") from None
            logger.debug("%s: %s; retrying in %.2fs", what, failure.reason, wait)
            await asyncio.sleep(wait)
