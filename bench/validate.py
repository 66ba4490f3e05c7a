"""Benchmark: ``load_config`` on 10,000 connection files against a bare YAML load (issue 2).

The baseline is the least any YAML-based validator must do: open each file
and ``yaml.load(..., Loader=yaml.CSafeLoader)`` it. ``load_config`` does that
work and more — discovery, the config digest, duplicate-key and tag checks,
the schema, URL and reference rules, duplicate names — and the goal is that
all of it costs at most half as much again as the bare load. Both run over
the same files in the same process. The first row times them directory by
directory, back to back (robust on a busy machine); the second times one
``load_config`` over all 10,000 files against one bare pass, best of five.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import yaml

from bench.common import OUTGOING_YAML, Row, timed, write_connections
from erelease.config import load_config

FILES = 10_000
GOAL = 1.5

_INCOMING = """\
# yaml-language-server: $schema=../../schemas/incoming-connection.schema.json
apiVersion: erelease/v1
kind: IncomingConnection
metadata:
  name: provider-{i:05d}
spec:
  provider: Provider {i}
  appName: app{i}
  credentials: ref+vault://secret/erelease/incoming/provider-{i:05d}
  rotation: 0
"""


def generate(config_dir: Path, count: int = FILES) -> list[Path]:
    """``count`` valid connection files, a quarter incoming, spread over 50 directories."""

    def file_of(i: int) -> tuple[str, str]:
        if i % 4 == 3:
            return f"connection-{i:05d}.yaml", _INCOMING.format(i=i)
        secret = f"secret/erelease/vendor-{i:05d}"
        return f"connection-{i:05d}.yaml", OUTGOING_YAML.format(i=i, group=i % 7, secret=secret)

    return write_connections(config_dir, count, file_of)


def _bare_load(files: list[Path]) -> int:
    count = 0
    for path in files:
        with open(path, "rb") as handle:
            if yaml.load(handle.read(), Loader=yaml.CSafeLoader) is not None:
                count += 1
    return count


def _interleaved(config_dir: Path, groups: dict[Path, list[Path]]) -> tuple[float, float]:
    """Per directory, ours and the baseline back to back, best of three; summed.

    Timing the two side by side in short slices keeps a busy machine's noise
    (other processes, frequency changes) out of the ratio.
    """
    ours: dict[Path, float] = {}
    bare: dict[Path, float] = {}
    for round_ in range(3):
        for i, (group, files) in enumerate(groups.items()):
            first_ours = (i + round_) % 2 == 0
            for which in ("ours", "bare") if first_ours else ("bare", "ours"):
                if which == "ours":
                    seconds, result = timed(lambda g=group: load_config(config_dir, paths=[g]))
                    if not result.ok or len(result.connections) != len(files):
                        raise RuntimeError(f"the generated files in {group} did not all validate")
                    ours[group] = min(ours.get(group, seconds), seconds)
                else:
                    seconds, _ = timed(lambda f=files: _bare_load(f))
                    bare[group] = min(bare.get(group, seconds), seconds)
    return sum(ours.values()), sum(bare.values())


def _whole(config_dir: Path, files: list[Path]) -> tuple[float, float]:
    """One ``load_config`` over all files against one bare pass, alternately, best of five."""
    ours = bare = float("inf")
    for _ in range(5):
        seconds, result = timed(lambda: load_config(config_dir))
        if not result.ok or len(result.connections) != len(files):
            raise RuntimeError("the generated files did not all validate")
        ours = min(ours, seconds)
        seconds, _ = timed(lambda: _bare_load(files))
        bare = min(bare, seconds)
    return ours, bare


def _row(figure: str, ours: float, bare: float) -> Row:
    ratio = ours / bare
    return Row(
        figure=figure,
        value=f"{ours:.2f} s",
        baseline=f"{bare:.2f} s (yaml.load CSafeLoader)",
        ratio=f"{ratio:.2f}x",
        goal=f"<= {GOAL}x",
        met=ratio <= GOAL,
    )


def run() -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="erelease-bench-") as tmp:
        config_dir = Path(tmp)
        files = generate(config_dir)
        groups: dict[Path, list[Path]] = {}
        for path in files:
            groups.setdefault(path.parent, []).append(path)
        cwd = os.getcwd()
        os.chdir(config_dir)
        try:
            interleaved = _interleaved(config_dir, groups)
            whole = _whole(config_dir, files)
        finally:
            os.chdir(cwd)
    return [
        _row(f"validate {FILES:,} files, 200 per call, interleaved", *interleaved),
        _row(f"validate {FILES:,} files in one call", *whole),
    ]


if __name__ == "__main__":
    for row in run():
        print(
            f"{row.figure}: {row.value} vs {row.baseline} = {row.ratio} "
            f"(goal {row.goal}: {'met' if row.met else 'NOT met'})"
        )
