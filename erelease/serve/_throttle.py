"""Throttling of failed client authentications: a sliding window per key.

A 256-bit client secret cannot be guessed, so throttling is not what keeps
credentials safe; it keeps a misconfigured or hostile caller from turning the
token endpoint into a load generator against the registry, and makes a
credential-stuffing attempt visible (429s in the access log).

Keys are ``client:<id>`` and ``addr:<ip>`` (an IPv6 peer by its /64). Memory
is bounded: each key keeps at most ``limit`` timestamps, and at most
``max_keys`` keys are kept (least recently failed dropped first), so a flood
of random client IDs costs a fixed amount of memory. State is per process:
each replica throttles on its own.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque

__all__ = ["SlidingWindowThrottle"]


class SlidingWindowThrottle:
    """Counts failures per key over the last ``window`` seconds; blocks at ``limit``."""

    def __init__(self, *, limit: int, window: float, max_keys: int = 10_000) -> None:
        if limit < 1 or window <= 0 or max_keys < 1:
            raise ValueError("limit, window and max_keys must be positive")
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, key: str, *, now: float) -> int:
        """Seconds until ``key`` may try again (0: not blocked). Whole seconds, at least 1."""
        times = self._failures.get(key)
        if times is None:
            return 0
        self._expire(times, now)
        if not times:
            del self._failures[key]
            return 0
        if len(times) < self.limit:
            return 0
        return max(1, math.ceil(times[0] + self.window - now))

    def failure(self, key: str, *, now: float) -> None:
        """Record one failed attempt for ``key``."""
        times = self._failures.get(key)
        if times is None:
            times = deque(maxlen=self.limit)
            self._failures[key] = times
            while len(self._failures) > self.max_keys:
                self._failures.popitem(last=False)
        else:
            self._failures.move_to_end(key)
            self._expire(times, now)
        times.append(now)

    def _expire(self, times: deque[float], now: float) -> None:
        horizon = now - self.window
        while times and times[0] <= horizon:
            times.popleft()

    def __len__(self) -> int:
        return len(self._failures)
