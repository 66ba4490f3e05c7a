"""Benchmark: resolving 10,000 references spread over 100 Vault paths (issue 3).

A plan for a large district references the same few secrets from many
fields; the resolver must read each distinct path once and read distinct paths
concurrently. This starts its own OpenBao dev server, writes 100 secrets of
100 keys each, and resolves all 10,000 ``#key`` references with a fresh
:class:`~erelease.secrets.Vault` session. The baseline, in the same run, is the
floor a naive client could reach: one plain hvac read of each of the 100
paths, one after another (no per-key reads at all).

Rows: the number of Vault data reads (goal: exactly the number of distinct
paths) and the wall time against the sequential baseline, measured twice: on
loopback, where Vault and the client share two CPUs and a read costs about as
much CPU as it waits (so concurrency cannot win much), and through a relay
that adds a 10 ms round trip, as a Vault in another data centre or a cloud
region has, where the bounded concurrency is what pays.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time

from bench.common import Row, timed
from erelease.model import SecretRef
from erelease.secrets import Vault
from erelease.settings import VaultSettings

PATHS = 100
KEYS = 100
MOUNT = "secret"
CONCURRENCY = 16
ONE_WAY_DELAY = 0.005  # seconds each way through the relay: a 10 ms round trip


class _LatencyRelay:
    """A TCP relay on loopback that holds every chunk for ``delay`` seconds each way."""

    def __init__(self, target_port: int, delay: float) -> None:
        self.delay = delay
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while chunk := src.recv(65536):
                time.sleep(self.delay)
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.listener.close()


def _server_class() -> type:
    from erelease.devtools.openbao import OpenBaoServer

    return OpenBaoServer


def _measure(token: str, addr: str, refs: list[SecretRef]) -> tuple[float, float, int]:
    """(resolve seconds, sequential baseline seconds, reads) against ``addr``."""
    import hvac

    client = hvac.Client(url=addr, token=token, timeout=30)

    def sequential() -> int:
        for p in range(PATHS):
            client.secrets.kv.v2.read_secret_version(
                f"bench/p{p:03d}", mount_point=MOUNT, raise_on_deleted_version=True
            )
        return PATHS

    settings = VaultSettings(address=addr, timeout=30)
    environ = {"BAO_TOKEN": token, "HOME": os.environ.get("HOME", "/")}

    def resolve() -> tuple[int, int]:
        with Vault(settings, environ=environ, concurrency=CONCURRENCY) as vault:
            values = vault.resolve(refs)
            return len(values), vault.reads

    sequential()  # warm the server and the connection
    baseline, _ = timed(sequential, repeat=3)
    elapsed, (resolved, reads) = timed(resolve, repeat=3)
    client.adapter.close()
    assert resolved == PATHS * KEYS
    return elapsed, baseline, reads


def _row(figure: str, elapsed: float, baseline: float, what: str) -> Row:
    return Row(
        figure=figure,
        value=f"{elapsed * 1000:.0f} ms",
        baseline=f"{baseline * 1000:.0f} ms {what}",
        ratio=f"{elapsed / baseline:.2f}x",
        goal="report",
        met=None,
    )


def run() -> list[Row]:
    server = _server_class()().start()
    relay: _LatencyRelay | None = None
    try:
        for p in range(PATHS):
            server.kv_put(MOUNT, f"bench/p{p:03d}", {f"k{k:03d}": f"v{p}-{k}" for k in range(KEYS)})
        refs = [
            SecretRef(MOUNT, f"bench/p{p:03d}", f"k{k:03d}")
            for p in range(PATHS)
            for k in range(KEYS)
        ]
        local, local_base, reads = _measure(server.root_token, server.addr, refs)
        relay = _LatencyRelay(server.port, ONE_WAY_DELAY)
        remote, remote_base, _ = _measure(server.root_token, f"http://127.0.0.1:{relay.port}", refs)
    finally:
        if relay is not None:
            relay.close()
        server.stop()
    total = f"{PATHS * KEYS:,}"
    return [
        Row(
            figure=f"vault reads for {total} refs over {PATHS} paths",
            value=f"{reads} reads",
            baseline=f"{PATHS} distinct paths",
            ratio=f"{reads / PATHS:.2f}x",
            goal=f"== {PATHS}",
            met=reads == PATHS,
        ),
        _row(
            f"resolve {total} refs, loopback (concurrency {CONCURRENCY})",
            local,
            local_base,
            f"sequential read of {PATHS} paths",
        ),
        _row(
            f"resolve {total} refs, 10 ms RTT (concurrency {CONCURRENCY})",
            remote,
            remote_base,
            f"sequential read of {PATHS} paths, 10 ms RTT",
        ),
    ]


def main() -> None:
    for row in run():
        status = "" if row.met is None else ("  met" if row.met else "  NOT MET")
        print(
            f"{row.figure}: {row.value} (baseline {row.baseline}; {row.ratio}; "
            f"goal {row.goal}){status}"
        )


if __name__ == "__main__":
    main()
