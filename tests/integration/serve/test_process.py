"""``run_server`` as a process: JSON access logs without secrets, graceful SIGTERM."""

from __future__ import annotations

import base64
import json
import secrets
from pathlib import Path

import httpx
import pytest

from tests.fixtures.common import CANARY
from tests.integration.serve.conftest import STACK, Registry
from tests.integration.serve.replica import Replica


@pytest.fixture
def replica(registry: Registry, workdir: Path) -> Replica:
    return Replica(state=registry.url, workdir=workdir, stack=STACK, name="logs")


def test_logs_never_hold_secrets_or_tokens(
    http: httpx.Client, registry: Registry, replica: Replica
) -> None:
    secret = CANARY + secrets.token_urlsafe(16)
    client = registry.add("canary", secret=secret)
    issued: list[str] = []
    with replica:
        ok = http.post(
            replica.token_url,
            params={"appName": "intNC"},
            data={"grant_type": "client_credentials"},
            auth=(client.client_id, secret),
        )
        issued.append(ok.json()["access_token"])
        body = http.post(
            replica.token_url,
            params={"appName": "intNC"},
            data={
                "grant_type": "client_credentials",
                "client_id": client.client_id,
                "client_secret": secret,
            },
        )
        issued.append(body.json()["access_token"])
        # mistakes a provider can make with the secret: all must stay out of the logs
        http.post(
            replica.token_url,
            params={"appName": "intNC", "client_id": client.client_id, "client_secret": secret},
            data={"grant_type": "client_credentials"},
        )
        http.post(
            replica.token_url,
            params={"appName": "intNC"},
            data={"grant_type": "client_credentials"},
            auth=(secret, client.client_id),  # swapped
        )
        http.post(
            replica.token_url,
            params={"appName": "intNC"},
            content=b"grant_type=client_credentials&client_secret=" + secret.encode() + b"\xff",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        http.post(
            replica.token_url,
            params={"appName": "intNC"},
            headers={"Authorization": "Basic " + base64.b64encode(secret.encode()).decode()},
            data={"grant_type": "client_credentials"},
        )
        for bearer in issued:
            headers = {"Authorization": f"Bearer {bearer}"}
            assert http.get(replica.transcripts_url, headers=headers).status_code == 200
            http.get(replica.transcripts_url, params={"access_token": bearer})
            http.get(f"{replica.transcripts_url}/HST-2025-000452", headers=headers)
        http.get(replica.transcripts_url, headers={"Authorization": f"Bearer {CANARY}"})
    # leaving the block sent SIGTERM: uvicorn drained, and run_server returned normally
    assert replica.returncode == 0
    log = replica.log()
    assert "Finished server process" in log
    assert CANARY not in log
    for value in [secret, *issued]:
        assert value not in log
    lines = [json.loads(line) for line in log.splitlines() if line.strip()]
    access = [line for line in lines if line.get("event") == "access"]
    assert len(access) >= 12
    for line in access:
        assert set(line) >= {"ts", "level", "method", "path", "status", "duration_ms", "remote"}
        assert "?" not in line["path"]
    authenticated = {line.get("client_id") for line in access if line["status"] == 200}
    assert client.client_id in authenticated
