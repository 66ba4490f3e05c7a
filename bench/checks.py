"""Benchmark: connectivity tests run concurrently vs one after another (issue 5).

1,000 outgoing tests (token request + upload-server TCP connect) against the
vendor simulator with 100 ms latency per request, at concurrency 32. The
simulator runs in its own process, as a real vendor would, so the client and
the server do not share a GIL. The sequential baseline is the same tests at
concurrency 1 in the same run; to keep the benchmark short it is measured on
100 tests and scaled by 10 (each sequential test costs the same ~100 ms, so
the scaling is linear), and the row says so. The concurrent figure is the
better of two runs.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import Row, peak_rss_mb, timed
from erelease.checks import OutgoingTarget, run_checks
from erelease.model import CheckResult, Secret
from erelease.settings import TestSettings

TESTS = 1000
SEQUENTIAL_SAMPLE = 100
CONCURRENCY = 32
LATENCY = 0.1
GOAL = 25.0


def _start_simulator(workdir: Path) -> tuple[subprocess.Popen[str], dict[str, str]]:
    credentials = workdir / "clients.json"
    client = {
        "client_id": "bench",
        "client_secret": "bench-secret",
        "username": "u",
        "password": "p",
    }
    credentials.write_text(json.dumps({"clients": [client]}))
    process = subprocess.Popen(
        [sys.executable, "-m", "erelease.devtools.vendorsim", "--port", "0",
         "--latency", str(LATENCY), "--credentials-file", str(credentials)],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert process.stdout is not None
    process.stdout.readline()  # "vendorsim listening on …"
    endpoints: dict[str, str] = json.loads(process.stdout.readline())
    return process, endpoints


def _targets(token_url: str, port: int) -> list[OutgoingTarget]:
    return [
        OutgoingTarget(
            address=f"outgoing/vendor-{i}",
            name=f"vendor-{i}",
            token_url=token_url,
            upload_host="127.0.0.1",
            upload_port=port,
            upload_tls=False,
            consumer_key=Secret("bench"),
            consumer_secret=Secret("bench-secret"),
            username=Secret("u"),
            password=Secret("p"),
        )
        for i in range(TESTS)
    ]


def _all_valid(results: list[CheckResult]) -> None:
    failed = [r for r in results if not r.ok]
    if failed:
        raise RuntimeError(f"{len(failed)} tests failed, e.g. {failed[0].message}")


def run() -> list[Row]:
    with tempfile.TemporaryDirectory() as tmp:
        process, endpoints = _start_simulator(Path(tmp))
        try:
            port = int(endpoints["url"].rsplit(":", 1)[1])
            targets = _targets(endpoints["token_url"], port)
            run_checks(targets[:CONCURRENCY], settings=TestSettings(concurrency=CONCURRENCY))
            rss_before = peak_rss_mb()
            concurrent_s, results = timed(
                lambda: run_checks(
                    targets, settings=TestSettings(concurrency=CONCURRENCY, timeout=30)
                ),
                repeat=2,  # best of two: a shared machine's noise only ever slows a run
            )
            _all_valid(results)
            sample_s, sample = timed(
                lambda: run_checks(
                    targets[:SEQUENTIAL_SAMPLE], settings=TestSettings(concurrency=1, timeout=30)
                )
            )
            _all_valid(sample)
            rss_peak = peak_rss_mb()
        finally:
            process.terminate()
            process.wait(timeout=10)
            if process.stdout is not None:
                process.stdout.close()
    sequential_s = sample_s * TESTS / SEQUENTIAL_SAMPLE
    speedup = sequential_s / concurrent_s
    return [
        Row(
            figure=f"test {TESTS:,} outgoing connections, concurrency {CONCURRENCY}, "
            f"{LATENCY * 1000:.0f} ms vendor latency",
            value=f"{concurrent_s:.2f} s",
            baseline=f"{sequential_s:.1f} s sequential ({SEQUENTIAL_SAMPLE} measured, x10)",
            ratio=f"{speedup:.1f}x faster",
            goal=f">= {GOAL:.0f}x",
            met=speedup >= GOAL,
        ),
        Row(
            figure=f"peak RSS testing {TESTS:,} connections",
            value=f"{rss_peak:.0f} MiB",
            baseline=f"{rss_before:.0f} MiB before the run",
            ratio=f"+{rss_peak - rss_before:.0f} MiB",
            goal="report",
        ),
    ]


def main() -> None:
    for row in run():
        status = "" if row.met is None else ("  met" if row.met else "  NOT MET")
        print(
            f"{row.figure}: {row.value} vs {row.baseline} -> {row.ratio} (goal {row.goal}){status}"
        )


if __name__ == "__main__":
    main()
