"""The sliding-window throttle: blocks at the limit, slides, and stays bounded."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from erelease.serve._throttle import SlidingWindowThrottle


def test_blocks_at_the_limit_until_the_oldest_failure_leaves_the_window() -> None:
    throttle = SlidingWindowThrottle(limit=3, window=60)
    for t in (0.0, 10.0, 20.0):
        assert throttle.retry_after("k", now=t) == 0
        throttle.failure("k", now=t)
    assert throttle.retry_after("k", now=21.0) == 39
    assert throttle.retry_after("other", now=21.0) == 0
    assert throttle.retry_after("k", now=60.5) == 0  # the failure at 0 has left
    throttle.failure("k", now=61.0)
    assert throttle.retry_after("k", now=61.0) == 9


def test_retry_after_is_at_least_one_second() -> None:
    throttle = SlidingWindowThrottle(limit=1, window=1)
    throttle.failure("k", now=0.0)
    assert throttle.retry_after("k", now=0.9999) == 1


def test_forgets_idle_keys() -> None:
    throttle = SlidingWindowThrottle(limit=2, window=5)
    throttle.failure("k", now=0.0)
    assert throttle.retry_after("k", now=10.0) == 0
    assert len(throttle) == 0


def test_memory_is_bounded_by_max_keys() -> None:
    throttle = SlidingWindowThrottle(limit=5, window=60, max_keys=100)
    for i in range(10_000):
        throttle.failure(f"addr:{i}", now=float(i) / 1000)
    assert len(throttle) == 100
    assert throttle.retry_after("addr:9999", now=10.0) == 0  # kept, but one failure only


@pytest.mark.parametrize("kw", [{"limit": 0, "window": 1}, {"limit": 1, "window": 0}])
def test_rejects_nonsense(kw: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        SlidingWindowThrottle(**kw)  # type: ignore[arg-type]


@given(
    st.lists(st.tuples(st.sampled_from(["a", "b", "c", "d"]), st.floats(0, 0.5)), max_size=200),
    st.integers(1, 5),
)
def test_blocked_exactly_when_limit_failures_in_window(
    events: list[tuple[str, float]], limit: int
) -> None:
    window = 10.0
    throttle = SlidingWindowThrottle(limit=limit, window=window, max_keys=3)
    now = 0.0
    history: dict[str, list[float]] = {}
    for key, step in events:
        now += step
        throttle.failure(key, now=now)
        history.setdefault(key, []).append(now)
        assert len(throttle) <= 3
    for key, times in history.items():
        wait = throttle.retry_after(key, now=now)
        recent = [t for t in times if t > now - window]
        if wait:
            assert len(recent) >= limit
        # never blocked longer than the window
        assert wait <= window
