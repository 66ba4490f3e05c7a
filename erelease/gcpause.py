"""Pause Python's cyclic garbage collector around bulk work that builds no cycles.

Loading ten thousand connections, or decoding as many registry rows,
allocates hundreds of thousands of small objects; every full collection then
re-scans all that is kept, which cost a quarter of a large no-op plan.
Nothing built there forms a reference cycle, so reference counting frees it
all; the collector resumes afterwards if it was running.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

__all__ = ["collector_paused"]


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
