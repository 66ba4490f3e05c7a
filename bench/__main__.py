"""``python -m bench`` (``make bench``): every benchmark of the project, one table.

Each module under :mod:`bench` exposes ``run() -> list[Row]``; every row holds
its figure, the value, a baseline measured in the same run, the ratio, the
goal from the issue and whether it was met. A module that fails to import or
to run becomes a row that says so, and the others still run. After the table:
the peak memory (this process, and the largest subprocess it waited for) and
the machine: CPUs usable, CPU model, Python, load average.

Options: ``--only NAME[,NAME]`` runs a subset (names as in MODULES),
``--markdown`` prints the table as Markdown (as ``bench/RESULTS.md`` records
it). The exit status is 1 if a module failed, else 0 — a goal not met is a
finding to read in the table, not an error.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import resource
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bench.common import Row, peak_rss_mb

#: Run order: the cheap, self-contained ones first.
MODULES: tuple[str, ...] = ("validate", "secrets", "state", "plan_apply", "checks", "serve")
COLUMNS = ("figure", "value", "baseline", "ratio", "goal", "met")


@dataclass(frozen=True)
class Outcome:
    """What one module gave: its rows, how long it ran, and whether it failed."""

    name: str
    rows: list[Row]
    seconds: float
    failed: bool


def _failure(name: str, stage: str, exc: BaseException) -> Row:
    message = " ".join(str(exc).split()) or "no message"
    if len(message) > 160:
        message = message[:157] + "..."
    return Row(
        figure=f"{name}: {stage} FAILED",
        value=f"{type(exc).__name__}: {message}",
        baseline="",
        ratio="",
        goal="",
        met=False,
    )


def run_module(name: str) -> Outcome:
    """Import ``bench.<name>`` and run it; any failure becomes a row."""
    start = time.perf_counter()
    try:
        module = importlib.import_module(f"bench.{name}")
        runner: Callable[[], list[Row]] = module.run
    except Exception as exc:
        return Outcome(name, [_failure(name, "import", exc)], time.perf_counter() - start, True)
    try:
        rows = list(runner())
    except Exception as exc:
        return Outcome(name, [_failure(name, "run", exc)], time.perf_counter() - start, True)
    return Outcome(name, rows, time.perf_counter() - start, False)


def _met(row: Row) -> str:
    if row.met is None:
        return "-"
    return "yes" if row.met else "NO"


def _cells(row: Row) -> list[str]:
    return [row.figure, row.value, row.baseline, row.ratio, row.goal, _met(row)]


def text_table(rows: Sequence[Row]) -> str:
    """Columns padded to their widest cell."""
    table = [list(COLUMNS), *(_cells(r) for r in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(COLUMNS))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def _md(cell: str) -> str:
    return cell.replace("|", "\\|") if cell else " "


def markdown_table(rows: Sequence[Row]) -> str:
    lines = [
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "|".join(["---", "---:", "---:", "---:", "---", ":---:"]) + "|",
    ]
    lines += ["| " + " | ".join(_md(c) for c in _cells(r)) + " |" for r in rows]
    return "\n".join(lines)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def usable_cpus() -> int:
    """What ``nproc`` prints: the CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def machine() -> dict[str, str]:
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return {
        "nproc": str(usable_cpus()),
        "cpu": cpu_model(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "os": f"{platform.system()} {platform.release()}",
        "load average (1/5/15 min)": load,
    }


def _selected(parser: argparse.ArgumentParser, only: str | None) -> list[str]:
    if not only:
        return list(MODULES)
    names = [n.strip() for n in only.split(",") if n.strip()]
    unknown = [n for n in names if n not in MODULES]
    if unknown or not names:
        parser.error(
            f"unknown benchmark(s) {', '.join(unknown) or repr(only)}; "
            f"choose from {', '.join(MODULES)}"
        )
    return names


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description="Run every benchmark and print one table."
    )
    parser.add_argument(
        "--only", metavar="NAME[,NAME]", help=f"run only these ({', '.join(MODULES)})"
    )
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = parser.parse_args(argv)
    names = _selected(parser, args.only)
    before = machine()
    started = time.perf_counter()
    outcomes: list[Outcome] = []
    for name in names:
        print(f"bench: running {name} ...", file=sys.stderr, flush=True)
        outcome = run_module(name)
        state = "FAILED" if outcome.failed else "done"
        print(f"bench: {name} {state} in {outcome.seconds:.0f} s", file=sys.stderr, flush=True)
        outcomes.append(outcome)
    total = time.perf_counter() - started
    rows = [row for outcome in outcomes for row in outcome.rows]
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    info = machine()
    info["load average (1/5/15 min)"] = (
        f"{before['load average (1/5/15 min)']} at start, "
        f"{info['load average (1/5/15 min)']} at end"
    )
    print(markdown_table(rows) if args.markdown else text_table(rows))
    print()
    bullet = "- " if args.markdown else ""
    timings = ", ".join(f"{o.name} {o.seconds:.0f} s" for o in outcomes)
    print(
        f"{bullet}peak RSS: {peak_rss_mb():.0f} MB this process, "
        f"{children:.0f} MB the largest subprocess (servers included)"
    )
    print(f"{bullet}run time: {total:.0f} s ({timings})")
    for key, value in info.items():
        print(f"{bullet}{key}: {value}")
    return 1 if any(o.failed for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
