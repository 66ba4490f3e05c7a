"""`erelease serve` and `erelease disclosures` as a user runs them: real processes, real files."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from erelease.cli import cli
from erelease.state import open_store
from tests.fixtures.common import free_port
from tests.integration.serve.conftest import Registry

DATA = Path(__file__).resolve().parents[2] / "data" / "transcripts"
SERVE = (sys.executable, "-m", "erelease")


def start_serve(tmp_path: Path, port: int, *args: str) -> subprocess.Popen[bytes]:
    """``erelease serve`` on ``port`` for the config in ``tmp_path``, once it answers."""
    (tmp_path / "erelease.yaml").write_text(
        f"stack: s\nincoming:\n  baseUrl: http://127.0.0.1:{port}/district\n"
        f"serve:\n  transcripts: {DATA}\n",
        encoding="utf-8",
    )
    command = [sys.executable, "-m", "erelease", "-C", str(tmp_path), "serve"]
    proc = subprocess.Popen(
        [*command, "--port", str(port), *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(proc.stdout.read() if proc.stdout else "serve did not start")
        time.sleep(0.1)


def test_serve_command_answers_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    proc = start_serve(tmp_path, port)
    try:
        # The base path comes from incoming.baseUrl: /district, not the default /campus.
        token = httpx.post(
            f"http://127.0.0.1:{port}/district/oauth2/token?appName=x",
            data={"grant_type": "client_credentials"},
            auth=("nobodyNobody1234", "wrong"),
        )
        assert token.status_code == 401 and token.json()["error"] == "invalid_client"
        assert httpx.get(f"http://127.0.0.1:{port}/district/openapi.json").status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=20)
    assert code == 0
    output = proc.stdout.read().decode() if proc.stdout else ""
    assert "Traceback" not in output


@pytest.mark.parametrize("trusted", [True, False])
def test_forwarded_for_is_believed_only_from_the_named_proxies(
    tmp_path: Path, trusted: bool
) -> None:
    # Behind a reverse proxy every peer is the proxy: the disclosure would name it, and
    # one throttle would count every provider's failures together.
    port = free_port()
    base = f"http://127.0.0.1:{port}/district"
    (tmp_path / ".erelease").mkdir()
    url = f"sqlite:///{tmp_path / '.erelease' / 'state.db'}"
    with open_store(url) as store:
        client = Registry(store, url, stack="s", base_url=base).add("proxied")
    args = ("--forwarded-allow-ips", "127.0.0.1") if trusted else ()
    proc = start_serve(tmp_path, port, *args)
    forwarded = {"X-Forwarded-For": "203.0.113.7"}
    try:
        token = httpx.post(
            f"{base}/oauth2/token?appName={client.app_name}",
            data={"grant_type": "client_credentials"},
            auth=(client.client_id, client.secret),
            headers=forwarded,
        ).json()["access_token"]
        bearer = {"Authorization": f"Bearer {token}", **forwarded}
        document = httpx.get(
            f"{base}/api/campus/transcript/eTranscripts/HST-2025-000417", headers=bearer
        )
        assert document.status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    result = CliRunner().invoke(cli, ["-C", str(tmp_path), "disclosures", "--format", "json"])
    assert result.exit_code == 0, result.output
    [row] = json.loads(result.stdout)["disclosures"]
    assert row["remote_addr"] == ("203.0.113.7" if trusted else "127.0.0.1")


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_port_in_use_is_a_one_line_error_not_exit_3(tmp_path: Path, workers: str) -> None:
    # uvicorn exits 3 when it cannot bind; 3 means "a connectivity test failed" here.
    port = free_port()
    (tmp_path / "erelease.yaml").write_text(f"stack: s\nserve:\n  transcripts: {DATA}\n")
    with socket.create_server(("127.0.0.1", port)):
        proc = subprocess.run(
            [*SERVE, "-C", str(tmp_path), "serve", "--port", str(port), "--workers", workers],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert proc.returncode == 1, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("erelease: error:")]
    assert len(errors) == 1 and f"127.0.0.1:{port}" in errors[0]
    assert "Traceback" not in proc.stderr


def test_disclosures_export_empty_registry(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["-C", str(tmp_path), "disclosures", "--format", "json"])
    assert result.exit_code == 0, result.output + result.stderr
    assert json.loads(result.stdout)["disclosures"] == []
    csv = CliRunner().invoke(cli, ["-C", str(tmp_path), "disclosures"])
    assert csv.exit_code == 0
    assert csv.stdout.splitlines()[0] == "released_at,connection,client_id,document_id,remote_addr"
