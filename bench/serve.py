"""Benchmark of ``erelease serve``: tokens per second and latency on loopback.

The server runs as ``run_server`` does in production (uvicorn, JSON access
log written to a file, SQLite registry) in a subprocess of its own, so the
load generator does not share its GIL: once with one worker process and once
with ``SERVE_BENCH_WORKERS`` (default 2; 1 on a one-CPU machine), each on a
registry of its own. The load generator is deliberately cheap: one asyncio
Protocol per keep-alive connection in a closed loop (send, wait for the whole
answer, send again) with pre-built request bytes, reading just the status
line, the headers and Content-Length bytes. Latency runs from the write of a
request to the last byte of its answer.

The machine is shared, so the servers are measured in turns: both started,
then ``SERVE_BENCH_ROUNDS`` short phases of each (default 4, alternating
order), pooled per server, so that a slow moment falls on both. Server CPU is
read from ``/proc`` (the process, its threads, its live workers).

Baseline, in the same run and with the same client: ``GET /healthz``, which
goes through the same stack and reads the registry once. The ratio
token/healthz shows what the token endpoint itself costs (the form and Basic
header, one ``find_client`` SELECT, one SHA-256 and constant-time compare, 32
random bytes, its share of one ``store_tokens`` commit) on top of serving any
request at all.

``python -m bench.serve`` prints the rows; ``SERVE_BENCH_SECONDS`` sets the
measured time of token requests per server (default 4 s),
``SERVE_BENCH_CONCURRENCY`` the number of keep-alive connections (default 8).
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
WORKERS = int(os.environ.get("SERVE_BENCH_WORKERS", "2" if (os.cpu_count() or 1) > 1 else "1"))
ROUNDS = max(1, int(os.environ.get("SERVE_BENCH_ROUNDS", "4")))
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

    def __add__(self, other: Phase) -> Phase:
        """Two phases pooled: requests, time, CPU and every latency sample."""
        return Phase(
            self.requests + other.requests,
            self.seconds + other.seconds,
            self.latencies + other.latencies,
            self.failures + other.failures,
            self.server_cpu + other.server_cpu,
            self.client_cpu + other.client_cpu,
        )


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


def _serve(state_url: str, workdir: str, port: int, workers: int = 1) -> None:
    """The server process: exactly what ``erelease serve [--workers N]`` runs."""
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
        run_server(settings=settings, store=store, host="127.0.0.1", port=port, workers=workers)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of the server: the process, its threads and its live workers."""
    total = 0
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    for each in [pid, *map(int, children)]:
        fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


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


@dataclass
class _Server:
    """One benchmark server: its process, its port and what was measured of it."""

    workers: int
    process: subprocess.Popen[bytes]
    port: int
    token: Phase | None = None
    health: Phase | None = None


def _start(workdir: Path, workers: int) -> _Server:
    from erelease.devtools.openbao import free_port

    state_url = f"sqlite:///{workdir / f'state-{workers}.db'}"
    _seed(state_url)
    port = free_port()
    with (workdir / f"server-{workers}.log").open("wb") as log:
        command = ["-m", "bench.serve", "--serve", state_url, str(workdir), str(port)]
        process = subprocess.Popen(
            [sys.executable, *command, str(workers)],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
    return _Server(workers, process, port)


def measure(seconds: float) -> list[_Server]:
    """Servers with 1 and WORKERS workers, each on a fresh SQLite registry, measured in turns."""
    workdir = Path(tempfile.mkdtemp(prefix="erelease-bench-serve-"))
    servers: list[_Server] = []
    try:
        shutil.copytree(DATA, workdir / "transcripts")
        for workers in sorted({1, WORKERS}):
            servers.append(_start(workdir, workers))
        for server in servers:
            _wait_ready(server.port, server.process)
            token, _ = _requests(server.port)
            asyncio.run(_load(server.port, token, 1.0, CONCURRENCY))  # warm-up
        for server in servers:
            _, health = _requests(server.port)
            server.health = _phase(server.process.pid, server.port, health, seconds / 2)
        for turn in range(ROUNDS):
            for server in servers if turn % 2 == 0 else servers[::-1]:
                token, _ = _requests(server.port)
                phase = _phase(server.process.pid, server.port, token, seconds / ROUNDS)
                server.token = phase if server.token is None else server.token + phase
        return servers
    finally:
        for server in servers:
            server.process.send_signal(signal.SIGTERM)
        for server in servers:
            server.process.wait(timeout=30)
        shutil.rmtree(workdir, ignore_errors=True)


def _rows(server: _Server) -> list[Row]:
    token, health = server.token, server.health
    assert token is not None and health is not None
    if token.failures or health.failures:
        raise RuntimeError(
            f"{token.failures + health.failures} non-200 answers during the benchmark"
        )
    p99 = token.pct(0.99)
    label = f"{server.workers} worker{'s' if server.workers > 1 else ''}"
    return [
        Row(
            figure=f"serve: tokens/s, {label} (SQLite, {CONCURRENCY} loopback connections)",
            value=f"{token.rate:,.0f} tokens/s",
            baseline=f"{health.rate:,.0f} /healthz req/s",
            ratio=f"{token.rate / health.rate:.2f}x",
            goal=f">= {GOAL_TPS:,.0f} tokens/s",
            met=token.rate >= GOAL_TPS,
        ),
        Row(
            figure=f"serve: token latency p50 / p99, {label}",
            value=f"{token.pct(0.5):.1f} / {p99:.1f} ms",
            baseline=f"{health.pct(0.5):.1f} / {health.pct(0.99):.1f} ms /healthz",
            ratio=f"{p99 / health.pct(0.99):.2f}x",
            goal=f"p99 < {GOAL_P99_MS:.0f} ms",
            met=p99 < GOAL_P99_MS,
        ),
        Row(
            figure=f"serve: server CPU per request, {label}",
            value=f"{token.cpu_us:,.0f} us/token (client {token.client_us:,.0f} us)",
            baseline=f"{health.cpu_us:,.0f} us/healthz (client {health.client_us:,.0f} us)",
            ratio=f"{token.cpu_us / health.cpu_us:.2f}x",
            goal="(where the time goes)",
            met=None,
        ),
    ]


def run() -> list[Row]:
    seconds = float(os.environ.get("SERVE_BENCH_SECONDS", "4"))
    before = os.getloadavg()[0]
    servers = measure(seconds)
    after = os.getloadavg()[0]
    rows = [row for server in servers for row in _rows(server)]
    rows.append(
        Row(
            figure="serve: load average (1 min) before / after",
            value=f"{before:.2f} / {after:.2f}",
            baseline=f"{os.cpu_count()} CPUs, shared with the load generator",
            ratio="",
            goal="(context)",
            met=None,
        )
    )
    return rows


def main() -> None:
    if len(sys.argv) in (5, 6) and sys.argv[1] == "--serve":
        _serve(sys.argv[2], sys.argv[3], int(sys.argv[4]), int((sys.argv[5:] or ["1"])[0]))
        return
    for row in run():
        met = "" if row.met is None else (" met" if row.met else " NOT met")
        print(
            f"{row.figure}: {row.value} | baseline {row.baseline} | {row.ratio} | {row.goal}{met}"
        )


if __name__ == "__main__":
    main()
