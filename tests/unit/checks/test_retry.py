"""Backoff, Retry-After and the retry loop's promises about time."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from erelease.checks._outcome import CheckFailure
from erelease.checks._retry import RetryPolicy, parse_retry_after, retrying


class TestRetryAfter:
    def test_seconds(self) -> None:
        assert parse_retry_after("5") == 5.0
        assert parse_retry_after(" 0 ") == 0.0

    def test_http_date(self) -> None:
        now = datetime(2026, 1, 1, tzinfo=UTC)
        value = format_datetime(now + timedelta(seconds=30), usegmt=True)
        assert parse_retry_after(value, now=now.timestamp()) == pytest.approx(30.0)

    def test_past_date_means_now(self) -> None:
        assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0

    @pytest.mark.parametrize("value", [None, "", "soon", "-3", "1.5"])
    def test_garbage_is_ignored(self, value: str | None) -> None:
        assert parse_retry_after(value) is None


class TestDelay:
    def test_exponential_with_equal_jitter(self) -> None:
        policy = RetryPolicy(base=0.2, cap=5.0)
        assert policy.delay(0, rng=lambda: 0.0) == pytest.approx(0.1)
        assert policy.delay(0, rng=lambda: 1.0) == pytest.approx(0.2)
        assert policy.delay(3, rng=lambda: 0.0) == pytest.approx(0.8)
        assert policy.delay(10, rng=lambda: 1.0) == pytest.approx(5.0)

    def test_retry_after_wins_and_is_capped(self) -> None:
        policy = RetryPolicy(retry_after_cap=10.0)
        assert policy.delay(0, retry_after=3.0, rng=lambda: 0.0) == 3.0
        assert policy.delay(0, retry_after=3600.0, rng=lambda: 0.0) == 10.0
        assert 3.0 <= policy.delay(0, retry_after=3.0) <= 3.3


def run(
    policy: RetryPolicy, outcomes: list[CheckFailure | str], deadline: float = 30.0
) -> tuple[str, int]:
    calls = 0

    async def attempt() -> str:
        nonlocal calls
        outcome = outcomes[calls]
        calls += 1
        if isinstance(outcome, CheckFailure):
            raise outcome
        return outcome

    async def main() -> str:
        return await retrying(
            attempt, policy=policy, deadline=time.monotonic() + deadline, what="test"
        )

    return asyncio.run(main()), calls


FAST = RetryPolicy(retries=2, base=0.001)
BUSY = CheckFailure("http_status", "HTTP 503", retryable=True)


class TestRetrying:
    def test_transient_failures_then_success(self) -> None:
        assert run(FAST, [BUSY, BUSY, "ok"]) == ("ok", 3)

    def test_permanent_failure_is_not_retried(self) -> None:
        denied = CheckFailure("invalid_client", "no")
        with pytest.raises(CheckFailure) as info:
            run(FAST, [denied, "ok"])
        assert info.value is denied

    def test_gives_up_after_retries_and_says_how_often(self) -> None:
        with pytest.raises(CheckFailure) as info:
            run(FAST, [BUSY, BUSY, BUSY, "ok"])
        assert info.value.reason == "http_status"
        assert info.value.message == "HTTP 503 (3 attempts)"

    def test_zero_retries(self) -> None:
        with pytest.raises(CheckFailure) as info:
            run(RetryPolicy(retries=0), [BUSY, "ok"])
        assert info.value.message == "HTTP 503"

    def test_never_sleeps_past_the_deadline(self) -> None:
        slow = CheckFailure("http_status", "HTTP 429", retryable=True, retry_after=30.0)
        started = time.monotonic()
        with pytest.raises(CheckFailure) as info:
            run(RetryPolicy(retries=5), [slow, "ok"], deadline=2.0)
        assert time.monotonic() - started < 1.0
        assert "no time left" in info.value.message
