"""Fixtures for serve: a real SQLite registry, seeded clients, a live server on loopback."""

from __future__ import annotations

import hashlib
import itertools
import secrets
import shutil
import string
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from erelease.model import ConnectionRecord
from erelease.serve import create_app
from erelease.serve._server import build_config
from erelease.settings import ServeSettings, Settings
from erelease.state import StateStore, open_store
from tests.fixtures.common import free_port

DATA = Path(__file__).resolve().parents[2] / "data" / "transcripts"
STACK = "district-42"
APP_NAME = "intNC"
_ALNUM = string.ascii_letters + string.digits


@dataclass
class Client:
    """A seeded incoming connection and the values the district shared."""

    name: str
    client_id: str
    secret: str
    app_name: str = APP_NAME


def new_client_id() -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(16))


def incoming_record(client: Client, base_url: str) -> ConnectionRecord:
    return ConnectionRecord(
        kind="incoming",
        name=client.name,
        spec={
            "appName": client.app_name,
            "credentials": f"ref+vault://secret/erelease/incoming/{client.name}",
        },
        outputs={
            "clientId": client.client_id,
            "clientSecretSha256": hashlib.sha256(client.secret.encode()).hexdigest(),
            "appName": client.app_name,
            "tokenUrl": f"{base_url}/oauth2/token?appName={client.app_name}",
            "eTranscriptsUrl": f"{base_url}/api/campus/transcript/eTranscripts",
        },
    )


@dataclass
class Registry:
    """The registry as ``apply`` would change it: seed, rotate, delete."""

    store: StateStore
    url: str
    stack: str = STACK
    base_url: str = "http://127.0.0.1:8080/campus"
    clients: dict[str, Client] = field(default_factory=dict)
    _count: itertools.count[int] = field(default_factory=itertools.count)

    def _commit(self, upserts: list[ConnectionRecord], deletes: list[tuple[str, str]]) -> None:
        info = self.store.init_stack(stack=self.stack)
        changes = [(r.address, "apply") for r in upserts]
        changes += [(f"{kind}/{name}", "delete") for kind, name in deletes]
        self.store.commit(
            stack=self.stack,
            expected_serial=info.serial,
            upserts=upserts,
            deletes=deletes,
            actor="tests",
            git_commit=None,
            summary={"change": len(changes)},
            changes=changes,
        )

    def add(
        self,
        prefix: str = "c",
        *,
        secret: str | None = None,
        app_name: str = APP_NAME,
        client_id: str | None = None,
    ) -> Client:
        """A new incoming connection with a unique name starting with ``prefix``."""
        name = f"{prefix}-{next(self._count)}"
        client = Client(
            name, client_id or new_client_id(), secret or secrets.token_urlsafe(32), app_name
        )
        self._commit([incoming_record(client, self.base_url)], [])
        self.clients[name] = client
        return client

    def rotate(self, client: Client) -> Client:
        """A new secret for the same client ID (what ``apply`` does on rotate)."""
        new = Client(client.name, client.client_id, secrets.token_urlsafe(32), client.app_name)
        self._commit([incoming_record(new, self.base_url)], [])
        self.clients[client.name] = new
        return new

    def delete(self, client: Client) -> None:
        self._commit([], [("incoming", client.name)])
        del self.clients[client.name]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One config directory per test module: a transcripts copy and a state file."""
    root = tmp_path_factory.mktemp("serve")
    shutil.copytree(DATA, root / "transcripts")
    return root


@pytest.fixture(scope="module")
def transcripts_dir(workdir: Path) -> Path:
    return workdir / "transcripts"


@pytest.fixture(scope="module")
def registry(workdir: Path) -> Iterator[Registry]:
    url = f"sqlite:///{workdir / 'state.db'}"
    store = open_store(url)
    try:
        yield Registry(store, url)
    finally:
        store.close()


def make_settings(
    config_dir: Path, transcripts: Path, *, base_url: str, token_ttl: float = 3600.0
) -> Settings:
    return Settings(
        config_dir=config_dir,
        stack=STACK,
        base_url=base_url,
        serve=ServeSettings(transcripts=transcripts, token_ttl=token_ttl),
    )


class LiveServer:
    """uvicorn on a loopback port, in a thread, with its own store connection."""

    def __init__(
        self,
        *,
        settings: Settings,
        store: StateStore,
        port: int,
        forwarded_allow_ips: str | None = None,
        **app_kw: Any,
    ) -> None:
        self.port = port
        self.origin = f"http://127.0.0.1:{port}"
        self.base_url = settings.base_url
        self.app = create_app(settings=settings, store=store, **app_kw)
        config = build_config(
            app=self.app,
            host="127.0.0.1",
            port=port,
            forwarded_allow_ips=forwarded_allow_ips,
            configure_logging=False,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/oauth2/token"

    @property
    def transcripts_url(self) -> str:
        return f"{self.base_url}/api/campus/transcript/eTranscripts"


class Servers:
    """Starts replicas, each with its own store connection; stops them all at the end."""

    def __init__(self, workdir: Path, registry: Registry) -> None:
        self.workdir = workdir
        self.registry = registry
        self.started: list[tuple[LiveServer, StateStore]] = []

    def start(
        self, *, token_ttl: float = 3600.0, url: str | None = None, **app_kw: Any
    ) -> LiveServer:
        port = free_port()
        settings = make_settings(
            self.workdir,
            self.workdir / "transcripts",
            base_url=f"http://127.0.0.1:{port}/campus",
            token_ttl=token_ttl,
        )
        store = open_store(url or self.registry.url)
        server = LiveServer(settings=settings, store=store, port=port, **app_kw)
        self.started.append((server, store))
        return server.start()

    def stop_all(self) -> None:
        for server, store in self.started:
            server.stop()
            store.close()
        self.started.clear()


@pytest.fixture
def start_server(workdir: Path, registry: Registry) -> Iterator[Callable[..., LiveServer]]:
    """Start a fresh replica (fresh throttles) on the module's registry."""
    servers = Servers(workdir, registry)
    yield servers.start
    servers.stop_all()


@pytest.fixture(scope="module")
def server(workdir: Path, registry: Registry) -> Iterator[LiveServer]:
    """One replica per module, with throttling loose enough for error tests to share it."""
    servers = Servers(workdir, registry)
    yield servers.start(client_failure_limit=100_000, addr_failure_limit=100_000)
    servers.stop_all()


@pytest.fixture(scope="session")
def http() -> Iterator[httpx.Client]:
    # One client for the session: building its TLS context costs ~0.2 s.
    with httpx.Client(timeout=10) as client:
        yield client


def get_token(http: httpx.Client, server: LiveServer, client: Client) -> str:
    response = http.post(
        server.token_url,
        params={"appName": client.app_name},
        data={"grant_type": "client_credentials"},
        auth=(client.client_id, client.secret),
    )
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    assert isinstance(token, str)
    return token
