"""What every benchmark module returns, and small helpers to measure it."""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Row:
    """One line of the ``make bench`` table."""

    figure: str  # what was measured, e.g. "validate 10,000 files"
    value: str  # the measurement, formatted with its unit
    baseline: str  # the baseline measured in the same run, with its unit
    ratio: str  # value / baseline (or a speed-up), formatted, e.g. "1.32x"
    goal: str  # the goal from the issue, e.g. "<= 1.5x"
    met: bool | None = None  # None when there is no pass/fail goal


def timed(fn: Callable[[], T], *, repeat: int = 1) -> tuple[float, T]:
    """Best wall time of ``repeat`` runs of ``fn`` (seconds), and its last result."""
    best = float("inf")
    result: T
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
