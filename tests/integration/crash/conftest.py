"""A district of several incoming connections on a Vault of its own, on both backends.

Outages are real: the OpenBao dev server of the module is sealed (and unsealed
with the key its dev mode printed), PostgreSQL sessions are ended with
``pg_terminate_backend``. What picks the moment is one of erelease's own seams,
wrapped in-process (``Transport.request``, ``Vault.write_credentials``, the
store's ``commit``). After the failure a plain ``apply`` must converge: the
registry's client IDs unique, each row's digest that of the secret in Vault,
the plan empty, no credentials in Vault that no row names.
"""

from __future__ import annotations

import hashlib
import json
import re
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner, Result

from erelease.cli import cli
from erelease.devtools.openbao import OpenBaoServer
from erelease.state import open_store

STACK = "district-42"
MOUNT = "secret"


class Bao:
    """A dedicated dev server that can be sealed and unsealed again."""

    def __init__(self, server: OpenBaoServer) -> None:
        self.server = server
        assert server.home is not None
        deadline = time.monotonic() + 15
        while True:  # dev mode prints its banner a moment after it answers
            log = (server.home / "server.log").read_text(errors="replace")
            found = re.search(r"^Unseal Key: (\S+)$", log, re.MULTILINE)
            if found is not None or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert found is not None, "the dev server printed no unseal key"
        self.unseal_key = found[1]

    def seal(self) -> None:
        self.server.seal()

    def unseal(self) -> None:
        client = self.server.client()
        client.sys.submit_unseal_key(self.unseal_key)
        assert not client.sys.is_sealed()

    def keys(self, prefix: str) -> list[str]:
        client = self.server.client()
        try:
            listed = client.secrets.kv.v2.list_secrets(prefix, mount_point=MOUNT)
        except Exception:
            return []
        return sorted(listed["data"]["keys"])

    def data(self, path: str) -> dict[str, str] | None:
        try:
            got = self.server.client().secrets.kv.v2.read_secret_version(
                path, mount_point=MOUNT, raise_on_deleted_version=True
            )
        except Exception:
            return None
        return dict(got["data"]["data"])


@pytest.fixture(scope="module")
def bao() -> Iterator[Bao]:
    server = OpenBaoServer().start()
    try:
        yield Bao(server)
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state' / 'state.db'}"
    return str(request.getfixturevalue("pg_db_url"))


@dataclass
class District:
    path: Path
    state_url: str
    bao: Bao
    prefix: str
    runner: CliRunner = field(default_factory=CliRunner)

    def write_incoming(self, name: str, *, credentials: str | None = None) -> None:
        where = credentials or f"{self.prefix}/{name}"
        (self.path / "connections.d" / f"{name}.yaml").write_text(
            textwrap.dedent(
                f"""\
                apiVersion: erelease/v1
                kind: IncomingConnection
                metadata:
                  name: {name}
                spec:
                  credentials: ref+vault://{MOUNT}/{where}
                """
            ),
            encoding="utf-8",
        )

    def remove(self, name: str) -> None:
        (self.path / "connections.d" / f"{name}.yaml").unlink()

    def run(self, *args: str) -> Result:
        result = self.runner.invoke(cli, ["-C", str(self.path), *args])
        assert "Traceback" not in result.stderr + result.stdout
        return result

    def apply(self, *extra: str) -> Result:
        return self.run("apply", "--auto-approve", "--no-test", *extra)

    def state(self) -> dict[str, Any]:
        result = self.run("state", "list", "--format", "json")
        assert result.exit_code == 0, result.stderr
        return dict(json.loads(result.stdout))

    def history(self) -> list[dict[str, Any]]:
        result = self.run("state", "history", "--format", "json")
        assert result.exit_code == 0, result.stderr
        return list(json.loads(result.stdout))

    def snapshot(self) -> tuple[Any, ...]:
        """What must not move when an apply fails: serial, rows, history."""
        state = self.state()
        return state["serial"], state["connections"], self.history()

    def assert_converged(self, names: list[str]) -> None:
        """Rows for exactly ``names``, unique client IDs, digests of what Vault holds,
        an empty plan, and no credentials in Vault that no row names."""
        plan = self.run("plan", "--detailed-exitcode")
        assert plan.exit_code == 0, plan.stdout + plan.stderr
        assert self.state()["lock"] is None
        with open_store(self.state_url) as store:
            rows = store.list_connections(stack=STACK)
        assert sorted(r.name for r in rows) == sorted(names)
        ids = [r.outputs["clientId"] for r in rows]
        assert len(set(ids)) == len(ids)
        for row in rows:
            path = str(row.spec["credentials"]).split(f"vault://{MOUNT}/", 1)[1]
            creds = self.bao.data(path)
            assert creds is not None, path
            assert creds["client_id"] == row.outputs["clientId"]
            digest = hashlib.sha256(creds["client_secret"].encode()).hexdigest()
            assert digest == row.outputs["clientSecretSha256"], row.name
        named = {str(r.spec["credentials"]).rsplit("/", 1)[1] for r in rows}
        assert set(self.bao.keys(self.prefix)) == named


@pytest.fixture
def district(
    tmp_path: Path, bao: Bao, state_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[District]:
    monkeypatch.setenv("BAO_ADDR", bao.server.addr)
    monkeypatch.setenv("BAO_TOKEN", bao.server.root_token)
    for name in ("VAULT_ADDR", "VAULT_TOKEN", "BAO_NAMESPACE", "VAULT_NAMESPACE"):
        monkeypatch.delenv(name, raising=False)
    root = tmp_path / "district"
    (root / "connections.d").mkdir(parents=True)
    (root / "erelease.yaml").write_text(
        f'stack: {STACK}\nstate: "{state_url}"\nincoming:\n  baseUrl: http://127.0.0.1:9/campus\n',
        encoding="utf-8",
    )
    site = District(path=root, state_url=state_url, bao=bao, prefix=f"erelease/{tmp_path.name}")
    try:
        yield site
    finally:
        if bao.server.client().sys.is_sealed():
            bao.unseal()


def terminate_backends(url: str) -> int:
    """End every other session of the database ``url`` names (as an operator would)."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
    return int(row[0]) if row else 0
