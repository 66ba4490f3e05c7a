"""Helpers for the secrets integration tests: Vault sessions and loopback HTTP fakes."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from erelease.secrets import Vault
from erelease.settings import VaultSettings
from tests.fixtures.openbao import OpenBaoEnv


@dataclass
class Seen:
    """One request a fake server received."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes


@dataclass
class Answer:
    status: int = 200
    body: Any = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)


class FakeHTTP:
    """A loopback HTTP(S) server whose answers come from ``respond(seen)``.

    Stands in for things we cannot run here (a GitHub OIDC endpoint, a
    Kubernetes API, a Vault standby) — a real socket, no patched internals.
    """

    def __init__(
        self,
        respond: Callable[[Seen], Answer],
        *,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.seen: list[Seen] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                seen = Seen(self.command, self.path, dict(self.headers), self.rfile.read(length))
                outer.seen.append(seen)
                answer = respond(seen)
                payload = json.dumps(answer.body).encode()
                self.send_response(answer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

            def log_message(self, *args: object) -> None:
                pass

        self.server = _Server(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        scheme = "https" if tls is not None else "http"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> FakeHTTP:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close() waits for handlers: no thread outlives a test

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that hung up (a timeout test) is expected, not news


VaultFactory = Callable[..., Vault]


@pytest.fixture
def make_vault(openbao_env: OpenBaoEnv) -> Iterator[VaultFactory]:
    """Build Vault sessions against the shared server (root token); closed afterwards."""
    made: list[Vault] = []

    def make(
        settings: VaultSettings | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        **overrides: Any,
    ) -> Vault:
        base = settings or openbao_env.settings
        if overrides:
            base = replace(base, **overrides)
        env = dict(openbao_env.environ if environ is None else environ)
        vault = Vault(base, environ=env, concurrency=8)
        made.append(vault)
        return vault

    yield make
    for vault in made:
        vault.close()
