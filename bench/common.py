"""What every benchmark module returns, and small helpers to measure it."""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
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


#: One outgoing connection; both secrets are keys of the Vault path ``{secret}``.
OUTGOING_YAML = """\
# yaml-language-server: $schema=../../schemas/outgoing-connection.schema.json
apiVersion: erelease/v1
kind: OutgoingConnection
metadata:
  name: vendor-{i:05d}
  labels:
    vendor: vendor-{group}
spec:
  vendor: Vendor {i}
  authServer: https://auth-{group}.vendor.example
  authPath: /send-library-api/v1/oauth/token
  uploadServer: https://upload-{group}.vendor.example
  uploadPort: 443
  uploadPath: /send-library-api/v1/pesc/highschool/transcript/1/3/0
  consumerKey: 3235fffff69-5858-60bb-{i:05d}-b-700-w8a8bc6c2323
  consumerSecret: ref+vault://{secret}#consumer_secret
  username: user{i}@vendor.example
  password: ref+vault://{secret}#password
"""


def write_connections(
    config_dir: Path, count: int, file_of: Callable[[int], tuple[str, str]]
) -> list[Path]:
    """``count`` files spread over 50 directories of ``connections.d``, sorted;
    ``file_of(i)`` gives the name and the text of file ``i``."""
    files: list[Path] = []
    for i in range(count):
        directory = config_dir / "connections.d" / f"group-{i % 50:02d}"
        directory.mkdir(parents=True, exist_ok=True)
        name, text = file_of(i)
        path = directory / name
        path.write_text(text, encoding="utf-8")
        files.append(path)
    return sorted(files)
