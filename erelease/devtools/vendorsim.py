"""A local eTranscript vendor: an OAuth token endpoint and a PESC upload endpoint.

Connectivity tests are only as good as the servers they are tried against, and
real vendors offer no sandbox that misbehaves on request. This simulator
answers like a vendor (RFC 6749 §4.3/§4.4 token endpoint, §2.3.1 Basic or body
client authentication, §5.1 success, §5.2 errors; an RFC 6750 bearer-protected
upload endpoint for PESC XML) and, per client, like a broken one (:class:`Mode`).
It also plays the district side of an incoming connection: any ``GET
…/eTranscripts`` with a bearer token it issued answers 200. It counts requests
and the most simultaneous requests, in total and per client, so tests can
assert that retries and the concurrency bound really happen.

It is a small HTTP/1.1 server on raw asyncio (keep-alive, Content-Length
bodies, optional TLS) in a background thread: a benchmark of 1,000 tests must
measure the client, not the simulator's framework overhead.

Library: ``with VendorSim(clients=[SimClient("key", "secret")]) as sim: ...``.
Standalone, for the demo (prints its URL, then a JSON line of endpoints)::

    python -m erelease.devtools.vendorsim --port 8900 --credentials-file clients.yaml

The credentials file (YAML or JSON) holds ``clients:``, a list of
:class:`SimClient` fields (``consumer_key``/``consumer_secret`` are accepted as
aliases of ``client_id``/``client_secret``), and optionally ``latency:``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import signal
import socket
import ssl
import sys
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import trustme
import yaml

from erelease.devtools._vendorapp import ClientStats, Mode, SimClient, VendorApp, read_request

__all__ = ["ClientStats", "Mode", "SimClient", "VendorSim", "load_clients", "main"]

TOKEN_PATH = "/send-library-api/v1/oauth/token"
UPLOAD_PATH = "/send-library-api/v1/pesc/highschool/transcript/1/3/0"
ETRANSCRIPTS_PATH = "/campus/api/campus/transcript/eTranscripts"


class VendorSim:
    """The simulator as a library: ``start()`` serves from a thread, ``stop()`` ends it."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clients: Iterable[SimClient] = (),
        latency: float = 0.0,
        tls: bool = False,
    ) -> None:
        self.host, self.tls = host, tls
        self._app = VendorApp(latency)
        for client in clients:
            self.add_client(client)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY only on sockets that say so,
        # and without it every response waits ~40 ms for a delayed ACK.
        self._sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.port: int = self._sock.getsockname()[1]
        self._dir: Path | None = None
        self.ca_pem_path: str | None = None
        self._ssl: ssl.SSLContext | None = None
        if tls:
            ca = trustme.CA()
            self._dir = Path(tempfile.mkdtemp(prefix="vendorsim-"))
            self.ca_pem_path = str(self._dir / "ca.pem")
            ca.cert_pem.write_to_path(self.ca_pem_path)
            self._ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ca.issue_cert("localhost", "127.0.0.1", "::1", host).configure_cert(self._ssl)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._connections: set[asyncio.Task[Any]] = set()

    # -- addresses ------------------------------------------------------------------------
    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"

    @property
    def token_url(self) -> str:
        return self.url + TOKEN_PATH

    @property
    def upload_url(self) -> str:
        return self.url + UPLOAD_PATH

    @property
    def etranscripts_url(self) -> str:
        return self.url + ETRANSCRIPTS_PATH

    # -- clients and counters ---------------------------------------------------------------
    def add_client(self, client: SimClient) -> SimClient:
        with self._app.lock:
            self._app.clients[client.client_id] = client
            self._app.failures.pop(client.client_id, None)
        return client

    def set_mode(self, client_id: str, mode: Mode | str, **changes: Any) -> None:
        """Switch a client's behaviour (and e.g. ``fail_first``, ``delay``) at run time."""
        with self._app.lock:
            client = replace(self._app.clients[client_id], mode=Mode(mode), **changes)
            self._app.clients[client_id] = client
            self._app.failures.pop(client_id, None)

    def stats(self, client_id: str) -> ClientStats:
        with self._app.lock:
            return replace(self._app.stats.get(client_id, ClientStats()))

    @property
    def max_concurrent(self) -> int:
        """The most HTTP requests in progress at once since start or :meth:`reset_stats`."""
        with self._app.lock:
            return self._app.max_concurrent

    @property
    def requests(self) -> int:
        with self._app.lock:
            return self._app.requests

    def issued_tokens(self) -> list[str]:
        """Every access token issued so far (tests scan outputs for them)."""
        with self._app.lock:
            return list(self._app.tokens)

    def reset_stats(self) -> None:
        with self._app.lock:
            self._app.stats.clear()
            self._app.failures.clear()
            self._app.max_concurrent = self._app.in_flight
            self._app.requests = 0

    # -- serving ----------------------------------------------------------------------------
    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        try:
            while (request := await read_request(reader)) is not None:
                keep_alive = request.headers.get("connection", "").lower() != "close"
                writer.write((await self._app.handle(request)).encode(keep_alive))
                await writer.drain()
                if not keep_alive:
                    break
        except (OSError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # a client that hung up or spoke nonsense; the probe's bare connects land here
        except asyncio.CancelledError:
            pass  # stop(): end quietly (asyncio would report a cancelled handler as an error)
        finally:
            if task is not None:
                self._connections.discard(task)
            writer.close()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        server = await asyncio.start_server(
            self._connection, sock=self._sock, ssl=self._ssl, backlog=4096
        )
        self._ready.set()
        async with server:
            await self._stopping.wait()
            server.close()
            for task in list(self._connections):
                task.cancel()
            await asyncio.gather(*self._connections, return_exceptions=True)

    def start(self) -> VendorSim:
        self._thread = threading.Thread(
            target=asyncio.run, args=(self._serve(),), name=f"vendorsim:{self.port}", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(timeout=10):
            raise RuntimeError("the vendor simulator did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stopping is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
            self._thread.join(timeout=10)
        self._thread = None
        self._sock.close()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> VendorSim:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def load_clients(path: Path) -> tuple[list[SimClient], float | None]:
    """Clients (and ``latency``) from a YAML or JSON credentials file."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    aliases = {"consumer_key": "client_id", "consumer_secret": "client_secret"}
    known = {f.name for f in fields(SimClient)}
    clients = []
    for entry in data.get("clients", []):
        values: dict[str, Any] = {aliases.get(str(k), str(k)): v for k, v in dict(entry).items()}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"{path}: unknown client field(s): {', '.join(unknown)}")
        values["mode"] = Mode(values.get("mode", "ok"))
        clients.append(SimClient(**values))
    latency = data.get("latency")
    return clients, None if latency is None else float(latency)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m erelease.devtools.vendorsim",
        description="A local eTranscript vendor for tests and demos.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--credentials-file", type=Path, help="YAML/JSON with clients:")
    parser.add_argument("--latency", type=float, help="seconds added to every request")
    parser.add_argument("--tls", action="store_true", help="serve HTTPS with a self-signed CA")
    args = parser.parse_args(argv)
    clients, latency = load_clients(args.credentials_file) if args.credentials_file else ([], None)
    latency = args.latency if args.latency is not None else latency or 0.0
    sim = VendorSim(host=args.host, port=args.port, clients=clients, latency=latency, tls=args.tls)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with sim:
        print(f"vendorsim listening on {sim.url}", flush=True)
        endpoints = {
            "url": sim.url,
            "token_url": sim.token_url,
            "upload_url": sim.upload_url,
            "etranscripts_url": sim.etranscripts_url,
            "ca": sim.ca_pem_path,
        }
        print(json.dumps(endpoints), flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
