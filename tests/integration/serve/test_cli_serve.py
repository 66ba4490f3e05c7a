"""`erelease serve` and `erelease disclosures` as a user runs them: real processes, real files."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from click.testing import CliRunner

from erelease.cli import cli
from tests.fixtures.common import free_port

DATA = Path(__file__).resolve().parents[2] / "data" / "transcripts"


def test_serve_command_answers_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / "erelease.yaml").write_text(
        f"stack: s\nincoming:\n  baseUrl: http://127.0.0.1:{port}/district\n"
        f"serve:\n  transcripts: {DATA}\n",
        encoding="utf-8",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "erelease", "-C", str(tmp_path), "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                assert time.monotonic() < deadline, "serve did not start"
                time.sleep(0.1)
        assert health.status_code == 200
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


def test_disclosures_export_empty_registry(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["-C", str(tmp_path), "disclosures", "--format", "json"])
    assert result.exit_code == 0, result.output + result.stderr
    assert json.loads(result.stdout)["disclosures"] == []
    csv = CliRunner().invoke(cli, ["-C", str(tmp_path), "disclosures"])
    assert csv.exit_code == 0
    assert csv.stdout.splitlines()[0] == "released_at,connection,client_id,document_id,remote_addr"
