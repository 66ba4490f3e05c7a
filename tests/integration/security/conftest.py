"""A district wired to the real OpenBao, a hostile vendor, and the real CLI process.

The canary is planted as every kind of secret the district holds: the vendor's
consumer secret and password in Vault and the Vault token itself. Commands run
as a separate ``python -m erelease`` process where logging matters (``-vv``
configures the root logger once per process, which an in-process runner shares
with pytest), so stderr is exactly what a CI log would hold.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.fixtures.common import CANARY
from tests.fixtures.openbao import OpenBaoServer
from tests.integration.engine.conftest import incoming_yaml, outgoing_yaml

#: What the hostile vendor hands out as its access token, wherever it can.
VENDOR_TOKEN = "vendor-token-3c9e1f7a2b6d4e8f-not-for-logs"


class _Hostile(BaseHTTPRequestHandler):
    """A token endpoint that puts credentials everywhere a careless vendor might."""

    def log_message(self, *_args: object) -> None:
        return None

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0))).decode()
        headers: dict[str, str] = {}
        if self.path == "/in-headers":  # a token and our own request echoed in headers
            status, data = 200, {"access_token": VENDOR_TOKEN, "token_type": "bearer"}
            headers = {
                "Set-Cookie": f"session={VENDOR_TOKEN}; Path=/",
                "X-Echo-Authorization": self.headers.get("Authorization", ""),
                "X-Echo-Body": body,
            }
        elif self.path == "/error-with-token":  # a §5.2 error that still carries a token
            status = 400
            data = {
                "error": "invalid_grant",
                "error_description": f"token {VENDOR_TOKEN} issued, but the grant failed",
                "access_token": VENDOR_TOKEN,
                "refresh_token": VENDOR_TOKEN + "-refresh",
            }
        elif self.path == "/token-type-is-token":  # a mixed-up reply quoting the token
            status, data = 200, {"access_token": VENDOR_TOKEN, "token_type": VENDOR_TOKEN}
        else:  # our request, body and headers, quoted back in the description
            status = 401
            quoted = f"{body} {dict(self.headers)} refresh {VENDOR_TOKEN}-refresh"
            data = {"error": "invalid_client", "error_description": quoted}
            data["refresh_token"] = VENDOR_TOKEN + "-refresh"
        raw = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(raw)


@pytest.fixture(scope="module")
def hostile_vendor() -> Iterator[str]:
    """``http://127.0.0.1:PORT`` of a vendor that echoes secrets and leaks its tokens."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hostile)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def outgoing(name: str, mount: str, server: str, auth_path: str) -> str:
    """An outgoing connection to a local vendor, its secrets at ``erelease/vendor``."""
    port = int(server.rsplit(":", 1)[1])
    return outgoing_yaml(
        name,
        mount,
        server=server,
        port=port,
        auth_path=auth_path,
        secrets_at="vendor",
        insecure=True,
    )


incoming = incoming_yaml


@dataclass
class Run:
    args: tuple[str, ...]
    code: int
    stdout: str
    stderr: str


@dataclass
class SecureDistrict:
    """A config directory, the Vault token that is the canary, and a CLI process runner."""

    path: Path
    mount: str
    bao: OpenBaoServer
    token: str
    state: str

    def write(self, name: str, text: str) -> None:
        (self.path / "connections.d" / f"{name}.yaml").write_text(text, encoding="utf-8")

    @property
    def crash_dir(self) -> Path:
        return self.path.parent / "xdg-state" / "erelease"

    def environ(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
        env.update({"BAO_ADDR": self.bao.addr, "BAO_TOKEN": self.token, "NO_COLOR": "1"})
        env["XDG_STATE_HOME"] = str(self.path.parent / "xdg-state")
        env["PYTHONWARNINGS"] = "always"  # whatever a warning would print, we see it
        return env

    def run(self, *args: str) -> Run:
        proc = subprocess.run(
            [sys.executable, "-m", "erelease", "-C", str(self.path), *args],
            env=self.environ(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        return Run(args, proc.returncode, proc.stdout, proc.stderr)

    def client_secret(self, name: str) -> str:
        got = self.bao.client().secrets.kv.v2.read_secret_version(
            f"erelease/incoming/{name}", mount_point=self.mount, raise_on_deleted_version=True
        )
        return str(got["data"]["data"]["client_secret"])


def make_district(
    tmp_path: Path, openbao: OpenBaoServer, mount: str, *, state: str
) -> SecureDistrict:
    root = tmp_path / "district"
    (root / "connections.d").mkdir(parents=True)
    (root / "erelease.yaml").write_text(
        f"stack: security\nstate: {state}\nincoming:\n  baseUrl: http://127.0.0.1:9/campus\n"
        "tests:\n  timeout: 3s\n  retries: 0\n",
        encoding="utf-8",
    )
    # The canary is the Vault token: a child token whose id we choose.
    client = openbao.client()
    client.auth.token.create(id=CANARY + "-" + mount, policies=["root"], ttl="1h")
    openbao.kv_put(
        mount, "erelease/vendor", {"consumer_secret": CANARY + "-cs", "password": CANARY + "-pw"}
    )
    return SecureDistrict(root, mount, openbao, CANARY + "-" + mount, state)


@pytest.fixture
def secure_district(tmp_path: Path, openbao: OpenBaoServer, openbao_kv: str) -> SecureDistrict:
    return make_district(tmp_path, openbao, openbao_kv, state="sqlite:///.erelease/state.db")
