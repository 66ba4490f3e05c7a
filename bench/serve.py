"""Benchmark of ``erelease serve``: tokens per second and latency on loopback.

The server runs as ``run_server`` does in production (uvicorn, JSON access
log written to a file, SQLite registry) in a subprocess of its own, so the
load generator does not share its GIL. The load generator is deliberately
cheap: raw asyncio streams over keep-alive connections with pre-built request
bytes, reading just the status line, the headers and Content-Length bytes.

Baseline, in the same run and with the same client: ``GET /healthz``, which
goes through the same stack and reads the registry once. The ratio
token/healthz shows what the token endpoint itself costs (parsing the form
and Basic header, one ``find_client`` SELECT, one SHA-256 and constant-time
compare, 32 random bytes, one ``store_token`` INSERT) on top of serving any
request at all.

``python -m bench.serve`` prints the rows; ``SERVE_BENCH_SECONDS`` sets the
length of each measured phase (default 4 s), ``SERVE_BENCH_CONCURRENCY`` the
number of keep-alive connections (default 8: enough to keep one server core
busy; more only queues, raising latency without raising throughput).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.common import Row

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "transcripts"
STACK = "bench"
CLIENT_ID = "BenchClient00001"
SECRET = "bench-" + "s" * 43
CONCURRENCY = int(os.environ.get("SERVE_BENCH_CONCURRENCY", "8"))
GOAL_TPS = 3000.0
GOAL_P99_MS = 20.0
_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)


@dataclass(frozen=True)
class Phase:
    """What one load phase measured."""

    requests: int
    seconds: float
    latencies: list[float]
    failures: int
    server_cpu: float  # seconds of server CPU during the phase
    client_cpu: float  # seconds of load-generator CPU during the phase

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    @property
    def cpu_us(self) -> float:
        return self.server_cpu / self.requests * 1e6 if self.requests else float("nan")

    @property
    def client_us(self) -> float:
        return self.client_cpu / self.requests * 1e6 if self.requests else float("nan")


def _seed(state_url: str) -> None:
    from erelease.model import ConnectionRecord
    from erelease.state import open_store

    record = ConnectionRecord(
        kind="incoming",
        name="bench",
        spec={"appName": "intNC", "credentials": "ref+vault://secret/erelease/incoming/bench"},
        outputs={
            "clientId": CLIENT_ID,
            "clientSecretSha256": hashlib.sha256(SECRET.encode()).hexdigest(),
            "appName": "intNC",
            "tokenUrl": "http://127.0.0.1/campus/oauth2/token?appName=intNC",
            "eTranscriptsUrl": "http://127.0.0.1/campus/api/campus/transcript/eTranscripts",
        },
    )
    with open_store(state_url) as store:
        info = store.init_stack(stack=STACK)
        store.commit(
            stack=STACK,
            expected_serial=info.serial,
            upserts=[record],
            deletes=[],
            actor="bench",
            git_commit=None,
            summary={"create": 1},
            changes=[(record.address, "create")],
        )


def _serve(state_url: str, workdir: str, port: int) -> None:
    """The server process: exactly what ``erelease serve`` runs."""
    from erelease.serve import run_server
    from erelease.settings import ServeSettings, Settings
    from erelease.state import open_store

    settings = Settings(
        config_dir=Path(workdir),
        stack=STACK,
        state=state_url,
        base_url=f"http://127.0.0.1:{port}/campus",
        serve=ServeSettings(transcripts=Path(workdir) / "transcripts"),
    )
    with open_store(state_url) as store:
        run_server(settings=settings, store=store, host="127.0.0.1", port=port)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _Driver(asyncio.Protocol):
    """One keep-alive connection in a closed loop: send, wait for the whole answer, repeat.

    A Protocol rather than streams: no coroutine switch per read, so the load
    generator spends as little of the shared CPU as possible.
    """

    def __init__(self, request: bytes, stop_at: float, latencies: list[float]) -> None:
        self.request = request
        self.stop_at = stop_at
        self.latencies = latencies
        self.failures = 0
        self.buffer = b""
        self.sent_at = 0.0
        self.transport: asyncio.Transport | None = None
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self._send()

    def _send(self) -> None:
        assert self.transport is not None
        self.sent_at = time.perf_counter()
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        match = _LENGTH.search(self.buffer, 0, end + 2)
        total = end + 4 + (int(match.group(1)) if match else 0)
        if len(self.buffer) < total:
            return
        now = time.perf_counter()
        self.latencies.append(now - self.sent_at)
        if not self.buffer.startswith(b"HTTP/1.1 200"):
            self.failures += 1
        self.buffer = self.buffer[total:]
        if now < self.stop_at:
            self._send()
        elif self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


async def _load(
    port: int, request: bytes, seconds: float, concurrency: int
) -> tuple[int, float, list[float], int]:
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    start = time.perf_counter()
    drivers = []
    for _ in range(concurrency):
        _, driver = await loop.create_connection(
            lambda: _Driver(request, start + seconds, latencies), "127.0.0.1", port
        )
        drivers.append(driver)
    await asyncio.gather(*(d.done for d in drivers))
    elapsed = time.perf_counter() - start
    return len(latencies), elapsed, latencies, sum(d.failures for d in drivers)


def _phase(pid: int, port: int, request: bytes, seconds: float) -> Phase:
    asyncio.run(_load(port, request, min(1.0, seconds / 4), CONCURRENCY))  # warm-up
    cpu0, own0 = _cpu_seconds(pid), time.process_time()
    count, elapsed, latencies, failures = asyncio.run(_load(port, request, seconds, CONCURRENCY))
    server, client = _cpu_seconds(pid) - cpu0, time.process_time() - own0
    return Phase(count, elapsed, latencies, failures, server, client)


def _requests(port: int) -> tuple[bytes, bytes]:
    host = f"Host: 127.0.0.1:{port}\r\n".encode()
    credentials = base64.b64encode(f"{CLIENT_ID}:{SECRET}".encode())
    body = b"grant_type=client_credentials"
    token = (
        b"POST /campus/oauth2/token?appName=intNC HTTP/1.1\r\n"
        + host
        + b"Authorization: Basic "
        + credentials
        + b"\r\n"
        + b"Content-Type: application/x-www-form-urlencoded\r\n"
        + b"Content-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )
    health = b"GET /healthz HTTP/1.1\r\n" + host + b"\r\n"
    return token, health


def _wait_ready(port: int, process: subprocess.Popen[bytes]) -> None:
    import http.client

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the benchmark server exited early")
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        try:
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.05)
        finally:
            connection.close()
    raise RuntimeError("the benchmark server did not start")


def measure(seconds: float) -> tuple[Phase, Phase]:
    """Start a server on a fresh SQLite registry; return (token phase, healthz phase)."""
    from erelease.devtools.openbao import free_port

    workdir = Path(tempfile.mkdtemp(prefix="erelease-bench-serve-"))
    try:
        shutil.copytree(DATA, workdir / "transcripts")
        state_url = f"sqlite:///{workdir / 'state.db'}"
        _seed(state_url)
        port = free_port()
        with (workdir / "server.log").open("wb") as log:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "bench.serve",
                    "--serve",
                    state_url,
                    str(workdir),
                    str(port),
                ],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
            try:
                _wait_ready(port, process)
                token, health = _requests(port)
                health_phase = _phase(process.pid, port, health, seconds)
                token_phase = _phase(process.pid, port, token, seconds)
            finally:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=30)
        return token_phase, health_phase
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run() -> list[Row]:
    seconds = float(os.environ.get("SERVE_BENCH_SECONDS", "4"))
    token, health = measure(seconds)
    if token.failures or health.failures:
        raise RuntimeError(
            f"{token.failures + health.failures} non-200 answers during the benchmark"
        )
    p99 = token.pct(0.99)
    return [
        Row(
            figure=f"serve: tokens/s (SQLite, {CONCURRENCY} loopback connections)",
            value=f"{token.rate:,.0f} tokens/s",
            baseline=f"{health.rate:,.0f} /healthz req/s",
            ratio=f"{token.rate / health.rate:.2f}x",
            goal=f">= {GOAL_TPS:,.0f} tokens/s",
            met=token.rate >= GOAL_TPS,
        ),
        Row(
            figure="serve: token latency p50 / p99",
            value=f"{token.pct(0.5):.1f} / {p99:.1f} ms",
            baseline=f"{health.pct(0.5):.1f} / {health.pct(0.99):.1f} ms /healthz",
            ratio=f"{p99 / health.pct(0.99):.2f}x",
            goal=f"p99 < {GOAL_P99_MS:.0f} ms",
            met=p99 < GOAL_P99_MS,
        ),
        Row(
            figure="serve: server CPU per request",
            value=f"{token.cpu_us:,.0f} us/token (client {token.client_us:,.0f} us)",
            baseline=f"{health.cpu_us:,.0f} us/healthz (client {health.client_us:,.0f} us)",
            ratio=f"{token.cpu_us / health.cpu_us:.2f}x",
            goal="(where the time goes)",
            met=None,
        ),
    ]


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--serve":
        _serve(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return
    for row in run():
        met = "" if row.met is None else (" met" if row.met else " NOT met")
        print(
            f"{row.figure}: {row.value} | baseline {row.baseline} | {row.ratio} | {row.goal}{met}"
        )


if __name__ == "__main__":
    main()
