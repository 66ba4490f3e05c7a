"""A district config directory wired to the real OpenBao dev server and a SQLite registry."""

from __future__ import annotations

import json
import sqlite3
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from erelease.cli import cli
from tests.fixtures.openbao import OpenBaoEnv, OpenBaoServer


def outgoing_yaml(
    name: str,
    mount: str,
    *,
    port: int = 443,
    protect: bool = False,
    server: str = "https://auth.vendor.example",
    auth_path: str = "oauth/token",
    secrets_at: str | None = None,
    insecure: bool = False,
) -> str:
    """An outgoing connection whose secrets are at ``erelease/<secrets_at or name>``."""
    where = f"ref+vault://{mount}/erelease/{secrets_at or name}"
    text = textwrap.dedent(
        f"""\
        apiVersion: erelease/v1
        kind: OutgoingConnection
        metadata:
          name: {name}
          protect: {"true" if protect else "false"}
        spec:
          vendor: Vendor {name}
          authServer: {server}
          authPath: {auth_path}
          uploadServer: {server}
          uploadPort: {port}
          uploadPath: /upload
          consumerKey: key-{name}
          consumerSecret: {where}#consumer_secret
          username: user@{name}.example
          password: {where}#password
        """
    )
    return text + ("  allowInsecureHttp: true\n" if insecure else "")


def incoming_yaml(name: str, mount: str, *, rotation: int = 0, protect: bool = False) -> str:
    return textwrap.dedent(
        f"""\
        apiVersion: erelease/v1
        kind: IncomingConnection
        metadata:
          name: {name}
          protect: {"true" if protect else "false"}
        spec:
          provider: Provider {name}
          appName: app{name}
          credentials: ref+vault://{mount}/erelease/incoming/{name}
          rotation: {rotation}
        """
    )


@dataclass
class District:
    path: Path
    mount: str
    bao: OpenBaoServer
    runner: CliRunner

    @property
    def state_file(self) -> Path:
        return self.path / ".erelease" / "state.db"

    def write(self, name: str, text: str) -> Path:
        target = self.path / "connections.d" / f"{name}.yaml"
        target.write_text(text, encoding="utf-8")
        return target

    def remove(self, name: str) -> None:
        (self.path / "connections.d" / f"{name}.yaml").unlink()

    def put_vendor_secret(
        self, name: str, *, password: str = "pw-1", consumer_secret: str = "cs-1"
    ) -> int | None:
        return self.bao.kv_put(
            self.mount,
            f"erelease/{name}",
            {"password": password, "consumer_secret": consumer_secret},
        )

    def run(self, *args: str, input: str | None = None) -> Result:
        return self.runner.invoke(cli, ["-C", str(self.path), *args], input=input)

    def json(self, *args: str) -> dict:
        result = self.run(*args, "--format", "json")
        assert result.exit_code in (0, 2, 3), result.output + result.stderr
        return json.loads(result.stdout)

    def rows(self, sql: str, params: Sequence[object] = ()) -> list[tuple]:
        with sqlite3.connect(self.state_file) as db:
            return list(db.execute(sql, params))

    def vault_data(self, path: str) -> dict[str, str] | None:
        client = self.bao.client()
        try:
            got = client.secrets.kv.v2.read_secret_version(
                path, mount_point=self.mount, raise_on_deleted_version=True
            )
        except Exception:
            return None
        return dict(got["data"]["data"])


@pytest.fixture
def district(
    tmp_path: Path, openbao_env: OpenBaoEnv, openbao: OpenBaoServer, openbao_kv: str
) -> District:
    root = tmp_path / "district-42"
    (root / "connections.d").mkdir(parents=True)
    (root / "erelease.yaml").write_text(
        textwrap.dedent(
            """\
            stack: district-42
            incoming:
              baseUrl: http://127.0.0.1:9/campus
            tests:
              timeout: 2s
              retries: 0
            """
        ),
        encoding="utf-8",
    )
    return District(path=root, mount=openbao_kv, bao=openbao, runner=CliRunner())
